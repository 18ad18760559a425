// DLC-Bench-style questions generated from a record's reference caption by the judge model, for
// records that ship none (`llm_judge` with `generate_questions: true`). describe-anything itself
// ships fixed questions; this is vlmrl's explicit option (docs/rewards.md, "llm_judge").
import Common
import Foundation

/// The generation prompt and the tolerant parser of the judge's reply.
public enum QuestionGeneration {
  /// At most this many questions are kept from one reply (bounds the scoring requests per sample).
  public static let maxQuestions = 16

  /// The single-turn prompt asking for strict JSON: one recognition question, up to
  /// `attributeCount` positive questions about details the reference states, and up to two negative
  /// questions about details it does not have; every option with its score.
  public static func prompt(references: [String], attributeCount: Int) -> String {
    let reference = references.joined(separator: "\n")
    return """
      You write a multiple-choice test that checks how well another description of one object in an \
      image agrees with the reference description below. Use only facts stated in the reference.

      Reference description:
      \(reference)

      Write these questions:
      1. Exactly one question of type "recognition" asking what the object is: the option naming the \
      object as the reference does scores 1, each wrong but plausible object scores -1.
      2. Up to \(attributeCount) questions of type "positive", each about one detail the reference states \
      (colour, material, shape, parts, pose, action, position, text): the option that agrees with the \
      reference scores 1, the option "not mentioned" scores 0, each option that contradicts it scores -1.
      3. Up to 2 questions of type "negative", each about a plausible detail the reference does not \
      have: the option "not mentioned" scores 1, each option claiming the detail is present scores -1.
      Every question has 2 to 5 options; every score is 1, 0 or -1.

      Reply with JSON only (no prose, no code fence) in exactly this form:
      {"questions": [{"question": "What is the object?", "type": "recognition", "choices": \
      [["a tabby cat", 1], ["a dog", -1], ["a fox", -1]]}, {"question": "What colour is its fur?", \
      "type": "positive", "choices": [["orange with dark stripes", 1], ["black", -1], ["not mentioned", 0]]}]}
      """
  }

  /// The questions of a judge reply: `{"questions": [...]}` or a bare list, as JSON or a Python
  /// literal, maybe in a code fence or surrounded by prose. Malformed questions (no text, fewer than
  /// two options, a score outside -1...1) are dropped; nil when none is left.
  public static func parse(_ reply: String) -> [JudgeQuestion]? {
    let candidates = [LiteralParser.stripCodeFence(reply), fencedBlock(reply), span(reply, "[", "]"), span(reply, "{", "}")]
    guard let items = candidates.lazy.compactMap({ $0.flatMap(questionList) }).first else { return nil }
    let questions = items.compactMap { item -> JudgeQuestion? in
      guard let question = JudgeQuestion(json: item), question.optionScores.count >= 2,
        !question.question.trimmed.isEmpty,
        question.optionScores.allSatisfy({ (-1...1).contains($0) })
      else { return nil }
      return question
    }
    return questions.isEmpty ? nil : Array(questions.prefix(maxQuestions))
  }

  /// The items of `{"questions": [...]}` or of a bare list written as `text`.
  private static func questionList(_ text: String) -> [JSONValue]? {
    guard let value = LiteralParser.parse(text) else { return nil }
    return value["questions"]?.arrayValue ?? value.arrayValue
  }

  /// The body of the first Markdown code fence, wherever it starts.
  private static func fencedBlock(_ text: String) -> String? {
    guard let open = text.range(of: "```") else { return nil }
    let afterLanguage = text[open.upperBound...].firstIndex(of: "\n").map { text.index(after: $0) } ?? open.upperBound
    let close = text.range(of: "```", range: afterLanguage..<text.endIndex)?.lowerBound ?? text.endIndex
    return String(text[afterLanguage..<close])
  }

  /// The span from the first `open` to the last `close` character (data wrapped in prose).
  private static func span(_ text: String, _ open: Character, _ close: Character) -> String? {
    guard let start = text.firstIndex(of: open), let end = text.lastIndex(of: close), start < end else { return nil }
    return String(text[start...end])
  }
}

