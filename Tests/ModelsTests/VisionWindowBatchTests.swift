import Foundation
import Testing
@testable import Models
@testable import Torch
import ModelConfig

/// Runs of equal short windows go through one batched SDPA call on CUDA; the result must be the
/// per-window computation (checked on the CPU in float32 against plain per-segment attention).
@Test func batchedWindowsEqualPerWindowAttention() throws {
  let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/qwen25vl_tied")
  let model = try QwenVLModel.load(directory: folder)
  let attention = model.visual.blocks.items[0].attn
  let g = Generator(seed: 3)
  let segments = [16, 16, 16, 40, 16, 16, 64, 64, 8]
  let total = segments.reduce(0, +)
  let shape = [total, attention.heads, attention.headDim]
  let (q, k, v) = (Tensor.randn(shape, generator: g), Tensor.randn(shape, generator: g), Tensor.randn(shape, generator: g))
  var expected: [Tensor] = []
  var start = 0
  for length in segments {
    func part(_ t: Tensor) -> Tensor { t.narrow(0, start: start, length: length).transpose(0, 1).unsqueeze(0) }
    let scores = F.matmul(part(q), part(k).mT) * attention.scale
    expected.append(F.matmul(scores.softmax(dim: -1), part(v))[0].transpose(0, 1))
    start += length
  }
  VisionAttention.batchWindowsOnCPU = true
  defer { VisionAttention.batchWindowsOnCPU = false }
  let batched = attention.perSegmentSDPA(q, k, v, segments: segments)
  #expect(batched.shape == shape)
  #expect(batched.maxAbsDifference(Tensor.cat(expected, dim: 0)) < 1e-5)
}
