import Foundation
import Testing
@testable import Torch

@Suite struct CreationTests {
  @Test func valuesRoundTrip() {
    let t = Tensor([1.5, -2, 3, 4] as [Float], shape: [2, 2])
    #expect(t.shape == [2, 2])
    #expect(t.dtype == .float32)
    #expect(t.floats() == [1.5, -2, 3, 4])
    #expect(Tensor([1, 2, 3]).dtype == .int64)
    #expect(Tensor([true, false]).bools() == [true, false])
    #expect(Tensor(scalar: 2.5 as Double).item() == 2.5)
  }

  @Test func factories() {
    #expect(Tensor.arange(5).ints() == [0, 1, 2, 3, 4])
    #expect(Tensor.arange(1, 2, step: 0.25, dtype: .float64).doubles() == [1, 1.25, 1.5, 1.75])
    #expect(Tensor.full([2], 7, dtype: .int32).ints() == [7, 7])
    #expect(Tensor.zeros([3], dtype: .bfloat16).floats() == [0, 0, 0])
    #expect(Tensor.ones([2, 3]).sum().item() == 6)
    #expect(Tensor.linspace(0, 1, steps: 5).floats() == [0, 0.25, 0.5, 0.75, 1])
  }

  @Test func seededGeneratorsReproduce() {
    let a = Tensor.randn([16], generator: Generator(seed: 7)).floats()
    let b = Tensor.randn([16], generator: Generator(seed: 7)).floats()
    let c = Tensor.randn([16], generator: Generator(seed: 8)).floats()
    #expect(a == b)
    #expect(a != c)
    let r = Tensor.randint(3, 9, [1000], generator: Generator(seed: 1)).ints()
    #expect(r.allSatisfy { (3..<9).contains($0) })
    #expect(Set(r).count == 6)
    let g = Generator(seed: 3)
    let state = g.state
    let first = Tensor.rand([4], generator: g).floats()
    g.state = state
    #expect(Tensor.rand([4], generator: g).floats() == first)
  }

  @Test func wrapsExternalMemoryWithoutCopy() {
    final class Owner { var buffer: [Float] = [1, 2, 3, 4, 5, 6] }
    let owner = Owner()
    let t = owner.buffer.withUnsafeBytes { Tensor.wrapping($0.baseAddress!, shape: [2, 3], dtype: .float32, owner: owner) }
    #expect(t.floats() == [1, 2, 3, 4, 5, 6])
    #expect(t[1, 2].item() == 6)
  }

  @Test func dtypeConversions() {
    let t = Tensor([1.7, -1.7, 2.5] as [Double])
    #expect(t.to(.int64).ints() == [1, -1, 2])  // truncation toward zero, as torch
    #expect(t.round().doubles() == [2, -2, 2])  // half to even
    #expect(Tensor([1.0, 2.0] as [Float]).to(.bfloat16).dtype == .bfloat16)
    // bf16 keeps 8 bits of mantissa: 1 + 2^-9 rounds to 1.
    #expect(Tensor([1 + 1.0 / 512] as [Float]).to(.bfloat16).floats() == [1])
  }
}

@Suite struct IndexingTests {
  let m = Tensor.arange(12).reshape(3, 4)

  @Test func integersAndRanges() {
    #expect(m[1].ints() == [4, 5, 6, 7])
    #expect(m[-1, -1].itemInt() == 11)
    #expect(m[0..<2, 1...2].ints() == [1, 2, 5, 6])
    #expect(m[TensorIndex.all, 3].ints() == [3, 7, 11])
    #expect(m[1...].shape == [2, 4])
    #expect(m[..<1].ints() == [0, 1, 2, 3])
    #expect(m[TensorIndex.range(nil, nil, step: 2)].ints() == [0, 1, 2, 3, 8, 9, 10, 11])
    #expect(m[5...].shape == [0, 4])  // empty slice, as Python
  }

  @Test func newAxisAndEllipsis() {
    #expect(m[TensorIndex.newAxis].shape == [1, 3, 4])
    #expect(m[TensorIndex.ellipsis, 0].ints() == [0, 4, 8])
    let cube = Tensor.arange(24).reshape(2, 3, 4)
    #expect(cube[TensorIndex.ellipsis, 1, 2].ints() == [6, 18])
    #expect(cube[1, TensorIndex.ellipsis].shape == [3, 4])
  }

