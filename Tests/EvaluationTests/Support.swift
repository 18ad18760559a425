import Common
import Datasets
import Foundation
import ModelConfig
import Prompting
@testable import Evaluation

/// Fixtures shared by the suites: the tiny transformers-made checkpoints of ModelsTests, their test
/// image, and synthetic test sets in the seed formats written into a temporary folder.
enum Fixtures {
  static let modelsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../ModelsTests/Fixtures").standardizedFileURL
  /// Qwen2.5-VL, 196x140 test image (already a multiple of 28: the resized input equals the original).
  static let qwen25 = modelsFolder.appendingPathComponent("qwen25vl_tied")
  static let qwen2 = modelsFolder.appendingPathComponent("qwen2vl")
  static let image = qwen25.appendingPathComponent("image.png").path

  static func temporaryFolder(_ name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-eval-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  static func writeJSON(_ records: [JSONValue], to url: URL) throws {
    try Data(JSONValue.array(records).jsonString.utf8).write(to: url)
  }

  static func writeJSONLines(_ records: [JSONValue], to url: URL) throws {
    try Data((records.map(\.jsonString).joined(separator: "\n") + "\n").utf8).write(to: url)
  }

  /// REC records (VLM-R1 rec_jsons_processed) on the test image; record `i` has the box
  /// [10+i, 10, 60+i, 80] and a problem that names `i`.
  static func recRecords(_ count: Int, tag: String = "thing") -> [JSONValue] {
    (0..<count).map { index in
      .object([
        "image": .string(image), "problem": .string("the \(tag) number \(index)"),
        "normal_caption": .string("\(tag) \(index)"),
        "solution": .array([.int(10 + index), .int(10), .int(60 + index), .int(80)]),
      ])
    }
  }

  static func countingRecords() -> [JSONValue] {
    [3, 5].map { truth in
      .object(["image_path": .string(image), "question": .string("How many objects are there?"), "ground_truth": .int(truth)])
    }
  }

  static func geoqaRecords() -> [JSONValue] {
    ["140°", "2√3"].map { truth in
      .object(["image_path": .string(image), "question": .string("Find the angle."), "ground_truth": .string(truth)])
    }
  }

  /// Two A-OKVQA questions (original JSON fields); the second is difficult for direct answers.
  static func aokvqaRecords() -> [JSONValue] {
    [false, true].enumerated().map { index, difficult in
      .object([
        "question_id": .string("q\(index)"), "image": .string(image), "question": .string("What animal is this?"),
        "choices": .array(["cat", "dog", "bird", "fish"].map { .string($0) }), "correct_choice_idx": .int(1),
        "direct_answers": .array(Array(repeating: JSONValue.string("dog"), count: 10)),
        "difficult_direct_answer": .bool(difficult), "rationales": .array([]),
      ])
    }
  }
}

/// Canned outputs by record index (the scoring pipeline without a model).
struct CannedGenerator: EvalGenerator {
  var outputs: @Sendable (Example) -> String

  func generate(_ prompts: [PreparedPrompt], maxNewTokens: Int) throws -> [RolloutRecord] {
    prompts.enumerated().map { index, prompt in
      RolloutRecord(prompt: prompt, promptIndex: index, tokens: [0, 0, 0], text: outputs(prompt.example), truncated: false)
    }
  }
}

extension EvalRunner {
  /// A run with canned outputs and the Qwen2.5-VL fixture's tokenizer, template and processor.
  static func canned(_ settings: EvalSettings, _ outputs: @escaping @Sendable (Example) -> String) async throws -> EvalRun {
    let folder = try ModelFolder(directory: Fixtures.qwen25)
    let builder = try PromptBuilder(folder: folder)
    return try await run(settings, folder: folder, builder: builder, generator: CannedGenerator(outputs: outputs), log: { _ in })
  }
}
