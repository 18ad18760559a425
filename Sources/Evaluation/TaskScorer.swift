import Common
import Datasets
import Foundation
import Prompting
import Rewards

/// The ground truth of a record, read once so a record without a usable one is skipped (and
/// reported) before any generation.
enum GroundTruth: Sendable {
  case box(Box)
  case integer(Int)
  case math(String)
  case choice(AOKVQAScoring.Truth)
  case rewardFields

  /// What samples.jsonl shows as the ground truth.
  func json(_ example: Example) -> JSONValue? {
    switch self {
    case .box(let box): return RECScoring.boxJSON(box)
    case .integer(let value): return .int(value)
    case .math(let text): return .string(text)
    case .choice(let truth):
      return .object([
        "choices": .array(truth.choices.map { .string($0) }),
        "correct_choice_idx": truth.correctIndex.map { .int($0) } ?? .null,
        "direct_answers": .array(truth.directAnswers.map { .string($0) }),
        "difficult_direct_answer": .bool(truth.difficult),
      ])
    case .rewardFields: return example.rewardFields["bbox"] ?? example.rewardFields["abs_box"]
    }
  }
}

/// Reads ground truths and scores outputs for one task.
struct TaskScorer: Sendable {
  let task: EvalTask
  let method: RECPromptStyle
  let frame: BoxFrame
  let rewards: RewardRunner?
  let difficulty: DifficultyFlags

  /// The record's ground truth, or a message saying why it has none usable.
  func groundTruth(_ example: Example) -> Result<GroundTruth, RecordIssue> {
    guard task.acceptedKinds.contains(example.kind) else {
      let accepted = task.acceptedKinds.map(\.rawValue).sorted().joined(separator: ", ")
      return .failure(RecordIssue("is a \(example.kind.rawValue) record; task \(task.rawValue) reads \(accepted)"))
    }
    let fields = example.rewardFields
    switch task {
    case .rec:
      guard let solution = fields["solution"], let box = Box(json: solution) else {
        return .failure(RecordIssue("solution is not a box [x1, y1, x2, y2]"))
      }
      return .success(.box(box))
    case .counting:
      guard let value = fields["ground_truth"] ?? fields["solution"], let truth = CountingScoring.truth(value) else {
        return .failure(RecordIssue("ground_truth is not an integer"))
      }
      return .success(.integer(truth))
    case .geoqa:
      guard let value = fields["ground_truth"] ?? fields["solution"], let truth = GeoQAScoring.truth(value),
        !truth.isEmpty
      else { return .failure(RecordIssue("ground_truth is missing or not text or a number")) }
      return .success(.math(truth))
    case .aokvqa:
      let choices = fields["choices"]?.arrayValue?.compactMap(\.stringValue) ?? []
      let answers = fields["direct_answers"]?.arrayValue?.compactMap(\.stringValue) ?? []
      return .success(.choice(AOKVQAScoring.Truth(
        choices: choices, correctIndex: fields["label_idx"]?.intValue, directAnswers: answers,
        difficult: difficulty.isDifficult(example.source))))
    case .grounding:
      return .success(.rewardFields)
    }
  }

  /// Scores a batch of outputs (grounding runs its rewards concurrently over the batch).
  func score(_ items: [(example: Example, truth: GroundTruth, output: RolloutRecord)]) async
    -> [SampleScore] {
    if task == .grounding, let rewards { return await groundingScores(items, rewards: rewards) }
    return items.map { item in
      switch item.truth {
      case .box(let box):
        return RECScoring.score(output: item.output.text, truth: box, image: item.output.images.first, method: method, frame: frame)
      case .integer(let value): return CountingScoring.score(output: item.output.text, truth: value)
      case .math(let text): return GeoQAScoring.score(output: item.output.text, truth: text)
      case .choice(let truth): return AOKVQAScoring.score(output: item.output.text, truth: truth)
      case .rewardFields: return SampleScore(extracted: nil, correct: nil)
      }
    }
  }

  private func groundingScores(
    _ items: [(example: Example, truth: GroundTruth, output: RolloutRecord)],
    rewards: RewardRunner
  ) async -> [SampleScore] {
    let samples = items.map(\.output.rewardSample)
    let scores = await rewards.score(samples)
    return items.indices.map { index in
      var values: [String: Double] = [:]
      for key in rewards.metricKeys {
        if let value = scores.perFunction[key]?[index] ?? nil { values[key] = value }
      }
      let answer = AnswerParsing.answer(in: items[index].output.text)
      return SampleScore(extracted: answer.isEmpty ? nil : .string(answer), correct: nil, values: values)
    }
  }
}

/// Why a record was left out (the runner adds the record's location).
struct RecordIssue: Error, Sendable {
  var message: String
  init(_ message: String) { self.message = message }
}

/// A-OKVQA's `difficult_direct_answer` by record, read from the JSON / JSON-lines data files (the
/// dataset loader keeps only the fields the rewards read). Other formats have no flags: their
/// direct-answer accuracy covers every question, and eval.json says so.
final class DifficultyFlags: @unchecked Sendable {
  private var byFile: [String: [Int: Bool]] = [:]
  private let lock = NSLock()
  private(set) var unreadableFiles: Set<String> = []
  let enabled: Bool

  init(enabled: Bool) { self.enabled = enabled }

  func isDifficult(_ location: RecordLocation) -> Bool {
    guard enabled else { return false }
    lock.lock()
    defer { lock.unlock() }
    if byFile[location.file] == nil { byFile[location.file] = load(location.file) }
    return byFile[location.file]?[location.index] ?? false
  }

  private func load(_ path: String) -> [Int: Bool] {
    let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
    guard ["json", "jsonl", "ndjson"].contains(ext), let data = FileManager.default.contents(atPath: path) else {
      unreadableFiles.insert(path)
      return [:]
    }
    let records: [JSONValue]
    if let whole = try? JSONValue.parse(data), let array = whole.arrayValue {
      records = array
    } else {
      records = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
        .filter { !$0.allSatisfy(\.isWhitespace) }
        .map { (try? JSONValue.parse(String($0))) ?? .null }
    }
    var flags: [Int: Bool] = [:]
    for (index, record) in records.enumerated() {
      if let flag = record["difficult_direct_answer"]?.boolValue { flags[index] = flag }
    }
    return flags
  }
}
