import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A dataset on the hub named by a data argument: `hub:org/name[@revision][:split]`, or the same
/// without `hub:` when no file or folder of that name exists.
public struct HubDatasetReference: Sendable, Equatable {
  public var repo: HubRepo
  /// Default `main`; `refs/convert/parquet` reads the hub's Parquet conversion.
  public var revision: String
  /// Default `train`.
  public var split: String
  /// Written with `hub:`: always the hub, never a local path.
  public var explicit: Bool
}

/// Data arguments that may name hub datasets: the Parquet shards of the wanted split are downloaded
/// into the hub cache (`datasets--org--name`) and read by the usual Parquet reader.
public enum HubDatasets {
  public static let prefix = "hub:"
  /// Extensions of data files: a bare `org/name.ext` is always a local path.
  static let fileExtensions: Set<String> = ["json", "jsonl", "ndjson", "parquet", "arrow", "yaml", "yml", "csv", "txt"]

  /// Where a split's shards are looked for, in this order; the first pattern that matches files wins:
  /// the `push_to_hub` layout (`data/{split}-*.parquet`), files at the top, a folder per split, and
  /// the `{config}/{split}/*.parquet` layout of the `refs/convert/parquet` revision (config `default`).
  public static func splitPatterns(_ split: String) -> [String] {
    ["data/\(split)-*.parquet", "data/\(split).parquet", "data/\(split)/*.parquet", "\(split)-*.parquet",
     "\(split).parquet", "\(split)/*.parquet", "default/\(split)/*.parquet"]
  }

  /// The reference `argument` stands for, or nil when it is not of the form.
  public static func reference(_ argument: String) -> HubDatasetReference? {
    var text = Substring(argument)
    let explicit = text.hasPrefix(prefix)
    if explicit { text = text.dropFirst(prefix.count) }
    var split = "train"
    if let colon = text.lastIndex(of: ":") {
      split = String(text[text.index(after: colon)...])
      text = text[..<colon]
      guard !split.isEmpty, split.allSatisfy({ $0.isLetter || $0.isNumber || "_-.".contains($0) }) else { return nil }
    }
    var revision = "main"
    if let at = text.firstIndex(of: "@") {
      revision = String(text[text.index(after: at)...])
      text = text[..<at]
      let parts = revision.split(separator: "/", omittingEmptySubsequences: false)
      guard !revision.isEmpty, !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else { return nil }
    }
    guard let repo = HubRepo(String(text), kind: .dataset) else { return nil }
    if !explicit && fileExtensions.contains((text as NSString).pathExtension.lowercased()) { return nil }
    return HubDatasetReference(repo: repo, revision: revision, split: split, explicit: explicit)
  }

  /// The local data path for `argument`: the argument itself when it exists here (file, folder or
  /// matching glob) or does not name a hub dataset; otherwise the split's Parquet shards in the hub
  /// cache (as a glob over the snapshot), downloaded first when the cache lacks them (unless offline).
  public static func localPath(
    _ argument: String, environment: [String: String] = ProcessInfo.processInfo.environment,
    progress: HubProgress = .standardError
  ) async throws -> String {
    let local = HubSettings.expandTilde(argument, environment)
    guard let reference = reference(argument), reference.explicit || !FileManager.default.fileExists(atPath: local) else {
      return argument
    }
    do {
      return try await fetchSplit(reference, environment: environment, progress: progress)
    } catch let error as HubError where !reference.explicit {
      let repoMissing: Bool
      switch error {
      case .notFound(_, _, let code): repoMissing = code == nil || code == "RepoNotFound"
      case .offline, .unauthorized: repoMissing = true
      default: repoMissing = false
      }
      guard repoMissing else { throw error }
      let absolute = local.hasPrefix("/") ? local : FileManager.default.currentDirectoryPath + "/" + local
      throw HubError.datasetNotFound(argument: argument, localPath: absolute, repo: reference.repo.id, reason: "\(error)")
    }
  }

  static func fetchSplit(
    _ reference: HubDatasetReference, environment: [String: String], progress: HubProgress
  ) async throws -> String {
    let settings = try HubSettings(environment: environment)
    let repo = reference.repo
    let split = reference.split
    var searched: [String] = []
    if let cached = HubSnapshot.cached(repo, revision: reference.revision, settings: settings, searched: &searched) {
      if let path = splitPath(in: cached, split: split) { return path }
      searched.append("\(cached.path): no Parquet shards of split '\(split)'")
    }
    if settings.offline {
      throw HubError.offline(repo: repo.description + " (split \(split))", revision: reference.revision, searched: searched)
    }
    let snapshot = try await HubSnapshot.download(repo, revision: reference.revision, settings: settings, progress: progress) { names in
      guard let (_, files) = splitFiles(names, split: split) else {
        let parquet = names.filter { $0.hasSuffix(".parquet") }
        throw HubError.noMatchingFiles(
          repo: repo.description, revision: reference.revision,
          wanted: "Parquet shards of split '\(split)' (\(splitPatterns(split).joined(separator: ", ")))",
          available: parquet.isEmpty ? names : parquet)
      }
      return files
    }
    guard let path = splitPath(in: snapshot, split: split) else {
      throw HubError.io(path: snapshot.path, reason: "the downloaded shards of split '\(split)' are not in the snapshot")
    }
    return path
  }

  /// The first pattern of `splitPatterns` that matches some of `names`, with its matches sorted.
  public static func splitFiles(_ names: [String], split: String) -> (pattern: String, files: [String])? {
    for pattern in splitPatterns(split) {
      let matches = names.filter { fnmatch(pattern, $0, FNM_PATHNAME) == 0 }
      if !matches.isEmpty { return (pattern, matches.sorted()) }
    }
    return nil
  }

  /// The split's shards in a snapshot folder, as a path the data loader reads (a glob or a file).
  static func splitPath(in snapshot: URL, split: String) -> String? {
    guard let enumerator = FileManager.default.enumerator(atPath: snapshot.path) else { return nil }
    var names: [String] = []
    while let name = enumerator.nextObject() as? String { names.append(name) }
    guard let (pattern, _) = splitFiles(names, split: split) else { return nil }
    return snapshot.path + "/" + pattern
  }
}
