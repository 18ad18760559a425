import Common
import Datasets
import Foundation
import Jinja
import Rewards
import Testing
@testable import Prompting

/// A record's own system turn (or the dataset's `system_prompt`) reaches the chat template; without
/// one the template's default stays.
@Suite struct SystemTurnTests {
  private func example(system: String?) -> Example {
    Example(source: RecordLocation(file: "f.jsonl", index: 0), kind: .chat,
            prompt: [.image(.file(URL(fileURLWithPath: "/x.png"))), .text("What is it?")],
            rewardFields: [:], images: [], system: system)
  }

  @Test func systemTurnComesFirst() throws {
    let messages = PromptBuilder.messages(for: example(system: "Answer in one word."), answer: "Cat.")
    #expect(messages.map(\.role) == ["system", "user", "assistant"])
    let text = try ChatTemplate.chatML.render(messages: messages, addGenerationPrompt: false)
    #expect(text.hasPrefix("<|im_start|>system\nAnswer in one word.<|im_end|>\n<|im_start|>user\n"))
    #expect(!text.contains("You are a helpful assistant."))
  }

  @Test func withoutOneTheTemplateDefaultStays() throws {
    let messages = PromptBuilder.messages(for: example(system: nil))
    #expect(messages.map(\.role) == ["user"])
    let text = try ChatTemplate.chatML.render(messages: messages, addGenerationPrompt: true)
    #expect(text.hasPrefix("<|im_start|>system\nYou are a helpful assistant.<|im_end|>"))
  }

  /// EasyR1's `answer` reaches the R1 `accuracy` reward as the ground truth.
  @Test func easyR1AnswerScoresWithAccuracy() async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("prompting-easyr1-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let file = folder.appendingPathComponent("train.jsonl")
    try Data(#"{"images": [], "problem": "What is 7 - 4?", "answer": "3"}"#.utf8).write(to: file)
    let example = try #require(try DatasetLoader.load(path: file.path).examples.first)
    let reward = try RewardRegistry.make("accuracy")
    let samples = ["<think>7-4</think><answer>3</answer>", "<think>guess</think><answer>4</answer>"].map {
      RewardSample(completion: $0, fields: example.rewardFields)
    }
    #expect(try await reward.score(samples) == [1, 0])
  }
}
