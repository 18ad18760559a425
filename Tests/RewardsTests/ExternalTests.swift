import Common
import Foundation
import Testing
@testable import Rewards

/// Judge and `http` rewards against a real loopback server; `command` against /bin/sh scripts.
@Suite(.serialized) struct ExternalTests {
  static func chatReply(_ content: String) -> String {
    JSONValue.object(["choices": .array([.object(["message": .object(["role": .string("assistant"), "content": .string(content)])])])]).jsonString
  }

  static let questions: JSONValue = .array([
    .object(["question": .string("What is the object?"), "type": .string("recognition"),
             "choices": .array([.array([.string("a cat"), .int(1)]), .array([.string("a dog"), .int(-1)])])]),
    .object(["question": .string("What color is the cat?"), "type": .string("positive"),
             "choices": .array([.array([.string("black"), .int(1)]), .array([.string("white"), .int(-1)]),
                                .array([.string("not mentioned"), .int(0)])])]),
    .object(["question": .string("Does it mention a hat?"), "type": .string("negative"),
             "choices": .array([.array([.string("yes, a hat"), .int(-1)]), .array([.string("no hat"), .int(1)])])]),
  ])

  /// A judge that reads the question from the prompt; `wrongObject` answers the recognition question wrongly.
  static func judge(wrongObject: Bool) -> TestHTTPServer.Responder {
    { body, _ in
      let prompt = (try? JSONValue.parse(body))?["messages"]?.arrayValue?.first?["content"]?.stringValue ?? ""
      if prompt.contains("What is the object?") { return .init(body: Self.chatReply(wrongObject ? "B" : "A")) }
      if prompt.contains("What color") { return .init(body: Self.chatReply("Answer: C")) }
      return .init(body: Self.chatReply("The answer is (B)."))
    }
  }

