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
  model.switches.visionWindowBatchCPU = true
  let batched = attention.perSegmentSDPA(q, k, v, segments: segments)
  #expect(batched.shape == shape)
  #expect(batched.maxAbsDifference(Tensor.cat(expected, dim: 0)) < 1e-5)
}

/// Padded vision MLP weights (`AlignedVisionMLP`, the rollout engine's prefill on CUDA) compute the
/// same function: a Qwen2.5-VL tower whose MLP width (44) is not a multiple of 8 gives the same
/// output (float32, CPU) with and without them, and a width that is a multiple of 8 needs none.
@Test func alignedVisionMLPsComputeTheSameTower() throws {
  let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/qwen25vl_tied")
  var config = try QwenVLConfig(contentsOf: folder.appendingPathComponent("config.json"))
  #expect(QwenVLModel(config: config).visual.alignedMLPs() == nil)
  config.vision.intermediateSize = 44
  let model = QwenVLModel(config: config)
  let g = Generator(seed: 5)
  withNoGrad {
    for (_, parameter) in model.namedParameters() { parameter.value.copy_(Tensor.randn(parameter.value.shape, generator: g) * 0.1) }
  }
  let aligned = try #require(model.visual.alignedMLPs())
  #expect(aligned.count == model.visual.blocks.items.count)
  #expect(aligned[0].gate.shape == [48, config.vision.embedDim] && aligned[0].down.shape == [config.vision.embedDim, 48])
  let grids = [[1, 4, 8]]
  let rowWidth = 3 * config.vision.temporalPatchSize * config.vision.patchSize * config.vision.patchSize
  let pixels = Tensor.randn([32, rowWidth], generator: g)
  let plain = withNoGrad { model.visual(pixels, grids: grids) }
  let padded = withNoGrad { model.visual(pixels, grids: grids, alignedMLPs: aligned) }
  #expect(plain.shape == padded.shape)
  #expect(padded.maxAbsDifference(plain) <= 1e-5 * Swift.max(1, plain.abs().max().item()))
}
