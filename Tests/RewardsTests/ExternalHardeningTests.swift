import Common
import Foundation
import Testing
@testable import Rewards

/// Whether process `pid` is gone (no /proc entry, or a zombie waiting for its reaper).
func processIsGone(_ pid: Int32) -> Bool {
  guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
  // `pid (name) S ...`: the state follows the closing parenthesis.
  guard let close = stat.lastIndex(of: ")") else { return true }
  let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
  return state == "Z" || state == "X"
}

/// Polls `condition` for up to `seconds`.
/// How long a "hung" peer (server, program) stays hung in these tests, and the bound a deadline
/// check allows. The bound is far above the deadlines under test (0.3–0.5 s) because the suite runs
/// in parallel on 2-core CI machines, where CPU-heavy tests can hold the concurrency pool for tens
/// of seconds; it is far below the hang, so a deadline that does not work still fails the test.
/// A timing check here tells "stopped at its deadline" from "waited for the peer", never speed.
let hangSeconds = 600
let deadlineBound: TimeInterval = 300

func eventually(_ seconds: Double, _ condition: () -> Bool) async -> Bool {
  let end = Date().addingTimeInterval(seconds)
  while Date() < end {
    if condition() { return true }
    try? await Task.sleep(nanoseconds: 50_000_000)
  }
  return condition()
}

func temporaryPath(_ suffix: String) -> String {
  FileManager.default.temporaryDirectory.appendingPathComponent("rewards-\(UUID().uuidString)-\(suffix)").path
}

/// The `command` reward's process handling: process groups, background grandchildren, timeouts,
/// error reporting, and the persistent (TRL-style) mode.
@Suite struct CommandProcessTests {
  @Test func backgroundGrandchildDoesNotHoldTheBatch() async throws {
    let pidFile = temporaryPath("pid")
    defer { try? FileManager.default.removeItem(atPath: pidFile) }
    // The shell exits at once but its background `sleep` inherited stdout and stderr.
    let reward = try RewardRegistry.make("command", parameters: [
      "command": .string("sleep \(hangSeconds) & echo $! > \(pidFile); echo 1"), "timeout": .int(30)])
    let start = Date()
    #expect(try await reward.score([RewardSample(completion: "x")]) == [1])
    #expect(Date().timeIntervalSince(start) < deadlineBound)
    let pid = try #require(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmed))
    // The background child was killed with its process group.
    #expect(await eventually(deadlineBound) { processIsGone(pid) })
  }

  @Test func timeoutKillsTheWholeProcessGroup() async throws {
    let pidFile = temporaryPath("pid")
    defer { try? FileManager.default.removeItem(atPath: pidFile) }
    let reward = try RewardRegistry.make("command", parameters: [
      "command": .string("sleep \(hangSeconds) & echo $! > \(pidFile); sleep \(hangSeconds); echo 1"), "timeout": .double(0.5)])
    let start = Date()
    do {
      _ = try await reward.score([RewardSample(completion: "x")])
      Issue.record("expected a timeout")
    } catch {
      #expect(String(describing: error).contains("timed out"))
    }
    #expect(Date().timeIntervalSince(start) < deadlineBound)
    let pid = try #require(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmed))
    #expect(await eventually(deadlineBound) { processIsGone(pid) })
  }

  @Test func aProgramThatNeverReadsItsInputCannotBlock() async throws {
    // 4 MB of input to a program that reads none of it: the write side must not block forever.
    let reward = try RewardRegistry.make("command", parameters: ["command": .string("sleep \(hangSeconds)"), "timeout": .double(0.5)])
    let big = RewardSample(completion: String(repeating: "x", count: 4 << 20))
    let start = Date()
    await #expect(throws: RewardError.self) { _ = try await reward.score([big]) }
    #expect(Date().timeIntervalSince(start) < deadlineBound)
  }

  @Test func failuresAreCountedAndPrintedOncePerDistinctMessage() async throws {
    let marker = UUID().uuidString
    let reward = try RewardRegistry.make("command", parameters: [
      "command": .string("cat > /dev/null; echo first-line >&2; echo \(marker) >&2; exit 3")])
    let runner = RewardRunner(functions: [reward], weights: nil)
    let batch = [RewardSample(completion: "a"), RewardSample(completion: "b")]
    for _ in 0..<3 {
      let scores = await runner.score(batch)
      #expect(scores.errorCounts == ["command": 1])
      #expect(scores.perFunction["command"] == [0, 0])
      let message = try #require(scores.errorMessages["command"])
      #expect(message.contains("status 3") && message.contains(marker) && message.contains("first-line"))
    }
    let printed = ErrorReporter.shared.printed.filter { $0.contains(marker) }
    #expect(printed.count == 1)
    #expect(printed.first?.contains("status 3") == true)
  }

