import Foundation
import NN
import Testing
@testable import Torch
@testable import Training

/// ZeRO's optimizer alone: two ranks (threads of this process, each with its own Gloo group) with
/// different gradients take the step that one AdamW takes on their mean, for each precision that
/// keeps state beside bf16 weights, with the vectors padded (31 bf16 elements over 2 ranks) and a
/// float32 vector of its own.
@Suite(.serialized) struct ShardedOptimizerTests {
  static let shapes = [[5, 3], [7], [3, 3]]

  /// Weights (bf16, then one float32 tensor) and per-rank, per-step gradients, all from one seed.
  static func parameters() -> [Parameter] {
    let generator = Generator(seed: 11)
    return shapes.map { Parameter(Tensor.randn($0, generator: generator).to(.bfloat16)) }
      + [Parameter(Tensor.randn([3], generator: generator))]
  }

  static func gradient(rank: Int, step: Int, like parameter: Parameter, index: Int) -> Tensor {
    let generator = Generator(seed: UInt64(100 + 10 * step + 3 * rank + index * 1000))
    return Tensor.randn(parameter.value.shape, generator: generator).to(parameter.value.dtype)
  }

  @Test(arguments: [AdamW.Precision.master, .kahan, .plain], [1, 2])
  func twoShardsStepAsOneOptimizerOnTheMeanGradient(precision: AdamW.Precision, stage: Int) throws {
    let hyper = AdamW.Hyperparameters(learningRate: 0.01, weightDecay: 0.1)
    let (steps, maxNorm) = (3, 1.0)
    let reference = Self.parameters()
    let whole = AdamW(reference, hyper, precision: precision)
    var referenceNorms: [Double] = []
    for step in 0..<steps {
      for (index, parameter) in reference.enumerated() {
        let sum = Self.gradient(rank: 0, step: step, like: parameter, index: index)
          + Self.gradient(rank: 1, step: step, like: parameter, index: index)
        parameter.grad = sum / 2
      }
      referenceNorms.append(clipGradNorm(reference, maxNorm: maxNorm))
      whole.step(index: step)
      whole.zeroGrad()
    }

    let port = ProcessGroup.freeLoopbackPort()
    let results = onRankThreads(2) { rank -> ([Parameter], [Double], ShardedOptimizer) in
      let group = try ProcessGroup(rank: rank, worldSize: 2, masterAddress: "127.0.0.1", port: port, timeout: 60)
      let parameters = Self.parameters()
      let sharded = ShardedOptimizer(wrapping: AdamW(parameters, hyper, precision: precision), stage: stage, group: group)
      var norms: [Double] = []
      for step in 0..<steps {
        for (index, parameter) in parameters.enumerated() {
          parameter.grad = Self.gradient(rank: rank, step: step, like: parameter, index: index)
        }
        let result = try sharded.step(step, learningRate: hyper.learningRate, maxGradNorm: maxNorm, lossFinite: true)
        #expect(result.applied)
        norms.append(result.gradNorm)
      }
      return (parameters, norms, sharded)
    }
    let (rank0, norms, sharded) = try results.get(0), (rank1, _, _) = try results.get(1)
    for (mine, theirs) in zip(norms, referenceNorms) {
      #expect(abs(mine - theirs) <= 1e-2 * theirs, "gradient norm \(mine) vs \(theirs)")
    }
    #expect(referenceNorms.allSatisfy { $0 > maxNorm }, "clipping is exercised")
    for (index, ((a, b), expected)) in zip(zip(rank0, rank1), reference).enumerated() {
      #expect(a.value.maxAbsDifference(b.value) == 0, "tensor \(index): the ranks' weights differ")
      // bf16 weights: within a rounding of each other (bf16 gradient sums in another order);
      // float32: within float32 rounding.
      let tolerance = a.value.dtype == .bfloat16 ? 2e-2 : 1e-5
      let scale = max(expected.value.abs().max().item(), 1)
      #expect(a.value.maxAbsDifference(expected.value) <= tolerance * scale,
              "tensor \(index): sharded vs whole differ by \(a.value.maxAbsDifference(expected.value))")
    }
    // Each rank keeps the state of its blocks only: half of the padded vectors.
    let blocks = sharded.inner.states.compactMap { $0 }
    #expect(blocks.map(\.expAvg.count) == [16, 2])
    #expect(blocks[0].master != nil || precision != .master)
    #expect(blocks[0].compensation != nil || precision != .kahan)
  }
}

/// Runs `body(rank)` on one thread per rank (data-parallel ranks as threads of this process, each
/// blocking in its collectives until the others arrive) and waits for all of them.
func onRankThreads<T>(_ worldSize: Int, _ body: @escaping @Sendable (Int) throws -> T) -> ThreadResults<T> {
  let results = ThreadResults<T>(worldSize)
  let finished = DispatchGroup()
  for rank in 0..<worldSize {
    finished.enter()
    let thread = Thread {
      results.set(rank, Result { try body(rank) })
      finished.leave()
    }
    thread.stackSize = 8 << 20
    thread.start()
  }
  finished.wait()
  return results
}

/// One result (or error) per rank thread.
final class ThreadResults<T>: @unchecked Sendable {
  private var results: [Result<T, Error>?]
  private let lock = NSLock()
  init(_ count: Int) { results = Array(repeating: nil, count: count) }
  func set(_ rank: Int, _ result: Result<T, Error>) {
    lock.lock(); results[rank] = result; lock.unlock()
  }
  func get(_ rank: Int) throws -> T { try results[rank]!.get() }
}
