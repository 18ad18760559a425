import Common
import Foundation
import Testing
@testable import Rewards

/// `llm_judge` with `generate_questions`, and `caption`'s `judge_fallback`, against a real loopback
/// server; the reply parser and the question cache on their own.
@Suite(.serialized) struct JudgeGenerationTests {
  static let catQuestions = """
    {"questions": [
      {"question": "What is the object?", "type": "recognition", "choices": [["a cat", 1], ["a dog", -1]]},
      {"question": "What colour is the cat?", "type": "positive", "choices": [["black", 1], ["white", -1], ["not mentioned", 0]]},
      {"question": "Does it wear a collar?", "type": "negative", "choices": [["not mentioned", 1], ["a collar", -1]]}
    ]}
    """
  /// Python-literal style inside a code fence after prose: the parser must still read it.
  static let dogQuestions = """
    Here are the questions:
    ```json
    [{'question': 'Which animal is it?', 'type': 'recognition', 'options': [['a dog', 1], ['a cat', -1]],},]
    ```
    """

  static func prompt(of body: String) -> String {
    (try? JSONValue.parse(body))?["messages"]?.arrayValue?.first?["content"]?.stringValue ?? ""
  }

  static func isGeneration(_ body: String) -> Bool { prompt(of: body).contains("Reference description:") }

  /// Generation replies by caption; scoring replies by question: recognition of the cat right (A),
  /// colour "not mentioned" (C), no collar (A), the dog named wrongly (B), the record's own question A.
  static let judge: TestHTTPServer.Responder = { body, _ in
    let prompt = Self.prompt(of: body)
    if isGeneration(body) {
      return .init(body: ExternalTests.chatReply(prompt.contains("brown dog") ? dogQuestions : catQuestions))
    }
    if prompt.contains("What colour") { return .init(body: ExternalTests.chatReply("C")) }
    if prompt.contains("Which animal") { return .init(body: ExternalTests.chatReply("Answer: B")) }
    return .init(body: ExternalTests.chatReply("A"))
  }

  static let ownQuestion: JSONValue = .array([
    .object(["question": .string("Is it furry?"), "choices": .array([.array([.string("yes"), .int(1)]), .array([.string("no"), .int(-1)])])]),
  ])

