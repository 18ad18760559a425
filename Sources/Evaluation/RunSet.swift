import Common
import Datasets
import Foundation
import ModelConfig
import Prompting
import Rewards

extension EvalRunner {
  /// How many skipped records a set lists by name (all are counted).
  static let listedSkips = 20

  /// One test set: sample, read ground truths, prepare prompts batch by batch, generate, score.
  static func runSet(name: String, path: String, settings: EvalSettings, builder: PromptBuilder,
                     generator: any EvalGenerator, scorer: TaskScorer,
                     log: @escaping @Sendable (String) -> Void) async throws -> (SetResult, [SampleRecord]) {
    let loaded = try loadSet(path: path, settings: settings)
    var skippedRecords = loaded.summary.badRecords.map(\.description)
    var skipped = loaded.summary.skipped
    var usable: [(example: Example, truth: GroundTruth)] = []
    for example in loaded.examples {
      switch scorer.groundTruth(example) {
      case .success(let truth): usable.append((example, truth))
      case .failure(let issue):
        skipped += 1
        skippedRecords.append("\(example.source): \(issue.message)")
      }
    }
    if usable.isEmpty, let first = skippedRecords.first {
      throw EvalError.invalidFile(path, "no record is usable for task \(settings.task.rawValue) (first problem: \(first))")
    }
    var records: [SampleRecord] = []
    var stats = (tokens: 0, truncated: 0, seconds: 0.0)
    for start in stride(from: 0, to: usable.count, by: settings.batchSize) {
      var prepared: [(example: Example, truth: GroundTruth, prompt: PreparedPrompt)] = []
      for (example, truth) in usable[start..<min(start + settings.batchSize, usable.count)] {
        do {
          let prompt = try builder.prepare(example)
          prepared.append((example, truth, prompt))
        } catch {
          skipped += 1
          skippedRecords.append("\(example.source): \(error)")
        }
      }
      guard !prepared.isEmpty else { continue }
      let timer = Date()
      let outputs = try generator.generate(prepared.map(\.prompt), maxNewTokens: settings.maxNewTokens)
      stats.seconds += Date().timeIntervalSince(timer)
      guard outputs.count == prepared.count else {
        throw EvalError.invalidArgument("generator returned \(outputs.count) outputs for \(prepared.count) prompts")
      }
      let items = zip(prepared, outputs).map { (example: $0.example, truth: $0.truth, output: $1) }
      let scores = await scorer.score(items)
      for (item, score) in zip(items, scores) {
        stats.tokens += item.output.tokens.count
        if item.output.truncated { stats.truncated += 1 }
        records.append(SampleRecord(
          set: name, source: item.example.source.description, prompt: item.output.question, output: item.output.text,
          extracted: score.extracted, groundTruth: item.truth.json(item.example), correct: score.correct,
          values: score.values, finished: !item.output.truncated))
      }
      log("\(name): \(records.count)/\(usable.count)")
    }
    let metrics = Aggregate.metrics(records.map { ($0.correct, $0.values, $0.extracted != nil) }, task: settings.task,
                                    rewardNames: scorer.rewards?.metricKeys ?? [])
    let result = SetResult(
      name: name, data: path, available: loaded.summary.sources.first?.available, evaluated: records.count,
      skipped: skipped, skippedRecords: Array(skippedRecords.prefix(listedSkips)), metrics: metrics,
      truncated: stats.truncated, generatedTokens: stats.tokens, generationSeconds: stats.seconds)
    return (result, records)
  }
}
