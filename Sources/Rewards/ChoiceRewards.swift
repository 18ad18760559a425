// Multiple-choice and attention-balance rewards of the TRL MDI fork (docs/rewards.md).
import Common
import Foundation

public enum ChoiceParsing {
  static let letters: [Character] = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"]

  /// Full-width letters, digits and punctuation as their ASCII forms (Ａ -> A, （ -> (, ： -> :), the
  /// folding every numeric reward uses (`NumericText.fold`).
  static func foldFullWidth(_ text: String) -> String { NumericText.fold(text) }

  /// The chosen option index (A = 0 ... J = 9), recognizing in order: `Answer: X`, `答案: X`,
  /// `选项: X`, `(X)`, `X.` / `X)` at the start, the answer being just the letter; then the text
  /// equal to a choice; then the last lone letter A-J in the text ("the answer is B", "答案是B"): a
  /// capital not touching another ASCII letter or digit, so the B of "Because" does not count, nor
  /// the pronoun "I" followed by a lower-case word.
  public static func choiceIndex(in answer: String, choices: [String]) -> Int? {
    let text = foldFullWidth(answer).trimmed
    for regex in letterPatterns {
      if let letter = firstCapture(regex, in: text), let index = letters.firstIndex(of: letter) {
        return index
      }
    }
    let wanted = normalizedChoice(text)
    guard !wanted.isEmpty else { return nil }
    if let index = choices.firstIndex(where: { normalizedChoice($0) == wanted || normalizedChoice(strippingLetter($0)) == wanted }) {
      return index
    }
    return lastLoneLetter(in: text)
  }

  /// The index of the last capital A-J with no ASCII letter or digit on either side (an "I" followed
  /// by a space and a lower-case letter is the pronoun and is skipped).
  static func lastLoneLetter(in text: String) -> Int? {
    let bytes = Array(text.utf8)
    func isAlphanumeric(_ byte: UInt8) -> Bool {
      AnswerParsing.isDigit(byte) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
    }
    var index = bytes.count - 1
    while index >= 0 {
      let byte = bytes[index]
      if byte >= UInt8(ascii: "A"), byte <= UInt8(ascii: "J"),
        index == 0 || !isAlphanumeric(bytes[index - 1]),
        index + 1 == bytes.count || !isAlphanumeric(bytes[index + 1])
      {
        let pronoun = byte == UInt8(ascii: "I") && index + 2 < bytes.count && bytes[index + 1] == UInt8(ascii: " ")
          && bytes[index + 2] >= 97 && bytes[index + 2] <= 122
        if !pronoun { return Int(byte - UInt8(ascii: "A")) }
      }
      index -= 1
    }
    return nil
  }

  /// The recognized forms, in priority order (compiled once).
  static let letterPatterns: [NSRegularExpression] = [
    #"(?i:answer)\s*[:：]\s*\(?([A-J])\b"#, #"答案\s*[:：]\s*\(?([A-J])"#, #"选项\s*[:：]\s*\(?([A-J])"#,
    #"\(([A-J])\)"#, #"^([A-J])[.)]"#, #"^([A-J])[\s.。,!]*$"#,
  ].compactMap { try? NSRegularExpression(pattern: $0) }

  static func firstCapture(_ regex: NSRegularExpression, in text: String) -> Character? {
    guard let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
      match.numberOfRanges > 1, let range = Range(match.range(at: 1), in: text)
    else { return nil }
    return text[range].first
  }

  static func normalizedChoice(_ text: String) -> String {
    var folded = foldFullWidth(text).lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
    while let last = folded.last, ".。!".contains(last) { folded.removeLast() }
    return folded
  }

  /// "A. cat" -> "cat".
  static func strippingLetter(_ choice: String) -> String {
    let text = foldFullWidth(choice).trimmed
    guard text.count > 2, let first = text.first, letters.contains(first) else { return text }
    let second = text[text.index(after: text.startIndex)]
    return ".):".contains(second) ? String(text.dropFirst(2)).trimmed : text
  }

  /// The record's correct index: `label_idx` or `correct_choice_idx` (int or digit string), or a
  /// letter in `ground_truth`/`answer`.
  static func correctIndex(_ fields: [String: JSONValue]) -> Int? {
    for key in ["label_idx", "correct_choice_idx"] {
      if let value = fields[key], let index = value.intValue ?? value.stringValue.flatMap({ Int(NumericText.fold($0).trimmed) }) {
        return index
      }
    }
    return nil
  }
}

enum ChoiceRewards {
  static func mcIndex(_ p: RewardParameters) -> any RewardFunction {
    SampleReward(name: p.reward) { sample in
      guard let correct = ChoiceParsing.correctIndex(sample.fields) else { return nil }
      let choices = sample.fields["choices"]?.arrayValue?.compactMap(\.stringValue) ?? []
      let answer = AnswerParsing.lastTagContent(in: sample.completion, tag: "answer")
        ?? afterThink(sample.completion)
      return ChoiceParsing.choiceIndex(in: answer, choices: choices) == correct ? 1 : 0
    }
  }

  /// The text after the last `</think>` (the whole text when there is none).
  static func afterThink(_ completion: String) -> String {
    guard let end = completion.range(of: "</think>", options: .backwards) else { return completion }
    return String(completion[end.upperBound...])
  }

  /// `think_tag_format`: a non-empty `<think>` block followed by a non-empty answer.
  static func thinkTagFormat(_ p: RewardParameters) -> any RewardFunction {
    SampleReward(name: p.reward) { sample in
      let text = sample.completion
      guard let open = text.range(of: "<think>"),
        let close = text.range(of: "</think>", options: [], range: open.upperBound..<text.endIndex),
        !text[open.upperBound..<close.lowerBound].trimmed.isEmpty
      else { return 0 }
      let rest = String(text[close.upperBound...])
      let answer = AnswerParsing.lastTagContent(in: rest, tag: "answer") ?? rest
      return answer.trimmed.isEmpty ? 0 : 1
    }
  }

  /// `mdi`: `2 * clip(1 - |ln MDI| / ln R, 0, 1) - 1`, `MDI = (A_text/N_text) / (A_vision/N_vision)`.
  static func mdi(_ p: RewardParameters) throws -> any RewardFunction {
    let ratio = try p.double("mdi_balance_ratio", default: 2.0)
    guard ratio > 1 else { throw p.bad("mdi_balance_ratio", "must be > 1, got \(ratio)") }
    return SampleReward(name: p.reward) { sample in
      guard let attention = sample.attention else { return nil }
      return mdiReward(attention, balanceRatio: ratio)
    }
  }

  /// nil when there are no text or no image tokens (the balance is undefined there).
  static func mdiReward(_ a: AttentionDiagnostics, balanceRatio: Double) -> Double? {
    guard a.textTokens > 0, a.visionTokens > 0, a.textMass.isFinite, a.visionMass.isFinite,
      a.textMass >= 0, a.visionMass >= 0, a.textMass + a.visionMass > 0
    else { return nil }
    let mdi = (a.textMass / Double(a.textTokens)) / (a.visionMass / Double(a.visionTokens))
    let logMDI = abs(log(mdi))
    let balance = logMDI.isFinite ? min(1, max(0, 1 - logMDI / log(balanceRatio))) : 0
    return 2 * balance - 1
  }
}