  @Test func generatesOncePerDistinctCaptionThenScores() async throws {
    let server = try await TestHTTPServer(Self.judge)
    defer { Task { await server.shutdown() } }
    let judge = try #require(try RewardRegistry.make("llm_judge", parameters: [
      "url": .string(server.baseURL + "/v1"), "model": .string("judge-7b"), "generate_questions": .bool(true),
      "num_questions": .int(4), "generation_max_tokens": .int(512),
    ]) as? LLMJudgeReward)
    let cat: [String: JSONValue] = ["captions": .array([.string("a black cat")])]
    let batch = [
      RewardSample(completion: "<answer>A cat.</answer>", fields: cat),
      RewardSample(completion: "A black cat.", fields: cat),
      RewardSample(completion: "A cat.", fields: ["caption": .string("a brown dog")]),
      RewardSample(completion: "A furry thing.", fields: ["caption": .string("unique caption"), "judge_questions": Self.ownQuestion]),
      RewardSample(completion: "No reference at all."),
    ]
    // Cat: (1 + 0 + 1) / 3 -> (2/3 + 1) / 2 = 5/6. Dog: recognition -1 -> 0. Own question: 1 -> 1.
    let values = try await judge.score(batch)
    #expect(values.count == 5)
    #expect(near(values[0], 5.0 / 6.0, tolerance: 1e-12) && near(values[1], 5.0 / 6.0, tolerance: 1e-12))
    #expect(values[2] == 0 && values[3] == 1 && values[4] == nil)
    let generations = server.requests.filter { Self.isGeneration($0.body) }
    #expect(generations.count == 2)
    // 2 generations, 3 questions for each cat sample, 1 for the dog, 1 for the record's own question.
    let expectedRequests = 10
    #expect(server.requests.count == expectedRequests)
    let catRequest = try JSONValue.parse(try #require(generations.first { Self.prompt(of: $0.body).contains("a black cat") }?.body))
    #expect(catRequest["temperature"] == .int(0))
    #expect(catRequest["max_tokens"] == .int(512))
    #expect(catRequest["model"] == .string("judge-7b"))
    let catPrompt = Self.prompt(of: try #require(generations.first?.body))
    #expect(catPrompt.contains("Up to 4 questions") && catPrompt.contains("Reply with JSON only"))
    #expect(!generations.contains { Self.prompt(of: $0.body).contains("unique caption") })
    // A second batch with a cached caption asks only the scoring questions.
    let again = try await judge.score([batch[1]])
    #expect(near(again[0], 5.0 / 6.0, tolerance: 1e-12))
    #expect(server.requests.filter { Self.isGeneration($0.body) }.count == 2)
    #expect(judge.generationFailures.value == 0 && judge.failures.value == 0)
  }

  @Test func withoutTheOptionNothingIsGenerated() async throws {
    let server = try await TestHTTPServer(Self.judge)
    defer { Task { await server.shutdown() } }
    let value = try await score(
      "llm_judge", "a cat", fields: ["captions": .array([.string("a black cat")])],
      parameters: ["url": .string(server.baseURL)])
    #expect(value == nil)
    #expect(server.requests.isEmpty)
  }

  @Test func invalidRepliesAreRetriedThenNilAndCounted() async throws {
    // Request 1: prose, request 2: valid questions, then scoring.
    let flaky = try await TestHTTPServer { body, number in
      if number == 1 { return .init(body: ExternalTests.chatReply("Sure! Here are some questions: 1. What is it?")) }
      return Self.judge(body, number)
    }
    defer { Task { await flaky.shutdown() } }
    let params: [String: JSONValue] = [
      "url": .string(flaky.baseURL), "generate_questions": .bool(true), "retries": .int(1), "backoff": .double(0.01),
    ]
    let fields: [String: JSONValue] = ["captions": .array([.string("a black cat")])]
    #expect(near(try await score("llm_judge", "a cat", fields: fields, parameters: params), 5.0 / 6.0, tolerance: 1e-12))
    let retry = try JSONValue.parse(flaky.requests[1].body)
    #expect(retry["temperature"] == .double(0.7))

    let broken = try await TestHTTPServer { _, _ in .init(body: ExternalTests.chatReply("{\"questions\": [")) }
    defer { Task { await broken.shutdown() } }
    let judge = try #require(try RewardRegistry.make("llm_judge", parameters: [
      "url": .string(broken.baseURL), "generate_questions": .bool(true), "retries": .int(2),
    ]) as? LLMJudgeReward)
    let sample = RewardSample(completion: "a cat", fields: fields)
    #expect(try await judge.score([sample, sample]) == [nil, nil])
    #expect(broken.requests.count == 3)  // one generation, retried twice; no scoring requests
    #expect(judge.generationFailures.value == 1)
    // Failures are not cached: the next batch asks again.
    _ = try await judge.score([sample])
    #expect(broken.requests.count == 6 && judge.generationFailures.value == 2)
  }

  @Test func judgeDownDuringGenerationGivesNil() async throws {
    let down = try await TestHTTPServer { _, _ in .init(status: 503, body: "busy") }
    defer { Task { await down.shutdown() } }
    let judge = try #require(try RewardRegistry.make("llm_judge", parameters: [
      "url": .string(down.baseURL), "generate_questions": .bool(true), "retries": .int(1), "backoff": .double(0.01),
    ]) as? LLMJudgeReward)
    let values = try await judge.score([RewardSample(completion: "x", fields: ["caption": .string("a cat")])])
    #expect(values == [nil])
    // Transport retries only (a judge that is down is not asked for new questions again).
    #expect(down.requests.count == 2 && judge.generationFailures.value == 1)
  }

  @Test func parserReadsStrictAndLooseReplies() throws {
    let strict = try #require(QuestionGeneration.parse(Self.catQuestions))
    #expect(strict.map(\.kind) == [.recognition, .positive, .negative])
    #expect(strict[1].optionTexts == ["black", "white", "not mentioned"] && strict[1].optionScores == [1, -1, 0])
    let loose = try #require(QuestionGeneration.parse(Self.dogQuestions))
    #expect(loose.count == 1 && loose[0].question == "Which animal is it?" && loose[0].optionScores == [1, -1])
    let objects = try #require(QuestionGeneration.parse(#"""
      {"questions": [{"question": "q", "type": "positive", "choices": [{"text": "a", "score": 1}, {"text": "b", "score": 0}]}]}
      """#))
    #expect(objects[0].optionTexts == ["a", "b"])
    // Malformed questions are dropped: one option, a score of 2, no question text.
    let mixed = try #require(QuestionGeneration.parse(#"""
      [{"question": "one option", "choices": [["a", 1]]},
       {"question": "bad score", "choices": [["a", 2], ["b", -1]]},
       {"choices": [["a", 1], ["b", -1]]},
       {"question": "kept", "choices": [["a", 1], ["b", -1]]}]
      """#))
    #expect(mixed.map(\.question) == ["kept"])
    for reply in ["", "no JSON here", "{\"questions\": []}", "{\"questions\": [", "[{\"question\": \"q\", \"choices\": [[\"a\", 5], [\"b\", 1]]}]"] {
      #expect(QuestionGeneration.parse(reply) == nil, "\(reply)")
    }
    let many = "[" + Array(repeating: #"{"question": "q", "choices": [["a", 1], ["b", 0]]}"#, count: 40).joined(separator: ",") + "]"
    #expect(QuestionGeneration.parse(many)?.count == QuestionGeneration.maxQuestions)
  }

  final class CallCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var calls: [String] = []
    func record(_ key: String) { lock.withLock { calls.append(key) } }
    var all: [String] { lock.withLock { calls } }
  }

  @Test func cacheJoinsConcurrentRequestsAndStaysBounded() async throws {
    let cache = QuestionCache(capacity: 2)
    let counter = CallCounter()
    let question = try #require(JudgeQuestion(json: .object([
      "question": .string("q"), "choices": .array([.array([.string("a"), .int(1)]), .array([.string("b"), .int(-1)])]),
    ])))
    let generate: @Sendable (String) async -> [JudgeQuestion]? = { key in
      counter.record(key)
      try? await Task.sleep(nanoseconds: 100_000_000)
      return [question]
    }
    // Eight concurrent asks for the same caption: one generation.
    let results = await withTaskGroup(of: [JudgeQuestion]?.self) { group in
      for _ in 0..<8 { group.addTask { await cache.questions(for: "a") { await generate("a") } } }
      return await group.reduce(into: []) { $0.append($1) }
    }
    #expect(results.count == 8 && results.allSatisfy { $0 == [question] })
    #expect(counter.all == ["a"])
    // Capacity 2: adding "b" and "c" drops the oldest ("a"), which is then generated again.
    _ = await cache.questions(for: "b") { await generate("b") }
    _ = await cache.questions(for: "c") { await generate("c") }
    #expect(await cache.count == 2)
    _ = await cache.questions(for: "c") { await generate("c") }
    _ = await cache.questions(for: "a") { await generate("a") }
    #expect(counter.all == ["a", "b", "c", "a"])
    // A failed generation is not kept.
    let failed = await cache.questions(for: "d") { nil }
    #expect(failed == nil)
    _ = await cache.questions(for: "d") { await generate("d") }
    #expect(counter.all.last == "d")
  }

  @Test func captionJudgeFallback() async throws {
    let down = try await TestHTTPServer { _, _ in .init(status: 503, body: "busy") }
    defer { Task { await down.shutdown() } }
    let base: [String: JSONValue] = ["url": .string(down.baseURL), "retries": .int(0), "wordnet": .bool(false)]
    let fields: [String: JSONValue] = ["judge_questions": ExternalTests.questions, "captions": .array([.string("a black cat")])]
    // Default: no judge score, no caption score.
    #expect(try await score("caption", "a black cat", fields: fields, parameters: base) == nil)
    var fallback = base
    fallback["judge_fallback"] = .string("meteor")
    let caption = try #require(try RewardRegistry.make("caption", parameters: fallback) as? CaptionReward)
    // METEOR alone of three identical tokens: Fmean 1, penalty 0.5 * (1/3)^3.
    let values = try await caption.score([
      RewardSample(completion: "a black cat", fields: fields),
      RewardSample(completion: "a black cat", fields: ["captions": .array([.string("a black cat")])]),
      RewardSample(completion: "a black cat"),
    ])
    #expect(near(values[0], 1 - 0.5 / 27, tolerance: 1e-12) && near(values[1], 1 - 0.5 / 27, tolerance: 1e-12))
    #expect(values[2] == nil)  // no reference: nothing to fall back on
    #expect(caption.fallbacks.value == 2 && caption.judge.failures.value == 3)
    var wrong = base
    wrong["judge_fallback"] = .string("bleu")
    #expect(throws: RewardError.self) { _ = try RewardRegistry.make("caption", parameters: wrong) }
  }
}
