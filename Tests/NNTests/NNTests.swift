import Foundation
import Testing
@testable import NN
@testable import Torch

final class TinyBlock: Module, @unchecked Sendable {
  let proj = Linear(3, 2, bias: true)
  let norm = RMSNorm(2)
  override var children: [(String, Module)] { [("proj", proj), ("norm", norm)] }
}

final class TinyModel: Module, @unchecked Sendable {
  let embed = Embedding(5, 3)
  let layers = ModuleList([TinyBlock(), TinyBlock()])
  override var children: [(String, Module)] { [("embed_tokens", embed), ("layers", layers)] }
}

@Suite struct ModuleTests {
  @Test func dottedNamesFollowDeclaredKeys() {
    let names = TinyModel().namedParameters().map(\.0)
    #expect(names == ["embed_tokens.weight", "layers.0.proj.weight", "layers.0.proj.bias", "layers.0.norm.weight",
                      "layers.1.proj.weight", "layers.1.proj.bias", "layers.1.norm.weight"])
    #expect(TinyModel().parameterCount == 15 + 2 * (6 + 2 + 2))
  }

  @Test func strictLoadReportsEveryProblemAtOnce() {
    let model = TinyModel()
    var state = model.stateDict()
    state["layers.1.norm.weight"] = nil
    state["layers.0.proj.weight"] = Tensor.zeros([3, 3])
    state["lm_head.weight"] = Tensor.zeros([1])
    do {
      try model.load(state)
      Issue.record("load should have failed")
    } catch let problems as StateDictProblems {
      #expect(problems.missing == ["layers.1.norm.weight"])
      #expect(problems.unused == ["lm_head.weight"])
      #expect(problems.misshaped.map(\.0) == ["layers.0.proj.weight"])
      #expect(problems.description.contains("model [2, 3], checkpoint [3, 3]"))
    } catch {
      Issue.record("unexpected error \(error)")
    }
  }

  @Test func loadConvertsDtypeAndAssigns() throws {
    let model = TinyModel()
    var state: [String: Tensor] = [:]
    for (name, parameter) in model.namedParameters() { state[name] = Tensor.full(parameter.value.shape, 0.5, dtype: .float64) }
    try model.load(state, dtype: .bfloat16)
    #expect(model.embed.weight.value.dtype == .bfloat16)
    #expect(model.layers[1].proj.bias!.value.floats() == [0.5, 0.5])
    #expect(model.embed.weight.value.requiresGrad)
  }

  @Test func freezingStopsGradients() {
    let model = TinyModel()
    model.layers[0].setTrainable(false)
    #expect(model.trainableParameters.count == 4)
    #expect(!model.layers[0].proj.weight.value.requiresGrad)
  }

  @Test func rmsNormInLowPrecisionMatchesQwenFormula() {
    let norm = RMSNorm(4, eps: 1e-6)
    norm.weight.assign(Tensor([1, 2, 0.5, 1] as [Float]))
    let x = Tensor([1, -2, 3, 4] as [Float], shape: [1, 4])
    let ms = (1.0 + 4 + 9 + 16) / 4
    let expected = zip([1.0, -2, 3, 4], [1.0, 2, 0.5, 1]).map { Float($0 / Foundation.sqrt(ms + 1e-6) * $1) }
    for (a, b) in zip(norm(x).floats(), expected) { #expect(Swift.abs(a - b) < 1e-5) }
    norm.to(dtype: .bfloat16)
    let low = norm(x.to(.bfloat16))
    #expect(low.dtype == .bfloat16)
    for (a, b) in zip(low.floats(), expected) { #expect(Swift.abs(a - b) < 0.02) }
  }
}

@Suite struct OptimizerTests {
  /// One AdamW step by hand: p=1, g=0.5, lr=0.1, wd=0.01, betas (0.9, 0.999), eps 1e-8.
  /// decay: p = 1 - 0.1*0.01 = 0.999; m = 0.05, v = 0.00025; m^ = 0.5, v^ = 0.25;
  /// p -= 0.1 * 0.5 / (0.5 + 1e-8) -> 0.899 (+2e-9).
  @Test func adamwStepMatchesHandComputation() {
    let p = Parameter(Tensor([1, -2] as [Double]))
    p.grad = Tensor([0.5, 0.0] as [Double])
    let optimizer = AdamW([p], .init(learningRate: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01))
    optimizer.step()
    let values = p.value.doubles()
    #expect(Swift.abs(values[0] - (0.999 - 0.1 * 0.5 / (0.5 + 1e-8))) < 1e-12)
    #expect(Swift.abs(values[1] - (-2 * 0.999)) < 1e-12)  // zero gradient: only the decay
    // Second step with the same gradient: m = 0.095, v = 0.00049975; bias corrections 0.19 and 0.001999.
    p.grad = Tensor([0.5, 0.0] as [Double])
    optimizer.step()
    let m = 0.095 / 0.19, v = 0.00049975 / 0.001999
    let expected = (0.999 - 0.1 * 0.5 / (0.5 + 1e-8)) * 0.999 - 0.1 * m / (Foundation.sqrt(v) + 1e-8)
    #expect(Swift.abs(p.value.doubles()[0] - expected) < 1e-12)
    #expect(optimizer.states[0]!.step.item() == 2)
  }

  @Test func frozenAndGradlessParametersDoNotMove() {
    let frozen = Parameter(Tensor([1] as [Double]), trainable: false)
    let noGrad = Parameter(Tensor([3] as [Double]))
    AdamW([frozen, noGrad]).step()
    #expect(frozen.value.doubles() == [1] && noGrad.value.doubles() == [3])
  }

  @Test func clipGradNormScalesToMaxNorm() {
    let a = Parameter(Tensor([3, 0] as [Double])), b = Parameter(Tensor([4] as [Double]))
    a.grad = Tensor([3, 0] as [Double])
    b.grad = Tensor([4] as [Double])
    let norm = clipGradNorm([a, b], maxNorm: 1)
    #expect(norm == 5)
    let scale = 1 / (5 + 1e-6)
    #expect(Swift.abs(a.grad!.doubles()[0] - 3 * scale) < 1e-12)
    #expect(Swift.abs(b.grad!.doubles()[0] - 4 * scale) < 1e-12)
    #expect(clipGradNorm([a, b], maxNorm: 10) < 1.0001)  // already small: unchanged
  }

  @Test func schedulesMatchTransformersLambdas() {
    let cosine = LRSchedule(kind: .cosine, peak: 1e-3, warmupSteps: 10, totalSteps: 110)
    #expect(cosine.rate(at: 0) == 0)
    #expect(Swift.abs(cosine.rate(at: 5) - 5e-4) < 1e-15)
    #expect(cosine.rate(at: 10) == 1e-3)
    #expect(Swift.abs(cosine.rate(at: 60) - 5e-4) < 1e-15)  // half way: cos(pi/2)
    #expect(Swift.abs(cosine.rate(at: 110)) < 1e-18)
    let linear = LRSchedule(kind: .linear, peak: 2.0, warmupSteps: 0, totalSteps: 4)
    #expect([0, 1, 2, 3, 4, 5].map(linear.rate(at:)) == [2, 1.5, 1, 0.5, 0, 0])
    #expect(LRSchedule(kind: .constant, peak: 3, totalSteps: 5).rate(at: 4) == 3)
  }
}
