import Common
import Foundation
import Testing
@testable import Rewards

/// Inputs whose size or depth used to crash or stall a reward: each must give its "no valid answer"
/// value, and small inputs must still score as before.
@Suite struct LimitsTests {
  @Test func deepMathNestingIsRejectedNotRecursed() async throws {
    // 20,000 radicals used to overflow the stack (one recursion per `√`).
    let radicals = String(repeating: "√", count: 20_000) + "4"
    #expect(MathVerifier.evaluate(radicals) == nil)
    #expect(MathVerifier.evaluate(String(repeating: "\\sqrt{", count: 5_000) + "4" + String(repeating: "}", count: 5_000)) == nil)
    #expect(MathVerifier.evaluate(String(repeating: "\\frac", count: 30_000) + "12") == nil)
    #expect(MathVerifier.evaluate(String(repeating: "(", count: 30_000) + "1" + String(repeating: ")", count: 30_000)) == nil)
    #expect(MathVerifier.evaluate(String(repeating: "-", count: 30_000) + "1") == nil)
    #expect(MathVerifier.evaluate(String(repeating: "2^", count: 30_000) + "1") == nil)
    // Shallow nesting still evaluates.
    #expect(MathVerifier.evaluate("√√16")?.value == 2)
    #expect(MathVerifier.evaluate(String(repeating: "(", count: 20) + "3" + String(repeating: ")", count: 20))?.value == 3)
    #expect(MathVerifier.evaluate("\\frac{\\sqrt{9}}{2}")?.value == 1.5)
    // Through the reward, with a matching reference: 0, not a crash.
    let fields: [String: JSONValue] = ["solution": .string("2")]
    #expect(try await score("accuracy", "<answer>\(radicals)</answer>", fields: fields) == 0)
    #expect(try await score("accuracy", "<answer>√4</answer>", fields: fields) == 1)
  }

  @Test func overlongMathAnswersAreNotCompared() {
    let padded = String(repeating: " ", count: RewardLimits.mathAnswerBytes) + "2"
    #expect(!MathVerifier.equivalent(padded, "2"))
    #expect(MathVerifier.equivalent("  2", "2"))
  }

  @Test func stemmerHandlesLongRunsOfY() {
    // `y` after `y` used to recurse once per letter.
    let word = String(repeating: "y", count: 100_000)
    #expect(PorterStemmer.stem(word).count <= word.count)
    #expect(PorterStemmer.stem("happy") == "happi")
    #expect(PorterStemmer.stem("enjoying") == "enjoy")
    #expect(PorterStemmer.stem("toys") == "toy")
    // y as a vowel after a consonant, as a consonant after a vowel.
    #expect(PorterStemmer.measure(Array("syzygy")) == PorterStemmer.measure(Array("sizigi")))
    #expect(PorterStemmer.isConsonant(Array("toy"), 2))
    #expect(!PorterStemmer.isConsonant(Array("syzygy"), 1))
    #expect(PorterStemmer.isConsonant(Array("ayy"), 1) && !PorterStemmer.isConsonant(Array("ayy"), 2))
  }

  @Test func meteorCapsTokens() {
    let meteor = Meteor(wordNet: nil)
    let caption = "a black cat sits on a red mat"
    #expect(meteor.score(hypothesis: caption, references: [caption]) > 0.9)
    let runaway = Array(repeating: caption, count: RewardLimits.meteorTokens).joined(separator: " ")
    #expect(meteor.score(hypothesis: runaway, references: [caption]) == 0)
    // An over-long reference is cut, not rejected.
    #expect(meteor.score(hypothesis: caption, references: [caption + " " + runaway]) > 0)
    // One giant "word" skips the stem stage but still matches exactly.
    let giant = String(repeating: "ab", count: 50_000)
    #expect(meteor.score(hypothesis: giant, references: [giant]) > 0.4)
  }

  @Test func maskPolygonsBeyondTheBudgetAreInvalid() async throws {
    let truth = RLEMask(height: 10, width: 10, pixels: (0..<100).map { $0 < 50 })
    let fields: [String: JSONValue] = ["mask_rle": truth.json]
    // A triangle with vertices a million pixels away would rasterize millions of outline points.
    #expect(try await score("mask_iou", "[0, 0, 1000000, 0, 1000000, 1000000]", fields: fields) == 0)
    #expect(RLEMask.outlinePoints([0, 0, 1_000_000, 0, 1_000_000, 1_000_000]) > Double(RewardLimits.polygonOutlinePoints))
    // Too many parts.
    let parts = Array(repeating: "[0, 0, 5, 0, 5, 5]", count: RewardLimits.maskParts + 1).joined(separator: ", ")
    #expect(try await score("mask_iou", "[\(parts)]", fields: fields) == 0)
    // A polygon inside the image still scores.
    let inside = try #require(try await score("mask_iou", "[0, 0, 5, 0, 5, 10, 0, 10]", fields: fields))
    #expect(inside > 0)
  }

  @Test func tooManyBoxesIsNotAValidMultiBoxAnswer() async throws {
    let truth: [String: JSONValue] = ["abs_box": .object(["0": .array([boxJSON([0, 0, 10, 10])])])]
    let many = Array(repeating: "[0, 0, 10, 10]", count: RewardLimits.boxes + 1).joined(separator: ", ")
    #expect(try await score("multi_box_format_reward", "{0: [\(many)]}", fields: truth) == 0)
    #expect(try await score("multi_gaussian_point", "{0: [\(many)]}", fields: truth) == 0)
    let allowed = Array(repeating: "[0, 0, 10, 10]", count: 3).joined(separator: ", ")
    #expect(try await score("multi_box_format_reward", "{0: [\(allowed)]}", fields: truth) == 1)
  }
}

