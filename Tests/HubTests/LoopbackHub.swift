import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One request as a loopback server saw it.
struct SeenRequest: Sendable {
  var method: String
  var path: String
  var headers: [String: String]
  var port: Int
}

/// A reply of a loopback server: status, headers and a binary body (not sent for HEAD); status 0
/// closes the connection without a reply.
struct LoopbackReply: Sendable {
  var status: Int
  var headers: [(String, String)] = []
  var body: [UInt8] = []

  static func json(_ text: String, status: Int = 200) -> LoopbackReply {
    LoopbackReply(status: status, headers: [("Content-Type", "application/json")], body: Array(text.utf8))
  }

  static func error(_ status: Int, code: String? = nil) -> LoopbackReply {
    LoopbackReply(status: status, headers: code.map { [("X-Error-Code", $0)] } ?? [], body: Array("error".utf8))
  }
}

/// HTTP/1.1 servers on 127.0.0.1 (one random port each) answering from a closure and recording every
/// request with its headers.
final class LoopbackServer: @unchecked Sendable {
  typealias Route = @Sendable (SeenRequest) -> LoopbackReply
  private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
  private var channel: Channel?
  private let lock = NSLock()
  private var seen: [SeenRequest] = []
  private var route: Route = { _ in .error(500) }
  private(set) var port = 0

  var baseURL: String { "http://127.0.0.1:\(port)" }
  var requests: [SeenRequest] { lock.withLock { seen } }

  init() async throws {
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

  func serve(_ route: @escaping Route) { lock.withLock { self.route = route } }

  fileprivate func answer(_ request: SeenRequest) -> LoopbackReply {
    let route = lock.withLock {
      seen.append(request)
      return self.route
    }
    return route(request)
  }

  func shutdown() async {
    try? await channel?.close()
    try? await group.shutdownGracefully()
  }

  private final class Handler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let server: LoopbackServer
    var head: HTTPRequestHead?

    init(server: LoopbackServer) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      switch unwrapInboundIn(data) {
      case .head(let requestHead): head = requestHead
      case .body: break
      case .end:
        guard let head else { return }
        var headers: [String: String] = [:]
        for (name, value) in head.headers { headers[name.lowercased()] = value }
        let request = SeenRequest(method: head.method.rawValue, path: head.uri, headers: headers, port: server.port)
        let reply = server.answer(request)
        if reply.status == 0 {
          context.close(promise: nil)  // a server that hangs up without a reply
          return
        }
        var responseHeaders = HTTPHeaders()
        for (name, value) in reply.headers { responseHeaders.add(name: name, value: value) }
        if !responseHeaders.contains(name: "Content-Length") {
          responseHeaders.add(name: "Content-Length", value: String(reply.body.count))
        }
        let status = HTTPResponseStatus(statusCode: reply.status)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: responseHeaders))), promise: nil)
        if head.method != .HEAD && !reply.body.isEmpty {
          context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: reply.body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
      }
    }
  }
}

/// A repo the loopback hub serves: commits by revision name, files by name.
struct FakeRepo: Sendable {
  struct File: Sendable {
    var bytes: [UInt8]
    /// Served as the hub serves LFS files: a redirect to the CDN, `X-Linked-Etag` = SHA-256.
    var lfs: Bool
  }
  var commit: String
  var revisions: [String: String] = [:]
  var files: [String: File]

  static func sha256(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }

  /// The git blob hash, the ETag of a file kept in git.
  static func gitHash(_ bytes: [UInt8]) -> String {
    Insecure.SHA1.hash(data: Array("blob \(bytes.count)\0".utf8) + bytes).map { String(format: "%02x", $0) }.joined()
  }

  func etag(_ file: String) -> String? {
    guard let entry = files[file] else { return nil }
    return entry.lfs ? Self.sha256(entry.bytes) : Self.gitHash(entry.bytes)
  }
}

/// A Hugging Face hub on loopback: the repo API, `resolve` (HEAD and GET) with the hub's headers,
/// LFS files redirected to a second server (another origin, like the CDN) that honours `Range`.
final class LoopbackHub: @unchecked Sendable {
  let hub: LoopbackServer
  let cdn: LoopbackServer
  private let lock = NSLock()
  private var repos: [String: FakeRepo] = [:]
  /// Files whose CDN content is altered (same length) so the checksum fails.
  var corrupted: Set<String> { get { lock.withLock { _corrupted } } set { lock.withLock { _corrupted = newValue } } }
  private var _corrupted: Set<String> = []
  /// When set, every hub request needs `Authorization: Bearer <token>` (else 401).
  var token: String? { get { lock.withLock { _token } } set { lock.withLock { _token = newValue } } }
  private var _token: String?
  /// When true the CDN ignores `Range` and always sends the whole file with 200.
  var ignoresRange: Bool { get { lock.withLock { _ignoresRange } } set { lock.withLock { _ignoresRange = newValue } } }
  private var _ignoresRange = false
  /// Repos renamed: a request for the old id is redirected (relative `Location`) to the new one.
  var renamed: [String: String] { get { lock.withLock { _renamed } } set { lock.withLock { _renamed = newValue } } }
  private var _renamed: [String: String] = [:]

