import Datasets
import Foundation
import SafeTensors
import Testing
@testable import Models
@testable import Torch
@testable import Training

/// The seed's own config file (configs/mmkd_rl_grounding.json) runs for 2 steps on tiny data with
/// the student, data and output redirected by `--set`, and sizes cut down so the test is quick.
extension TinyModelTests {
@Suite(.serialized) struct SeedConfigRunTests {
  static let configFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../configs/mmkd_rl_grounding.json").standardizedFileURL

  @Test func seedConfigRunsTwoSteps() async throws {
    let root = TinySetup.temporaryFolder("seed-config")
    defer { try? FileManager.default.removeItem(at: root) }
    let data = try SyntheticTasks.write(task: .multiBox, count: 4, seed: 5, imageSize: 56, to: root.appendingPathComponent("data"))
    let output = root.appendingPathComponent("run")
    let config = try TrainingConfig.load(Self.configFile, overrides: [
      "models.student=\(TinySetup.modelFolder.path)", "dataset.labeled_path=\(data.path)", "training.output_dir=\(output.path)",
      "training.max_steps=2", "training.max_completion_length=4", "training.max_pixels=3136",
    ])
    #expect(config.jobType == .grpo && config.training.zeroStage == 3)
    #expect(config.training.rewardFuncs == ["multi_box_format_reward", "multi_gaussian_point", "multi_gaussian_plane_reward"])
    let examples = try DatasetLoader.load(path: try #require(config.dataset.labeledPath)).examples
    let trainer = try GRPOTrainer(config: config, modelDirectory: URL(fileURLWithPath: try #require(config.models.student)),
                                  examples: examples)
    // The seed's batch numbers as written (8 completions per micro-batch, G 8): what TRL trains, and
    // the line docs/training.md's worked example shows.
    let lines = LogLines()
    let rows = try await trainer.run(log: { lines.append($0) })
    #expect(rows.map(\.step) == [1, 2])
    let layout = try #require(lines.all.first { $0.hasPrefix("batch: ") })
    #expect(layout == "batch: 1 prompt x 8 generations = 8 completions per generation batch, 1 micro-batch of 8 completions, "
      + "1 optimizer step per generation batch (gradient_accumulation_steps 1, num_iterations 1)")
    let docs = try String(contentsOf: Self.configFile.deletingLastPathComponent().appendingPathComponent("../docs/training.md")
      .standardizedFileURL, encoding: .utf8)
    #expect(docs.contains(layout), "docs/training.md's worked example shows another line than the run prints")
    for name in config.training.rewardFuncs { #expect(rows[1].values["rewards/\(name)/mean"] != nil, "\(name)") }
    let fm = FileManager.default
    for file in ["checkpoint-2/trainer_state.json", "final/config.json", "metrics.jsonl", "report.html"] {
      #expect(fm.fileExists(atPath: output.appendingPathComponent(file).path), "\(file)")
    }
    // The export reloads in vlmrl with the trained weights; tools/golden/check_export.py checks the
    // same with transformers when VLMRL_EXPORT_CHECK_DIR names a folder to leave it in.
    let ids = [3, 17, 250, 901, 33, 5]
    let trained = try withNoGrad { try trainer.model.logits(ids: ids)[0] }
    let reloaded = try QwenVLModel.load(directory: output.appendingPathComponent("final"))
    #expect(try withNoGrad { try reloaded.logits(ids: ids)[0] }.maxAbsDifference(trained) == 0)
    if let keep = ProcessInfo.processInfo.environment["VLMRL_EXPORT_CHECK_DIR"] {
      let target = URL(fileURLWithPath: keep)
      try? fm.removeItem(at: target)
      try fm.copyItem(at: output.appendingPathComponent("final"), to: target)
      let logits = trained.contiguous()
      let idTensor = Tensor(ids)
      try SafeTensorsWriter.write([
        TensorToWrite(name: "input_ids", dtype: .int64, shape: [ids.count], byteCount: idTensor.byteCount) { sink in
          try sink(UnsafeRawBufferPointer(start: idTensor.dataPointer, count: idTensor.byteCount))
        },
        TensorToWrite(name: "logits", dtype: .float32, shape: logits.shape, byteCount: logits.byteCount) { sink in
          try sink(UnsafeRawBufferPointer(start: logits.dataPointer, count: logits.byteCount))
        },
      ], to: target.appendingPathComponent("vlmrl_logits.safetensors"))
    }
  }
}
}
