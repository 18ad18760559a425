// Rewards written outside Swift: a user program over JSON lines (`command`) or a URL (`http`).
import AsyncHTTPClient
import Common
import Foundation
import NIOCore

/// The JSON object sent for one sample (docs/rewards.md, "External rewards").
enum ExternalProtocol {
  static func request(_ sample: RewardSample, index: Int) -> JSONValue {
    .object([
      "index": .int(index),
      "prompt": .string(sample.prompt),
      "completion": .string(sample.completion),
      "images": .array(sample.images.map { image in
        .object([
          "original_width": .int(image.originalWidth), "original_height": .int(image.originalHeight),
          "resized_width": .int(image.resizedWidth), "resized_height": .int(image.resizedHeight),
        ])
      }),
      "fields": .object(sample.fields),
    ])
  }

  /// One reply value: a number, null, or `{"reward": x}`; anything else is an error.
  static func value(_ reply: JSONValue, reward: String, line: Int) throws -> Double? {
    switch reply {
    case .null: return nil
    case .int, .double: return reply.doubleValue
    case .object(let object) where object["reward"] != nil:
      return try value(object["reward"] ?? .null, reward: reward, line: line)
    default: throw RewardError.external(reward: reward, message: "reply \(line): expected a number or null, got \(reply)")
    }
  }

  /// The batch request of the persistent `command` mode, as TRL calls a reward function: the
  /// prompts, the completions, the images, and every record field as a list with one entry per
  /// sample (null where a record lacks it), e.g. `solution`, `completion_ids`.
  static func batchRequest(_ batch: [RewardSample]) -> JSONValue {
    var object: [String: JSONValue] = [:]
    let keys = Set(batch.flatMap(\.fields.keys))
    for key in keys { object[key] = .array(batch.map { $0.fields[key] ?? .null }) }
    object["prompts"] = .array(batch.map { .string($0.prompt) })
    object["completions"] = .array(batch.map { .string($0.completion) })
    object["images"] = .array(batch.map { sample in
      .array(sample.images.map { image in
        .object([
          "original_width": .int(image.originalWidth), "original_height": .int(image.originalHeight),
          "resized_width": .int(image.resizedWidth), "resized_height": .int(image.resizedHeight),
        ])
      })
    })
    return .object(object)
  }
}

/// `command`: a reward computed by the user's program (docs/rewards.md, "External rewards").
///
/// - `mode: "per_batch"` (default): the program runs once per batch; one JSON object per sample on
///   stdin (one line each, then EOF), one number or `null` per line on stdout.
/// - `mode: "persistent"`: one long-lived program per reward; each batch is one JSON line on its
///   stdin (`ExternalProtocol.batchRequest`) and the program answers one JSON line:
///   `{"rewards": [...], "metrics": {...}}` or a bare list. A program that died or timed out is
///   started again for the next batch.
///
/// Either way the program runs in its own process group; at `timeout` seconds the whole group is
/// killed (a shell line's background children included). A failure throws (the runner scores the
/// batch 0 and counts it) and is printed once per distinct message with the tail of its stderr.
public struct CommandReward: RewardFunction {
  public enum Mode: String, Sendable, CaseIterable {
    case perBatch = "per_batch"
    case persistent
  }

  public let name: String
  public let arguments: [String]
  public let timeout: Double
  public let mode: Mode
  let session: CommandSession

