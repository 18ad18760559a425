import Foundation

/// Errors of hub downloads. Each names the repo, file or URL involved and what a user can do.
public enum HubError: Error, Sendable, Equatable, CustomStringConvertible {
  /// No cache root could be formed (no `HF_HUB_CACHE`, `HF_HOME`, `XDG_CACHE_HOME` or `HOME`).
  case noCacheFolder
  /// `HF_ENDPOINT` is not an http(s) URL.
  case invalidEndpoint(String)
  /// Offline mode is on and the repo (or the wanted files) is not in the cache.
  case offline(repo: String, revision: String, searched: [String])
  /// 401 or 403: private or gated repo, or a wrong token.
  case unauthorized(repo: String, url: String, status: Int, tokenSent: Bool)
  /// 404: no such repo, revision or file (`X-Error-Code` says which when the hub sends it).
  case notFound(repo: String, url: String, code: String?)
  /// Any other status the hub answered with.
  case httpStatus(repo: String, url: String, status: Int, message: String)
  /// The request did not get an answer (connection refused, DNS, timeout, ...).
  case network(url: String, reason: String)
  /// The reply lacks what the hub protocol promises (ETag, commit hash, valid JSON, ...).
  case invalidReply(url: String, reason: String)
  /// More redirects than a download follows.
  case tooManyRedirects(url: String)
  /// An LFS file whose SHA-256 is not its ETag: the partial file was deleted.
  case checksumMismatch(file: String, expected: String, actual: String)
  /// A download longer than `X-Linked-Size` / `Content-Length`: the partial file was deleted.
  case sizeMismatch(file: String, expected: Int64, actual: Int64)
  /// The connection ended before the whole file came; the partial file is kept and the next run resumes it.
  case incomplete(file: String, received: Int64, expected: Int64, partial: String)
  /// The repo lists no file a download wants.
  case noMatchingFiles(repo: String, revision: String, wanted: String, available: [String])
  /// A dataset argument that is neither a local path nor a dataset on the hub.
  case datasetNotFound(argument: String, localPath: String, repo: String, reason: String)
  /// A file of the cache could not be written.
  case io(path: String, reason: String)

  public var description: String {
    switch self {
    case .noCacheFolder:
      return "no hub cache folder: set HF_HUB_CACHE, HF_HOME or HOME"
    case .invalidEndpoint(let endpoint):
      return "HF_ENDPOINT '\(endpoint)' is not an http(s) URL"
    case .offline(let repo, let revision, let searched):
      return "\(repo) (revision \(revision)) is not in the hub cache and offline mode is on (HF_HUB_OFFLINE or "
        + "TRANSFORMERS_OFFLINE); unset it to download, or download it elsewhere into the cache. Searched:\n"
        + searched.map { "  \($0)" }.joined(separator: "\n")
    case .unauthorized(let repo, let url, let status, let tokenSent):
      return "\(repo): \(status) \(status == 401 ? "Unauthorized" : "Forbidden") from \(url): the repo is private or gated, or "
        + (tokenSent ? "the token (HF_TOKEN or the token file) is not allowed to read it" : "needs a token: set HF_TOKEN")
    case .notFound(let repo, let url, let code):
      let what: String
      switch code {
      case "RevisionNotFound": what = "no such revision"
      case "EntryNotFound": what = "no such file"
      case "RepoNotFound": what = "no such repo (or it is private and no valid token was sent)"
      default: what = "not found"
      }
      return "\(repo): 404 from \(url): \(what)"
    case .httpStatus(let repo, let url, let status, let message):
      return "\(repo): HTTP \(status) from \(url)" + (message.isEmpty ? "" : ": \(message)")
    case .network(let url, let reason):
      return "cannot reach \(url): \(reason) (set HF_HUB_OFFLINE=1 to use the cache only)"
    case .invalidReply(let url, let reason):
      return "\(url): not a Hugging Face hub reply: \(reason) (is HF_ENDPOINT right?)"
    case .tooManyRedirects(let url):
      return "\(url): too many redirects"
    case .checksumMismatch(let file, let expected, let actual):
      return "\(file): SHA-256 \(actual) is not the hub's \(expected); the download was deleted, run again"
    case .sizeMismatch(let file, let expected, let actual):
      return "\(file): received \(actual) bytes, the hub said \(expected); the download was deleted, run again"
    case .incomplete(let file, let received, let expected, let partial):
      return "\(file): the connection ended after \(received) of \(expected) bytes; run again to resume (\(partial))"
    case .noMatchingFiles(let repo, let revision, let wanted, let available):
      let shown = available.prefix(20).joined(separator: ", ") + (available.count > 20 ? ", ..." : "")
      return "\(repo) (revision \(revision)) has no \(wanted); its files: \(available.isEmpty ? "none" : shown)"
    case .datasetNotFound(let argument, let localPath, let repo, let reason):
      return "'\(argument)' is neither a local file or folder (\(localPath) does not exist) nor a dataset on the hub "
        + "(\(reason.hasPrefix("dataset \(repo)") ? reason : "dataset \(repo): \(reason)"))"
    case .io(let path, let reason):
      return "\(path): \(reason)"
    }
  }
}
