import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// What the hub says of one file, from a HEAD request on its `resolve` URL (huggingface_hub's
/// `get_hf_file_metadata`).
struct FileMetadata: Sendable {
  /// `X-Repo-Commit`.
  var commit: String?
  /// `X-Linked-Etag` (LFS files: the SHA-256 of the content), else `ETag` (git files: the blob's
  /// git hash), without `W/` and quotes. The blob's name in the cache.
  var etag: String
  /// `X-Linked-Size`, else `Content-Length` when the reply is not a redirect.
  var size: Int64?
  /// Where the content is fetched: the redirect's `Location` (a CDN), else the `resolve` URL.
  var location: URL

  /// The SHA-256 the content must have: the ETag when it is 64 hex digits (an LFS file).
  var sha256: String? {
    etag.count == 64 && etag.allSatisfy({ $0.isHexDigit }) ? etag.lowercased() : nil
  }
}

extension HubConnection {
  /// The metadata of `file` at `revision`: HEAD with `Accept-Encoding: identity` (so sizes are real),
  /// following only relative redirects.
  func metadata(repo: HubRepo, revision: String, file: String) async throws -> FileMetadata {
    let url = try url(repo.resolvePath(revision: revision, file: file))
    let (response, answered) = try await send(
      .HEAD, url, headers: [("Accept-Encoding", "identity")], relativeOnly: true, repo: repo.description)
    let headers = response.headers
    let isRedirect = (300...399).contains(Int(response.status.code))
    guard let raw = headers.first(name: "X-Linked-Etag") ?? headers.first(name: "ETag") else {
      throw HubError.invalidReply(url: answered.absoluteString, reason: "no ETag for \(file)")
    }
    let etag = Self.normalizeEtag(raw)
    guard !etag.isEmpty, !etag.contains("/"), etag != ".", etag != ".." else {
      throw HubError.invalidReply(url: answered.absoluteString, reason: "ETag '\(raw)' cannot name a cache file")
    }
    let size = (headers.first(name: "X-Linked-Size") ?? (isRedirect ? nil : headers.first(name: "Content-Length")))
      .flatMap { Int64($0) }
    var location = answered
    if isRedirect, let target = headers.first(name: "Location").flatMap({ URL(string: $0, relativeTo: answered) }) {
      location = target.absoluteURL
    }
    return FileMetadata(commit: headers.first(name: "X-Repo-Commit"), etag: etag, size: size, location: location)
  }

  /// huggingface_hub's `_normalize_etag`: `W/"abc"` and `"abc"` are `abc`.
  static func normalizeEtag(_ etag: String) -> String {
    var text = Substring(etag.trimmingCharacters(in: .whitespaces))
    if text.hasPrefix("W/") { text = text.dropFirst(2) }
    return text.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
  }

  /// `blobs/<etag>` of `storage`, downloaded unless it is there. The content goes to
  /// `blobs/<etag>.incomplete` first: an existing one is continued with a `Range` request (a server
  /// that answers 200 instead of 206 sends it all again), then its size and, for LFS files, its
  /// SHA-256 are checked before it is renamed into place. A short file stays for the next run to
  /// resume; a long one or a wrong checksum is deleted.
  func fetchBlob(_ meta: FileMetadata, file: String, storage: URL, repo: HubRepo, progress: HubProgress) async throws -> URL {
    let blobs = storage.appendingPathComponent("blobs")
    let blob = blobs.appendingPathComponent(meta.etag)
    if FileManager.default.fileExists(atPath: blob.path) { return blob }
    try Self.makeFolder(blobs)
    // Ranks of one run (or two runs) that download the same file take turns, as huggingface_hub's
    // `.locks/<repo folder>/<etag>.lock`; whoever comes second finds the blob in place.
    let locks = storage.deletingLastPathComponent().appendingPathComponent(".locks").appendingPathComponent(storage.lastPathComponent)
    try Self.makeFolder(locks)
    let lock = try await FileLock.acquire(locks.appendingPathComponent(meta.etag + ".lock"))
    defer { lock.release() }
    if FileManager.default.fileExists(atPath: blob.path) { return blob }
    let partial = blobs.appendingPathComponent(meta.etag + ".incomplete")
    let name = "\(repo.id)/\(file)"
    var have = Self.fileSize(partial) ?? 0
    if let size = meta.size, have > size {
      try? FileManager.default.removeItem(at: partial)
      have = 0
    }
    var line: FileProgress?
    if meta.size == nil || have < meta.size! {
      line = try await receive(meta, into: partial, resumingAt: have, name: name, repo: repo, progress: progress)
    }
    try Self.verify(partial, meta: meta, name: name)
    guard rename(partial.path, blob.path) == 0 else {
      throw HubError.io(path: blob.path, reason: "cannot move the download into place: \(String(cString: strerror(errno)))")
    }
    line?.finish()
    return blob
  }

