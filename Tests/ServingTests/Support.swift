import AsyncHTTPClient
import Common
import Foundation
import ModelConfig
import Models
import NIOCore
import Prompting
@testable import Serving

/// One server for the whole suite, on 127.0.0.1 and a free port, over the tiny random Qwen2.5-VL
/// fixture of ModelsTests; and a second server on the same service with a 4 KiB body bound that
/// admits one chat request at a time.
final class Harness: @unchecked Sendable {
  static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../ModelsTests/Fixtures/qwen25vl_tied").standardizedFileURL
  static let image = fixture.appendingPathComponent("image.png")
  static let name = "tiny-qwen"
  static let shared = Task { try await Harness() }

  let model: QwenVLModel
  let builder: PromptBuilder
  let service: ChatService
  let server: ChatServer
  let smallServer: ChatServer
  var baseURL: String { "http://127.0.0.1:\(server.port)" }

  init() async throws {
    let folder = try ModelFolder(directory: Self.fixture)
    model = try QwenVLModel.load(directory: Self.fixture)
    builder = try PromptBuilder(folder: folder)
    service = ChatService(model: model, builder: builder, settings: ServerSettings(servedModelName: Self.name))
    server = ChatServer(service: service)
    try await server.start(host: "127.0.0.1", port: 0)
    smallServer = ChatServer(service: service, settings: ServerSettings(servedModelName: Self.name, maxConcurrency: 1,
                                                                        maxRequestBytes: 4096))
    try await smallServer.start(host: "127.0.0.1", port: 0)
  }

  struct Reply {
    var status: Int
    var contentType: String
    var text: String
    var json: JSONValue? { try? JSONValue.parse(text) }
  }

  func send(_ method: String = "POST", _ path: String = "/v1/chat/completions", body: String? = nil,
            to target: ChatServer? = nil) async throws -> Reply {
    var request = HTTPClientRequest(url: "http://127.0.0.1:\((target ?? server).port)\(path)")
    request.method = method == "GET" ? .GET : .POST
    if let body {
      request.headers.add(name: "Content-Type", value: "application/json")
      request.body = .bytes(ByteBuffer(string: body))
    }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(300))
    let bytes = try await response.body.collect(upTo: 16 << 20)
    return Reply(status: Int(response.status.code), contentType: response.headers.first(name: "Content-Type") ?? "",
                 text: String(buffer: bytes))
  }

  func chat(_ body: JSONValue) async throws -> Reply { try await send(body: body.jsonString) }

  /// A chat body with one user message and greedy decoding unless `extra` says otherwise.
  static func body(_ content: JSONValue, _ extra: [String: JSONValue] = [:]) -> JSONValue {
    var object: [String: JSONValue] = [
      "model": .string(name), "temperature": .int(0), "max_tokens": .int(8),
      "messages": .array([.object(["role": .string("user"), "content": content])]),
    ]
    object.merge(extra) { $1 }
    return .object(object)
  }

  static func imagePart(_ url: String) -> JSONValue {
    .object(["type": .string("image_url"), "image_url": .object(["url": .string(url)])])
  }

  static func textPart(_ text: String) -> JSONValue { .object(["type": .string("text"), "text": .string(text)]) }

  static func dataURL() throws -> String { "data:image/png;base64," + (try Data(contentsOf: image)).base64EncodedString() }
}

extension JSONValue {
  /// `choices[i].message.content`.
  func content(_ index: Int = 0) -> String? { self["choices"]?.arrayValue?[index]["message"]?["content"]?.stringValue }
}
