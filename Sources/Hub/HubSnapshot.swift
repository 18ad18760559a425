import AsyncHTTPClient
import Foundation
import ModelConfig
import NIOCore

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Repo snapshots in the hub cache, laid out as huggingface_hub lays them out (so transformers and
/// `datasets` read what vlmrl downloaded, and the other way round):
///
/// ```
/// <cache root>/models--org--name/
///   blobs/<etag>                       the content (LFS files: named by their SHA-256)
///   snapshots/<commit>/<file>          a relative symlink to ../../blobs/<etag>
///   refs/<revision>                    the commit hash the revision (main, a tag) resolved to
/// ```
public enum HubSnapshot {
  /// The cached snapshot of `repo` for `revision` (`refs/<revision>`, else the revision as a commit
  /// folder, else the only snapshot), searching every cache root; the paths looked at go to `searched`.
  public static func cached(_ repo: HubRepo, revision: String, settings: HubSettings, searched: inout [String]) -> URL? {
    for root in settings.cacheRoots {
      let folder = root.appendingPathComponent(repo.folderName)
      if let snapshot = ModelLocator.snapshot(in: folder, revision: revision, searched: &searched) { return snapshot }
    }
    return nil
  }

  /// What the API says of a revision: its commit and file list.
  struct RepoInfo: Decodable, Sendable {
    struct Sibling: Decodable, Sendable { var rfilename: String }
    var sha: String
    var siblings: [Sibling]
  }

  /// Downloads the files `select` picks from the repo's listing at `revision` into the cache (only
  /// those not there yet) and returns the snapshot folder. The revision is resolved to a commit
  /// through the API (`GET /api/{models|datasets}/{repo}/revision/{revision}`: `sha`, `siblings`)
  /// and every file is fetched at that commit, so a branch moving during the download cannot mix
  /// two commits. The snapshot's links and `refs/<revision>` are written only once every file is
  /// complete: an interrupted download leaves blobs (and a partial file to resume), not a snapshot
  /// that looks whole. Offline mode is the caller's to check: this always goes to the network.
  public static func download(
    _ repo: HubRepo, revision: String, settings: HubSettings, progress: HubProgress,
    select: @Sendable ([String]) throws -> [String]
  ) async throws -> URL {
    try await HubConnection.with(settings) { connection in
      let info = try await connection.repoInfo(repo, revision: revision)
      let files = try select(info.siblings.map(\.rfilename))
      let storage = settings.cacheRoot.appendingPathComponent(repo.folderName)
      var blobs: [(file: String, blob: URL)] = []
      for file in files {
        try checkRelative(file, repo: repo)
        let meta = try await connection.metadata(repo: repo, revision: info.sha, file: file)
        blobs.append((file, try await connection.fetchBlob(meta, file: file, storage: storage, repo: repo, progress: progress)))
      }
      let snapshot = storage.appendingPathComponent("snapshots").appendingPathComponent(info.sha)
      for (file, blob) in blobs { try link(file, in: snapshot, to: blob) }
      if revision != info.sha { try writeRef(revision, commit: info.sha, storage: storage) }
      return snapshot
    }
  }

  /// `snapshots/<commit>/<file>` -> `../../blobs/<etag>` (one more `../` per folder in `file`).
  static func link(_ file: String, in snapshot: URL, to blob: URL) throws {
    let pointer = snapshot.appendingPathComponent(file)
    try HubConnection.makeFolder(pointer.deletingLastPathComponent())
    let depth = file.split(separator: "/").count - 1
    let target = String(repeating: "../", count: 2 + depth) + "blobs/" + blob.lastPathComponent
    let fileManager = FileManager.default
    if (try? fileManager.destinationOfSymbolicLink(atPath: pointer.path)) == target { return }
    try? fileManager.removeItem(at: pointer)
    do {
      try fileManager.createSymbolicLink(atPath: pointer.path, withDestinationPath: target)
    } catch {
      // Another process made the same link in the meantime.
      if (try? fileManager.destinationOfSymbolicLink(atPath: pointer.path)) == target { return }
      throw HubError.io(path: pointer.path, reason: "cannot create the link to \(target): \(error.localizedDescription)")
    }
  }

  /// `refs/<revision>` holding the commit hash (no newline), replaced atomically.
  static func writeRef(_ revision: String, commit: String, storage: URL) throws {
    let ref = storage.appendingPathComponent("refs").appendingPathComponent(revision)
    if (try? String(contentsOf: ref, encoding: .utf8)) == commit { return }
    try HubConnection.makeFolder(ref.deletingLastPathComponent())
    let temporary = ref.deletingLastPathComponent().appendingPathComponent(".\(ref.lastPathComponent).\(UUID().uuidString.prefix(8)).tmp")
    do {
      try Data(commit.utf8).write(to: temporary)
    } catch {
      throw HubError.io(path: temporary.path, reason: "cannot write the ref: \(error.localizedDescription)")
    }
    guard rename(temporary.path, ref.path) == 0 else {
      let reason = String(cString: strerror(errno))
      try? FileManager.default.removeItem(at: temporary)
      throw HubError.io(path: ref.path, reason: "cannot write the ref: \(reason)")
    }
  }

  /// A listed file name must stay inside the snapshot folder.
  static func checkRelative(_ file: String, repo: HubRepo) throws {
    let parts = file.split(separator: "/", omittingEmptySubsequences: false)
    guard !file.hasPrefix("/"), !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
      throw HubError.invalidReply(url: repo.id, reason: "the file name '\(file)' leaves the snapshot folder")
    }
  }
}

extension HubConnection {
  /// `GET /api/{models|datasets}/{repo}/revision/{revision}`: the commit and the file list.
  func repoInfo(_ repo: HubRepo, revision: String) async throws -> HubSnapshot.RepoInfo {
    let url = try url(repo.apiPath(revision: revision))
    let (response, answered) = try await send(.GET, url, headers: [("Accept", "application/json")], repo: repo.description)
    guard response.status.code == 200 else {
      throw HubError.invalidReply(url: answered.absoluteString, reason: "status \(response.status.code) instead of the repo info")
    }
    let body = try await Self.body(response, url: answered)
    let info: HubSnapshot.RepoInfo
    do {
      info = try JSONDecoder().decode(HubSnapshot.RepoInfo.self, from: body)
    } catch {
      throw HubError.invalidReply(url: answered.absoluteString, reason: "no 'sha' and 'siblings[].rfilename' in the repo info")
    }
    guard !info.sha.isEmpty, !info.sha.contains("/"), info.sha != ".", info.sha != ".." else {
      throw HubError.invalidReply(url: answered.absoluteString, reason: "commit '\(info.sha)' cannot name a snapshot folder")
    }
    return info
  }
}
