import Foundation
import ModelConfig

/// How the hub is reached, read from an environment dictionary the way huggingface_hub reads the
/// process environment (docs/model-files.md, "Hub downloads").
public struct HubSettings: Sendable {
  /// `HF_ENDPOINT` without a trailing slash; default `https://huggingface.co`.
  public var endpoint: String
  /// `HF_TOKEN` (or its old name `HUGGING_FACE_HUB_TOKEN`), else the token file; sent as
  /// `Authorization: Bearer` to the endpoint's own host only.
  public var token: String?
  /// `HF_HUB_OFFLINE` or `TRANSFORMERS_OFFLINE` set to 1/ON/YES/TRUE: no request is ever made.
  public var offline: Bool
  /// Where downloads go: the first of `ModelLocator.cacheRoots` (`HF_HUB_CACHE`, ... `~/.cache/huggingface/hub`).
  public var cacheRoot: URL
  /// Every cache root, searched in order for what is already downloaded.
  public var cacheRoots: [URL]

  public static let defaultEndpoint = "https://huggingface.co"

  public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
    let roots = ModelLocator.cacheRoots(environment: environment)
    guard let first = roots.first else {
      throw HubError.noCacheFolder
    }
    cacheRoot = first
    cacheRoots = roots
    var endpoint = environment["HF_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultEndpoint
    while endpoint.hasSuffix("/") { endpoint.removeLast() }
    guard let url = URL(string: endpoint), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
      throw HubError.invalidEndpoint(endpoint)
    }
    self.endpoint = endpoint
    offline = Self.isTrue(environment["HF_HUB_OFFLINE"]) || Self.isTrue(environment["TRANSFORMERS_OFFLINE"])
    token = Self.token(environment)
  }

  /// huggingface_hub's `_is_true`: 1, ON, YES or TRUE in any case.
  static func isTrue(_ value: String?) -> Bool {
    guard let value else { return false }
    return ["1", "ON", "YES", "TRUE"].contains(value.trimmingCharacters(in: .whitespaces).uppercased())
  }

  /// `HF_TOKEN`, `HUGGING_FACE_HUB_TOKEN`, then the file `HF_TOKEN_PATH`, else `token` in the hub
  /// home (`$HF_HOME`, `$XDG_CACHE_HOME/huggingface`, `~/.cache/huggingface`), as huggingface_hub.
  static func token(_ environment: [String: String]) -> String? {
    for name in ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"] {
      if let value = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty { return value }
    }
    let file: String?
    if let path = environment["HF_TOKEN_PATH"], !path.isEmpty {
      file = path
    } else if let home = environment["HF_HOME"], !home.isEmpty {
      file = home + "/token"
    } else if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
      file = xdg + "/huggingface/token"
    } else {
      file = environment["HOME"].map { $0 + "/.cache/huggingface/token" }
    }
    guard let file, let text = try? String(contentsOfFile: expandTilde(file, environment), encoding: .utf8) else { return nil }
    let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
    return trimmed.isEmpty ? nil : trimmed
  }

  static func expandTilde(_ path: String, _ environment: [String: String]) -> String {
    guard path == "~" || path.hasPrefix("~/"), let home = environment["HOME"] else { return path }
    return home + path.dropFirst()
  }

  /// Whether `url` is on the endpoint's origin (scheme, host, port): only there is the token sent.
  func isEndpointOrigin(_ url: URL) -> Bool {
    guard let base = URL(string: endpoint) else { return false }
    func port(_ u: URL) -> Int? { u.port ?? (u.scheme?.lowercased() == "https" ? 443 : u.scheme?.lowercased() == "http" ? 80 : nil) }
    return base.scheme?.lowercased() == url.scheme?.lowercased() && base.host?.lowercased() == url.host?.lowercased()
      && port(base) == port(url)
  }
}

/// A repository on the hub: a model or a dataset.
public struct HubRepo: Sendable, Hashable, CustomStringConvertible {
  public enum Kind: String, Sendable { case model, dataset }
  public let kind: Kind
  /// `org/name`.
  public let id: String

  /// nil unless `id` is `org/name` with each part of letters, digits, `-`, `_` and `.` (not
  /// starting or ending with `-` or `.`, no `--` or `..`), as the hub names repos.
  public init?(_ id: String, kind: Kind) {
    guard let (organization, name) = ModelLocator.hubId(id), Self.isValidPart(organization), Self.isValidPart(name) else {
      return nil
    }
    self.id = id
    self.kind = kind
  }

  static func isValidPart(_ part: String) -> Bool {
    let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    guard part.count <= 96, part.allSatisfy(allowed.contains), !part.contains("--"), !part.contains("..") else { return false }
    return !"-.".contains(part.first!) && !"-.".contains(part.last!)
  }

  public var description: String { kind == .model ? id : "dataset \(id)" }

  /// The cache folder name: `models--org--name` or `datasets--org--name`.
  public var folderName: String { "\(kind.rawValue)s--" + id.replacingOccurrences(of: "/", with: "--") }

  /// `/api/models/{id}/revision/{revision}` (datasets: `/api/datasets/...`), the revision fully escaped.
  func apiPath(revision: String) -> String {
    "/api/\(kind.rawValue)s/\(id)/revision/\(Self.escape(revision, keepSlash: false))"
  }

  /// `/{id}/resolve/{revision}/{file}` (datasets: `/datasets/{id}/...`), as `hf_hub_url` builds it.
  func resolvePath(revision: String, file: String) -> String {
    (kind == .dataset ? "/datasets/" : "/") + "\(id)/resolve/\(Self.escape(revision, keepSlash: false))/\(Self.escape(file, keepSlash: true))"
  }

  /// Python's `urllib.parse.quote`: everything but letters, digits and `_.-~` (and `/` when kept) escaped.
  static func escape(_ text: String, keepSlash: Bool) -> String {
    var allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-~")
    if keepSlash { allowed.insert("/") }
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
  }
}
