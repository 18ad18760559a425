import Common
import Datasets
import Foundation
import Processor
import Rewards
import Testing
@testable import Training

/// SFT answers per record kind are what that kind's GRPO rewards give full marks to, so the warm-up
/// teaches the format the RL stage scores.
@Suite struct SFTAnswerTests {
  func examples(_ task: SyntheticTask, _ root: URL) throws -> [Example] {
    let file = try SyntheticTasks.write(task: task, count: 6, seed: 9, imageSize: 64, to: root.appendingPathComponent(task.rawValue))
    return try DatasetLoader.load(path: file.path).examples
  }

  func scores(_ rewards: [String], _ example: Example, _ answer: String) async throws -> [Double?] {
    let sample = RewardSample(completion: answer, images: [ImageGeometry(width: 64, height: 64)], fields: example.rewardFields)
    var values: [Double?] = []
    for name in rewards {
      let function = try RewardRegistry.make(name, parameters: name == "gaussian_point" || name.hasPrefix("multi_gaussian")
        ? ["box_frame": .string("original")] : [:])
      values.append(try await function.score([sample])[0])
    }
    return values
  }

  @Test func answersScoreFullMarksWithTheirKindsRewards() async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-sft-answers-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let cases: [(SyntheticTask, [String])] = [
      (.singleBox, ["format", "gaussian_point"]),
      (.multiBox, ["multi_box_format_reward", "multi_gaussian_point"]),
      (.counting, ["accuracy"]),
      (.multipleChoice, ["mc_idx"]),
    ]
    for (task, rewards) in cases {
      for example in try examples(task, root) {
        let answer = try #require(SFTTrainer.answer(for: example), "\(task.rawValue)")
        for (name, value) in zip(rewards, try await scores(rewards, example, answer)) {
          #expect(value.map { abs($0 - 1) < 1e-9 } == true, "\(task.rawValue) \(name): \(String(describing: value)) for \(answer)")
        }
      }
    }
  }

  /// REC answers (VLM-R1's think/answer format, the box in the model's frame) get full marks from
  /// `rec_format` and `rec_accuracy`, and the IoU that rounding to whole units leaves is above 0.9 (the
  /// boxes are 10+ pixels), in both frames: Qwen2.5-VL's resized pixels (100x100 images resized to 112x112) and Qwen2-VL's
  /// 0-1000; a frame that cannot size the image gives no answer.
  @Test func recAnswersScoreFullMarksInTheModelsFrame() async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-sft-rec-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let single = try SyntheticTasks.write(task: .singleBox, count: 6, seed: 3, imageSize: 100, to: root)
    let records = try #require(try JSONValue.parse(Data(contentsOf: single)).arrayValue).map { record -> JSONValue in
      .object(["image": record["image_path"] ?? .null, "problem": .string("the shape"), "solution": record["bbox"] ?? .null])
    }
    let file = root.appendingPathComponent("rec.json")
    try Data(JSONValue.array(records).jsonString.utf8).write(to: file)
    let examples = try DatasetLoader.load(path: file.path, imageRoot: root.path).examples
    #expect(examples.count == 6 && examples.allSatisfy { $0.kind == .rec })
    let processor = QwenImageProcessor(minPixels: 3136, maxPixels: 12544)
    let frames: [(String, SFTTrainer.RECFrame, ImageGeometry)] = [
      ("resized", .resized { try? processor.resizedSize(height: $0, width: $1) },
       ImageGeometry(originalWidth: 100, originalHeight: 100, resizedWidth: 112, resizedHeight: 112)),
      ("norm1000", .norm1000, ImageGeometry(originalWidth: 100, originalHeight: 100, resizedWidth: 112, resizedHeight: 112)),
    ]
    for (name, frame, geometry) in frames {
      for example in examples {
        let answer = try #require(SFTTrainer.answer(for: example, recFrame: frame), "\(name)")
        #expect(answer.hasPrefix("<think>") && answer.contains("</think> <answer>{\"bbox_2d\": ["), "\(answer)")
        let sample = RewardSample(completion: answer, images: [geometry], fields: example.rewardFields)
        for reward in ["rec_format", "rec_accuracy", "iou"] {
          let function = try RewardRegistry.make(reward, parameters: reward == "rec_format" ? [:] : ["box_frame": .string(name)])
          let value = try #require(try await function.score([sample])[0])
          #expect(reward == "iou" ? value > 0.9 : value == 1, "\(name) \(reward): \(value) for \(answer)")
        }
      }
    }
    #expect(SFTTrainer.answer(for: examples[0]) == nil, "no frame, no REC answer")
    #expect(SFTTrainer.answer(for: examples[0], recFrame: .resized { _, _ in nil }) == nil)
  }

  @Test func recordsWithoutAnAnswerAreSkippedAndCounted() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-sft-skip-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    var mixed = try examples(.singleBox, root)
    var rec = mixed[0]
    rec.kind = .rec
    mixed.append(rec)
    let json = """
    {"job_type": "sft", "models": {"student": "\(TinySetup.modelFolder.path)"},
     "training": {"output_dir": "\(root.appendingPathComponent("run").path)", "max_steps": 1, "max_pixels": 4096}}
    """
    let config = try TrainingConfig.parse(Data(json.utf8), source: "sft.json")
    var lines: [String] = []
    let trainer = try SFTTrainer(config: config, modelDirectory: TinySetup.modelFolder, examples: mixed, log: { lines.append($0) })
    #expect(trainer.examples.count == mixed.count - 1)
    #expect(lines.contains { $0.contains("skipped 1 of \(mixed.count) records") && $0.contains("1 rec") })
    #expect(throws: TrainingError.self) {
      try SFTTrainer(config: config, modelDirectory: TinySetup.modelFolder, examples: [rec], log: { _ in })
    }
  }
}