@Suite struct UnicodeTests {
  @Test func foldingMapsDigitsMinusSignsAndFullWidth() {
    #expect(NumericText.fold("［１２，−３４］") == "[12,-34]")
    #expect(NumericText.fold("٣٤") == "34")  // Arabic-Indic
    #expect(NumericText.fold("४२") == "42")  // Devanagari
    #expect(NumericText.fold("۵") == "5")  // Extended Arabic-Indic
    #expect(NumericText.fold("𝟕") == "7")  // mathematical bold digit
    #expect(NumericText.fold("1\u{00A0}000 \u{2013}2 \u{FE63}3 \u{FF0D}4") == "1 000 -2 -3 -4")
    #expect(NumericText.fold("Ａｎｓｗｅｒ：（Ｂ）") == "Answer:(B)")
    #expect(NumericText.fold("plain ascii [1, 2]") == "plain ascii [1, 2]")
    // The shared parsers fold too (evaluation calls them directly).
    #expect(AnswerParsing.firstBox(in: "box: [\u{2212}1, ２, 3, ４]") == Box(-1, 2, 3, 4))
    #expect(AnswerParsing.isBareBox("［１, ２, ３, ４］", allowDecimals: false))
    #expect(ChoiceParsing.choiceIndex(in: "答案：Ｄ", choices: []) == 3)
    // Non-decimal numerals (superscripts, Roman numerals, CJK numbers) are left alone.
    #expect(NumericText.fold("cm² Ⅻ 三") == "cm² Ⅻ 三")
  }

  @Test func everyNumericRewardFoldsTheSameWay() async throws {
    let box: [String: JSONValue] = ["bbox": boxJSON([0, 0, 10, 10])]
    #expect(try await score("format", "［０, ０, １０, １０］", fields: box) == 1)
    #expect(try await score("iou", "[０, ０, １０, １０]", fields: box) == 1)
    #expect(try await score("gaussian_point", "[٠, ٠, ١٠, ١٠]", fields: box) == 1)
    #expect(try await score("rec_format", "<think>x</think><answer>[０,０,１,１]</answer>") == 1)
    // A negative coordinate written with the minus sign U+2212.
    #expect(try await score("iou", "[\u{2212}10, 0, 10, 10]", fields: ["bbox": boxJSON([-10, 0, 10, 10])]) == 1)
    #expect(try await score("counting_accuracy", "<answer>٣</answer>", fields: ["ground_truth": .int(3)]) == 1)
    #expect(try await score("counting_accuracy", "<answer>\u{2212}２</answer>", fields: ["ground_truth": .int(-2)]) == 1)
    #expect(try await score("accuracy", "<answer>\u{2212}３</answer>", fields: ["solution": .string("-3")]) == 1)
    #expect(try await score("accuracy", "<answer>１／２</answer>", fields: ["solution": .string("0.5")]) == 1)
    #expect(try await score("accuracy", "<answer>४२</answer>", fields: ["solution": .string("42")]) == 1)
    #expect(try await score("mc_idx", "<answer>答案：Ｃ</answer>", fields: ["label_idx": .string("２")]) == 1)
    let truth: [String: JSONValue] = ["abs_box": .object(["0": .array([boxJSON([0, 0, 10, 10])])])]
    #expect(try await score("multi_box_format_reward", "{０: [[０, ０, １０, １０]]}", fields: truth) == 1)
    #expect(try await score("multi_gaussian_point", "{０: [[０, ０, １０, １０]]}", fields: truth) == 1)
  }

  /// `multi_box_format_reward` is 1 exactly when `multi_gaussian_*` can read the answer's boxes.
  @Test func multiBoxFormatAndGaussianAgree() async throws {
    let truth: [String: JSONValue] = ["abs_box": .object(["0": .array([boxJSON([0, 0, 10, 10])])])]
    let answers = [
      "{0: [[0, 0, 10, 10]]}", "```json\n{\"0\": [[0, 0, 10, 10]]}\n```", "[[0, 0, 10, 10]]",
      "<answer>{'0': [(0, 0, 10, 10)]}</answer>", "Here you go: {0: [[0, 0, 10, 10]]}", "{0: [0, 0, 10, 10]}",
      "{0: [[0, 0, 10]]}", "{0: [[0, 0, 10, nan]]}", "{0: [[0, 0, 10, 10]], 1: []}", "garbage",
      "{0: [[0, 0, '10', 10]]}", "{0: [[0, 0, 1e999, 10]]}",
    ]
    for answer in answers {
      let format = try #require(try await score("multi_box_format_reward", answer, fields: truth))
      let gaussian = try #require(try await score("multi_gaussian_point", answer, fields: truth))
      let parsed = MultiBox.predicted(answer, truthLabels: ["0"]) != nil
      #expect((format == 1) == parsed, "\(answer)")
      // Every answer here that parses has the true box, so the Gaussian reward is positive exactly
      // for parsed answers.
      #expect((gaussian > 0) == parsed, "\(answer)")
    }
    // Well-formed but empty answers: the format holds, and they match no true box.
    for empty in ["{}", "[]"] {
      #expect(try await score("multi_box_format_reward", empty, fields: truth) == 1)
      #expect(try await score("multi_gaussian_point", empty, fields: truth) == 0)
    }
    #expect(MultiBox.predicted("Here you go: {0: [[0, 0, 10, 10]]}", truthLabels: ["0"]) == nil)
    #expect(MultiBox.predicted("{0: [[0, 0, 10, 10]]}", truthLabels: ["0"]) == ["0": [Box(0, 0, 10, 10)]])
  }
}
