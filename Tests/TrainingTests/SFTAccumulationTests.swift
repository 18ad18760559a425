import Datasets
import Foundation
import Testing
@testable import Models
@testable import Torch
@testable import Training

/// SFT's `gradient_accumulation_steps`: an optimizer step over 2 micro-batches of 2 examples equals
/// one over a batch of the same 4 (loss, gradient norm and the weights after, within float32
/// rounding), and an epoch counts optimizer steps of batch x accumulation examples.
extension TinyModelTests {
@Suite(.serialized) struct SFTAccumulationTests {
  static let modelFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../ModelsTests/Fixtures/qwen25vl_tied").standardizedFileURL

  func trainer(_ root: URL, _ name: String, batch: Int, accumulation: Int, steps: Int?) throws -> SFTTrainer {
    let data = try SyntheticTasks.write(task: .singleBox, count: 8, seed: 4, imageSize: 56, to: root.appendingPathComponent("data"))
    let json = """
    {"job_type": "sft", "dataset": {"labeled_path": "\(data.path)"}, "models": {"student": "\(Self.modelFolder.path)"},
     "training": {"output_dir": "\(root.appendingPathComponent(name).path)", "per_device_train_batch_size": \(batch),
                  "gradient_accumulation_steps": \(accumulation), "save_steps": 1000, \(steps.map { "\"max_steps\": \($0)," } ?? "")
                  "num_train_epochs": 1, "learning_rate": 0.003, "warmup_steps": 0, "logging_steps": 1, "seed": 2,
                  "shuffle_dataset": false}}
    """
    let config = try TrainingConfig.parse(Data(json.utf8), source: "test config")
    return try SFTTrainer(config: config, modelDirectory: Self.modelFolder, examples: try DatasetLoader.load(path: data.path).examples,
                          log: { _ in })
  }

  @Test func twoMicroBatchesOfTwoEqualOneBatchOfFour() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-sft-accum-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let whole = try trainer(root, "whole", batch: 4, accumulation: 1, steps: 1)
    let micro = try trainer(root, "micro", batch: 2, accumulation: 2, steps: 1)
    let a = try whole.run(log: { _ in }), b = try micro.run(log: { _ in })
    for key in ["loss", "grad_norm", "num_tokens"] {
      let (x, y) = (a[0].values[key]!, b[0].values[key]!)
      #expect(abs(x - y) <= 1e-5 * max(1, abs(x)), "\(key): \(x) vs \(y)")
    }
    // Adam's first step is about lr * sign(g), so gradient entries near zero turn float32 rounding
    // into up to a few percent of one step (lr 0.003): 1e-4; a wrong accumulation scale shows above
    // in the loss and the gradient norm.
    for ((name, p), (_, q)) in zip(whole.model.namedParameters(), micro.model.namedParameters()) {
      #expect(p.value.maxAbsDifference(q.value) < 1e-4, "\(name)")
    }
    // Without max_steps one epoch of 8 examples is 8 / (2 x 2) = 2 optimizer steps.
    #expect(try trainer(root, "epoch", batch: 2, accumulation: 2, steps: nil).totalSteps == 2)
  }
}
}
