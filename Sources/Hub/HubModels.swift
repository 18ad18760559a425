import Foundation
import ModelConfig

/// Model arguments that may be hub ids: what is not in the cache is downloaded, then the folder is
/// resolved by `ModelLocator` exactly as for a model downloaded by transformers.
public enum HubModels {
  /// The files of a model repo that are downloaded: the top-level JSON files (config, tokenizer,
  /// tokenizer config, processor and preprocessor configs, chat template, generation config, the
  /// safetensors index, adapter config), Jinja chat templates, `merges.txt`, and `*.safetensors`
  /// weights. Never weights in other formats (`*.bin`, `*.pt`, `*.pth`, `*.h5`, `*.msgpack`,
  /// `*.onnx`, `*.gguf`, ...) and nothing in subfolders.
  public static func isModelFile(_ name: String) -> Bool {
    guard !name.contains("/") else { return false }
    if name == "merges.txt" { return true }
    return ["json", "jinja", "safetensors"].contains((name as NSString).pathExtension.lowercased())
  }

  /// The folder of `argument` (a local folder or a hub id), downloading a hub id into the cache when
  /// it is not there (unless offline). A LoRA adapter folder whose `base_model_name_or_path` is a hub
  /// id not in the cache gets its base downloaded the same way.
  public static func resolve(
    _ argument: String, revision: String = "main",
    environment: [String: String] = ProcessInfo.processInfo.environment, progress: HubProgress = .standardError
  ) async throws -> URL {
    try await ensureCached(argument, revision: revision, environment: environment, progress: progress)
    do {
      return try ModelLocator.resolve(argument, revision: revision, environment: environment)
    } catch ModelConfigError.adapterBaseNotFound(let adapter, let base, let searched) where ModelLocator.hubId(base) != nil {
      do {
        try await ensureCached(base, revision: "main", environment: environment, progress: progress)
      } catch ModelConfigError.modelNotFound(_, let more) {
        throw ModelConfigError.adapterBaseNotFound(adapter: adapter, base: base, searched: searched + more.filter { !searched.contains($0) })
      }
      return try ModelLocator.resolve(argument, revision: revision, environment: environment)
    }
  }

  /// Downloads the model files of the hub id `argument` unless a local folder of that name exists or
  /// the cache holds a snapshot with a config and safetensors weights (used as is: no request is
  /// made for a newer commit). Offline, a repo missing from the cache is a `HubError.offline`; a repo
  /// the hub does not have is `ModelConfigError.modelNotFound` listing the local paths and the URL.
  /// Arguments that are not hub ids are left to `ModelLocator` to report.
  public static func ensureCached(
    _ argument: String, revision: String = "main",
    environment: [String: String] = ProcessInfo.processInfo.environment, progress: HubProgress = .standardError
  ) async throws {
    let local = HubSettings.expandTilde(argument, environment)
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: local, isDirectory: &isFolder), isFolder.boolValue { return }
    guard let repo = HubRepo(argument, kind: .model) else { return }
    let settings = try HubSettings(environment: environment)
    var searched: [String] = []
    let cached = HubSnapshot.cached(repo, revision: revision, settings: settings, searched: &searched)
    if let cached, hasConfigAndWeights(cached) { return }
    if settings.offline {
      if cached != nil { return }  // loading names the file that is missing
      throw HubError.offline(repo: repo.description, revision: revision, searched: searched)
    }
    do {
      _ = try await HubSnapshot.download(repo, revision: revision, settings: settings, progress: progress) { names in
        let picked = names.filter(isModelFile)
        guard picked.contains("config.json") || picked.contains(AdapterFolder.configFile) else {
          throw HubError.noMatchingFiles(repo: repo.description, revision: revision, wanted: "config.json", available: names)
        }
        return picked
      }
    } catch HubError.notFound(_, let url, let code) where code == nil || code == "RepoNotFound" {
      // Neither a local folder nor a repo on the hub: say both (a mistyped local path looks like a hub id).
      throw ModelConfigError.modelNotFound(argument: argument, searched: [local] + searched + ["\(url) (no such repo on the hub)"])
    }
  }

  /// Whether a snapshot has `config.json` (or an adapter config) and at least one safetensors file.
  static func hasConfigAndWeights(_ folder: URL) -> Bool {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
    return (names.contains("config.json") || names.contains(AdapterFolder.configFile))
      && names.contains { $0.hasSuffix(".safetensors") }
  }
}
