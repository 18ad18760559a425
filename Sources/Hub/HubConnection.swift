import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The HTTP side of hub downloads: one AsyncHTTPClient that follows no redirect by itself, so that
/// redirects are followed here as huggingface_hub does (the token only ever goes to the endpoint's
/// own origin, never to a CDN a file is redirected to).
struct HubConnection: Sendable {
  let client: HTTPClient
  let settings: HubSettings
  static let maxRedirects = 10
  static let userAgent = "vlmrl (huggingface_hub-compatible cache)"

  /// Runs `body` with a connection and shuts the client down afterwards.
  static func with<T: Sendable>(_ settings: HubSettings, _ body: (HubConnection) async throws -> T) async throws -> T {
    let configuration = HTTPClient.Configuration(
      redirectConfiguration: .disallow, timeout: .init(connect: .seconds(30), read: .seconds(120)))
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    do {
      let result = try await body(HubConnection(client: client, settings: settings))
      try? await client.shutdown()
      return result
    } catch {
      try? await client.shutdown()
      throw error
    }
  }

  /// The absolute URL of a path on the endpoint (`/api/...`, `/org/name/resolve/...`).
  func url(_ path: String) throws -> URL {
    guard let url = URL(string: settings.endpoint + path) else { throw HubError.invalidEndpoint(settings.endpoint + path) }
    return url
  }

  /// Sends a request and follows redirects: every one (`relativeOnly` false), or only those whose
  /// `Location` has no host (huggingface_hub's HEAD on `resolve`: a renamed repo is followed, a CDN
  /// redirect is returned as is, its `Location` being where the file is fetched). A status of 400
  /// or more becomes a `HubError` naming `repo`, unless it is in `accepting`.
  func send(
    _ method: HTTPMethod, _ start: URL, headers extra: [(String, String)] = [], relativeOnly: Bool = false,
    accepting: Set<Int> = [], repo: String
  ) async throws -> (response: HTTPClientResponse, url: URL) {
    var url = start
    for _ in 0...Self.maxRedirects {
      var request = HTTPClientRequest(url: url.absoluteString)
      request.method = method
      request.headers.add(name: "User-Agent", value: Self.userAgent)
      if let token = settings.token, settings.isEndpointOrigin(url) {
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
      }
      for (name, value) in extra { request.headers.add(name: name, value: value) }
      let response: HTTPClientResponse
      do {
        response = try await client.execute(request, deadline: .distantFuture)
      } catch {
        throw HubError.network(url: url.absoluteString, reason: "\(error)")
      }
      let status = Int(response.status.code)
      if (300...399).contains(status), let location = response.headers.first(name: "Location") {
        guard let target = URL(string: location, relativeTo: url)?.absoluteURL else {
          throw HubError.invalidReply(url: url.absoluteString, reason: "redirect to an invalid Location '\(location)'")
        }
        let isRelative = URL(string: location)?.host == nil
        if relativeOnly && !isRelative { return (response, url) }
        _ = try? await response.body.collect(upTo: 1 << 20)
        url = target
        continue
      }
      if status >= 400 && !accepting.contains(status) {
        throw await Self.statusError(response, url: url, repo: repo, tokenSent: settings.token != nil && settings.isEndpointOrigin(url))
      }
      return (response, url)
    }
    throw HubError.tooManyRedirects(url: start.absoluteString)
  }

  /// The error for a failed status. The hub answers 401 with `X-Error-Code: RepoNotFound` for a repo
  /// that does not exist (or is private) when no valid token is sent.
  static func statusError(_ response: HTTPClientResponse, url: URL, repo: String, tokenSent: Bool) async -> HubError {
    let status = Int(response.status.code)
    let code = response.headers.first(name: "X-Error-Code")
    switch status {
    case 404:
      return .notFound(repo: repo, url: url.absoluteString, code: code)
    case 401 where code == "RepoNotFound":
      return .notFound(repo: repo, url: url.absoluteString, code: code)
    case 401, 403:
      return .unauthorized(repo: repo, url: url.absoluteString, status: status, tokenSent: tokenSent)
    default:
      var message = response.headers.first(name: "X-Error-Message") ?? ""
      if message.isEmpty, let body = try? await response.body.collect(upTo: 4096) {
        message = String(buffer: body).trimmingCharacters(in: .whitespacesAndNewlines)
      }
      return .httpStatus(repo: repo, url: url.absoluteString, status: status, message: String(message.prefix(300)))
    }
  }

  /// The whole body of a reply (at most `limit` bytes).
  static func body(_ response: HTTPClientResponse, url: URL, limit: Int = 256 << 20) async throws -> Data {
    do {
      return Data(try await response.body.collect(upTo: limit).readableBytesView)
    } catch {
      throw HubError.network(url: url.absoluteString, reason: "reading the reply: \(error)")
    }
  }
}
