// `llm_judge`: DLC-Bench-style caption scoring by a judge model behind an OpenAI-compatible
// /v1/chat/completions endpoint (docs/rewards.md, "Region <-> caption").
import AsyncHTTPClient
import Common
import Foundation

/// One multiple-choice question about the region, each option with a score (DLC-Bench style).
public struct JudgeQuestion: Sendable, Hashable {
  public enum Kind: String, Sendable { case recognition, positive, negative }
  public var question: String
  public var kind: Kind
  public var options: [(text: String, score: Double)] { zip(optionTexts, optionScores).map { ($0, $1) } }
  public var optionTexts: [String]
  public var optionScores: [Double]

  /// Reads `{"question": "...", "type": "positive", "choices": [["text", 1], ["text", -1], ...]}`
  /// (choices may also be `{"text": ..., "score": ...}` objects, and the key `options`).
  public init?(json: JSONValue) {
    guard let question = json["question"]?.stringValue,
      let choices = json["choices"]?.arrayValue ?? json["options"]?.arrayValue,
      !choices.isEmpty, choices.count <= 10
    else { return nil }
    var texts: [String] = [], scores: [Double] = []
    for choice in choices {
      if let pair = choice.arrayValue, pair.count == 2, let text = pair[0].stringValue, let score = pair[1].doubleValue {
        texts.append(text)
        scores.append(score)
      } else if let text = choice["text"]?.stringValue, let score = choice["score"]?.doubleValue {
        texts.append(text)
        scores.append(score)
      } else {
        return nil
      }
    }
    self.question = question
    self.kind = Kind(rawValue: json["type"]?.stringValue?.lowercased() ?? "positive") ?? .positive
    self.optionTexts = texts
    self.optionScores = scores
  }

  /// The single-turn judge prompt: rules, the description, the question and lettered options.
  public func prompt(description: String) -> String {
    let letters = "ABCDEFGHIJ".map(String.init)
    let lines = zip(letters, optionTexts).map { "\($0). \($1)" }.joined(separator: "\n")
    return """
      You are given a text description of one object in an image. Answer a multiple-choice question \
      using only that description.
      Rules:
      1. Reply with the letter of exactly one option. Give no reasoning and do not repeat the question.
      2. The description need not match an option word for word: pick the closest option.

      Description:
      \(description)

      Question:
      \(question)
      \(lines)
      """
  }
}

/// `llm_judge`: for each question one request; the chosen options' scores averaged,
/// `(sum pos + sum neg) / (n_pos + n_neg)`, clamped to <= 0 when a recognition question scores
/// <= 0, then mapped to 0..1 as `(s + 1) / 2`. A judge that stays down makes the sample nil and is
/// counted in `failures`. With `generate_questions`, records without `judge_questions` get
/// questions generated once per distinct reference caption (see `QuestionGeneration`).
public struct LLMJudgeReward: RewardFunction {
  public let name: String
  let endpoint: String
  let model: String
  let apiKey: String?
  let timeout: Double
  let retries: Int
  let backoff: Double
  let maxConcurrency: Int
  /// Question generation settings; nil unless `generate_questions` is true.
  let generation: Generation?
  /// Judge calls that failed after all retries (reported by the trainer's metrics).
  public let failures = Counter()
  /// Question generations that failed (judge down, or no parseable reply after all retries).
  public let generationFailures = Counter()
  /// Verdicts by exact judge prompt (question + description): a caption asked again (the same
  /// caption for the same region, common in RL where G samples often agree) costs no request.
  /// Only answered questions are kept; nil when `verdict_cache_size` is 0.
  public let verdicts: VerdictCache?

  struct Generation: Sendable {
    let attributeCount: Int
    let maxTokens: Int
    let cache: QuestionCache
  }