  @Test func reporterPrintsEachDistinctMessageOnceUpToItsCapacity() {
    let lines = LockedLines()
    let reporter = ErrorReporter(capacity: 2) { lines.append($0) }
    for _ in 0..<3 {
      reporter.report(reward: "a", message: "one")
      reporter.report(reward: "b", message: "one")
      reporter.report(reward: "a", message: "two")
      reporter.report(reward: "a", message: "three")
    }
    let written = lines.all
    #expect(written.count == 3)
    #expect(written[0].contains("'a'") && written[0].contains("one"))
    #expect(written[1].contains("'b'"))
    #expect(written[2].contains("more than 2 distinct"))
  }

  @Test func unknownProgramIsAnErrorNotACrash() async throws {
    let reward = try RewardRegistry.make("command", parameters: [
      "command": .array([.string("/nonexistent/program-\(UUID().uuidString)")])])
    await #expect(throws: RewardError.self) { _ = try await reward.score([RewardSample(completion: "x")]) }
    #expect(throws: RewardError.self) {
      _ = try RewardRegistry.make("command", parameters: ["command": .string("true"), "mode": .string("forever")])
    }
  }
}

@Suite struct PersistentCommandTests {
  static func persistent(_ script: String, timeout: Double = 10) throws -> CommandReward {
    try #require(try RewardRegistry.make("command", parameters: [
      "command": .string(script), "mode": .string("persistent"), "timeout": .double(timeout)]) as? CommandReward)
  }

  @Test func oneProcessServesEveryBatch() async throws {
    // A counter that lives across batches proves the program stays up.
    let reward = try Self.persistent(#"n=0; while IFS= read -r line; do n=$((n+1)); echo "{\"rewards\": [$n, null], \"metrics\": {\"calls\": $n}}"; done"#)
    let batch = [RewardSample(completion: "a"), RewardSample(completion: "b")]
    #expect(try await reward.score(batch) == [1, nil])
    #expect(try await reward.score(batch) == [2, nil])
    let runner = RewardRunner(functions: [reward], weights: nil)
    let scores = await runner.score(batch)
    #expect(scores.perFunction["command"] == [3, nil])
    #expect(scores.metrics == ["command/calls": 3])
    #expect(reward.restarts == 0)
  }

  @Test func requestCarriesPromptsCompletionsAndEveryField() async throws {
    let batch = [
      RewardSample(prompt: "p1", completion: "c1", images: [ImageGeometry(width: 4, height: 3)],
                   fields: ["solution": .string("s1"), "completion_ids": .array([.int(5), .int(6)])]),
      RewardSample(prompt: "p2", completion: "c2", fields: ["solution": .string("s2"), "extra": .int(1)]),
    ]
    let request = ExternalProtocol.batchRequest(batch)
    #expect(request["prompts"] == .array([.string("p1"), .string("p2")]))
    #expect(request["completions"] == .array([.string("c1"), .string("c2")]))
    #expect(request["solution"] == .array([.string("s1"), .string("s2")]))
    #expect(request["completion_ids"] == .array([.array([.int(5), .int(6)]), .null]))
    #expect(request["extra"] == .array([.null, .int(1)]))
    #expect(request["images"]?.arrayValue?.first?.arrayValue?.first?["original_width"] == .int(4))
    // The program sees one line per batch holding those keys.
    let reward = try Self.persistent(#"while IFS= read -r line; do case "$line" in *'"completions":["c1","c2"]'*'"solution":["s1","s2"]'*) echo '[1, 1]';; *) echo '[0, 0]';; esac; done"#)
    #expect(try await reward.score(batch) == [1, 1])
  }

  @Test func aProgramThatDiesIsRestarted() async throws {
    // Answers one batch, then exits.
    let reward = try Self.persistent(#"IFS= read -r line; echo '{"rewards": [7]}'"#)
    let batch = [RewardSample(completion: "a")]
    #expect(try await reward.score(batch) == [7])
    #expect(try await reward.score(batch) == [7])
    #expect(reward.restarts == 1)
  }

  @Test func aSilentProgramTimesOutAndIsRestarted() async throws {
    let pidFile = temporaryPath("pid")
    defer { try? FileManager.default.removeItem(atPath: pidFile) }
    let reward = try Self.persistent("echo $$ > \(pidFile); sleep \(hangSeconds) & IFS= read -r line; wait", timeout: 0.5)
    let start = Date()
    await #expect(throws: RewardError.self) { _ = try await reward.score([RewardSample(completion: "a")]) }
    #expect(Date().timeIntervalSince(start) < deadlineBound)
    let pid = try #require(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmed))
    #expect(await eventually(deadlineBound) { processIsGone(pid) })
    // The next batch starts a new program (which times out again).
    await #expect(throws: RewardError.self) { _ = try await reward.score([RewardSample(completion: "a")]) }
    #expect(reward.restarts == 1)
  }

  @Test func malformedRepliesAreErrors() async throws {
    let cases = [
      #"while IFS= read -r line; do echo 'not json'; done"#,
      #"while IFS= read -r line; do echo '{"other": 1}'; done"#,
      #"while IFS= read -r line; do echo '[1, 2, 3]'; done"#,
      #"while IFS= read -r line; do echo '["x"]'; done"#,
      #"IFS= read -r line; echo oops >&2; exit 4"#,
    ]
    for script in cases {
      let reward = try Self.persistent(script)
      let runner = RewardRunner(functions: [reward], weights: nil)
      let scores = await runner.score([RewardSample(completion: "a")])
      #expect(scores.errorCounts["command"] == 1, "\(script)")
      #expect(scores.perFunction["command"] == [0], "\(script)")
    }
  }
}

final class LockedLines: @unchecked Sendable {
  private let lock = NSLock()
  private var lines: [String] = []
  func append(_ line: String) { lock.withLock { lines.append(line) } }
  var all: [String] { lock.withLock { lines } }
}

/// `http` and the judge: one deadline over the whole exchange (body included), no redirect to
/// another origin, every failure counted, malformed replies are failures.
@Suite(.serialized) struct HTTPHardeningTests {
  static let question: JSONValue = .array([.object([
    "question": .string("q"), "choices": .array([.array([.string("x"), .int(1)]), .array([.string("y"), .int(-1)])]),
  ])])

  @Test func slowBodyHitsTheDeadline() async throws {
    let slow = try await TestHTTPServer { _, _ in .init(body: #"{"rewards": [1]}"#, trickle: Double(hangSeconds)) }
    defer { Task { await slow.shutdown() } }
    let reward = try RewardRegistry.make("http", parameters: [
      "url": .string(slow.baseURL), "timeout": .double(0.5), "retries": .int(2)])
    let start = Date()
    do {
      _ = try await reward.score([RewardSample(completion: "a")])
      Issue.record("expected a deadline error")
    } catch {
      #expect(String(describing: error).contains("deadline"))
    }
    #expect(Date().timeIntervalSince(start) < deadlineBound)

    let judge = try #require(try RewardRegistry.make("llm_judge", parameters: [
      "url": .string(slow.baseURL), "timeout": .double(0.5), "retries": .int(1)]) as? LLMJudgeReward)
    let judgeStart = Date()
    #expect(try await judge.score([RewardSample(completion: "x", fields: ["judge_questions": Self.question])]) == [nil])
    #expect(Date().timeIntervalSince(judgeStart) < deadlineBound)
    #expect(judge.failures.value == 1)
  }

  @Test func redirectsToAnotherOriginAreRefused() async throws {
    let target = try await TestHTTPServer { _, _ in .init(body: #"{"rewards": [1]}"#) }
    let redirecting = try await TestHTTPServer { _, _ in
      .init(status: 307, body: "", headers: ["Location": target.baseURL + "/score"])
    }
    defer { Task { await target.shutdown(); await redirecting.shutdown() } }
    let reward = try RewardRegistry.make("http", parameters: ["url": .string(redirecting.baseURL + "/score")])
    let runner = RewardRunner(functions: [reward], weights: nil)
    let scores = await runner.score([RewardSample(completion: "a")])
    #expect(scores.errorCounts["http"] == 1)
    #expect(scores.errorMessages["http"]?.contains("another origin") == true)
    #expect(target.requests.isEmpty)
    #expect(redirecting.requests.count == 1)

    let judge = try #require(try RewardRegistry.make("llm_judge", parameters: ["url": .string(redirecting.baseURL)])
      as? LLMJudgeReward)
    #expect(try await judge.score([RewardSample(completion: "x", fields: ["judge_questions": Self.question])]) == [nil])
    #expect(judge.failures.value == 1)
    #expect(target.requests.isEmpty)
  }

  @Test func sameOriginRedirectsAreFollowed() async throws {
    let server = try await TestHTTPServer { body, number in
      number == 1 ? .init(status: 308, body: "", headers: ["Location": "/moved"]) : .init(body: #"{"rewards": [0.25]}"#)
    }
    defer { Task { await server.shutdown() } }
    let reward = try RewardRegistry.make("http", parameters: ["url": .string(server.baseURL + "/score")])
    #expect(try await reward.score([RewardSample(completion: "a")]) == [0.25])
    #expect(server.requests.map(\.path) == ["/score", "/moved"])
    // The POST body is sent again to the new place.
    #expect(server.requests[1].body.contains("\"completion\":\"a\""))
  }

  @Test func garbageRepliesAreFailures() async throws {
    let garbage = try await TestHTTPServer { _, _ in .init(body: "{not json") }
    defer { Task { await garbage.shutdown() } }
    let reward = try RewardRegistry.make("http", parameters: ["url": .string(garbage.baseURL)])
    let scores = await RewardRunner(functions: [reward], weights: nil).score([RewardSample(completion: "a")])
    #expect(scores.errorCounts["http"] == 1)
    #expect(scores.errorMessages["http"]?.contains("not JSON") == true)
    // A malformed reply is not retried.
    #expect(garbage.requests.count == 1)
  }

  /// A judge reply without a message, or naming no option, used to score 0.5 (the midpoint of the
  /// scale): it must be a failure (nil, counted).
  @Test func malformedJudgeRepliesAreFailuresNotHalfMarks() async throws {
    let replies = [
      #"{"unexpected": true}"#, #"{"choices": []}"#, #"{"choices": [{"message": {"content": null}}]}"#,
      ExternalTests.chatReply("I cannot tell from this description."), "[1, 2]", "{oops",
    ]
    for reply in replies {
      let server = try await TestHTTPServer { _, _ in .init(body: reply) }
      let judge = try #require(try RewardRegistry.make("llm_judge", parameters: [
        "url": .string(server.baseURL), "retries": .int(0)]) as? LLMJudgeReward)
      let sample = RewardSample(completion: "x", fields: ["judge_questions": Self.question])
      #expect(try await judge.score([sample, sample]) == [nil, nil], "\(reply)")
      #expect(judge.failures.value == 2, "\(reply)")
      await server.shutdown()
    }
    // A well-formed reply still scores.
    let good = try await TestHTTPServer { _, _ in .init(body: ExternalTests.chatReply("B")) }
    defer { Task { await good.shutdown() } }
    let judge = try #require(try RewardRegistry.make("llm_judge", parameters: ["url": .string(good.baseURL)]) as? LLMJudgeReward)
    // Option B scores -1 -> (−1 + 1) / 2 = 0.
    #expect(try await judge.score([RewardSample(completion: "x", fields: ["judge_questions": Self.question])]) == [0])
    #expect(judge.failures.value == 0)
  }
}