  init() async throws {
    hub = try await LoopbackServer()
    cdn = try await LoopbackServer()
    hub.serve { [unowned self] in self.answerHub($0) }
    cdn.serve { [unowned self] in self.answerCDN($0) }
  }

  var endpoint: String { hub.baseURL }

  /// `key`: `models/org/name` or `datasets/org/name`.
  func add(_ key: String, _ repo: FakeRepo) { lock.withLock { repos[key] = repo } }

  func shutdown() async {
    await hub.shutdown()
    await cdn.shutdown()
  }

  private func answerHub(_ request: SeenRequest) -> LoopbackReply {
    let (repos, token, renamed) = lock.withLock { (self.repos, _token, _renamed) }
    if let token, request.headers["authorization"] != "Bearer \(token)" { return .error(401, code: "GatedRepo") }
    let path = request.path
    for (old, new) in renamed where path.contains("/\(old)/") {
      return LoopbackReply(status: 307, headers: [("Location", path.replacingOccurrences(of: "/\(old)/", with: "/\(new)/"))])
    }
    if path.hasPrefix("/api/") {
      // /api/{models|datasets}/{org}/{name}/revision/{rev}
      let parts = path.dropFirst(5).split(separator: "/", maxSplits: 4).map(String.init)
      guard parts.count == 5, parts[3] == "revision" else { return .error(400) }
      guard let repo = repos["\(parts[0])/\(parts[1])/\(parts[2])"] else { return .error(401, code: "RepoNotFound") }
      let revision = parts[4].removingPercentEncoding ?? parts[4]
      guard let commit = commit(repo, revision) else { return .error(404, code: "RevisionNotFound") }
      let siblings = repo.files.keys.sorted().map { #"{"rfilename":"\#($0)"}"# }.joined(separator: ",")
      return .json(#"{"id":"\#(parts[1])/\#(parts[2])","sha":"\#(commit)","siblings":[\#(siblings)]}"#)
    }
    // /{datasets/}{org}/{name}/resolve/{rev}/{file}
    var rest = Substring(path.dropFirst())
    var kind = "models"
    if rest.hasPrefix("datasets/") {
      kind = "datasets"
      rest = rest.dropFirst("datasets/".count)
    }
    let parts = rest.split(separator: "/", maxSplits: 4).map(String.init)
    guard parts.count == 5, parts[2] == "resolve" else { return .error(400) }
    guard let repo = repos["\(kind)/\(parts[0])/\(parts[1])"] else { return .error(401, code: "RepoNotFound") }
    guard let commit = commit(repo, parts[3].removingPercentEncoding ?? parts[3]) else { return .error(404, code: "RevisionNotFound") }
    let file = parts[4].removingPercentEncoding ?? parts[4]
    guard let entry = repo.files[file], let etag = repo.etag(file) else { return .error(404, code: "EntryNotFound") }
    if entry.lfs {
      return LoopbackReply(status: 302, headers: [
        ("Location", cdn.baseURL + "/blobs/\(etag)?name=\(file)"), ("X-Repo-Commit", commit),
        ("X-Linked-Etag", "\"\(etag)\""), ("X-Linked-Size", String(entry.bytes.count)), ("ETag", "\"pointer-\(etag.prefix(8))\""),
      ])
    }
    return LoopbackReply(status: 200, headers: [("X-Repo-Commit", commit), ("ETag", "\"\(etag)\"")], body: entry.bytes)
  }

  private func commit(_ repo: FakeRepo, _ revision: String) -> String? {
    if revision == repo.commit || revision == "main" { return repo.commit }
    if let named = repo.revisions[revision] { return named }
    return repo.revisions.values.contains(revision) ? revision : nil
  }

  private func answerCDN(_ request: SeenRequest) -> LoopbackReply {
    let (repos, corrupted, ignoresRange) = lock.withLock { (self.repos, _corrupted, _ignoresRange) }
    let name = request.path.components(separatedBy: "?name=").last ?? ""
    let sha = request.path.dropFirst("/blobs/".count).prefix(64)
    guard let entry = repos.values.lazy.compactMap({ $0.files.values.first { $0.lfs && FakeRepo.sha256($0.bytes) == sha } }).first
    else { return .error(404) }
    var bytes = entry.bytes
    if corrupted.contains(name), !bytes.isEmpty { bytes[bytes.count - 1] ^= 0xFF }
    if !ignoresRange, let range = request.headers["range"], range.hasPrefix("bytes="), range.hasSuffix("-"),
      let start = Int(range.dropFirst(6).dropLast())
    {
      guard start < bytes.count else { return .error(416) }
      return LoopbackReply(status: 206, headers: [("Content-Range", "bytes \(start)-\(bytes.count - 1)/\(bytes.count)")],
                           body: Array(bytes[start...]))
    }
    return LoopbackReply(status: 200, body: bytes)
  }
}