  /// GET of the content into `partial`, from byte `offset` on when it is above 0.
  private func receive(
    _ meta: FileMetadata, into partial: URL, resumingAt offset: Int64, name: String, repo: HubRepo, progress: HubProgress
  ) async throws -> FileProgress {
    var offset = offset
    for _ in 0..<2 {
      var headers = [("Accept-Encoding", "identity")]
      if offset > 0 { headers.append(("Range", "bytes=\(offset)-")) }
      let (response, _) = try await send(.GET, meta.location, headers: headers, accepting: [416], repo: repo.description)
      if response.status.code == 416 {
        // The partial file does not fit the content any more: start over once.
        _ = try? await response.body.collect(upTo: 1 << 20)
        try? FileManager.default.removeItem(at: partial)
        offset = 0
        continue
      }
      guard [200, 206].contains(response.status.code) else {
        throw HubError.invalidReply(url: meta.location.absoluteString, reason: "status \(response.status.code) instead of the file")
      }
      if offset > 0 && response.status.code != 206 { offset = 0 }
      let handle = try Self.open(partial, truncate: offset == 0)
      defer { try? handle.close() }
      let line = FileProgress(progress, name: name, total: meta.size, resumedFrom: offset)
      do {
        for try await buffer in response.body {
          try handle.write(contentsOf: Data(buffer.readableBytesView))
          line.advance(buffer.readableBytes)
        }
      } catch let error as HubError {
        throw error
      } catch {
        throw HubError.incomplete(file: name, received: line.received, expected: meta.size ?? -1, partial: partial.path)
      }
      return line
    }
    throw HubError.httpStatus(repo: repo.description, url: meta.location.absoluteString, status: 416,
                              message: "the range after a restart was refused too")
  }

  /// The size and SHA-256 checks of a finished download; a failure deletes the partial file unless
  /// it is merely short (resumable).
  static func verify(_ partial: URL, meta: FileMetadata, name: String) throws {
    let actual = fileSize(partial) ?? 0
    if let size = meta.size, actual != size {
      if actual < size { throw HubError.incomplete(file: name, received: actual, expected: size, partial: partial.path) }
      try? FileManager.default.removeItem(at: partial)
      throw HubError.sizeMismatch(file: name, expected: size, actual: actual)
    }
    guard let expected = meta.sha256 else { return }
    let digest = try sha256(of: partial)
    if digest != expected {
      try? FileManager.default.removeItem(at: partial)
      throw HubError.checksumMismatch(file: name, expected: expected, actual: digest)
    }
  }

  static func sha256(of url: URL) throws -> String {
    guard let handle = try? FileHandle(forReadingFrom: url) else { throw HubError.io(path: url.path, reason: "cannot read") }
    defer { try? handle.close() }
    var hasher = SHA256()
    while let chunk = try handle.read(upToCount: 8 << 20), !chunk.isEmpty {
      hasher.update(data: chunk)
    }
    return hasher.finalize().map { String(format: "%02x", $0) }.joined()
  }

  static func fileSize(_ url: URL) -> Int64? {
    (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.int64Value
  }

  static func makeFolder(_ url: URL) throws {
    do {
      try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    } catch {
      throw HubError.io(path: url.path, reason: "cannot create the folder: \(error.localizedDescription)")
    }
  }

  static func open(_ url: URL, truncate: Bool) throws -> FileHandle {
    if truncate || !FileManager.default.fileExists(atPath: url.path) {
      guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
        throw HubError.io(path: url.path, reason: "cannot create the file")
      }
    }
    guard let handle = try? FileHandle(forWritingTo: url) else { throw HubError.io(path: url.path, reason: "cannot write") }
    _ = try? handle.seekToEnd()
    return handle
  }
}

/// An exclusive `flock` on a lock file, waited for without blocking a thread.
final class FileLock: Sendable {
  let descriptor: Int32

  static func acquire(_ url: URL) async throws -> FileLock {
    let descriptor = open(url.path, O_RDWR | O_CREAT, 0o644)
    guard descriptor >= 0 else {
      throw HubError.io(path: url.path, reason: "cannot open the lock file: \(String(cString: strerror(errno)))")
    }
    while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
      guard errno == EWOULDBLOCK || errno == EINTR else {
        let reason = String(cString: strerror(errno))
        close(descriptor)
        throw HubError.io(path: url.path, reason: "cannot lock: \(reason)")
      }
      try await Task.sleep(nanoseconds: 100_000_000)
    }
    return FileLock(descriptor: descriptor)
  }

  init(descriptor: Int32) { self.descriptor = descriptor }

  func release() {
    flock(descriptor, LOCK_UN)
    close(descriptor)
  }
}
