import Foundation
import Testing
import Torch

@Suite struct OptimKernelTests {
  /// Two AdamW steps of the fused kernel against the textbook update computed here in Double.
  @Test func fusedAdamWMatchesTheFormula() {
    let start: [Double] = [0.5, -1.25, 2, 0]
    let gradients: [[Double]] = [[0.1, -0.2, 0.3, -0.4], [-0.05, 0.5, 0.25, 1]]
    let (lr, b1, b2, wd, eps) = (0.01, 0.9, 0.999, 0.1, 1e-8)
    let parameter = Tensor(start, shape: [4])
    let m = Tensor.zeros([4], dtype: .float64)
    let v = Tensor.zeros([4], dtype: .float64)
    let step = Tensor.zeros([], dtype: .float32)

    var p = start, mm = [Double](repeating: 0, count: 4), vv = mm
    for (t, g) in gradients.enumerated() {
      Torch.Optim.fusedAdamW(parameters: [parameter], grads: [Tensor(g, shape: [4])], expAvgs: [m], expAvgSqs: [v],
                             steps: [step], learningRate: lr, beta1: b1, beta2: b2, weightDecay: wd, eps: eps)
      let n = Double(t + 1)
      for i in 0..<4 {
        p[i] *= 1 - lr * wd
        mm[i] = b1 * mm[i] + (1 - b1) * g[i]
        vv[i] = b2 * vv[i] + (1 - b2) * g[i] * g[i]
        let mHat = mm[i] / (1 - pow(b1, n))
        let vHat = vv[i] / (1 - pow(b2, n))
        p[i] -= lr * mHat / (vHat.squareRoot() + eps)
      }
      #expect(step.item() == n, "the kernel advances the step count")
    }
    for (got, want) in zip(parameter.doubles(), p) { #expect(abs(got - want) < 1e-12, "\(got) vs \(want)") }
    for (got, want) in zip(m.doubles(), mm) { #expect(abs(got - want) < 1e-15) }
    for (got, want) in zip(v.doubles(), vv) { #expect(abs(got - want) < 1e-15) }
  }

  /// Each list entry is updated with its own state; an empty list is a no-op.
  @Test func fusedAdamWUpdatesEveryEntry() {
    let a = Tensor([1, 1] as [Float], shape: [2])
    let b = Tensor([1, 1, 1] as [Float], shape: [3])
    let states = [a, b].map { (Tensor.zeros($0.shape), Tensor.zeros($0.shape), Tensor.zeros([], dtype: .float32)) }
    Torch.Optim.fusedAdamW(parameters: [a, b], grads: [Tensor([1, -1] as [Float], shape: [2]), Tensor.zeros([3])],
                           expAvgs: states.map(\.0), expAvgSqs: states.map(\.1), steps: states.map(\.2),
                           learningRate: 0.1, beta1: 0.9, beta2: 0.999, weightDecay: 0, eps: 1e-8)
    // First step: m_hat / sqrt(v_hat) = sign(g), so a moves by -lr * sign(g); b has a zero gradient.
    let moved = a.floats()
    #expect(abs(moved[0] - 0.9) < 1e-6 && abs(moved[1] - 1.1) < 1e-6)
    #expect(b.floats() == [1, 1, 1])
    #expect(states.map { $0.2.item() } == [1, 1])
    Torch.Optim.fusedAdamW(parameters: [], grads: [], expAvgs: [], expAvgSqs: [], steps: [], learningRate: 0.1,
                           beta1: 0.9, beta2: 0.999, weightDecay: 0, eps: 1e-8)
  }

  @Test func globalNormAndForeachMul() {
    let a = Tensor([3, 0] as [Float], shape: [2])
    let b = Tensor([4] as [Double], shape: [1, 1])
    let norm = Tensor.globalNorm([a, b])
    #expect(norm.dtype == .float32)
    #expect(norm.shape == [])
    #expect(norm.item() == 5)
    Tensor.foreachMul_([a, b], by: Tensor.full([], 0.5, dtype: .float64))
    #expect(a.floats() == [1.5, 0])
    #expect(b.doubles() == [2])
    #expect(Tensor.globalNorm([a, b]).item() == 2.5)
  }
}