/// `tools/trl_reward_adapter.py` behind a persistent `command` reward (python3 is a project tool).
@Suite struct TRLAdapterTests {
  static let adapter = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("tools/trl_reward_adapter.py").path

  @Test func adapterServesATRLStyleFunction() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("adapter-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    try """
      calls = 0
      def length_reward(prompts, completions, solution=None, completion_ids=None, **kwargs):
          global calls
          calls += 1
          print("a debug print")
          rewards = [None if s is None else len(c) / 10 for c, s in zip(completions, solution)]
          return {"rewards": rewards, "metrics": {"calls": calls, "ids": len(completion_ids or [])}}
      def broken(prompts, completions, **kwargs):
          raise ValueError("no luck")
      """.write(to: directory.appendingPathComponent("fuzzy_rewards.py"), atomically: true, encoding: .utf8)
    let command = "cd '\(directory.path)' && exec python3 '\(Self.adapter)' fuzzy_rewards:length_reward"
    let reward = try RewardRegistry.make("command:length", parameters: [
      "command": .string(command), "mode": .string("persistent"), "timeout": .int(60)])
    let batch = [
      RewardSample(prompt: "p", completion: "abcd", fields: ["solution": .string("x"), "completion_ids": .array([.int(1)])]),
      RewardSample(prompt: "q", completion: "ab"),
    ]
    let runner = RewardRunner(functions: [reward], weights: nil)
    let first = await runner.score(batch)
    #expect(first.errorCounts.isEmpty, "\(first.errorMessages)")
    #expect(first.perFunction["command:length"] == [0.4, nil])
    #expect(first.metrics == ["command:length/calls": 1, "command:length/ids": 2])
    // The same Python process serves the next batch.
    #expect(await runner.score(batch).metrics["command:length/calls"] == 2)

    let broken = try RewardRegistry.make("command", parameters: [
      "command": .string("cd '\(directory.path)' && exec python3 '\(Self.adapter)' fuzzy_rewards:broken"),
      "mode": .string("persistent")])
    let failed = await RewardRunner(functions: [broken], weights: nil).score(batch)
    #expect(failed.errorCounts["command"] == 1)
    #expect(failed.errorMessages["command"]?.contains("no luck") == true)
  }
}
