import Datasets
import Foundation
import Testing
@testable import Models
@testable import Torch
@testable import Training

/// SFT on the tiny checkpoint: the packed batch loss equals the per-example losses, and a short run
/// lowers the loss and writes its outputs.
extension TinyModelTests {
@Suite(.serialized) struct SFTTrainerTests {
  static let modelFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../ModelsTests/Fixtures/qwen25vl_tied").standardizedFileURL

  func trainer(_ root: URL, steps: Int, output: String = "sft") throws -> SFTTrainer {
    let data = try SyntheticTasks.write(task: .singleBox, count: 6, seed: 4, imageSize: 56, to: root.appendingPathComponent("data"))
    let json = """
    {"job_type": "sft", "dataset": {"labeled_path": "\(data.path)"}, "models": {"student": "\(Self.modelFolder.path)"},
     "training": {"output_dir": "\(root.appendingPathComponent(output).path)", "per_device_train_batch_size": 3, "save_steps": 2,
                  "max_steps": \(steps), "learning_rate": 0.003, "warmup_steps": 0, "logging_steps": 1, "seed": 2}}
    """
    let config = try TrainingConfig.parse(Data(json.utf8), source: "test config")
    return try SFTTrainer(config: config, modelDirectory: Self.modelFolder, examples: try DatasetLoader.load(path: data.path).examples)
  }

  /// SFT checkpoints every `save_steps` and resumes exactly: stopping after step 2 and resuming gives
  /// the losses and gradient norms of an uninterrupted 4-step run (data order included).
  @Test func resumeReproducesAnUninterruptedRun() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-sft-resume-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let straight = try trainer(root, steps: 4, output: "straight").run(log: { _ in })
    _ = try trainer(root, steps: 4, output: "resumed").run(stopAfterStep: 2, log: { _ in })
    #expect(try Checkpoint.list(root.appendingPathComponent("resumed")).map(\.step) == [2])
    let resumed = try trainer(root, steps: 4, output: "resumed").run(resume: true, log: { _ in })
    #expect(resumed.map(\.step) == [3, 4])
    for (a, b) in zip(straight.suffix(2), resumed) {
      for key in ["loss", "grad_norm", "learning_rate", "num_tokens"] {
        #expect(Swift.abs(a.values[key]! - b.values[key]!) <= 1e-6 * Swift.max(1, Swift.abs(a.values[key]!)), "\(key) step \(a.step)")
      }
    }
  }

  @Test func packedBatchLossEqualsPerExampleLosses() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-sft-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let sft = try trainer(root, steps: 1)
    let batch = sft.nextBatch()
    let (packed, tokens) = try #require(try withNoGrad { try sft.batchLoss(batch) })
    var sum = 0.0, count = 0
    for example in batch {
      let (loss, n) = try #require(try withNoGrad { try sft.exampleLoss(example) })
      sum += loss.item()
      count += n
    }
    #expect(tokens == count)
    #expect(abs(packed.item() - sum / Double(batch.count)) < 1e-5 * max(1, abs(packed.item())))
  }

  @Test func aFewStepsLowerTheLossAndExport() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-sft-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let rows = try trainer(root, steps: 6).run(log: { _ in })
    #expect(rows.count == 6)
    let losses = rows.compactMap { $0.values[MetricName.loss] }
    #expect(losses.allSatisfy(\.isFinite) && losses.last! < losses.first!, "\(losses)")
    #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("sft/final/model.safetensors").path))
  }
}
}
