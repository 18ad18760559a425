import Hub
import Training

/// The config with `dataset.labeled_path` and `dataset.eval_path` naming hub datasets
/// (`hub:org/name[@revision][:split]`, docs/data.md "Hub downloads") replaced by the local path of
/// the split's downloaded Parquet shards; local paths and dataset YAMLs are kept as they are.
func withHubDataDownloaded(_ config: TrainingConfig) async throws -> TrainingConfig {
  var resolved = config
  for keyPath in [\TrainingConfig.dataset.labeledPath, \TrainingConfig.dataset.evalPath] {
    guard let path = config[keyPath: keyPath], !path.hasSuffix(".yaml"), !path.hasSuffix(".yml") else { continue }
    resolved[keyPath: keyPath] = try await HubDatasets.localPath(path)
  }
  return resolved
}