  init(parameters p: RewardParameters) throws {
    name = try p.string("name") ?? p.reward
    guard let command = try p.stringList("command"), !command.isEmpty, !command[0].isEmpty else {
      throw p.bad("command", "missing: the program to run (a shell line or a list of arguments)")
    }
    arguments = p.value("command")?.stringValue != nil ? ["/bin/sh", "-c", command[0]] : ["/usr/bin/env"] + command
    timeout = try p.double("timeout", default: 60)
    guard timeout > 0 else { throw p.bad("timeout", "must be > 0, got \(timeout)") }
    let modeName = try p.string("mode") ?? Mode.perBatch.rawValue
    guard let mode = Mode(rawValue: modeName) else {
      throw p.bad("mode", "'\(modeName)' is not one of \(Mode.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    self.mode = mode
    session = CommandSession(arguments: arguments)
  }

  /// Times the persistent program was started again after dying or timing out.
  public var restarts: Int { session.restarts }

  public func score(_ batch: [RewardSample]) async throws -> [Double?] {
    try await scoreWithMetrics(batch).values
  }

  public func scoreWithMetrics(_ batch: [RewardSample]) async throws -> (values: [Double?], metrics: [String: Double]) {
    do {
      switch mode {
      case .perBatch: return (try await perBatch(batch), [:])
      case .persistent: return try await persistent(batch)
      }
    } catch let error as RewardError {
      if case .external(_, let message) = error { ErrorReporter.shared.report(reward: name, message: message) }
      throw error
    }
  }

  private func fail(_ message: String, stderr: Data) -> RewardError {
    let tail = String(decoding: stderr.suffix(2000), as: UTF8.self).trimmed
    return .external(reward: name, message: tail.isEmpty ? message : "\(message); stderr: \(tail)")
  }

  private func perBatch(_ batch: [RewardSample]) async throws -> [Double?] {
    let input = batch.enumerated().map { ExternalProtocol.request($1, index: $0).jsonString }.joined(separator: "\n") + "\n"
    let result: ChildProcess.Output
    do {
      result = try await ChildProcess.run(arguments: arguments, input: Data(input.utf8), timeout: timeout)
    } catch {
      throw RewardError.external(reward: name, message: String(describing: error))
    }
    if result.timedOut { throw fail("timed out after \(timeout) s", stderr: result.stderr) }
    guard result.status == 0 else { throw fail("exited with status \(result.status)", stderr: result.stderr) }
    let lines = String(decoding: result.stdout, as: UTF8.self).split(whereSeparator: \.isNewline)
      .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    guard lines.count == batch.count else {
      throw fail("printed \(lines.count) lines for \(batch.count) samples", stderr: result.stderr)
    }
    return try lines.enumerated().map { index, line in
      guard let reply = try? JSONValue.parse(line) else {
        throw RewardError.external(reward: name, message: "line \(index + 1) is not JSON: \(line.prefix(200))")
      }
      return try ExternalProtocol.value(reply, reward: name, line: index + 1)
    }
  }

  private func persistent(_ batch: [RewardSample]) async throws -> (values: [Double?], metrics: [String: Double]) {
    let request = Data((ExternalProtocol.batchRequest(batch).jsonString + "\n").utf8)
    let session = session, timeout = timeout, name = name
    let reply = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<CommandSession.Reply, Error>) in
      Thread.detachNewThread {
        continuation.resume(with: Result { try session.exchange(request, timeout: timeout, reward: name) })
      }
    }
    guard let json = try? JSONValue.parse(reply.line) else {
      throw fail("reply is not JSON: \(reply.line.prefix(200))", stderr: reply.stderr)
    }
    guard let values = json["rewards"]?.arrayValue ?? json.arrayValue else {
      throw fail("reply has no \"rewards\" list: \(reply.line.prefix(200))", stderr: reply.stderr)
    }
    guard values.count == batch.count else {
      throw fail("replied \(values.count) rewards for \(batch.count) samples", stderr: reply.stderr)
    }
    let rewards = try values.enumerated().map { try ExternalProtocol.value($1, reward: name, line: $0 + 1) }
    var metrics: [String: Double] = [:]
    for (key, value) in json["metrics"]?.objectValue ?? [:] {
      if let number = value.doubleValue, number.isFinite {
        metrics[key] = number
      } else if let list = value.arrayValue {
        let numbers = list.compactMap(\.doubleValue).filter(\.isFinite)
        if !numbers.isEmpty { metrics[key] = numbers.reduce(0, +) / Double(numbers.count) }
      }
    }
    return (rewards, metrics)
  }
}

/// The long-lived program of a persistent `command` reward: one batch at a time (a lock), started
/// on first use and again after it died or timed out.
final class CommandSession: @unchecked Sendable {
  struct Reply: Sendable {
    var line: String
    var stderr: Data
  }

  let arguments: [String]
  private let lock = NSLock()
  private var child: ChildProcess?
  private var started = 0
  private var pending = Data()
  private var stderrTail = Data()

  init(arguments: [String]) { self.arguments = arguments }

  deinit { child?.terminate() }

  var restarts: Int { lock.withLock { max(0, started - 1) } }

  /// Sends one request line and waits (blocking, at most `timeout` seconds in all) for one
  /// non-empty reply line. A timeout kills the program's process group; the next call starts it
  /// anew. A program from an earlier batch that has died is started again and asked once more.
  func exchange(_ request: Data, timeout: Double, reward: String) throws -> Reply {
    lock.lock()
    defer { lock.unlock() }
    let deadline = Date().addingTimeInterval(timeout)
    while true {
      let fresh = child == nil
      switch try attempt(request, deadline: deadline, timeout: timeout, reward: reward) {
      case .reply(let reply): return reply
      case .exited(let status):
        // A program left over from an earlier batch may have died in between: one fresh try.
        if !fresh, Date() < deadline { continue }
        throw failure("exited with status \(status) before replying", reward: reward)
      }
    }
  }

  private enum Outcome {
    case reply(Reply)
    case exited(Int32)
  }

