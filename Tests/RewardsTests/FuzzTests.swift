import Common
import Foundation
import Testing
@testable import Rewards

/// Seeded random and mutated model outputs through every parser: no crash, no hang, every value
/// finite or nil.
@Suite struct FuzzTests {
  static let seeds = [
    "<think>x</think><answer>[10, 20, 30, 40]</answer>", "{0: [[1, 2, 3, 4], [5, 6, 7, 8]], '2': []}",
    #"{"bbox_2d": [1.5, -2, 3e2, 4]}"#, "\\boxed{\\frac{2\\sqrt{3}}{3}\\pi}", "Answer: (B) 答案：Ｃ",
    "```json\n{\"1\": [[0,0,1,1],]}\n```", "2^{10}+3(4)-50%", "[[[[[[[[1]]]]]]]]", "{{{{{{", "\\sqrt{\\sqrt{\\sqrt{",
    "[1e308, 1e308, -1e308, 9e999]", "nan inf -inf NaN Infinity", "<answer>x = 140°</answer>",
  ]
  static let alphabet = Array("[]{}()<>,.:;'\"\\/-+*^%=√π°0123456789eEabxyAB \n\t_answerthinkfracsqrt")

  static func mutate(_ text: String, using rng: inout SeededGenerator) -> String {
    var characters = Array(text)
    for _ in 0..<Int.random(in: 1...4, using: &rng) {
      let position = characters.isEmpty ? 0 : Int.random(in: 0..<characters.count, using: &rng)
      switch Int.random(in: 0..<4, using: &rng) {
      case 0 where !characters.isEmpty: characters.remove(at: position)
      case 1: characters.insert(alphabet.randomElement(using: &rng) ?? "x", at: position)
      case 2 where !characters.isEmpty: characters[position] = alphabet.randomElement(using: &rng) ?? "x"
      default:
        let chunk = seeds.randomElement(using: &rng) ?? ""
        characters.insert(contentsOf: chunk.prefix(Int.random(in: 0...chunk.count, using: &rng)), at: position)
      }
    }
    return String(characters)
  }

  static func randomText(using rng: inout SeededGenerator) -> String {
    if Int.random(in: 0..<10, using: &rng) == 0 {
      // Invalid UTF-8 decoded with replacement characters.
      let bytes = (0..<Int.random(in: 0..<40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
      return String(decoding: bytes, as: UTF8.self)
    }
    return String((0..<Int.random(in: 0..<30, using: &rng)).map { _ in alphabet.randomElement(using: &rng) ?? "x" })
  }

  @Test func parsersSurviveOneHundredThousandCases() {
    var rng = SeededGenerator(seed: 7)
    var parsed = 0
    for iteration in 0..<100_000 {
      let base = Self.seeds[iteration % Self.seeds.count]
      let text = iteration % 3 == 0 ? Self.randomText(using: &rng) : Self.mutate(base, using: &rng)
      _ = AnswerParsing.answer(in: text)
      if let box = AnswerParsing.firstBox(in: text) {
        #expect(box.x1.isFinite && box.y2.isFinite)
      }
      if iteration % 4 == 0, let value = LiteralParser.parseLenient(text) {
        parsed += 1
        _ = MultiBox.mapping(value, truthLabels: ["0"], strict: false)
      }
      if iteration % 4 == 1, let value = MathVerifier.evaluate(MathVerifier.normalize(text)) {
        #expect(value.value.isFinite)
      }
      if iteration % 4 == 2 { _ = ChoiceParsing.choiceIndex(in: text, choices: ["a", "b"]) }
    }
    #expect(parsed > 100)
  }

  @Test func rewardsStayFiniteOnMutatedOutputs() async throws {
    var rng = SeededGenerator(seed: 11)
    let names = ["format", "gaussian_point", "gaussian_plane", "multi_box_format_reward", "multi_gaussian_point",
                 "multi_gaussian_plane", "think_format", "rec_format", "iou", "rec_accuracy", "accuracy",
                 "counting_accuracy", "mc_idx", "think_tag_format"]
    // One shared block: each function gets `box_frame` only if it reads it.
    let functions = try RewardRegistry.make(names, shared: ["box_frame": .string("resized")])
    let fields: [String: JSONValue] = [
      "bbox": boxJSON([0, 0, 0, 10]), "abs_box": .object(["0": .array([boxJSON([1, 1, 5, 5])]), "1": .array([])]),
      "solution": .string("<answer>2\\sqrt{3}</answer>"), "label_idx": .int(1), "ground_truth": .int(3),
    ]
    let image = ImageGeometry(originalWidth: 640, originalHeight: 480, resizedWidth: 0, resizedHeight: 0)
    let batch = (0..<2_000).map { index in
      RewardSample(completion: Self.mutate(Self.seeds[index % Self.seeds.count], using: &rng), images: [image], fields: fields)
    }
    for function in functions {
      let values = try await function.score(batch)
      #expect(values.count == batch.count)
      #expect(values.allSatisfy { $0.map { $0.isFinite && $0 >= -1 && $0 <= 1 } ?? true }, "\(function.name)")
    }
  }
}
