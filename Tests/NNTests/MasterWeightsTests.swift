import Testing
@testable import NN
@testable import Torch

/// Mixed precision in AdamW: bf16 parameters with float32 master weights and moments.
@Suite struct MasterWeightsTests {
  /// A bf16 weight of magnitude ~1 has a spacing of 2^-7: Adam's first step of about lr = 1e-5 is far
  /// below it. Without master weights the parameter never moves; with them the float32 master takes
  /// exactly the steps a float32 AdamW takes, and the parameter is that master rounded to bf16.
  @Test func smallUpdatesAccumulateInTheMaster() {
    let g = Generator(seed: 9)
    let start = Tensor.randn([64], generator: g) + 1
    let grads = (0..<20).map { _ in Tensor.randn([64], generator: g) }
    let hyper = AdamW.Hyperparameters(learningRate: 1e-4, weightDecay: 0.01)

    let reference = Parameter(start.clone())
    let referenceOptimizer = AdamW([reference], hyper)
    let plain = Parameter(start.to(.bfloat16))
    let plainOptimizer = AdamW([plain], hyper)
    let mixed = Parameter(start.to(.bfloat16))
    let mixedOptimizer = AdamW([mixed], hyper, masterWeights: true)
    let initialBF16 = start.to(.bfloat16)
    for (step, grad) in grads.enumerated() {
      reference.grad = grad
      plain.grad = grad.to(.bfloat16)
      mixed.grad = grad.to(.bfloat16)
      referenceOptimizer.step()
      plainOptimizer.step()
      mixedOptimizer.step()
      // The master starts from the bf16 value and sees bf16-rounded gradients: compare with a float32
      // AdamW started there on the same gradients after the first step.
      if step == 0 { #expect(plain.value.maxAbsDifference(initialBF16) == 0, "bf16 AdamW moved by less than a spacing") }
    }
    #expect(plain.value.maxAbsDifference(initialBF16) == 0)
    let master = try! #require(mixedOptimizer.states[0]?.master)
    #expect(master.dtype == .float32 && mixedOptimizer.states[0]!.expAvg.dtype == .float32)
    #expect(mixed.value.dtype == .bfloat16)
    #expect(mixed.value.maxAbsDifference(master.to(.bfloat16)) == 0)
    // 20 steps of ~1e-4 move the master ~2e-3: visible in bf16 for some elements.
    #expect(mixed.value.maxAbsDifference(initialBF16) > 0)
    // The master follows a float32 AdamW fed the same bf16-rounded gradients from the same start.
    let check = Parameter(initialBF16.to(.float32))
    let checkOptimizer = AdamW([check], hyper)
    for grad in grads {
      check.grad = grad.to(.bfloat16).to(.float32)
      checkOptimizer.step()
    }
    #expect(master.maxAbsDifference(check.value) < 1e-7)
    // And moves like the all-float32 run: the two differ by the start's bf16 rounding plus the
    // gradients' rounding effect (well below the 1e-4 learning rate per step).
    #expect((master - reference.value).maxAbsDifference(initialBF16.to(.float32) - start) < 1e-4)
  }

  /// float32 parameters are updated in place whatever the setting (no master copy).
  @Test func float32ParametersHaveNoMaster() {
    let p = Parameter(Tensor.ones([4]))
    let optimizer = AdamW([p], .init(learningRate: 0.1), masterWeights: true)
    p.grad = Tensor.ones([4])
    optimizer.step()
    #expect(optimizer.states[0]?.master == nil)
    #expect(abs(p.value.max().item() - (1 - 0.1 * 0.01 - 0.1)) < 1e-6)
  }
}
