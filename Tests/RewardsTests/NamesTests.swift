import Common
import Foundation
import Testing
@testable import Rewards

@Suite struct NamesTests {
  /// The reference systems' own reward names resolve to the same functions.
  @Test func seedNamesAreAliases() async throws {
    let expected = [
      "mc_idx_reward": "mc_idx", "think_format_reward": "think_tag_format", "mdi_reward": "mdi",
      "accuracy_reward": "accuracy", "format_reward": "think_format", "multi_gaussian_plane_reward": "multi_gaussian_plane",
    ]
    for (alias, canonical) in expected {
      #expect(RewardRegistry.canonicalName(alias) == canonical)
      #expect(RewardRegistry.names.contains(alias))
      #expect(try RewardRegistry.parameterKeys(for: alias) == RewardRegistry.parameterKeys(for: canonical))
      // The function reports the name the config used (the metric key).
      #expect(try RewardRegistry.make(alias).name == alias)
    }
    #expect(RewardRegistry.defaultWeight(for: "mc_idx_reward") == 4)
    let fields: [String: JSONValue] = ["label_idx": .int(1)]
    #expect(try await score("mc_idx_reward", "<think>t</think><answer>B</answer>", fields: fields) == 1)
    #expect(try await score("think_format_reward", "<think>t</think><answer>B</answer>") == 1)
    #expect(try await score("think_format_reward", "<think> </think><answer>B</answer>") == 0)
    let attention = AttentionDiagnostics(textMass: 0.5, visionMass: 0.5, textTokens: 10, visionTokens: 10)
    #expect(try await score("mdi_reward", "x", attention: attention) == 1)
    #expect(try await score("accuracy_reward", "<answer>2</answer>", fields: ["solution": .string("2.0")]) == 1)
  }

  @Test func labelledNamesGiveSeparateMetricKeys() throws {
    let functions = try RewardRegistry.make(["command:length", "command:style", "iou"], parameters: [
      "command:length": .object(["command": .string("echo 1")]),
      "command:style": .object(["command": .string("echo 2"), "timeout": .int(5)]),
    ])
    #expect(functions.map(\.name) == ["command:length", "command:style", "iou"])
    #expect(RewardRegistry.canonicalName("command:length") == "command")
    #expect(RewardRegistry.canonicalName("mc_idx_reward:x") == "mc_idx")
    let runner = RewardRunner(functions: functions, weights: nil)
    #expect(runner.metricKeys == ["command:length", "command:style", "iou"])
    #expect(throws: RewardError.self) { _ = try RewardRegistry.make("command:", parameters: [:]) }
    #expect(throws: RewardError.self) { _ = try RewardRegistry.make(":x", parameters: [:]) }
    #expect(throws: RewardError.self) { _ = try RewardRegistry.make("nope:x", parameters: [:]) }
  }

  @Test func metricKeysNumberRepeatedNames() throws {
    let a = try RewardRegistry.make("command", parameters: ["command": .string("echo 1")])
    let b = try RewardRegistry.make("command", parameters: ["command": .string("echo 2")])
    let c = try RewardRegistry.make("iou")
    let runner = RewardRunner(functions: [a, c, b], weights: nil)
    #expect(runner.metricKeys == ["command", "iou", "command#2"])
    #expect(runner.metricKeys == runner.functions.indices.map(runner.metricKey))
  }
}

@Suite struct LoneLetterTests {
  @Test func loneLetterInsideASentenceCounts() async throws {
    let cases: [(String, Int?)] = [
      ("the answer is B", 1), ("I would pick D here.", 3), ("答案是B", 1), ("so it must be C!", 2),
      ("Between A and B, B fits best", 1), ("it is Ｃ", 2),
      // Capitals inside words, the pronoun I, and lower-case letters do not count.
      ("Because it is obvious", nil), ("I think so", nil), ("Definitely", nil), ("the answer is b", nil),
      ("ABC", nil), ("B2 bomber", nil), ("K is not an option", nil),
    ]
    for (text, expected) in cases {
      #expect(ChoiceParsing.choiceIndex(in: text, choices: []) == expected, "\(text)")
    }
    // The explicit forms still win over a later lone letter.
    #expect(ChoiceParsing.choiceIndex(in: "Answer: A, not B", choices: []) == 0)
    // Text equal to a choice wins over a lone letter.
    #expect(ChoiceParsing.choiceIndex(in: "A dog", choices: ["a cat", "a dog"]) == 1)
    let fields: [String: JSONValue] = ["label_idx": .int(1)]
    #expect(try await score("mc_idx", "<think>hmm</think><answer>the answer is B</answer>", fields: fields) == 1)
    #expect(try await score("mc_idx", "<think>hmm</think> I believe the answer is B.", fields: fields) == 1)
    #expect(try await score("mc_idx", "<answer>Because of the color</answer>", fields: fields) == 0)
  }
}