/// Generated questions by reference text, shared by concurrent batches: one generation per distinct
/// reference in flight at a time, successes kept (oldest dropped past `capacity`), failures not
/// kept so a later batch asks again.
actor QuestionCache {
  let capacity: Int
  private var stored: [String: [JudgeQuestion]] = [:]
  private var insertionOrder: [String] = []
  private var inFlight: [String: Task<[JudgeQuestion]?, Never>] = [:]

  init(capacity: Int) { self.capacity = max(1, capacity) }

  var count: Int { stored.count }

  /// The cached questions of `reference`, else those `generate` makes (joining a generation of the
  /// same reference already under way).
  func questions(
    for reference: String, generate: @escaping @Sendable () async -> [JudgeQuestion]?
  ) async -> [JudgeQuestion]? {
    if let cached = stored[reference] { return cached }
    if let running = inFlight[reference] { return await running.value }
    let task = Task { await generate() }
    inFlight[reference] = task
    let result = await task.value
    inFlight[reference] = nil
    if let result, stored[reference] == nil {
      stored[reference] = result
      insertionOrder.append(reference)
      while insertionOrder.count > capacity { stored[insertionOrder.removeFirst()] = nil }
    }
    return result
  }
}

extension LLMJudgeReward {
  /// The questions of each sample: the record's `judge_questions`, else (with `generate_questions`)
  /// those generated from its reference caption; empty when there are none (the sample is nil).
  func questionSets(for batch: [RewardSample]) async -> [[JudgeQuestion]] {
    let fromRecords = batch.map { sample in
      (sample.fields["judge_questions"]?.arrayValue ?? []).compactMap(JudgeQuestion.init(json:))
    }
    guard let generation else { return fromRecords }
    let references = batch.map { CaptionRewards.references($0) ?? [] }
    var wanted: [String: [String]] = [:]
    for (index, questions) in fromRecords.enumerated() where questions.isEmpty && !references[index].isEmpty {
      wanted[references[index].joined(separator: "\n")] = references[index]
    }
    let keys = wanted.keys.sorted()
    let referencesByKey = wanted
    let generated = await Self.boundedMap(keys, limit: maxConcurrency) { key in
      await generation.cache.questions(for: key) { await self.generateQuestions(references: referencesByKey[key] ?? [key]) }
    }
    let byKey = Dictionary(uniqueKeysWithValues: zip(keys, generated))
    return fromRecords.enumerated().map { index, questions in
      guard questions.isEmpty else { return questions }
      return byKey[references[index].joined(separator: "\n")].flatMap { $0 } ?? []
    }
  }

  /// Asks the judge for questions; an unparseable reply is asked again (at temperature 0.7, since
  /// the same request at 0 tends to give the same reply) up to `retries` times. A judge that is
  /// down, or replies that never parse, give nil and are counted in `generationFailures`.
  func generateQuestions(references: [String]) async -> [JudgeQuestion]? {
    guard let generation else { return nil }
    let prompt = QuestionGeneration.prompt(references: references, attributeCount: generation.attributeCount)
    for attempt in 0...retries {
      let body = JSONValue.object([
        "model": .string(model), "temperature": attempt == 0 ? .int(0) : .double(0.7),
        "max_tokens": .int(generation.maxTokens),
        "messages": .array([.object(["role": .string("user"), "content": .string(prompt)])]),
      ])
      guard let reply = await chat(body) else { break }
      if let questions = QuestionGeneration.parse(reply) { return questions }
    }
    generationFailures.increment()
    return nil
  }

  /// `body(item)` for every item with at most `limit` running at once, results in input order.
  static func boundedMap<Item: Sendable, Result: Sendable>(
    _ items: [Item], limit: Int, _ body: @escaping @Sendable (Item) async -> Result
  ) async -> [Result] {
    var results = [Result?](repeating: nil, count: items.count)
    await withTaskGroup(of: (Int, Result).self) { group in
      var next = 0
      while next < min(items.count, max(1, limit)) {
        let index = next
        group.addTask { (index, await body(items[index])) }
        next += 1
      }
      for await (index, result) in group {
        results[index] = result
        if next < items.count {
          let index = next
          group.addTask { (index, await body(items[index])) }
          next += 1
        }
      }
    }
    return results.compactMap { $0 }  // every index was filled
  }
}
