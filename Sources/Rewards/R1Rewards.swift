// R1-style rewards of VLM-R1, R1-V and PaddleMIX r1_mllm (docs/rewards.md, "R1-style").
import Common
import Foundation

enum R1Rewards {
  /// `<think>.*?</think>\s*<answer>.*?</answer>` over the whole trimmed completion (dot matches
  /// newlines).
  static func matchesThinkAnswer(_ completion: String) -> Bool {
    // Full match with lazy groups: some `</think>` after the opening tag is followed by optional
    // whitespace and `<answer>`, and the text ends with a `</answer>` that does not overlap it.
    let text = Substring(completion.trimmed)
    let open = "<think>"
    let closeAnswer = "</answer>"
    guard text.hasPrefix(open), text.hasSuffix(closeAnswer) else { return false }
    let answerLimit = text.index(text.endIndex, offsetBy: -closeAnswer.count)
    var searchStart = text.index(text.startIndex, offsetBy: open.count)
    while let thinkEnd = text.range(of: "</think>", options: [], range: searchStart..<text.endIndex) {
      let rest = text[thinkEnd.upperBound...].drop(while: { $0.isWhitespace })
      if rest.hasPrefix("<answer>"), rest.index(rest.startIndex, offsetBy: 8) <= answerLimit {
        return true
      }
      searchStart = thinkEnd.upperBound
    }
    return false
  }

  static func thinkFormat(_ p: RewardParameters) -> any RewardFunction {
    SampleReward(name: p.reward) { matchesThinkAnswer($0.completion) ? 1 : 0 }
  }

  static func recFormat(_ p: RewardParameters) -> any RewardFunction {
    SampleReward(name: p.reward) { sample in
      guard matchesThinkAnswer(sample.completion) else { return 0 }
      return AnswerParsing.firstBox(in: AnswerParsing.answer(in: sample.completion)) == nil ? 0 : 1
    }
  }

  /// `iou` (continuous IoU) and `rec_accuracy` (1 when IoU > threshold, strict).
  static func iou(_ p: RewardParameters, threshold: Double?) throws -> any RewardFunction {
    let frame = try p.frame()
    let pixelInclusive = try p.bool("pixel_inclusive", default: false)
    let cut = try threshold.map { try p.double("iou_threshold", default: $0) }
    return SampleReward(name: p.reward) { sample in
      guard let truth = SingleBox.truth(sample) else { return nil }
      guard let predicted = SingleBox.predicted(sample, frame: frame) else { return 0 }
      let value = BoxMath.iou(predicted, truth, pixelInclusive: pixelInclusive)
      guard let cut else { return value }
      return value > cut ? 1 : 0
    }
  }

  /// The reference answer: `solution` (maybe in `<answer>` tags), else `ground_truth`.
  static func reference(_ sample: RewardSample) -> String? {
    for key in ["solution", "ground_truth", "answer"] {
      guard let value = sample.fields[key] else { continue }
      switch value {
      case .string(let text): return AnswerParsing.answer(in: text)
      case .int(let number): return String(number)
      case .double(let number): return String(number)
      default: continue
      }
    }
    return nil
  }

  /// The model's final answer: inside `<answer>`, else the last `\boxed{}`, else the whole text.
  static func modelAnswer(_ completion: String) -> String {
    if let tagged = AnswerParsing.lastTagContent(in: completion, tag: "answer") { return tagged.trimmed }
    if let boxed = AnswerParsing.lastBoxed(in: completion) { return boxed.trimmed }
    return completion.trimmed
  }

  static func accuracy(_ p: RewardParameters) -> any RewardFunction {
    SampleReward(name: p.reward) { sample in
      guard let reference = reference(sample) else { return nil }
      return MathVerifier.equivalent(modelAnswer(sample.completion), reference) ? 1 : 0
    }
  }

  /// `counting_accuracy`: the first integer of the answer equals the ground-truth integer.
  static func countingAccuracy(_ p: RewardParameters) -> any RewardFunction {
    SampleReward(name: p.reward) { sample in
      guard let truthText = reference(sample), let truth = firstInteger(in: NumericText.fold(truthText)) else {
        return nil
      }
      guard let answer = firstInteger(in: NumericText.fold(AnswerParsing.answer(in: sample.completion))) else {
        return 0
      }
      return answer == truth ? 1 : 0
    }
  }

  /// The first run of ASCII digits (with a directly preceding minus sign), or a number word. Callers
  /// fold Unicode digits and minus signs first (`NumericText.fold`).
  static func firstInteger(in text: String) -> Int? {
    if text.utf8.count <= 64, let word = MathVerifier.numberWords[text.trimmed.lowercased()] { return Int(word) }
    let bytes = Array(text.utf8)
    guard let start = bytes.firstIndex(where: AnswerParsing.isDigit) else { return nil }
    var end = start
    while end < bytes.count, AnswerParsing.isDigit(bytes[end]) { end += 1 }
    guard end - start <= 18, let value = Int(String(decoding: bytes[start..<end], as: UTF8.self)) else { return nil }
    return start > 0 && bytes[start - 1] == UInt8(ascii: "-") ? -value : value
  }
}
