import Common
import Datasets
import Foundation
import Generation
import Prompting
import Rewards
import Testing
@testable import Serving

/// `vlmrl serve`'s server over HTTP on the loopback, with the tiny random fixture model: the reply
/// schema, parity with the rollout engine called directly, sampling parameters, streaming, errors.
@Suite(.serialized) struct ServerTests {
  @Test func healthAndModels() async throws {
    let harness = try await Harness.shared.value
    let health = try await harness.send("GET", "/health")
    #expect(health.status == 200 && health.json?["status"]?.stringValue == "ok")
    let models = try await harness.send("GET", "/v1/models")
    #expect(models.status == 200)
    #expect(models.json?["object"]?.stringValue == "list")
    #expect(models.json?["data"]?.arrayValue?.map { $0["id"]?.stringValue } == [Harness.name])
    #expect(try await harness.send("GET", "/v1/models/\(Harness.name)").status == 200)
    #expect(try await harness.send("GET", "/v1/models/other").status == 404)
  }

  /// An image (as a data URL) and text through the server give what the prompt layer and the engine
  /// give for the same example directly: the same prompt tokens and the same greedy completion.
  @Test func greedyImageChatEqualsTheEngine() async throws {
    let harness = try await Harness.shared.value
    let question = "What is in the picture?"
    let reply = try await harness.chat(Harness.body(.array([Harness.imagePart(try Harness.dataURL()), Harness.textPart(question)])))
    #expect(reply.status == 200, "\(reply.text)")
    #expect(reply.contentType.hasPrefix("application/json"))
    let json = try #require(reply.json)

    let example = Example(source: RecordLocation(file: "direct", index: 0), kind: .sftConversation,
                          prompt: [.image(.file(Harness.image)), .text(question)], rewardFields: [:],
                          images: [ImageInfo(source: .file(Harness.image))])
    let prepared = try harness.builder.prepare(example)
    let direct = try RolloutEngine(model: harness.model).rollouts([prepared], builder: harness.builder, samples: 1,
                                                                  settings: .greedy(maxNewTokens: 8), seeds: [0]).records[0]
    #expect(prepared.imageTokenCount > 0)
    #expect(json.content() == direct.text)
    #expect(json["object"]?.stringValue == "chat.completion")
    #expect(json["model"]?.stringValue == Harness.name)
    #expect(json["id"]?.stringValue?.hasPrefix("chatcmpl-") == true)
    #expect(json["created"]?.intValue != nil)
    let choice = try #require(json["choices"]?.arrayValue?.first)
    #expect(choice["index"]?.intValue == 0)
    #expect(choice["message"]?["role"]?.stringValue == "assistant")
    #expect(choice["finish_reason"]?.stringValue == (direct.truncated ? "length" : "stop"))
    #expect(json["usage"]?["prompt_tokens"]?.intValue == prepared.ids.count)
    #expect(json["usage"]?["completion_tokens"]?.intValue == direct.tokens.count)
    #expect(json["usage"]?["total_tokens"]?.intValue == prepared.ids.count + direct.tokens.count)

    // The same image as a file path and as a file URL: the same reply text.
    for url in [Harness.image.path, "file://" + Harness.image.path] {
      let again = try await harness.chat(Harness.body(.array([Harness.imagePart(url), Harness.textPart(question)])))
      #expect(again.status == 200 && again.json?.content() == direct.text, "\(again.text)")
    }
  }

