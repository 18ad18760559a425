// Answer extraction and scoring of each evaluation task, as pure functions of the model output and
// the record's ground truth (docs/eval.md says how each relates to the reference scripts).
import Common
import Datasets
import Foundation
import ModelConfig
import Rewards

/// What one output scored: the extracted answer, whether it is correct, and per-sample numbers
/// (IoU, direct-answer accuracy, rewards) that the set's means are made of.
public struct SampleScore: Sendable, Equatable {
  /// The answer as extracted from the output (nil: nothing could be extracted).
  public var extracted: JSONValue?
  /// nil where correctness does not apply (grounding rewards, unlabelled records).
  public var correct: Bool?
  /// Named per-sample values; a set's metric of the same name is their mean.
  public var values: [String: Double]

  public init(extracted: JSONValue?, correct: Bool?, values: [String: Double] = [:]) {
    self.extracted = extracted
    self.correct = correct
    self.values = values
  }
}

/// The final answer of an R1-style output: the content of the last `<answer>` block, else the last
/// `\boxed{}`, else the whole output (as the rewards' `accuracy` reads it), trimmed.
public func finalAnswer(in output: String) -> String {
  if let tagged = AnswerParsing.lastTagContent(in: output, tag: "answer") { return tagged.trimmingCharacters(in: .whitespacesAndNewlines) }
  if let boxed = AnswerParsing.lastBoxed(in: output) { return boxed.trimmingCharacters(in: .whitespacesAndNewlines) }
  return output.trimmingCharacters(in: .whitespacesAndNewlines)
}

// MARK: - REC

/// Referring-expression comprehension (VLM-R1 / PaddleMIX `test_rec.py`).
public enum RECScoring {
  /// The frame a model family writes boxes in: Qwen2.5-VL uses pixels of its resized input,
  /// Qwen2-VL normalizes to 0..1000.
  public static func frame(for family: QwenVLFamily) -> BoxFrame {
    switch family {
    case .qwen25VL: return .resized
    case .qwen2VL: return .norm1000
    }
  }

  /// The predicted box in the model's own frame.
  /// - `r1`: the first bracketed list of four numbers inside the last `<answer>` block (none without
  ///   the block, as the reference).
  /// - `baseline`: the first four comma-separated numbers anywhere (the reference's pattern), else the
  ///   first four numbers anywhere (Qwen2-VL writes `(x1,y1),(x2,y2)`).
  public static func extractBox(_ output: String, method: RECPromptStyle) -> Box? {
    switch method {
    case .r1:
      guard let answer = AnswerParsing.lastTagContent(in: output, tag: "answer") else { return nil }
      return AnswerParsing.firstBox(in: answer)
    case .baseline:
      if let box = firstMatchNumbers(commaSeparatedFour, in: output).flatMap(Box.init(numbers:)) { return box }
      let numbers = firstMatchNumbers(anyNumber, in: output, all: true)?.prefix(4) ?? []
      return Box(numbers: Array(numbers))
    }
  }

  /// Scores one output against the ground-truth box (original-image pixels): IoU after the frame
  /// conversion, correct when IoU > 0.5 (strict, as the reference).
  public static func score(output: String, truth: Box, image: ImageGeometry?, method: RECPromptStyle,
                           frame: BoxFrame) -> SampleScore {
    guard let predicted = extractBox(output, method: method) else {
      return SampleScore(extracted: nil, correct: false, values: ["iou": 0])
    }
    let converted = frame.toOriginal(predicted, image: image)
    let iou = BoxMath.iou(converted, truth)
    let extracted = JSONValue.object([
      "box": boxJSON(predicted), "box_original": boxJSON(converted),
    ])
    return SampleScore(extracted: extracted, correct: iou > 0.5, values: ["iou": iou])
  }

  static func boxJSON(_ box: Box) -> JSONValue {
    .array([box.x1, box.y1, box.x2, box.y2].map { .double(($0 * 1000).rounded() / 1000) })
  }

