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
}

/// `command`: runs the user's program once per batch; one JSON object per sample on stdin (one
/// line each, then EOF), one number or `null` per line on stdout.
public struct CommandReward: RewardFunction {
  public let name: String
  public let arguments: [String]
  public let timeout: Double

  init(parameters p: RewardParameters) throws {
    name = try p.string("name") ?? p.reward
    guard let command = try p.stringList("command"), !command.isEmpty else {
      throw p.bad("command", "missing: the program to run (a shell line or a list of arguments)")
    }
    arguments = p.value("command")?.stringValue != nil ? ["/bin/sh", "-c", command[0]] : ["/usr/bin/env"] + command
    timeout = try p.double("timeout", default: 60)
    guard timeout > 0 else { throw p.bad("timeout", "must be > 0") }
  }

  public func score(_ batch: [RewardSample]) async throws -> [Double?] {
    let input = batch.enumerated().map { ExternalProtocol.request($1, index: $0).jsonString }.joined(separator: "\n") + "\n"
    let result = try await ChildProcess.run(arguments: arguments, input: Data(input.utf8), timeout: timeout)
    let stderrTail = String(decoding: result.stderr.suffix(2000), as: UTF8.self)
    if result.timedOut {
      throw RewardError.external(reward: name, message: "timed out after \(timeout) s; stderr: \(stderrTail)")
    }
    guard result.status == 0 else {
      throw RewardError.external(reward: name, message: "exited with status \(result.status); stderr: \(stderrTail)")
    }
    let lines = String(decoding: result.stdout, as: UTF8.self).split(whereSeparator: \.isNewline)
      .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    guard lines.count == batch.count else {
      throw RewardError.external(reward: name, message: "printed \(lines.count) lines for \(batch.count) samples; stderr: \(stderrTail)")
    }
    return try lines.enumerated().map { index, line in
      guard let reply = try? JSONValue.parse(line) else {
        throw RewardError.external(reward: name, message: "line \(index + 1) is not JSON: \(line.prefix(200))")
      }
      return try ExternalProtocol.value(reply, reward: name, line: index + 1)
    }
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
    let reply = try await JSONPost.send(
      url: url, body: body, headers: [:], timeout: timeout, retries: retries, backoff: 0.2, reward: name)
    guard let values = reply["rewards"]?.arrayValue ?? reply.arrayValue, values.count == batch.count else {
      throw RewardError.external(reward: name, message: "expected \(batch.count) rewards, got \(reply.jsonString.prefix(200))")
    }
    return try values.enumerated().map { try ExternalProtocol.value($1, reward: name, line: $0 + 1) }
  }
}

/// POST JSON with a timeout and bounded retries with exponential backoff (on connection errors,
/// timeouts, 429 and 5xx; other statuses fail at once).
enum JSONPost {
  static func send(
    url: String, body: JSONValue, headers: [String: String], timeout: Double, retries: Int, backoff: Double,
    reward: String
  ) async throws -> JSONValue {
    var lastError = "no attempt"
    for attempt in 0...retries {
      if attempt > 0 { try await Task.sleep(nanoseconds: UInt64(backoff * pow(2, Double(attempt - 1)) * 1e9)) }
      var request = HTTPClientRequest(url: url)
      request.method = .POST
      request.headers.add(name: "Content-Type", value: "application/json")
      for (key, value) in headers { request.headers.add(name: key, value: value) }
      request.body = .bytes(ByteBuffer(string: body.jsonString))
      do {
        let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
        let data = try await response.body.collect(upTo: 64 << 20)
        let text = String(buffer: data)
        guard response.status.code == 200 else {
          lastError = "HTTP \(response.status.code): \(text.prefix(300))"
          if response.status.code == 429 || response.status.code >= 500 { continue }
          throw RewardError.external(reward: reward, message: lastError)
        }
        guard let json = try? JSONValue.parse(text) else {
          throw RewardError.external(reward: reward, message: "reply is not JSON: \(text.prefix(300))")
        }
        return json
      } catch let error as RewardError {
        throw error
      } catch {
        lastError = String(describing: error)
      }
    }
    throw RewardError.external(reward: reward, message: "\(url) failed after \(retries + 1) attempts: \(lastError)")
  }
}