  @Test func tensorAndMaskIndices() {
    #expect(m[Tensor([2, 0])].ints() == [8, 9, 10, 11, 0, 1, 2, 3])
    #expect(m[TensorIndex.all, Tensor([3, 0])].ints() == [3, 0, 7, 4, 11, 8])
    let mask = m.gt(8.0)
    #expect(m[mask].ints() == [9, 10, 11])
  }

  @Test func assignmentWritesThrough() {
    let t = Tensor.zeros([2, 3])
    t[1, 1...] = Tensor([5, 6] as [Float])
    t[Tensor([0])] = Tensor([9] as [Float])
    #expect(t.floats() == [9, 9, 9, 0, 5, 6])
  }

  @Test func gatherScatterSelect() {
    let idx = Tensor([0, 3, 1, 1], shape: [2, 2])
    #expect(m[0..<2].gather(1, idx).ints() == [0, 3, 5, 5])
    let z = Tensor.zeros([5], dtype: .int64)
    #expect(z.scatterAdd(0, Tensor([1, 1, 4]), Tensor([2, 3, 4])).ints() == [0, 5, 0, 0, 4])
    #expect(m.indexSelect(1, Tensor([0, 2])).ints() == [0, 2, 4, 6, 8, 10])
    #expect(m.maskedFill(m.lt(2.0), -1).ints().prefix(3) == [-1, -1, 2])
  }

  @Test func catStackSplit() {
    let a = Tensor([1, 2]), b = Tensor([3])
    #expect(Tensor.cat([a, b]).ints() == [1, 2, 3])
    #expect(Tensor.stack([a, a], dim: 1).shape == [2, 2])
    let parts = Tensor.arange(7).split(3)
    #expect(parts.map { $0.ints() } == [[0, 1, 2], [3, 4, 5], [6]])
    #expect(Tensor.arange(6).split(sizes: [1, 5]).map(\.count) == [1, 5])
    #expect(Tensor.arange(6).chunk(3).count == 3)
    #expect(Tensor.repeatInterleave(counts: Tensor([2, 0, 1])).ints() == [0, 0, 2])
  }
}

@Suite struct MathTests {
  @Test func matmulByHand() {
    let a = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
    let b = Tensor([7, 8, 9, 10, 11, 12] as [Float], shape: [3, 2])
    // [[1*7+2*9+3*11, 1*8+2*10+3*12], [4*7+5*9+6*11, 4*8+5*10+6*12]]
    #expect(F.matmul(a, b).floats() == [58, 64, 139, 154])
    let w = Tensor([1, 0, -1, 2, 2, 2] as [Float], shape: [2, 3])
    #expect(F.linear(a, w, Tensor([0.5, -0.5] as [Float])).floats() == [-1.5, 11.5, -1.5, 29.5])
  }

  @Test func elementwiseAndBroadcast() {
    let x = Tensor([1, 4, 9] as [Float])
    #expect(x.sqrt().floats() == [1, 2, 3])
    #expect((x + 1).floats() == [2, 5, 10])
    #expect((1 - x).floats() == [0, -3, -8])
    #expect((2 / Tensor([1, 4] as [Float])).floats() == [2, 0.5])
    let col = Tensor([1, 2] as [Float], shape: [2, 1])
    #expect((col * Tensor([10, 20, 30] as [Float])).floats() == [10, 20, 30, 20, 40, 60])
    #expect(Tensor([-3, 5] as [Float]).clamp(min: 0, max: 4).floats() == [0, 4])
    let s = Tensor([0] as [Float]).sigmoid().item()
    #expect(s == 0.5)
    // silu(x) = x * sigmoid(x); at 1: 1 / (1 + e^-1)
    #expect(Swift.abs(Tensor([1] as [Double]).silu().item() - 1 / (1 + Foundation.exp(-1.0))) < 1e-12)
    #expect(Tensor([7, -7]).remainder(3).ints() == [1, 2])  // Python sign convention
  }

