import Foundation
import Testing
@testable import Models
@testable import NN
@testable import Torch
@testable import Training

/// A bf16 model's optimizer state (float32 master weights and moments) survives a checkpoint.
@Test func masterWeightsRoundTripThroughTheOptimizerCheckpoint() throws {
  let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("ModelsTests/Fixtures/qwen25vl_tied")
  let model = try QwenVLModel.load(directory: folder, dtype: .bfloat16)
  let parameters = model.parameters
  let optimizer = AdamW(parameters, .init(learningRate: 1e-3), masterWeights: true)
  let g = Generator(seed: 5)
  for parameter in parameters { parameter.grad = Tensor.randn(parameter.value.shape, generator: g).to(.bfloat16) }
  optimizer.step()
  let root = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-master-\(UInt32.random(in: 0...UInt32.max))")
  try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(at: root) }
  try Checkpoint.saveOptimizer(optimizer, model: model, to: root.appendingPathComponent("optimizer.safetensors"))
  let restored = AdamW(parameters, .init(learningRate: 1e-3), masterWeights: true)
  try Checkpoint.loadOptimizer(restored, model: model, from: root)
  for (a, b) in zip(optimizer.states, restored.states) {
    let a = try #require(a), b = try #require(b)
    let masterA = try #require(a.master), masterB = try #require(b.master)
    #expect(masterB.dtype == .float32 && b.expAvg.dtype == .float32)
    #expect(masterA.maxAbsDifference(masterB) == 0)
    #expect(a.expAvg.maxAbsDifference(b.expAvg) == 0 && a.expAvgSq.maxAbsDifference(b.expAvgSq) == 0)
    #expect(a.step.maxAbsDifference(b.step) == 0)
  }
  // The parameters hold their masters rounded to bf16.
  for (parameter, state) in zip(parameters, optimizer.states) {
    #expect(parameter.value.maxAbsDifference(state!.master!.to(.bfloat16)) == 0)
  }
}