  public final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    public var value: Int { lock.withLock { count } }
    func increment() { lock.withLock { count += 1 } }
  }

  init(parameters p: RewardParameters) throws {
    name = p.reward
    guard let base = try p.string("url") ?? ProcessInfo.processInfo.environment["VLMRL_JUDGE_URL"] else {
      throw p.bad("url", "missing: the judge's OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1)")
    }
    endpoint = base.hasSuffix("/chat/completions") ? base : base.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/chat/completions"
    model = try p.string("model") ?? "judge"
    let keyVariable = try p.string("api_key_env") ?? "OPENAI_API_KEY"
    apiKey = try p.string("api_key") ?? ProcessInfo.processInfo.environment[keyVariable]
    timeout = try p.double("timeout", default: 30)
    retries = try p.int("retries", default: 2)
    backoff = try p.double("backoff", default: 0.5)
    maxConcurrency = try p.int("max_concurrency", default: 8)
    guard timeout > 0, (0...10).contains(retries), backoff >= 0, maxConcurrency > 0 else {
      throw p.bad("timeout", "timeout > 0, retries 0...10, backoff >= 0 and max_concurrency > 0 are required")
    }
    generation = try Self.generationSettings(p)
    let verdictCapacity = try p.int("verdict_cache_size", default: 4096)
    guard verdictCapacity >= 0 else { throw p.bad("verdict_cache_size", "must be >= 0, got \(verdictCapacity)") }
    verdicts = verdictCapacity > 0 ? VerdictCache(capacity: verdictCapacity) : nil
  }

  static func generationSettings(_ p: RewardParameters) throws -> Generation? {
    let attributeCount = try p.int("num_questions", default: 5)
    let cacheSize = try p.int("question_cache_size", default: 4096)
    let maxTokens = try p.int("generation_max_tokens", default: 1024)
    guard (1...12).contains(attributeCount) else { throw p.bad("num_questions", "must be 1...12, got \(attributeCount)") }
    guard cacheSize > 0 else { throw p.bad("question_cache_size", "must be > 0, got \(cacheSize)") }
    guard maxTokens > 0 else { throw p.bad("generation_max_tokens", "must be > 0, got \(maxTokens)") }
    guard try p.bool("generate_questions", default: false) else { return nil }
    return Generation(attributeCount: attributeCount, maxTokens: maxTokens, cache: QuestionCache(capacity: cacheSize))
  }

  public func score(_ batch: [RewardSample]) async throws -> [Double?] {
    let questionSets = await questionSets(for: batch)
    // Every (sample, question) request, run with at most `maxConcurrency` in flight.
    let jobs: [(sample: Int, question: JudgeQuestion)] = questionSets.enumerated().flatMap { index, questions in
      questions.map { (index, $0) }
    }
    let descriptions = batch.map {
      String(AnswerParsing.answer(in: $0.completion).prefix(RewardLimits.judgeDescriptionCharacters))
    }
    let scores = await Self.boundedMap(jobs.indices.map { $0 }, limit: maxConcurrency) { job in
      await self.ask(jobs[job].question, description: descriptions[jobs[job].sample])
    }
    var answers = [[(JudgeQuestion, Double?)]](repeating: [], count: batch.count)
    for (job, score) in zip(jobs, scores) { answers[job.sample].append((job.question, score)) }
    return answers.map { list in list.isEmpty ? nil : Self.combine(list) }
  }

  /// DLC-Bench mixing; nil when any question could not be asked.
  static func combine(_ answers: [(JudgeQuestion, Double?)]) -> Double? {
    var total = 0.0
    var recognitionFailed = false
    for (question, score) in answers {
      guard let score else { return nil }
      total += score
      if question.kind == .recognition, score <= 0 { recognitionFailed = true }
    }
    var mean = total / Double(answers.count)
    if recognitionFailed { mean = min(mean, 0) }
    return (max(-1, min(1, mean)) + 1) / 2
  }

  /// The chosen option's score; nil (counted in `failures`) when the judge is down, its reply is
  /// malformed (no message text) or names no option: a reply that cannot be read is a failure, not
  /// a verdict.
  func ask(_ question: JudgeQuestion, description: String) async -> Double? {
    let prompt = question.prompt(description: description)
    if let cached = verdicts?.value(prompt) { return cached }
    let verdict = await askJudge(question, prompt: prompt)
    if let verdict { verdicts?.store(prompt, verdict) }
    return verdict
  }

  private func askJudge(_ question: JudgeQuestion, prompt: String) async -> Double? {
    let body = JSONValue.object([
      "model": .string(model), "temperature": .int(0), "max_tokens": .int(16),
      "messages": .array([.object(["role": .string("user"), "content": .string(prompt)])]),
    ])
    guard let text = await chat(body) else {
      failures.increment()
      return nil
    }
    guard let index = ChoiceParsing.choiceIndex(in: text, choices: question.optionTexts),
      index < question.optionScores.count
    else {
      failures.increment()
      Self.report(name, "judge reply names no option: \(text.prefix(200))")
      return nil
    }
    return question.optionScores[index]
  }

  /// The reply's message text; nil when the judge failed after the bounded retries or its reply has
  /// no `choices[0].message.content` string (the failure is printed once per distinct message).
  func chat(_ body: JSONValue) async -> String? {
    let headers = apiKey.map { ["Authorization": "Bearer \($0)"] } ?? [:]
    let reply: JSONValue
    do {
      reply = try await JSONPost.send(
        url: endpoint, body: body, headers: headers, timeout: timeout, retries: retries, backoff: backoff, reward: name)
    } catch RewardError.external(_, let message) {
      Self.report(name, message)
      return nil
    } catch {
      Self.report(name, String(describing: error))
      return nil
    }
    guard let text = reply["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue else {
      Self.report(name, "malformed judge reply (no choices[0].message.content): \(reply.jsonString.prefix(200))")
      return nil
    }
    return text
  }

  static func report(_ reward: String, _ message: String) {
    ErrorReporter.shared.report(reward: reward, message: message)
  }
}

/// A bounded map from judge prompt to verdict; the oldest entry goes first when full. Hits and
/// misses are counted (the cycle trainer logs them).
public final class VerdictCache: @unchecked Sendable {
  private let lock = NSLock()
  let capacity: Int
  private var stored: [String: Double] = [:]
  private var order: [String] = []
  private var head = 0
  public private(set) var hits = 0
  public private(set) var misses = 0

  init(capacity: Int) { self.capacity = max(1, capacity) }

  func value(_ key: String) -> Double? {
    lock.withLock {
      if let value = stored[key] {
        hits += 1
        return value
      }
      misses += 1
      return nil
    }
  }

  func store(_ key: String, _ value: Double) {
    lock.withLock {
      guard stored[key] == nil else { return }
      if stored.count >= capacity, head < order.count {
        stored[order[head]] = nil
        head += 1
        if head > capacity { order.removeFirst(head); head = 0 }
      }
      stored[key] = value
      order.append(key)
    }
  }

  /// Hits and misses so far, read together.
  public var counts: (hits: Int, misses: Int) { lock.withLock { (hits, misses) } }
}
