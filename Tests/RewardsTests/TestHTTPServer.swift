import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A real HTTP/1.1 server on 127.0.0.1 (random port) whose replies come from a closure; it records
/// every request (path, Authorization header, body).
final class TestHTTPServer: @unchecked Sendable {
  struct Reply: Sendable {
    var status: Int = 200
    var body: String
    /// Seconds before anything of the reply is sent.
    var delay: Double = 0
    /// Extra response headers (e.g. `Location`).
    var headers: [String: String] = [:]
    /// Seconds between the head plus the first half of the body and the rest (a slow body).
    var trickle: Double = 0
  }
  typealias Responder = @Sendable (_ body: String, _ requestNumber: Int) -> Reply

  let responder: Responder
  private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
  private var channel: Channel?
  private let lock = NSLock()
  private var recorded: [(path: String, authorization: String?, body: String)] = []
  private(set) var port = 0

  var requests: [(path: String, authorization: String?, body: String)] { lock.withLock { recorded } }
  var baseURL: String { "http://127.0.0.1:\(port)" }

  init(_ responder: @escaping Responder) async throws {
    self.responder = responder
    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { [self] channel in
        channel.pipeline.configureHTTPServerPipeline().flatMapThrowing {
          try channel.pipeline.syncOperations.addHandler(Handler(server: self))
        }
      }
    let channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
    self.channel = channel
    port = channel.localAddress?.port ?? 0
  }

  func record(path: String, authorization: String?, body: String) -> Int {
    lock.withLock {
      recorded.append((path, authorization, body))
      return recorded.count
    }
  }

  func shutdown() async {
    try? await channel?.close()
    try? await group.shutdownGracefully()
  }

  final class Handler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let server: TestHTTPServer
    var head: HTTPRequestHead?
    var body = ""

    init(server: TestHTTPServer) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      switch unwrapInboundIn(data) {
      case .head(let requestHead):
        head = requestHead
        body = ""
      case .body(var buffer):
        body += buffer.readString(length: buffer.readableBytes) ?? ""
      case .end:
        let number = server.record(path: head?.uri ?? "", authorization: head?.headers.first(name: "Authorization"), body: body)
        let reply = server.responder(body, number)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let send: @Sendable () -> Void = {
          let (handler, context) = bound.value
          handler.respond(reply, context: context)
        }
        if reply.delay > 0 {
          context.eventLoop.scheduleTask(in: .milliseconds(Int64(reply.delay * 1000))) { send() }
        } else {
          send()
        }
      }
    }

    func respond(_ reply: Reply, context: ChannelHandlerContext) {
      var headers = HTTPHeaders()
      headers.add(name: "Content-Type", value: "application/json")
      headers.add(name: "Content-Length", value: String(reply.body.utf8.count))
      for (name, value) in reply.headers { headers.add(name: name, value: value) }
      let status = HTTPResponseStatus(statusCode: reply.status)
      context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
      guard reply.trickle > 0 else {
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: reply.body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        return
      }
      let bytes = Array(reply.body.utf8)
      let half = bytes.count / 2
      context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: bytes[..<half])))), promise: nil)
      let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
      let rest = Array(bytes[half...])
      context.eventLoop.scheduleTask(in: .milliseconds(Int64(reply.trickle * 1000))) {
        let (handler, context) = bound.value
        context.write(handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: rest)))), promise: nil)
        context.writeAndFlush(handler.wrapOutboundOut(.end(nil)), promise: nil)
      }
    }
  }
}
