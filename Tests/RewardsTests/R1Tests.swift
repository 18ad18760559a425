import Common
import Foundation
import Testing
@testable import Rewards

@Suite struct R1Tests {
  /// Hand-written table (Fixtures/math_cases.json): GeoQA/CLEVR-style answers and model outputs.
  @Test func mathVerifierTable() throws {
    let cases = try #require(Fixtures.json("math_cases.json").arrayValue)
    #expect(cases.count >= 150)
    for item in cases {
      let row = try #require(item.arrayValue)
      let answer = try #require(row[0].stringValue), solution = try #require(row[1].stringValue)
      guard case .bool(let expected) = row[2] else { throw RewardError.external(reward: "table", message: "bad row") }
      let got = MathVerifier.equivalent(answer, AnswerParsing.answer(in: solution))
      #expect(got == expected, "\(answer) vs \(solution): expected \(expected)")
    }
  }

  @Test func thinkFormatAndAliases() async throws {
    let good = "<think>\nsteps\n</think>\n<answer>3</answer>"
    for name in ["think_format", "format_reward", "r1_format"] {
      #expect(try await score(name, good) == 1)
      #expect(try await score(name, "  " + good + "\n") == 1)
      #expect(try await score(name, "<think>a</think><answer>3</answer> trailing") == 0)
      #expect(try await score(name, "<answer>3</answer>") == 0)
      #expect(try await score(name, "<think>a</think> x <answer>3</answer>") == 0)
      #expect(try await score(name, "<think></think><answer></answer>") == 1)
      // The lazy groups may stretch across a later `</think>` in a full match.
      #expect(try await score(name, "<think>a</think> b </think> <answer>c</answer>") == 1)
    }
    #expect(try await score("rec_format", "<think>x</think><answer>[1,2,3,4]</answer>") == 1)
    #expect(try await score("rec_format", "<think>x</think><answer>the cat</answer>") == 0)
  }

  @Test func iouAndRecAccuracy() async throws {
    let fields: [String: JSONValue] = ["solution": .array([.int(0), .int(0), .int(10), .int(10)])]
    #expect(try await score("iou", "<think>.</think><answer>[0, 0, 10, 5]</answer>", fields: fields) == 0.5)
    #expect(try await score("rec_accuracy", "<answer>[0, 0, 10, 5]</answer>", fields: fields) == 0)  // strict >
    #expect(try await score("rec_accuracy", "<answer>[0, 0, 10, 6]</answer>", fields: fields) == 1)
    #expect(try await score("iou", "<answer>none</answer>", fields: fields) == 0)
    #expect(try await score("iou", #"<answer>{"bbox_2d": [0,0,10,10]}</answer>"#, fields: fields) == 1)
  }

  @Test func accuracyRewardUsesTagsAndBoxed() async throws {
    let fields: [String: JSONValue] = ["solution": .string("<answer> 140° </answer>")]
    #expect(try await score("accuracy", "<think>..</think><answer>140</answer>", fields: fields) == 1)
    #expect(try await score("math_accuracy", "so \\boxed{140^\\circ}", fields: fields) == 1)
    #expect(try await score("accuracy", "<answer>40</answer>", fields: fields) == 0)
    #expect(try await score("accuracy", "<answer>3</answer>", fields: ["ground_truth": .int(3)]) == 1)
    #expect(try await score("accuracy", "<answer>3</answer>") == nil)
  }

  @Test func countingAccuracy() async throws {
    #expect(try await score("counting_accuracy", "<answer> 3 </answer>", fields: ["ground_truth": .int(3)]) == 1)
    #expect(try await score("counting_accuracy", "<answer>There are 3 balls</answer>", fields: ["ground_truth": .string("3")]) == 1)
    #expect(try await score("counting_accuracy", "<answer>three</answer>", fields: ["solution": .string("<answer>3</answer>")]) == 1)
    #expect(try await score("counting_accuracy", "<answer>4</answer>", fields: ["ground_truth": .int(3)]) == 0)
    #expect(try await score("counting_accuracy", "<answer>none</answer>", fields: ["ground_truth": .int(3)]) == 0)
    #expect(try await score("counting_accuracy", "<answer>99999999999999999999999</answer>", fields: ["ground_truth": .int(3)]) == 0)
  }
}

@Suite struct ChoiceTests {
  @Test func choiceLetterPatterns() {
    let cases: [(String, Int?)] = [
      ("Answer: B", 1), ("answer：(C)", 2), ("答案：D", 3), ("答案: Ｅ", 4), ("选项：A", 0),
      ("I think (B) is right", 1), ("C. because", 2), ("D) yes", 3), ("J", 9), ("  b ", nil), ("B.", 1),
      ("Ａ", 0), ("（Ｂ）", 1), ("I am not sure", nil), ("K", nil), ("Answer: Apple", nil),
      // Order: `Answer: X` wins over an earlier `(X)`.
      ("(A) or Answer: C", 2),
    ]
    for (text, expected) in cases {
      #expect(ChoiceParsing.choiceIndex(in: text, choices: []) == expected, "\(text)")
    }
    #expect(ChoiceParsing.choiceIndex(in: "red  Cube", choices: ["A. blue sphere", "B. Red cube"]) == 1)
    #expect(ChoiceParsing.choiceIndex(in: "blue sphere.", choices: ["blue sphere", "red cube"]) == 0)
  }