  @Test func reductionsByHand() {
    let x = Tensor([1, 2, 3, 4, 5, 6] as [Double], shape: [2, 3])
    #expect(x.sum().item() == 21)
    #expect(x.sum(dim: 1).doubles() == [6, 15])
    #expect(x.mean(dim: 0).doubles() == [2.5, 3.5, 4.5])
    // Bessel-corrected variance of [1,2,3] is 1; population is 2/3.
    #expect(x.variance([1]).doubles() == [1, 1])
    #expect(Swift.abs(x.variance([1], correction: 0).doubles()[0] - 2.0 / 3) < 1e-12)
    #expect(x.max().item() == 6)
    #expect(x.argmax(dim: 1).ints() == [2, 2])
    let (values, indices) = x.max(dim: 0)
    #expect(values.doubles() == [4, 5, 6] && indices.ints() == [1, 1, 1])
    let lse = Foundation.log(Foundation.exp(1.0) + Foundation.exp(2.0) + Foundation.exp(3.0))
    #expect(Swift.abs(x.logsumexp([1]).doubles()[0] - lse) < 1e-12)
    #expect(Tensor([1, 2, 3]).cumsum(dim: 0).ints() == [1, 3, 6])
  }

  @Test func softmaxSortTopk() {
    let x = Tensor([1, 2, 3] as [Double])
    let e = [1.0, 2, 3].map { Foundation.exp($0) }
    let total = e.reduce(0, +)
    for (a, b) in zip(x.softmax(dim: 0).doubles(), e.map { $0 / total }) { #expect(Swift.abs(a - b) < 1e-12) }
    for (a, b) in zip(x.logSoftmax(dim: 0).doubles(), e.map { Foundation.log($0 / total) }) { #expect(Swift.abs(a - b) < 1e-12) }
    let (v, i) = Tensor([3, 1, 2] as [Float]).sort(descending: true)
    #expect(v.floats() == [3, 2, 1] && i.ints() == [0, 2, 1])
    #expect(Tensor([5, 9, 1, 7] as [Float]).topk(2).indices.ints() == [1, 3])
  }

  @Test func normsAgainstFormula() {
    let x = Tensor([1, 2, 3, 4] as [Double], shape: [1, 4])
    let w = Tensor([1, 1, 2, 0.5] as [Double])
    let rms = Foundation.sqrt((1.0 + 4 + 9 + 16) / 4 + 1e-6)
    let expected = zip([1.0, 2, 3, 4], [1.0, 1, 2, 0.5]).map { $0 / rms * $1 }
    for (a, b) in zip(F.rmsNorm(x, shape: [4], weight: w, eps: 1e-6).doubles(), expected) { #expect(Swift.abs(a - b) < 1e-12) }
    let mean = 2.5, variance = 1.25
    let ln = [1.0, 2, 3, 4].map { ($0 - mean) / Foundation.sqrt(variance + 1e-5) }
    for (a, b) in zip(F.layerNorm(x, shape: [4], weight: nil, bias: nil, eps: 1e-5).doubles(), ln) { #expect(Swift.abs(a - b) < 1e-12) }
  }

  @Test func attentionMatchesManualSoftmax() {
    let g = Generator(seed: 11)
    let q = Tensor.randn([1, 2, 5, 4], dtype: .float64, generator: g)
    let k = Tensor.randn([1, 1, 5, 4], dtype: .float64, generator: g)
    let v = Tensor.randn([1, 1, 5, 4], dtype: .float64, generator: g)
    let out = F.scaledDotProductAttention(q, k, v, isCausal: true, enableGQA: true)
    // Manual: expand kv heads, causal mask, softmax(q k^T / 2).
    let kk = k.expand(1, 2, 5, 4), vv = v.expand(1, 2, 5, 4)
    let scores = F.matmul(q, kk.mT) / 2.0
    let mask = Tensor.ones([5, 5], dtype: .bool).tril().logicalNot()
    let manual = F.matmul(scores.maskedFill(mask, -Double.infinity).softmax(dim: -1), vv)
    #expect(out.maxAbsDifference(manual) < 1e-12)
  }

  @Test func identityBicubicResizeKeepsPixels() {
    let x = Tensor.rand([1, 3, 6, 5], generator: Generator(seed: 2))
    #expect(F.resizeBicubicAntialiased(x, height: 6, width: 5).maxAbsDifference(x) < 1e-6)
    #expect(F.resizeBicubicAntialiased(x, height: 3, width: 10).shape == [1, 3, 3, 10])
  }

  @Test func conv3dPatchEmbeddingIsAMatmul() {
    // A conv3d whose kernel equals its stride is a linear map of each flattened patch.
    let g = Generator(seed: 4)
    let x = Tensor.randn([3, 3, 2, 4, 4], dtype: .float64, generator: g)
    let w = Tensor.randn([5, 3, 2, 4, 4], dtype: .float64, generator: g)
    let conv = F.conv3d(x, w, stride: [2, 4, 4]).reshape(3, 5)
    let lin = F.linear(x.reshape(3, -1), w.reshape(5, -1))
    #expect(conv.maxAbsDifference(lin) < 1e-10)
  }
}

@Suite struct AutogradTests {
  /// f(x, w) = sum(tanh(x W^T) * log_softmax(x)) checked against central differences in float64.
  @Test func gradientsMatchFiniteDifferences() {
    let g = Generator(seed: 5)
    let x = Tensor.randn([3, 4], dtype: .float64, generator: g).requiresGrad_()
    let w = Tensor.randn([4, 4], dtype: .float64, generator: g).requiresGrad_()
    func f(_ x: Tensor, _ w: Tensor) -> Tensor { (F.linear(x, w).tanh() * x.logSoftmax(dim: 1)).sum() }
    f(x, w).backward()
    let analytic = w.grad!.doubles()
    let base = w.detach().doubles()
    let h = 1e-6
    for i in 0..<base.count {
      var plus = base, minus = base
      plus[i] += h
      minus[i] -= h
      let numeric = (f(x.detach(), Tensor(plus, shape: [4, 4])).item() - f(x.detach(), Tensor(minus, shape: [4, 4])).item()) / (2 * h)
      #expect(Swift.abs(numeric - analytic[i]) < 1e-6)
    }
    #expect(x.grad != nil)
  }

  @Test func noGradScopeAndGradClearing() {
    let w = Tensor([2] as [Double]).requiresGrad_()
    let y = withNoGrad { (w * 3).sum() }
    #expect(!y.requiresGrad)
    (w * w).sum().backward()
    #expect(w.grad!.doubles() == [4])
    (w * 3).sum().backward()
    #expect(w.grad!.doubles() == [7])  // accumulates
    w.grad = nil
    #expect(w.grad == nil)
  }

  @Test func autogradGradAndExplicitGradient() {
    let x = Tensor([1, 2, 3] as [Double]).requiresGrad_()
    let y = x * x
    let grads = Autograd.grad(outputs: [y], inputs: [x], gradOutputs: [Tensor([1, 0, 2] as [Double])])
    #expect(grads[0]!.doubles() == [2, 0, 12])
  }

  @Test func checkpointGivesSameGradients() {
    let g = Generator(seed: 9)
    let w = Tensor.randn([4, 4], dtype: .float64, generator: g).requiresGrad_()
    let x = Tensor.randn([2, 4], dtype: .float64, generator: g).requiresGrad_()
    F.linear(F.linear(x, w).tanh(), w).sum().backward()
    let plainW = w.grad!.doubles(), plainX = x.grad!.doubles()
    w.grad = nil
    x.grad = nil
    let out = checkpoint([x], outputCount: 1) { inputs in [F.linear(F.linear(inputs[0], w).tanh(), w)] }
    out[0].sum().backward()
    RecomputeRegistry.shared.releaseAll()
    for (a, b) in zip(w.grad!.doubles(), plainW) { #expect(Swift.abs(a - b) < 1e-12) }
    for (a, b) in zip(x.grad!.doubles(), plainX) { #expect(Swift.abs(a - b) < 1e-12) }
  }
}

@Suite struct FailureTests {
  @Test func failingOpStopsWithLibtorchMessage() async {
    let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
      let a = Tensor.zeros([2, 3])
      let b = Tensor.zeros([4, 5])
      _ = F.matmul(a, b)
    }
    let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
    #expect(stderr.contains("libtorch matmul"))
    #expect(stderr.contains("cannot be multiplied"))
  }
}
