import Datasets
import Foundation
import NN
import Rewards
import Testing
@testable import Models
@testable import Torch
@testable import Training

/// End-to-end GRPO on the tiny transformers-made Qwen2.5-VL checkpoint and synthetic grounding data.
extension TinyModelTests {
@Suite(.serialized) struct GRPOTrainerTests {
  static let modelFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../ModelsTests/Fixtures/qwen25vl_tied").standardizedFileURL

  func makeRun(steps: Int, output: URL, data: URL, beta: Double = 0.04) throws -> TrainingConfig {
    let json = """
    {"job_type": "mmkd_rl_grounding", "dataset": {"labeled_path": "\(data.path)"},
     "models": {"student": "\(Self.modelFolder.path)"},
     "training": {"reward_funcs": ["format", "gaussian_point", "gaussian_plane"], "output_dir": "\(output.path)",
                  "per_device_train_batch_size": 8, "roll_out_num": 4, "max_steps": \(steps), "max_completion_length": 6,
                  "learning_rate": 0.001, "save_steps": 2, "logging_steps": 1, "beta": \(beta), "seed": 7,
                  "warmup_steps": 0}}
    """
    return try TrainingConfig.parse(Data(json.utf8), source: "test config")
  }

  /// The configured grounding rewards plus one that varies on any text (a random tiny model never
  /// answers in the box format, so the grounding rewards alone would give all-zero advantages).
  func rewards() throws -> RewardRunner {
    let varying = SampleReward(name: "length_parity") { sample in Double(sample.completion.unicodeScalars.count % 5) / 4 }
    return RewardRunner(functions: try RewardRegistry.make(["format", "gaussian_point", "gaussian_plane"], parameters: [:]) + [varying])
  }

  func dataset(_ folder: URL) throws -> [Example] {
    let file = try SyntheticTasks.write(task: .singleBox, count: 6, seed: 3, imageSize: 56, to: folder)
    return try DatasetLoader.load(path: file.path).examples
  }

  func temporaryFolder(_ name: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-\(name)-\(UUID().uuidString)")
  }

  @Test func stepsChangeEveryTrainableParameterAndWriteOutputs() async throws {
    let root = temporaryFolder("grpo")
    defer { try? FileManager.default.removeItem(at: root) }
    let examples = try dataset(root.appendingPathComponent("data"))
    let output = root.appendingPathComponent("run")
    let config = try makeRun(steps: 2, output: output, data: root)
    let trainer = try GRPOTrainer(config: config, modelDirectory: Self.modelFolder, examples: examples, rewards: try rewards())
    let before = trainer.model.namedParameters().map { ($0.0, $0.1.value.clone()) }
    let rows = try await trainer.run(log: { _ in })
    #expect(rows.count == 2)
    for ((name, old), (_, parameter)) in zip(before, trainer.model.namedParameters()) {
      #expect(old.maxAbsDifference(parameter.value) > 0, "\(name) did not change")
    }
    let fm = FileManager.default
    for file in ["metrics.jsonl", "report.html", "resolved_config.json", "checkpoint-2/model.safetensors",
                 "checkpoint-2/optimizer.safetensors", "checkpoint-2/trainer_state.json", "rollouts/step_1.md"] {
      #expect(fm.fileExists(atPath: output.appendingPathComponent(file).path), "\(file) missing")
    }
    let metrics = try MetricsJSONL.read(output.appendingPathComponent("metrics.jsonl"))
    #expect(metrics.map(\.step) == [1, 2])
    for key in ["loss", "reward", "kl", "rewards/format/mean", "completions/mean_length", "time/generate", "grad_norm"] {
      #expect(metrics[0].values[key]?.isFinite == true, "\(key)")
    }
  }

  /// Stopping after step 2 (with a half-written checkpoint left behind) and resuming gives the same
  /// metrics as an uninterrupted run.
  @Test func resumeReproducesAnUninterruptedRun() async throws {
    let root = temporaryFolder("resume")
    defer { try? FileManager.default.removeItem(at: root) }
    let examples = try dataset(root.appendingPathComponent("data"))
    let straightOut = root.appendingPathComponent("straight"), resumedOut = root.appendingPathComponent("resumed")
    let straight = try await GRPOTrainer(config: try makeRun(steps: 3, output: straightOut, data: root),
                                         modelDirectory: Self.modelFolder, examples: examples, rewards: try rewards()).run(log: { _ in })
    _ = try await GRPOTrainer(config: try makeRun(steps: 3, output: resumedOut, data: root),
                              modelDirectory: Self.modelFolder, examples: examples, rewards: try rewards())
      .run(stopAfterStep: 2, log: { _ in })
    // A run killed while writing its next checkpoint leaves only the temporary folder, half written:
    // resume must skip it (checkpoints are renamed into place only when complete).
    let interrupted = resumedOut.appendingPathComponent(".checkpoint-3.partial")
    try FileManager.default.createDirectory(at: interrupted, withIntermediateDirectories: true)
    try Data([0x42, 0x00, 0x13]).write(to: interrupted.appendingPathComponent("model.safetensors"))
    #expect(try Checkpoint.list(resumedOut).map(\.step) == [2])
    let resumed = try await GRPOTrainer(config: try makeRun(steps: 3, output: resumedOut, data: root),
                                        modelDirectory: Self.modelFolder, examples: examples, rewards: try rewards()).run(resume: true, log: { _ in })
    #expect(resumed.map(\.step) == [3])
    let ignored: Set<String> = ["step_time", "tokens_per_second", "time/generate", "time/score", "time/logprobs",
                                "time/backward", "time/optimizer", "rollout/decode_tokens_per_second"]
    for key in straight[2].values.keys where !ignored.contains(key) {
      let a = straight[2].values[key]!, b = resumed[0].values[key]!
      #expect(a == b || Swift.abs(a - b) <= 1e-9 * Swift.max(1, Swift.abs(a)), "\(key): \(a) vs \(b)")
    }
    let metrics = try MetricsJSONL.read(resumedOut.appendingPathComponent("metrics.jsonl"))
    #expect(metrics.map(\.step) == [1, 2, 3])
    #expect(!FileManager.default.fileExists(atPath: interrupted.path), "the finished run replaced the partial checkpoint")
    #expect(try Checkpoint.list(resumedOut).map(\.step).contains(3))
  }
}
}
