import Common
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The HTTP/1.1 front of `vlmrl serve` (SwiftNIO): the OpenAI routes, the body bound, admission, and
/// the replies (JSON, or Server-Sent Events for `stream`). The model work goes to `ChatService`.
public final class ChatServer: @unchecked Sendable {
  public let service: ChatService
  public let settings: ServerSettings
  private let group: MultiThreadedEventLoopGroup
  /// Guarded by `lock`.
  private var state = State()
  private let lock = NSLock()

  struct State {
    var channel: Channel?
    /// Chat requests admitted and not yet answered.
    var admitted = 0
    /// Responses sent, by HTTP status.
    var statusCounts: [Int: Int] = [:]
  }

  /// `settings` may differ from the service's in the HTTP limits (body size, admission).
  public init(service: ChatService, settings: ServerSettings? = nil) {
    self.service = service
    self.settings = settings ?? service.settings
    group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
  }

  /// Binds and starts accepting connections; returns the bound port (useful with port 0).
  @discardableResult
  public func start(host: String, port: Int) async throws -> Int {
    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { [self] channel in
        channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMapThrowing {
          try channel.pipeline.syncOperations.addHandler(RequestHandler(server: self))
        }
      }
    let channel = try await bootstrap.bind(host: host, port: port).get()
    keep(channel)
    return channel.localAddress?.port ?? port
  }

  private var listening: Channel? { lock.withLock { state.channel } }

  /// The bound port (0 before `start`).
  public var port: Int { lock.withLock { state.channel?.localAddress?.port ?? 0 } }

  /// Responses sent so far, by HTTP status.
  public var statusCounts: [Int: Int] { lock.withLock { state.statusCounts } }

  /// Chat requests admitted and not yet answered (generating or waiting for the model).
  public var admittedRequests: Int { lock.withLock { state.admitted } }

  /// Returns when the listening socket closes.
  public func waitUntilClosed() async throws {
    try await listening?.closeFuture.get()
  }

  public func shutdown() async {
    try? await listening?.close()
    try? await group.shutdownGracefully()
  }

  private func keep(_ channel: Channel) { lock.withLock { state.channel = channel } }

  func admit() -> Bool {
    lock.withLock {
      guard state.admitted < settings.maxConcurrency else { return false }
      state.admitted += 1
      return true
    }
  }

  func release() { lock.withLock { state.admitted -= 1 } }

  func count(_ status: Int) { lock.withLock { state.statusCounts[status, default: 0] += 1 } }

  // MARK: Routes

  /// What to send for a complete request: a reply now, or a chat request for the model.
  enum Route {
    case reply(status: Int, body: JSONValue)
    case chat(ChatRequest)
  }

  func route(method: HTTPMethod, path: String, body: ByteBuffer) -> Route {
    switch path {
    case "/health":
      guard method == .GET else { return methodNotAllowed(method, path) }
      return .reply(status: 200, body: .object(["status": .string("ok")]))
    case "/v1/models", "/models":
      guard method == .GET else { return methodNotAllowed(method, path) }
      return .reply(status: 200, body: .object(["object": .string("list"), "data": .array([modelObject])]))
    case "/v1/chat/completions", "/chat/completions":
      guard method == .POST else { return methodNotAllowed(method, path) }
      do throws(ServingError) {
        return .chat(try ChatRequest(body: Data(body.readableBytesView)))
      } catch {
        return .reply(status: error.status, body: error.json)
      }
    default:
      for prefix in ["/v1/models/", "/models/"] where path.hasPrefix(prefix) && method == .GET {
        let name = String(path.dropFirst(prefix.count)).removingPercentEncoding ?? ""
        if name == settings.servedModelName { return .reply(status: 200, body: modelObject) }
        let error = ServingError.notFound("The model '\(name)' does not exist", param: "model", code: "model_not_found")
        return .reply(status: 404, body: error.json)
      }
      let error = ServingError.notFound("no route \(method) \(path): this server answers POST /v1/chat/completions, "
        + "GET /v1/models and GET /health", code: "unknown_url")
      return .reply(status: 404, body: error.json)
    }
  }

  func methodNotAllowed(_ method: HTTPMethod, _ path: String) -> Route {
    let error = ServingError(status: 405, message: "\(method) is not allowed on \(path)", type: "invalid_request_error",
                             code: "method_not_allowed")
    return .reply(status: 405, body: error.json)
  }