  /// Requests answered together: one engine call per group of equal sampling settings and lengths,
  /// each request's reply the one it gets alone (greedy, and sampled with its own seed), and a bad
  /// request in the batch fails alone.
  @Test func batchedRequestsEqualTheirSingleReplies() async throws {
    let harness = try await Harness.shared.value
    func request(_ text: String, _ extra: [String: JSONValue] = [:]) throws -> ChatRequest {
      try ChatRequest(json: Harness.body(.array([Harness.textPart(text)]), extra))
    }
    let requests = [
      try request("Describe a red square."), try request("Where is the circle?"),
      try request("Count the shapes.", ["temperature": .double(1), "seed": .int(7)]),
      try request("Name a color.", ["temperature": .double(1), "seed": .int(9)]),
      try request("And this one?", ["model": .string("someone-else")]),
      try request("A longer answer, please.", ["max_tokens": .int(12)]),
    ]
    let before = harness.service.engineCalls
    let batched = harness.service.complete(requests)
    // Groups: greedy with 8 tokens (2), sampled (2), greedy with 12 tokens (1); the unknown model fails alone.
    #expect(harness.service.engineCalls - before == 3)
    for (index, request) in requests.enumerated() {
      let alone: Result<ChatCompletion, ServingError> = Result { () throws(ServingError) in try harness.service.complete(request) }
      switch (batched[index], alone) {
      case (.success(let a), .success(let b)):
        #expect(a.choices.map(\.text) == b.choices.map(\.text) && a.promptTokens == b.promptTokens, "request \(index)")
      case (.failure(let a), .failure(let b)):
        #expect(index == 4 && "\(a)" == "\(b)")
      default:
        Issue.record("request \(index): batched \(batched[index]) vs alone \(alone)")
      }
    }
  }

  @Test func greedyIsDeterministicAndSystemTurnsCount() async throws {
    let harness = try await Harness.shared.value
    let body = Harness.body(.string("Say something."))
    let first = try await harness.chat(body)
    let second = try await harness.chat(body)
    #expect(first.status == 200 && second.status == 200)
    #expect(first.json?.content() != nil && first.json?.content() == second.json?.content())
    // A system turn and an earlier exchange lengthen the prompt.
    let turns: JSONValue = .array([
      .object(["role": .string("system"), "content": .string("You answer briefly.")]),
      .object(["role": .string("user"), "content": .string("Hello.")]),
      .object(["role": .string("assistant"), "content": .string("Hi.")]),
      .object(["role": .string("user"), "content": .string("Say something.")]),
    ])
    let long = try await harness.chat(.object(["messages": turns, "temperature": .int(0), "max_tokens": .int(4)]))
    #expect(long.status == 200, "\(long.text)")
    let short = try #require(first.json?["usage"]?["prompt_tokens"]?.intValue)
    #expect(try #require(long.json?["usage"]?["prompt_tokens"]?.intValue) > short)
  }