  @Test func judgeScoresDLCBenchQuestions() async throws {
    let server = try await TestHTTPServer(Self.judge(wrongObject: false))
    defer { Task { await server.shutdown() } }
    let params: [String: JSONValue] = [
      "url": .string(server.baseURL + "/v1"), "model": .string("judge-7b"), "api_key": .string("k123"),
      "max_concurrency": .int(2),
    ]
    let fields: [String: JSONValue] = ["judge_questions": Self.questions]
    // Recognition 1, colour "not mentioned" 0, no hat 1: mean 2/3 -> (2/3 + 1) / 2 = 5/6.
    let value = try await score("llm_judge", "<answer>A black cat.</answer>", fields: fields, parameters: params)
    #expect(near(value, 5.0 / 6.0, tolerance: 1e-12))
    let requests = server.requests
    #expect(requests.count == 3)
    #expect(requests.allSatisfy { $0.path == "/v1/chat/completions" && $0.authorization == "Bearer k123" })
    let first = try JSONValue.parse(try #require(requests.first?.body))
    #expect(first["model"] == .string("judge-7b"))
    let prompt = try #require(first["messages"]?.arrayValue?.first?["content"]?.stringValue)
    #expect(prompt.contains("A black cat.") && prompt.contains("A. "))
    // No questions: not applicable.
    #expect(try await score("llm_judge", "a cat", parameters: params) == nil)
  }

  @Test func recognitionFailureClampsAndCaptionMixes() async throws {
    let server = try await TestHTTPServer(Self.judge(wrongObject: true))
    defer { Task { await server.shutdown() } }
    let params: [String: JSONValue] = ["url": .string(server.baseURL + "/v1")]
    let fields: [String: JSONValue] = ["judge_questions": Self.questions, "captions": .array([.string("a black cat")])]
    // (-1 + 0 + 1) / 3 = 0 -> clamp keeps 0 -> 0.5.
    #expect(try await score("llm_judge", "a black cat", fields: fields, parameters: params) == 0.5)
    var captionParams = params
    captionParams["wordnet"] = .bool(false)
    // caption = 0.25 * METEOR(identical text) + 0.75 * 0.5; METEOR of 3 identical tokens:
    // Fmean 1, penalty 0.5 * (1/3)^3.
    let meteor = 1 - 0.5 / 27
    let caption = try await score("caption", "a black cat", fields: fields, parameters: captionParams)
    #expect(near(caption, 0.25 * meteor + 0.75 * 0.5, tolerance: 1e-12))
  }

  @Test func judgeRetriesServerErrorsThenSucceeds() async throws {
    let server = try await TestHTTPServer { _, number in
      number <= 2 ? .init(status: 500, body: "{}") : .init(body: Self.chatReply("A"))
    }
    defer { Task { await server.shutdown() } }
    let question: JSONValue = .array([.object(["question": .string("q"), "choices": .array([.array([.string("x"), .int(1)]), .array([.string("y"), .int(-1)])])])])
    let params: [String: JSONValue] = ["url": .string(server.baseURL), "retries": .int(2), "backoff": .double(0.01)]
    #expect(try await score("llm_judge", "x", fields: ["judge_questions": question], parameters: params) == 1)
    #expect(server.requests.count == 3)
  }

  @Test func judgeDownOrSlowGivesNilAndIsCounted() async throws {
    let down = try await TestHTTPServer { _, _ in .init(status: 503, body: "busy") }
    let slow = try await TestHTTPServer { _, _ in .init(body: Self.chatReply("A"), delay: Double(hangSeconds)) }
    defer { Task { await down.shutdown(); await slow.shutdown() } }
    let question: JSONValue = .array([.object(["question": .string("q"), "choices": .array([.array([.string("x"), .int(1)])])])])
    let sample = RewardSample(completion: "x", fields: ["judge_questions": question])
    let judge = try #require(try RewardRegistry.make("llm_judge", parameters: [
      "url": .string(down.baseURL), "retries": .int(1), "backoff": .double(0.01)]) as? LLMJudgeReward)
    let runner = RewardRunner(functions: [judge], weights: nil)
    let scores = await runner.score([sample, sample])
    #expect(scores.total == [nil, nil])
    #expect(judge.failures.value == 2)
    #expect(down.requests.count == 4)
    let start = Date()
    let timed = try await score("llm_judge", "x", fields: ["judge_questions": question],
                                parameters: ["url": .string(slow.baseURL), "timeout": .double(0.3), "retries": .int(0)])
    #expect(timed == nil)
    #expect(Date().timeIntervalSince(start) < deadlineBound)
  }

  @Test func httpRewardPostsSamples() async throws {
    let server = try await TestHTTPServer { body, _ in
      let samples = (try? JSONValue.parse(body))?["samples"]?.arrayValue ?? []
      let rewards = samples.map { sample -> JSONValue in
        let text = sample["completion"]?.stringValue ?? ""
        return text.isEmpty ? .null : .int(text.count)
      }
      return .init(body: JSONValue.object(["rewards": .array(rewards)]).jsonString)
    }
    defer { Task { await server.shutdown() } }
    let function = try RewardRegistry.make("http", parameters: ["url": .string(server.baseURL + "/score")])
    let values = try await function.score([RewardSample(completion: "abc"), RewardSample(completion: "")])
    #expect(values == [3, nil])
    let sent = try JSONValue.parse(try #require(server.requests.first?.body))
    #expect(sent["samples"]?.arrayValue?.first?["index"] == .int(0))
  }

  @Test func commandRewardProtocolAndFailures() async throws {
    let echo = try RewardRegistry.make("command", parameters: [
      "command": .string(#"while IFS= read -r line; do case "$line" in *good*) echo 1;; *) echo null;; esac; done"#)])
    let batch = [RewardSample(completion: "good"), RewardSample(completion: "bad"), RewardSample(completion: "so good")]
    #expect(try await echo.score(batch) == [1, nil, 1])

    let crash = try RewardRegistry.make("command", parameters: ["command": .string("echo oops-from-program >&2; exit 3")])
    do {
      _ = try await crash.score(batch)
      Issue.record("expected an error")
    } catch {
      #expect(String(describing: error).contains("status 3") && String(describing: error).contains("oops-from-program"))
    }
    let short = try RewardRegistry.make("command", parameters: ["command": .string("cat > /dev/null; echo 1")])
    await #expect(throws: RewardError.self) { _ = try await short.score(batch) }
    let slow = try RewardRegistry.make("command", parameters: ["command": .array([.string("sleep"), .string(String(hangSeconds))]), "timeout": .double(0.3)])
    let start = Date()
    await #expect(throws: RewardError.self) { _ = try await slow.score(batch) }
    #expect(Date().timeIntervalSince(start) < deadlineBound)
    #expect(throws: RewardError.self) { _ = try RewardRegistry.make("command", parameters: [:]) }
  }
}
