@testable import NN
import Testing
import Torch

/// The bf16 AdamW precisions (`optim` adamw_bf16 / adamw_bf16_kahan) and the chunked update.
@Suite struct BF16OptimizerTests {
  /// 65,536 weights in [0.5, 1) (bf16 spacing 2^-8 ≈ 0.0039), a constant gradient of 1, lr 1e-6, no
  /// weight decay: AdamW moves each weight by ~1e-6 per step, 1e-4 over 100 steps — 1/39 of a
  /// spacing, so a bf16 weight rounded to nearest never moves. The tolerance is stated per precision.
  static func run(_ precision: AdamW.Precision?, steps: Int = 100) -> (start: Tensor, end: Tensor, optimizer: AdamW) {
    Torch.manualSeed(7)
    let start = (Tensor.rand([1 << 16]) * 0.5 + 0.5).to(.bfloat16).to(.float32)
    let hyper = AdamW.Hyperparameters(learningRate: 1e-6, weightDecay: 0)
    let parameter = Parameter(precision == nil ? start.clone() : start.to(.bfloat16))
    let optimizer = precision.map { AdamW([parameter], hyper, precision: $0) } ?? AdamW([parameter], hyper)
    for _ in 0..<steps {
      parameter.grad = Tensor.ones([1 << 16], dtype: parameter.value.dtype)
      optimizer.step()
    }
    return (start, parameter.value.to(.float32), optimizer)
  }

  /// Mean displacement of the weights (the float32 reference moves every weight by the same amount).
  static func meanMove(_ run: (start: Tensor, end: Tensor, optimizer: AdamW)) -> Double { (run.start - run.end).mean().item() }

  @Test func smallUpdatesAccumulateAsInFloat32() {
    let reference = Self.meanMove(Self.run(nil))
    #expect(abs(reference - 1e-4) < 2e-6, "float32 AdamW: 100 steps of lr 1e-6 on a constant gradient")
    // Rounded to nearest, bf16 weights do not move at all: what the other precisions must fix.
    #expect(Self.meanMove(Self.run(.plain)) == 0)
    // Stochastic rounding: right in expectation. Each weight moves by 0 or a spacing; the mean over
    // 65,536 weights has a relative standard deviation of ~2.4%: stated tolerance 10% (4 sigma).
    let stochastic = Self.meanMove(Self.run(.stochastic))
    #expect(abs(stochastic - reference) < 0.1 * reference, "stochastic rounding: mean move \(stochastic) vs \(reference)")
    // Kahan compensation: the weight plus its compensation follows float32 to within the
    // compensation's own rounding (a bf16 below half a spacing: under 2^-9 * 2^-8 ≈ 7.6e-6), stated
    // tolerance 1e-5 per weight (the compensation's roundings lean one way: its mean move is within
    // 10% of float32's, measured 5%); the bf16 weight itself is float32's rounded to nearest, as with a
    // float32 master (1e-4 is below half a spacing, so here it has not moved yet).
    let kahan = Self.run(.kahan), float = Self.run(nil)
    let compensation = try! #require(kahan.optimizer.states[0]?.compensation).to(.float32)
    #expect((kahan.end + compensation).maxAbsDifference(float.end) < 1e-5)
    #expect(kahan.end.maxAbsDifference(float.end.to(.bfloat16).to(.float32)) == 0)
    #expect(abs((kahan.start - kahan.end - compensation).mean().item() - reference) < 0.1 * reference)
  }

  /// State sizes: bf16 moments for the bf16 precisions, the compensation for Kahan only, and the
  /// figure the memory plan reports.
  @Test func stateDtypesAndBytes() {
    let weights = [Parameter(Tensor.zeros([10, 10], dtype: .bfloat16))]
    for precision in AdamW.Precision.allCases {
      let optimizer = AdamW(weights, .init(), precision: precision)
      optimizer.allocateState()
      let state = optimizer.states[0]!
      #expect(state.expAvg.dtype == (precision == .master ? .float32 : .bfloat16))
      #expect((state.master != nil) == (precision == .master))
      #expect((state.compensation != nil) == (precision == .kahan))
      #expect(AdamW.stateBytes(weights, precision: precision) == 100 * precision.stateBytesPerHalfParameter)
    }
    #expect(AdamW.stateBytes([Parameter(Tensor.zeros([10]))], precision: .master) == 80)
  }

  /// Updating in chunks (a bound on the float32 temporaries) gives bit for bit the update of one call.
  @Test func chunkedUpdateEqualsOneCall() {
    for precision in [AdamW.Precision.master, .kahan] {
      Torch.manualSeed(3)
      let values = [[300], [7, 50], [1000], [20]].map { Tensor.randn($0).to(.bfloat16) }
      let grads = (0..<5).map { _ in values.map { Tensor.randn($0.shape).to(.bfloat16) } }
      func train(chunk: Int) -> [Tensor] {
        let parameters = values.map { Parameter($0.clone()) }
        let optimizer = AdamW(parameters, .init(learningRate: 1e-2), precision: precision)
        optimizer.chunkElements = chunk
        for step in grads {
          for (parameter, grad) in zip(parameters, step) { parameter.grad = grad }
          optimizer.step()
        }
        return parameters.map(\.value)
      }
      let whole = train(chunk: 1 << 26), pieces = train(chunk: 400)
      for (a, b) in zip(whole, pieces) { #expect(a.maxAbsDifference(b) == 0) }
    }
    #expect(AdamW.chunks([0, 1, 2, 3], sizes: { [300, 350, 1000, 20][$0] }, limit: 400) == [[0], [1], [2], [3]])
    #expect(AdamW.chunks([0, 1, 2], sizes: { [100, 200, 50][$0] }, limit: 400) == [[0, 1, 2]])
  }
}