  var modelObject: JSONValue {
    .object(["id": .string(settings.servedModelName), "object": .string("model"), "created": .int(0), "owned_by": .string("vlmrl")])
  }
}

/// One connection: collects a request (head and body up to the bound), routes it, and writes the
/// reply. Replies to chat requests are written from the worker's future, on this channel's event loop.
final class RequestHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  let server: ChatServer
  var head: HTTPRequestHead?
  var body = ByteBuffer()
  /// The body passed the bound: the rest is read and dropped, then a 413 is sent.
  var oversized = false

  init(server: ChatServer) { self.server = server }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let requestHead):
      head = requestHead
      body = context.channel.allocator.buffer(capacity: 0)
      let declared = requestHead.headers.first(name: "Content-Length").flatMap(Int.init) ?? 0
      oversized = declared > server.settings.maxRequestBytes
    case .body(var buffer):
      guard !oversized else { return }
      if body.readableBytes + buffer.readableBytes > server.settings.maxRequestBytes {
        oversized = true
        body.clear()
      } else {
        body.writeBuffer(&buffer)
      }
    case .end:
      guard let head else { return }
      self.head = nil
      let writer = ReplyWriter(channel: context.channel, keepAlive: head.isKeepAlive, server: server)
      if oversized {
        let error = ServingError(status: 413, message: "the request body is over the limit of \(server.settings.maxRequestBytes) bytes",
                                 type: "invalid_request_error", code: "request_too_large")
        writer.json(status: 413, error.json)
        return
      }
      let path = String(head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
      switch server.route(method: head.method, path: path, body: body) {
      case .reply(let status, let json): writer.json(status: status, json)
      case .chat(let request): chat(request, writer: writer, eventLoop: context.eventLoop)
      }
      body = ByteBuffer()
    }
  }

  func chat(_ request: ChatRequest, writer: ReplyWriter, eventLoop: EventLoop) {
    guard server.admit() else {
      let error = ServingError(status: 429, message: "the server has \(server.settings.maxConcurrency) requests in progress "
        + "(--max-concurrency); retry later", type: "server_busy", code: "too_many_requests")
      writer.json(status: 429, error.json)
      return
    }
    let server = self.server
    server.service.submit(request, on: eventLoop).whenComplete { result in
      server.release()
      switch result {
      case .success(let completion):
        if request.stream {
          writer.events(ChatReplies.chunks(completion, includeUsage: request.includeUsage))
        } else {
          writer.json(status: 200, ChatReplies.completion(completion))
        }
      case .failure(let error as ServingError): writer.json(status: error.status, error.json)
      case .failure(let error): writer.json(status: 500, ServingError.server("\(error)").json)
      }
    }
  }
}

/// Writes one reply through the channel (safe from any thread: the channel hops to its event loop).
struct ReplyWriter: Sendable {
  let channel: Channel
  let keepAlive: Bool
  let server: ChatServer

  func json(status: Int, _ body: JSONValue) {
    var bytes = Data(body.jsonString.utf8)
    bytes.append(0x0A)
    var headers = HTTPHeaders()
    headers.add(name: "Content-Type", value: "application/json")
    headers.add(name: "Content-Length", value: String(bytes.count))
    write(status: status, headers: headers, parts: [bytes])
  }

  /// Server-Sent Events: each object as `data: {...}`, then `data: [DONE]`.
  func events(_ chunks: [JSONValue]) {
    var headers = HTTPHeaders()
    headers.add(name: "Content-Type", value: "text/event-stream")
    headers.add(name: "Cache-Control", value: "no-cache")
    let events = chunks.map { Data("data: \($0.jsonString)\n\n".utf8) } + [Data("data: [DONE]\n\n".utf8)]
    write(status: 200, headers: headers, parts: events)
  }

  private func write(status: Int, headers: HTTPHeaders, parts: [Data]) {
    var headers = headers
    headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
    server.count(status)
    let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
    channel.write(HTTPServerResponsePart.head(head), promise: nil)
    for part in parts {
      channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: part))), promise: nil)
    }
    let done = channel.writeAndFlush(HTTPServerResponsePart.end(nil))
    if !keepAlive {
      let channel = self.channel
      done.whenComplete { _ in channel.close(promise: nil) }
    }
  }
}