  private func attempt(_ request: Data, deadline: Date, timeout: Double, reward: String) throws -> Outcome {
    if let current = child, current.hasExited || current.stdoutFD < 0 {
      current.terminate()
      child = nil
    }
    if child == nil {
      do {
        child = try ChildProcess(arguments: arguments)
      } catch {
        throw RewardError.external(reward: reward, message: String(describing: error))
      }
      started += 1
      pending = Data()
      stderrTail = Data()
    }
    guard let process = child else { throw RewardError.external(reward: reward, message: "no program") }
    let bytes = [UInt8](request)
    var offset = 0
    while true {
      if offset >= bytes.count, let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
        let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self).trimmed
        pending.removeSubrange(pending.startIndex...newline)
        if line.isEmpty { continue }
        return .reply(Reply(line: line, stderr: stderrTail))
      }
      if process.stdoutFD < 0 || process.hasExited {
        // Let the last output arrive before deciding.
        process.pump(input: [], offset: &offset, stdout: &pending, stderr: &stderrTail, wait: 0.05)
        if offset >= bytes.count, pending.contains(UInt8(ascii: "\n")) { continue }
        let status = process.terminate()
        child = nil
        return .exited(status)
      }
      let now = Date()
      if now >= deadline {
        process.terminate()
        child = nil
        throw failure("no reply within \(timeout) s (the program was killed and will be restarted)", reward: reward)
      }
      process.pump(
        input: bytes, offset: &offset, stdout: &pending, stderr: &stderrTail, wait: deadline.timeIntervalSince(now),
        closeStdinWhenWritten: false)
      if stderrTail.count > 8192 { stderrTail = Data(stderrTail.suffix(4096)) }
    }
  }

  private func failure(_ message: String, reward: String) -> RewardError {
    let tail = String(decoding: stderrTail.suffix(2000), as: UTF8.self).trimmed
    return .external(reward: reward, message: tail.isEmpty ? message : "\(message); stderr: \(tail)")
  }
}

/// `http`: POSTs `{"samples": [...]}` (the same objects as `command`) to `url`; the reply is
/// `{"rewards": [...]}` or a bare list, one number or null per sample.
public struct HTTPReward: RewardFunction {
  public let name: String
  public let url: String
  public let timeout: Double
  public let retries: Int

  init(parameters p: RewardParameters) throws {
    name = try p.string("name") ?? p.reward
    guard let url = try p.string("url"), url.hasPrefix("http://") || url.hasPrefix("https://") else {
      throw p.bad("url", "missing or not an http(s) URL")
    }
    self.url = url
    timeout = try p.double("timeout", default: 60)
    retries = try p.int("retries", default: 2)
    guard timeout > 0, (0...10).contains(retries) else { throw p.bad("retries", "timeout must be > 0 and retries 0...10") }
  }

  public func score(_ batch: [RewardSample]) async throws -> [Double?] {
    let body = JSONValue.object(["samples": .array(batch.enumerated().map { ExternalProtocol.request($1, index: $0) })])
    let reply: JSONValue
    do {
      reply = try await JSONPost.send(
        url: url, body: body, headers: [:], timeout: timeout, retries: retries, backoff: 0.2, reward: name)
    } catch let error as RewardError {
      if case .external(_, let message) = error { ErrorReporter.shared.report(reward: name, message: message) }
      throw error
    }
    guard let values = reply["rewards"]?.arrayValue ?? reply.arrayValue, values.count == batch.count else {
      throw RewardError.external(reward: name, message: "expected \(batch.count) rewards, got \(reply.jsonString.prefix(200))")
    }
    return try values.enumerated().map { try ExternalProtocol.value($1, reward: name, line: $0 + 1) }
  }
}

