import Datasets
import Foundation
import Testing

@testable import Hub

/// Dataset splits downloaded from a loopback hub and read by the Parquet reader.
@Suite struct DatasetDownloadTests {
  /// `org/clevr`: two train shards and one test shard in the push_to_hub layout (the CLEVR fixture
  /// of DatasetsTests), plus a README that is never fetched.
  func setUp(_ name: String = #function) async throws -> (LoopbackHub, URL, [String: String]) {
    let home = try makeTempFolder(name)
    let hub = try await LoopbackHub()
    let shards = "DatasetsTests/Fixtures/hf_clevr/data/"
    let first = try fixtureBytes(shards + "train-00000-of-00002.parquet")
    let second = try fixtureBytes(shards + "train-00001-of-00002.parquet")
    hub.add("datasets/org/clevr", FakeRepo(commit: commitA, files: [
      "data/train-00000-of-00002.parquet": .init(bytes: first, lfs: true),
      "data/train-00001-of-00002.parquet": .init(bytes: second, lfs: true),
      "data/test-00000-of-00001.parquet": .init(bytes: second, lfs: true),
      "README.md": .init(bytes: Array("# clevr".utf8), lfs: false),
    ]))
    return (hub, home, hubEnvironment(hub, home: home))
  }

  @Test func referenceSyntax() {
    let full = HubDatasets.reference("hub:org/name@refs/convert/parquet:validation")
    #expect(full?.repo.id == "org/name" && full?.revision == "refs/convert/parquet" && full?.split == "validation")
    #expect(full?.explicit == true)
    let bare = HubDatasets.reference("HuggingFaceM4/A-OKVQA")
    #expect(bare?.repo.kind == .dataset && bare?.revision == "main" && bare?.split == "train" && bare?.explicit == false)
    #expect(HubDatasets.reference("org/name:test")?.split == "test")
    // Local-looking names are never hub datasets.
    for path in ["data/train.jsonl", "a/b/c", "/abs/path", "~/x", "./x", "train.parquet", "org/na*me", "org/name:", "hub:org"] {
      #expect(HubDatasets.reference(path) == nil, "\(path)")
    }
    #expect(HubDatasets.reference("hub:org/train.jsonl")?.repo.id == "org/train.jsonl")
  }

  @Test func splitPatternsPickTheFirstLayoutThatMatches() {
    let pushToHub = ["data/train-00000-of-00001-abc.parquet", "data/test-00000-of-00001.parquet", "README.md"]
    #expect(HubDatasets.splitFiles(pushToHub, split: "train")?.files == ["data/train-00000-of-00001-abc.parquet"])
    let converted = ["default/train/0000.parquet", "default/train/0001.parquet", "other/train/0000.parquet", "default/validation/0000.parquet"]
    #expect(HubDatasets.splitFiles(converted, split: "train")?.files == ["default/train/0000.parquet", "default/train/0001.parquet"])
    #expect(HubDatasets.splitFiles(["train.parquet", "test.parquet"], split: "test")?.files == ["test.parquet"])
    #expect(HubDatasets.splitFiles(pushToHub, split: "validation") == nil)
  }

