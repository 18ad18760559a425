import Foundation

/// Finds a model folder from a command-line argument: a local folder, or a Hugging Face hub id
/// (`Qwen/Qwen2.5-VL-3B-Instruct`) already downloaded into a local hub cache. Never downloads: the
/// Hub module (`HubModels.resolve`) fetches a missing hub id into the cache, then resolves it here.
public enum ModelLocator {
  /// Hub cache roots in the order huggingface_hub consults them: `$HF_HUB_CACHE`
  /// (`$HUGGINGFACE_HUB_CACHE`, its old name), `$HF_HOME/hub`, `$XDG_CACHE_HOME/huggingface/hub`,
  /// `~/.cache/huggingface/hub`. Duplicates are removed.
  public static func cacheRoots(environment: [String: String]) -> [URL] {
    var candidates: [String] = []
    func add(_ value: String?, _ suffix: String = "") {
      guard let value, !value.isEmpty else { return }
      candidates.append(expandTilde(value, environment: environment) + suffix)
    }
    add(environment["HF_HUB_CACHE"])
    add(environment["HUGGINGFACE_HUB_CACHE"])
    add(environment["HF_HOME"], "/hub")
    add(environment["XDG_CACHE_HOME"], "/huggingface/hub")
    add(environment["HOME"], "/.cache/huggingface/hub")
    var seen = Set<String>()
    return candidates.map { URL(fileURLWithPath: $0).standardizedFileURL }.filter { seen.insert($0.path).inserted }
  }

  /// Resolves `argument` to a folder.
  ///
  /// - A path to an existing folder (`~` expanded) is returned as is.
  /// - `org/name` is looked up as `models--org--name` under each cache root; the snapshot is the one
  ///   named by `refs/<revision>`, or `snapshots/<revision>` when `revision` is a commit hash, or the
  ///   only snapshot when there is just one.
  /// - Otherwise `ModelConfigError.modelNotFound` lists every path that was tried.
  ///
  /// The folder may be a peft LoRA adapter folder (`AdapterFolder`): its base model must then be
  /// found too, else `ModelConfigError.adapterBaseNotFound` names the adapter folder and the base.
  public static func resolve(
    _ argument: String, revision: String = "main",
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws -> URL {
    let folder = try locate(argument, revision: revision, environment: environment)
    _ = try AdapterFolder.read(folder, environment: environment)
    return folder
  }

  /// The folder of `argument` (as `resolve`), without looking into it.
  static func locate(
    _ argument: String, revision: String = "main",
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws -> URL {
    var searched: [String] = []
    let localPath = expandTilde(argument, environment: environment)
    var isDirectory: ObjCBool = false
    searched.append(localPath)
    if FileManager.default.fileExists(atPath: localPath, isDirectory: &isDirectory), isDirectory.boolValue {
      return URL(fileURLWithPath: localPath, isDirectory: true).standardizedFileURL
    }
    if let (organization, name) = hubId(argument) {
      let repoFolder = "models--\(organization)--\(name)"
      for root in cacheRoots(environment: environment) {
        let repo = root.appendingPathComponent(repoFolder)
        if let snapshot = snapshot(in: repo, revision: revision, searched: &searched) { return snapshot }
      }
    }
    throw ModelConfigError.modelNotFound(argument: argument, searched: searched)
  }

  /// The organization and name of `argument` when it has the form of a hub id (`org/name`: two
  /// non-empty parts, neither `.` nor `..`, not starting with `~`); nil otherwise.
  public static func hubId(_ argument: String) -> (organization: String, name: String)? {
    let parts = argument.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }), !argument.hasPrefix("~") else {
      return nil
    }
    return (String(parts[0]), String(parts[1]))
  }

  /// The snapshot folder of the cached repo folder `repo` (`models--org--name`) for `revision`:
  /// `snapshots/<refs/revision>`, else `snapshots/<revision>`, else the only snapshot. Every path
  /// looked at is appended to `searched`.
  public static func snapshot(in repo: URL, revision: String, searched: inout [String]) -> URL? {
    let fileManager = FileManager.default
    let snapshots = repo.appendingPathComponent("snapshots")
    let ref = repo.appendingPathComponent("refs").appendingPathComponent(revision)
    if let hash = try? String(contentsOf: ref, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
      !hash.isEmpty, !hash.contains("/")
    {
      let candidate = snapshots.appendingPathComponent(hash)
      searched.append(candidate.path + " (from \(ref.path))")
      if isDirectory(candidate) { return candidate }
    } else {
      searched.append(ref.path)
    }
    if !revision.contains("/") {
      let direct = snapshots.appendingPathComponent(revision)
      searched.append(direct.path)
      if isDirectory(direct) { return direct }
    }
    let entries = ((try? fileManager.contentsOfDirectory(atPath: snapshots.path)) ?? []).filter { !$0.hasPrefix(".") }
    searched.append(snapshots.path + "/* (\(entries.count) snapshot\(entries.count == 1 ? "" : "s"))")
    if entries.count == 1, let only = entries.first {
      let candidate = snapshots.appendingPathComponent(only)
      if isDirectory(candidate) { return candidate }
    }
    return nil
  }

  static func isDirectory(_ url: URL) -> Bool {
    var flag: ObjCBool = false
    return FileManager.default.fileExists(atPath: url.path, isDirectory: &flag) && flag.boolValue
  }

  static func expandTilde(_ path: String, environment: [String: String]) -> String {
    guard path == "~" || path.hasPrefix("~/"), let home = environment["HOME"] ?? ProcessInfo.processInfo.environment["HOME"] else {
      return path
    }
    return home + path.dropFirst()
  }
}