  @Test func choicesSeedsAndLength() async throws {
    let harness = try await Harness.shared.value
    let sampled = Harness.body(.string("Tell a story."), ["n": .int(3), "temperature": .double(1.0), "seed": .int(7)])
    let first = try #require(try await harness.chat(sampled).json)
    let choices = try #require(first["choices"]?.arrayValue)
    #expect(choices.count == 3)
    #expect(choices.map { $0["index"]?.intValue } == [0, 1, 2])
    // Seeded sampling repeats; usage adds up the three completions.
    let second = try #require(try await harness.chat(sampled).json)
    #expect((0..<3).map { first.content($0) } == (0..<3).map { second.content($0) })
    let tokens = first["usage"]?["completion_tokens"]?.intValue ?? 0
    #expect(tokens >= 3 && tokens <= 24)

    // A random model rarely emits a stop token within 4 tokens; if it does, this fails loudly.
    let short = try #require(try await harness.chat(Harness.body(.string("Count to ten."), ["max_tokens": .int(4)])).json)
    #expect(short["choices"]?.arrayValue?.first?["finish_reason"]?.stringValue == "length")
    #expect(short["usage"]?["completion_tokens"]?.intValue == 4)
    // max_completion_tokens is the same limit under its newer name.
    let newer = try #require(try await harness.chat(Harness.body(.string("Count to ten."), ["max_tokens": .null,
                                                                                           "max_completion_tokens": .int(4)])).json)
    #expect(newer.content() == short.content())
  }

  @Test func stopStringsCutTheText() async throws {
    let harness = try await Harness.shared.value
    let full = try #require(try await harness.chat(Harness.body(.string("Go on."), ["max_tokens": .int(12)])).json?.content())
    let characters = Array(full)
    try #require(characters.count >= 4, "the greedy text '\(full)' is too short to cut")
    let stop = String(characters[2..<4])
    let cut = try #require(try await harness.chat(Harness.body(.string("Go on."), ["max_tokens": .int(12), "stop": .string(stop)])).json)
    let expected = String(full[..<full.range(of: stop)!.lowerBound])
    #expect(cut.content() == expected)
    #expect(cut["choices"]?.arrayValue?.first?["finish_reason"]?.stringValue == "stop")
  }

  /// The streamed chunks join into the non-streamed greedy text and end with [DONE].
  @Test func streamingMatchesTheWholeReply() async throws {
    let harness = try await Harness.shared.value
    let plain = try #require(try await harness.chat(Harness.body(.string("Describe a cat."), ["max_tokens": .int(24)])).json)
    let reply = try await harness.chat(Harness.body(.string("Describe a cat."), [
      "max_tokens": .int(24), "stream": .bool(true), "stream_options": .object(["include_usage": .bool(true)]),
    ]))
    #expect(reply.status == 200)
    #expect(reply.contentType.hasPrefix("text/event-stream"))
    let events = reply.text.components(separatedBy: "\n\n").filter { !$0.isEmpty }
    #expect(events.allSatisfy { $0.hasPrefix("data: ") })
    #expect(events.last == "data: [DONE]")
    let chunks = try events.dropLast().map { try JSONValue.parse(String($0.dropFirst(6))) }
    #expect(chunks.allSatisfy { $0["object"]?.stringValue == "chat.completion.chunk" })
    let deltas = chunks.compactMap { $0["choices"]?.arrayValue?.first?["delta"] }
    #expect(deltas.first?["role"]?.stringValue == "assistant")
    #expect(deltas.compactMap { $0["content"]?.stringValue }.joined() == plain.content())
    let finishes = chunks.compactMap { $0["choices"]?.arrayValue?.first?["finish_reason"]?.stringValue }
    #expect(finishes == [plain["choices"]?.arrayValue?.first?["finish_reason"]?.stringValue])
    #expect(chunks.last?["usage"] == plain["usage"])
  }

  @Test(arguments: [
    ("{\"messages\": [", "invalid_json", nil),
    ("[1, 2]", nil, nil),
    ("{\"model\": \"tiny-qwen\"}", nil, "messages"),
    ("{\"messages\": [{\"role\": \"robot\", \"content\": \"hi\"}]}", nil, "messages[0].role"),
    ("{\"messages\": [{\"role\": \"tool\", \"content\": \"hi\", \"tool_call_id\": \"1\"}]}", nil, "messages[0].tool_call_id"),
    ("{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {\"url\": \"https://example.com/a.png\"}}]}]}",
     "invalid_image_url", "messages[0].content[0].image_url.url"),
    ("{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {\"url\": \"data:image/png;base64,AAAA\"}}]}]}",
     "invalid_image", "messages"),
    ("{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"input_audio\"}]}]}", nil, "messages[0].content[0].type"),
    ("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"logprobs\": true}", "unsupported_parameter", "logprobs"),
    ("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": []}", "unsupported_parameter", "tools"),
    ("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"temperature\": 3}", nil, "temperature"),
    ("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"n\": 0}", nil, "n"),
    ("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 5000}", "context_length_exceeded", "max_tokens"),
  ] as [(String, String?, String?)])
  func badRequestsGet400(body: String, code: String?, param: String?) async throws {
    let harness = try await Harness.shared.value
    let reply = try await harness.send(body: body)
    #expect(reply.status == 400, "\(reply.text)")
    let error = try #require(reply.json?["error"])
    #expect(error["message"]?.stringValue?.isEmpty == false)
    #expect(error["type"]?.stringValue == "invalid_request_error")
    #expect(error.objectValue.map { Set($0.keys) } == ["message", "type", "param", "code"])
    if let code { #expect(error["code"]?.stringValue == code) }
    if let param { #expect(error["param"]?.stringValue == param, "\(reply.text)") }
  }

  @Test func otherErrors() async throws {
    let harness = try await Harness.shared.value
    // Harmless fields are read and ignored; neutral values of unsupported ones are accepted.
    let ignored = try await harness.chat(Harness.body(.string("hi"), ["user": .string("u1"), "logprobs": .bool(false),
                                                                       "max_tokens": .int(1)]))
    #expect(ignored.status == 200, "\(ignored.text)")
    let wrongModel = try await harness.chat(Harness.body(.string("hi"), ["model": .string("gpt-4o")]))
    #expect(wrongModel.status == 404 && wrongModel.json?["error"]?["code"]?.stringValue == "model_not_found")
    #expect(try await harness.send("GET", "/v1/nothing").status == 404)
    #expect(try await harness.send("GET", "/v1/chat/completions").status == 405)
    let tooLong = try await harness.chat(Harness.body(.string(String(repeating: "word ", count: 5000))))
    #expect(tooLong.status == 400 && tooLong.json?["error"]?["code"]?.stringValue == "context_length_exceeded", "\(tooLong.text.prefix(300))")
    let big = try await harness.send(body: Harness.body(.string(String(repeating: "x", count: 5000))).jsonString, to: harness.smallServer)
    #expect(big.status == 413 && big.json?["error"]?["code"]?.stringValue == "request_too_large")
    // The server still answers after all of that.
    #expect(try await harness.send("GET", "/health").status == 200)
  }

  /// While a long generation runs, the event loop still answers health checks, and a second chat
  /// request beyond `maxConcurrency` (1 on the small server) gets 429 instead of waiting.
  @Test func busyServerAnswersHealthAndRefusesBeyondItsBound() async throws {
    let harness = try await Harness.shared.value
    let server = harness.smallServer
    let long = Task { try await harness.send(body: Harness.body(.string("hi"), ["max_tokens": .int(2000)]).jsonString, to: server) }
    let deadline = Date().addingTimeInterval(120)
    while server.admittedRequests == 0 && Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
    try #require(server.admittedRequests == 1, "the long request was never admitted, or finished before it was seen")
    let health = try await harness.send("GET", "/health", to: server)
    let refused = try await harness.send(body: Harness.body(.string("hi"), ["max_tokens": .int(1)]).jsonString, to: server)
    let stillRunning = server.admittedRequests == 1
    let first = try await long.value
    #expect(stillRunning, "the long generation ended before the checks: they proved nothing")
    #expect(health.status == 200)
    #expect(refused.status == 429 && refused.json?["error"]?["type"]?.stringValue == "server_busy", "\(refused.text)")
    #expect(first.status == 200 && first.json?["usage"]?["completion_tokens"]?.intValue ?? 0 > 1)
    #expect(server.admittedRequests == 0)
  }

  /// The project's own judge client against the server: every question is one chat request answered
  /// with 200. The random model's reply may name no option; the judge then counts a failure and the
  /// sample has no value (never a crash, never a made-up verdict).
  @Test func llmJudgeRewardTalksToTheServer() async throws {
    let harness = try await Harness.shared.value
    let judge = try RewardRegistry.make("llm_judge", parameters: [
      "url": .string(harness.baseURL + "/v1"), "model": .string(Harness.name), "retries": .int(0), "timeout": .int(120),
    ])
    let questions: JSONValue = .array([
      .object(["question": .string("Is there a cat?"), "type": .string("recognition"),
               "choices": .array([.array([.string("yes"), .int(1)]), .array([.string("no"), .int(-1)])])]),
      .object(["question": .string("Is it black?"), "type": .string("positive"),
               "choices": .array([.array([.string("yes"), .int(1)]), .array([.string("no"), .int(-1)])])]),
    ])
    let before = harness.server.statusCounts
    let values = try await judge.score([RewardSample(completion: "A black cat.", fields: ["judge_questions": questions])])
    let after = harness.server.statusCounts
    #expect(after[200, default: 0] - before[200, default: 0] == 2)
    #expect(after.values.reduce(0, +) - before.values.reduce(0, +) == 2)
    let failures = try #require(judge as? LLMJudgeReward).failures.value
    #expect(values.count == 1)
    #expect((values[0] == nil) == (failures > 0))
    if let value = values[0] { #expect(value >= 0 && value <= 1) }
  }
}