  @Test func mcIndexReward() async throws {
    let fields: [String: JSONValue] = ["label_idx": .int(2), "choices": .array(["x", "y", "z"].map(JSONValue.string))]
    #expect(try await score("mc_idx", "<think>hmm</think><answer>C</answer>", fields: fields) == 1)
    #expect(try await score("mc_idx", "<think>hmm</think> Answer: C", fields: fields) == 1)
    #expect(try await score("mc_idx", "<think>The answer: A?</think> z", fields: fields) == 1)
    #expect(try await score("mc_idx", "<answer>B</answer>", fields: fields) == 0)
    #expect(try await score("mc_idx", "<answer>C</answer>", fields: ["correct_choice_idx": .string("2")]) == 1)
    #expect(try await score("mc_idx", "<answer>C</answer>") == nil)
    #expect(RewardRegistry.defaultWeight(for: "mc_idx") == 4)
  }

  @Test func thinkTagFormat() async throws {
    #expect(try await score("think_tag_format", "<think>why</think>B") == 1)
    #expect(try await score("think_tag_format", "<think>why</think><answer>B</answer>") == 1)
    #expect(try await score("think_tag_format", "<think> </think>B") == 0)
    #expect(try await score("think_tag_format", "<think>why</think>  ") == 0)
    #expect(try await score("think_tag_format", "<think>why</think><answer> </answer>") == 0)
    #expect(try await score("think_tag_format", "B") == 0)
  }

  @Test func mdiFromSyntheticDiagnostics() async throws {
    func mdi(_ a: AttentionDiagnostics, ratio: Double = 2) async throws -> Double? {
      try await score("mdi", "", parameters: ["mdi_balance_ratio": .double(ratio)], attention: a)
    }
    // Equal per-token attention: MDI 1, balance 1, reward 1.
    #expect(try await mdi(.init(textMass: 0.2, visionMass: 0.8, textTokens: 20, visionTokens: 80)) == 1)
    // MDI = (0.5/10)/(0.5/40) = 4 = R^2: |ln 4|/ln 2 = 2 -> balance 0 -> -1.
    #expect(try await mdi(.init(textMass: 0.5, visionMass: 0.5, textTokens: 10, visionTokens: 40)) == -1)
    // MDI = sqrt(2): balance 0.5 -> 0.
    let half = try await mdi(.init(textMass: 2.0.squareRoot(), visionMass: 1, textTokens: 1, visionTokens: 1))
    #expect(near(half, 0, tolerance: 1e-12) || abs(half ?? 1) < 1e-12)
    // MDI = 1/sqrt(2) with R = 4: |ln| = 0.3466, ln 4 = 1.386 -> balance 0.75 -> 0.5.
    let quarter = try await mdi(.init(textMass: 1, visionMass: 2.0.squareRoot(), textTokens: 1, visionTokens: 1), ratio: 4)
    #expect(near(quarter, 0.5, tolerance: 1e-12))
    #expect(try await mdi(.init(textMass: 1, visionMass: 0, textTokens: 1, visionTokens: 1)) == -1)
    #expect(try await mdi(.init(textMass: 1, visionMass: 1, textTokens: 1, visionTokens: 0)) == nil)
    #expect(try await score("mdi", "") == nil)
    #expect(throws: RewardError.self) { _ = try RewardRegistry.make("mdi", parameters: ["mdi_balance_ratio": .int(1)]) }
  }
}

@Suite struct RunnerTests {
  struct Fixed: RewardFunction {
    let name: String
    let values: [Double?]
    func score(_ batch: [RewardSample]) async throws -> [Double?] { values }
  }
  struct Failing: RewardFunction {
    let name = "broken"
    struct Boom: Error {}
    func score(_ batch: [RewardSample]) async throws -> [Double?] { throw Boom() }
  }

  @Test func weightedNilAwareTotals() async {
    let batch = Array(repeating: RewardSample(completion: ""), count: 3)
    let runner = RewardRunner(
      functions: [Fixed(name: "a", values: [1, nil, nil]), Fixed(name: "b", values: [0.5, 2, nil]), Failing()],
      weights: [2, 3, 1])
    let scores = await runner.score(batch)
    // Sample 0: 2*1 + 3*0.5 + 1*0 = 3.5; sample 1: 3*2 + 0 = 6; sample 2: only the failing 0.
    #expect(scores.total == [3.5, 6, 0])
    #expect(scores.errorCounts == ["broken": 1])
    #expect(scores.perFunction["a"] == [1, nil, nil])
    #expect(scores.perFunction["broken"] == [0, 0, 0])
    let allNil = await RewardRunner(functions: [Fixed(name: "a", values: [nil])], weights: nil).score([batch[0]])
    #expect(allNil.total == [nil])
    let wrongCount = await RewardRunner(functions: [Fixed(name: "a", values: [1, 2])], weights: nil).score([batch[0]])
    #expect(wrongCount.errorCounts["a"] == 1)
    #expect(throws: RewardError.self) { _ = try RewardRunner.validated(functions: [Failing()], weights: [1, 2]) }
  }

  @Test func registryResolvesAliasesAndRejectsUnknown() throws {
    let needParameters: Set = ["command", "http", "llm_judge", "caption"]
    for name in RewardRegistry.names where !needParameters.contains(name) {
      _ = try RewardRegistry.make(name, parameters: [:])
    }
    for name in needParameters { #expect(throws: RewardError.self) { _ = try RewardRegistry.make(name, parameters: [:]) } }
    #expect(RewardRegistry.names.contains("multi_gaussian_plane_reward"))
    #expect(throws: RewardError.self) { _ = try RewardRegistry.make("gaussian_pointt", parameters: [:]) }
    do {
      _ = try RewardRegistry.make("nope", parameters: [:])
    } catch {
      #expect(String(describing: error).contains("gaussian_point"))
    }
  }
}