  @Test func splitShardsAreDownloadedAndLoaded() async throws {
    let (hub, home, environment) = try await setUp()
    defer { try? FileManager.default.removeItem(at: home) }
    let path = try await HubDatasets.localPath("hub:org/clevr", environment: environment, progress: .silent)
    let storage = home.appendingPathComponent("cache/datasets--org--clevr")
    #expect(path == storage.appendingPathComponent("snapshots/\(commitA)").standardizedFileURL.path + "/data/train-*.parquet")
    #expect(try String(contentsOf: storage.appendingPathComponent("refs/main"), encoding: .utf8) == commitA)
    let files = try FileManager.default.contentsOfDirectory(atPath: storage.appendingPathComponent("snapshots/\(commitA)/data").path)
    #expect(files.sorted() == ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"])
    let link = storage.appendingPathComponent("snapshots/\(commitA)/data/train-00000-of-00002.parquet").path
    #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link).hasPrefix("../../../blobs/"))
    #expect(hub.hub.requests.first?.path == "/api/datasets/org/clevr/revision/main")
    #expect(hub.hub.requests.filter { $0.method == "HEAD" }.allSatisfy { $0.path.hasPrefix("/datasets/org/clevr/resolve/\(commitA)/data/train-") })
    let loaded = try DatasetLoader.load(path: path)
    #expect(loaded.examples.count == 5)
    #expect(loaded.examples.allSatisfy { $0.kind == .r1vQA })
    // The test split: the bare form, from the same snapshot, adding only its own shard.
    let test = try await HubDatasets.localPath("org/clevr:test", environment: environment, progress: .silent)
    await hub.shutdown()
    #expect(test.hasSuffix("/snapshots/\(commitA)/data/test-*.parquet"))
    #expect(try DatasetLoader.load(path: test).examples.count == 2)
    #expect(hub.hub.requests.filter { $0.path.contains("README") }.isEmpty)
  }

  @Test func cachedSplitOfflineAndUncachedOffline() async throws {
    let (hub, home, environment) = try await setUp()
    defer { try? FileManager.default.removeItem(at: home) }
    let offline = environment.merging(["HF_HUB_OFFLINE": "1"]) { $1 }
    let error = await #expect(throws: HubError.self) {
      try await HubDatasets.localPath("hub:org/clevr", environment: offline, progress: .silent)
    }
    #expect("\(error!)".contains("dataset org/clevr (split train)") && "\(error!)".contains("offline mode is on"))
    #expect(hub.hub.requests.isEmpty)
    let online = try await HubDatasets.localPath("hub:org/clevr", environment: environment, progress: .silent)
    let count = hub.hub.requests.count
    #expect(try await HubDatasets.localPath("hub:org/clevr", environment: offline, progress: .silent) == online)
    // Another split is not in the cache: offline, that is an error naming the split.
    let other = await #expect(throws: HubError.self) {
      try await HubDatasets.localPath("hub:org/clevr:test", environment: offline, progress: .silent)
    }
    await hub.shutdown()
    #expect("\(other!)".contains("split test"))
    #expect("\(other!)".contains("/snapshots/\(commitA): no Parquet shards of split 'test'"))
    #expect(hub.hub.requests.count == count)
  }

  @Test func localPathsWinAndMissingOnesAreNamed() async throws {
    let (hub, home, environment) = try await setUp()
    defer { try? FileManager.default.removeItem(at: home) }
    // An existing folder of that name is read as a folder, without a request.
    let cwd = FileManager.default.currentDirectoryPath
    let local = home.appendingPathComponent("org/clevr")
    try FileManager.default.createDirectory(at: local, withIntermediateDirectories: true)
    #expect(try await HubDatasets.localPath(local.path, environment: environment, progress: .silent) == local.path)
    #expect(try await HubDatasets.localPath("data/train.jsonl", environment: environment, progress: .silent) == "data/train.jsonl")
    #expect(hub.hub.requests.isEmpty)
    // Neither here nor on the hub.
    let error = await #expect(throws: HubError.self) {
      try await HubDatasets.localPath("nowhere/data", environment: environment, progress: .silent)
    }
    let message = "\(error!)"
    #expect(message.contains("'nowhere/data' is neither a local file or folder (\(cwd)/nowhere/data does not exist)"))
    #expect(message.contains("nor a dataset on the hub (dataset nowhere/data: 404 from \(hub.endpoint)/api/datasets/nowhere/data/revision/main"))
    // A split the repo does not have lists the Parquet files it has.
    let split = await #expect(throws: HubError.self) {
      try await HubDatasets.localPath("hub:org/clevr:validation", environment: environment, progress: .silent)
    }
    await hub.shutdown()
    #expect("\(split!)".contains("no Parquet shards of split 'validation'"))
    #expect("\(split!)".contains("data/test-00000-of-00001.parquet"))
  }
}