  private static let number = #"([-+]?(?:\d+(?:\.\d+)?|\.\d+))"#
  private static let commaSeparatedFour = try! NSRegularExpression(
    pattern: Array(repeating: number, count: 4).joined(separator: #"\s*,\s*"#))
  private static let anyNumber = try! NSRegularExpression(pattern: number)

  /// The numbers captured by the first match (or, with `all`, the first capture of every match).
  static func firstMatchNumbers(_ regex: NSRegularExpression, in text: String, all: Bool = false) -> [Double]? {
    let range = NSRange(text.startIndex..., in: text)
    let matches = all ? regex.matches(in: text, range: range) : regex.firstMatch(in: text, range: range).map { [$0] } ?? []
    guard !matches.isEmpty else { return nil }
    var numbers: [Double] = []
    for match in matches {
      for group in 1..<match.numberOfRanges {
        guard let captured = Range(match.range(at: group), in: text), let value = Double(text[captured]),
          value.isFinite
        else { return nil }
        numbers.append(value)
      }
      if numbers.count >= 4 { break }
    }
    return numbers
  }
}

// MARK: - Counting and GeoQA (R1-V test jsonl)

/// SuperCLEVR counting (R1-V / PaddleMIX `test_r1-v.py`).
public enum CountingScoring {
  /// An integer value of a text: `3`, ` 3 `, `3.0`, `three` (the verifier's number words).
  public static func integer(in text: String) -> Int? {
    let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
    if let value = Int(trimmed) { return value }
    guard let evaluated = MathVerifier.evaluate(MathVerifier.normalize(trimmed)), !evaluated.percent,
      evaluated.value.rounded() == evaluated.value, abs(evaluated.value) < 1e15
    else { return nil }
    return Int(evaluated.value)
  }

  /// The ground truth as an integer (the jsonl holds an int; a string of digits is accepted).
  public static func truth(_ value: JSONValue) -> Int? {
    if let number = value.intValue { return number }
    return value.stringValue.flatMap { integer(in: AnswerParsing.answer(in: $0)) }
  }

  /// Correct when the final answer is an integer equal to the ground truth.
  public static func score(output: String, truth: Int) -> SampleScore {
    guard let answer = integer(in: finalAnswer(in: output)) else { return SampleScore(extracted: nil, correct: false) }
    return SampleScore(extracted: .int(answer), correct: answer == truth)
  }
}

/// GeoQA (R1-V test jsonl): mathematical equivalence through the rewards' verifier, so "140°" and
/// 140 are the same value (the reference compares an int with the string and scores 0).
public enum GeoQAScoring {
  /// The ground truth as text ("140°", or an int/double written as JSON).
  public static func truth(_ value: JSONValue) -> String? {
    switch value {
    case .string(let text): return AnswerParsing.answer(in: text)
    case .int, .double: return value.jsonString
    default: return nil
    }
  }

  public static func score(output: String, truth: String) -> SampleScore {
    let answer = finalAnswer(in: output)
    guard !answer.isEmpty else { return SampleScore(extracted: nil, correct: false) }
    return SampleScore(extracted: .string(answer), correct: MathVerifier.equivalent(answer, truth))
  }
}

// MARK: - A-OKVQA

/// A-OKVQA with the official evaluation's two numbers: multiple-choice accuracy, and direct-answer
/// accuracy `min(1, matches / 3)` over the ten annotator answers, difficult questions skipped.
public enum AOKVQAScoring {
  /// The ground truth of one record.
  public struct Truth: Sendable, Equatable {
    public var choices: [String]
    /// nil for unlabelled (test split) records: no multiple-choice score.
    public var correctIndex: Int?
    public var directAnswers: [String]
    /// `difficult_direct_answer`: the official script leaves these out of direct-answer accuracy.
    public var difficult: Bool

    public init(choices: [String], correctIndex: Int?, directAnswers: [String], difficult: Bool) {
      self.choices = choices
      self.correctIndex = correctIndex
      self.directAnswers = directAnswers
      self.difficult = difficult
    }
  }

  /// The answer text: the last `<answer>` block, else what follows the last `</think>` (as the
  /// `mc_idx` reward reads it), trimmed.
  public static func answerText(_ output: String) -> String {
    if let tagged = AnswerParsing.lastTagContent(in: output, tag: "answer") {
      return tagged.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    let rest = output.range(of: "</think>", options: .backwards).map { String(output[$0.upperBound...]) } ?? output
    return rest.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// Direct-answer accuracy of one prediction: `min(1, matches / 3)`, case-insensitive exact match.
  public static func directAnswerAccuracy(_ prediction: String, answers: [String]) -> Double {
    let wanted = prediction.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    let matches = answers.filter { $0.trimmingCharacters(in: .whitespacesAndNewlines).lowercased() == wanted }.count
    return min(1, Double(matches) / 3)
  }

  /// Multiple choice: the chosen option (letter forms of the `mc_idx` reward, or the choice text)
  /// against `correct_choice_idx`. Direct answer: the chosen option's text (or the answer text when
  /// no option is recognized) against the direct answers; skipped for difficult questions.
  public static func score(output: String, truth: Truth) -> SampleScore {
    let answer = answerText(output)
    let chosen = ChoiceParsing.choiceIndex(in: answer, choices: truth.choices)
    let prediction = chosen.flatMap { truth.choices.indices.contains($0) ? truth.choices[$0] : nil } ?? answer
    var values: [String: Double] = [:]
    var correct: Bool?
    if let index = truth.correctIndex {
      correct = chosen == index
      values["mc_accuracy"] = correct == true ? 1 : 0
    }
    if !truth.difficult, !truth.directAnswers.isEmpty {
      values["da_accuracy"] = directAnswerAccuracy(prediction, answers: truth.directAnswers)
    }
    var extracted: [String: JSONValue] = ["prediction": .string(prediction)]
    if let chosen { extracted["choice_index"] = .int(chosen) }
    return SampleScore(extracted: .object(extracted), correct: correct, values: values)
  }
}