/// POST JSON under one deadline and bounded retries with exponential backoff (docs/rewards.md,
/// "External rewards").
///
/// - `timeout` is one deadline over the whole exchange: connecting, sending, the reply's head and
///   its whole body, every retry and every backoff pause. When it passes the call fails at once,
///   whatever the server is doing (a server that trickles its body cannot hold scoring).
/// - Retried: connection errors, 429 and 5xx. Failing at once: other statuses, a reply that is not
///   JSON, a body over 64 MiB, a redirect to another origin.
/// - Redirects are followed only within the same origin (scheme, host and port), at most 3 hops,
///   re-sending the POST; the client itself never follows one.
enum JSONPost {
  /// The client of every external reward and judge: it follows no redirect by itself.
  static let client = HTTPClient(
    eventLoopGroupProvider: .singleton,
    configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))
  static let maxBodyBytes = 64 << 20
  static let maxRedirects = 3

  /// The outcome of one attempt.
  enum Attempt: Sendable {
    case reply(JSONValue)
    case retry(String)
    case fail(String)
  }

  struct DeadlinePassed: Error {}

  static func send(
    url: String, body: JSONValue, headers: [String: String], timeout: Double, retries: Int, backoff: Double,
    reward: String
  ) async throws -> JSONValue {
    let start = ContinuousClock.now
    let deadline = start + .milliseconds(Int64(timeout * 1000))
    let payload = body.jsonString
    var lastError = "no attempt"
    var attempts = 0
    for attempt in 0...retries {
      if attempt > 0 {
        let pause = Duration.milliseconds(Int64(backoff * pow(2, Double(attempt - 1)) * 1000))
        guard ContinuousClock.now + pause < deadline else { break }
        try await Task.sleep(for: pause)
      }
      let remaining = deadline - ContinuousClock.now
      guard remaining > .zero else { break }
      attempts += 1
      let outcome: Attempt
      do {
        outcome = try await withDeadline(remaining) {
          await exchange(url: url, payload: payload, headers: headers, remaining: remaining)
        }
      } catch is DeadlinePassed {
        lastError = "no complete reply within the \(timeout) s deadline"
        break
      }
      switch outcome {
      case .reply(let json): return json
      case .retry(let message): lastError = message
      case .fail(let message): throw RewardError.external(reward: reward, message: "\(url): \(message)")
      }
    }
    throw RewardError.external(
      reward: reward, message: "\(url) failed after \(attempts) attempt(s): \(lastError)")
  }

  /// One attempt, following same-origin redirects.
  static func exchange(url: String, payload: String, headers: [String: String], remaining: Duration) async -> Attempt {
    var target = url
    for _ in 0...maxRedirects {
      var request = HTTPClientRequest(url: target)
      request.method = .POST
      request.headers.add(name: "Content-Type", value: "application/json")
      for (key, value) in headers { request.headers.add(name: key, value: value) }
      request.body = .bytes(ByteBuffer(string: payload))
      let response: HTTPClientResponse
      let text: String
      do {
        let milliseconds = remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000
        response = try await client.execute(request, timeout: .milliseconds(max(1, milliseconds)))
        text = String(buffer: try await response.body.collect(upTo: maxBodyBytes))
      } catch {
        return .retry(String(describing: error))
      }
      let code = Int(response.status.code)
      if (300..<400).contains(code) {
        guard let location = response.headers.first(name: "Location"),
          let next = URL(string: location, relativeTo: URL(string: target))?.absoluteURL
        else { return .fail("HTTP \(code) redirect without a usable Location") }
        guard sameOrigin(next, URL(string: target)) else {
          return .fail("HTTP \(code) redirect to another origin (\(next.absoluteString)) refused")
        }
        target = next.absoluteString
        continue
      }
      guard code == 200 else {
        let message = "HTTP \(code): \(text.prefix(300))"
        return code == 429 || code >= 500 ? .retry(message) : .fail(message)
      }
      guard let json = try? JSONValue.parse(text) else { return .fail("reply is not JSON: \(text.prefix(300))") }
      return .reply(json)
    }
    return .fail("more than \(maxRedirects) redirects")
  }

  static func sameOrigin(_ a: URL, _ b: URL?) -> Bool {
    guard let b else { return false }
    func port(_ url: URL) -> Int? { url.port ?? (url.scheme?.lowercased() == "https" ? 443 : 80) }
    return a.scheme?.lowercased() == b.scheme?.lowercased() && a.host?.lowercased() == b.host?.lowercased()
      && port(a) == port(b)
  }

  /// Runs `body`, returning at `limit` at the latest: the caller gets `DeadlinePassed` then, and
  /// the work is cancelled and left to wind down on its own (it cannot hold the caller).
  static func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async -> T) async throws -> T {
    let gate = OnceGate<T>()
    let work = Task { gate.finish(.success(await body())) }
    // A dispatch timer, not a task: it fires even while the concurrency pool is busy.
    let seconds = Double(limit.components.seconds) + Double(limit.components.attoseconds) * 1e-18
    DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { gate.finish(.failure(DeadlinePassed())) }
    defer { work.cancel() }
    return try await gate.value()
  }
}

/// A result delivered once (the first `finish` wins) to one waiter.
final class OnceGate<T: Sendable>: @unchecked Sendable {
  private let lock = NSLock()
  private var result: Result<T, Error>?
  private var waiter: CheckedContinuation<T, Error>?

  func finish(_ outcome: Result<T, Error>) {
    let resume: CheckedContinuation<T, Error>? = lock.withLock {
      guard result == nil else { return nil }
      result = outcome
      defer { waiter = nil }
      return waiter
    }
    resume?.resume(with: outcome)
  }

  func value() async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
      let ready: Result<T, Error>? = lock.withLock {
        if let result { return result }
        waiter = continuation
        return nil
      }
      if let ready { continuation.resume(with: ready) }
    }
  }
}
