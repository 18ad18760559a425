import Foundation
import ModelConfig
import SafeTensors
import Testing

@testable import Hub

/// Model snapshots downloaded from a loopback hub into a test cache (no network).
@Suite struct ModelDownloadTests {
  /// A hub with `org/tiny` at commitA (branch v1 at commitB), a fresh home folder, and its environment.
  func setUp(_ name: String = #function) async throws -> (LoopbackHub, URL, [String: String]) {
    let home = try makeTempFolder(name)
    let hub = try await LoopbackHub()
    var repo = try tinyModelRepo(commit: commitA, scratch: home)
    repo.revisions["v1"] = commitB
    hub.add("models/org/tiny", repo)
    return (hub, home, hubEnvironment(hub, home: home))
  }

  @Test func snapshotLayoutIsHuggingFaceHubs() async throws {
    let (hub, home, environment) = try await setUp()
    defer { try? FileManager.default.removeItem(at: home) }
    let lines = ProgressLines()
    let folder = try await HubModels.resolve(
      "org/tiny", environment: environment, progress: HubProgress(isTerminal: false, write: lines.append))
    await hub.shutdown()
    let storage = home.appendingPathComponent("cache/models--org--tiny")
    #expect(folder.path == storage.appendingPathComponent("snapshots/\(commitA)").standardizedFileURL.path)
    #expect(try String(contentsOf: storage.appendingPathComponent("refs/main"), encoding: .utf8) == commitA)
    let repo = try tinyModelRepo(commit: commitA, scratch: home)
    let wanted = ["chat_template.json", "config.json", "generation_config.json", "model.safetensors", "preprocessor_config.json",
                  "tokenizer.json", "tokenizer_config.json"]
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == wanted)
    for name in wanted {
      // Relative links into blobs/, named by the ETag: the SHA-256 for LFS files, the git hash otherwise.
      let target = try FileManager.default.destinationOfSymbolicLink(atPath: folder.appendingPathComponent(name).path)
      #expect(target == "../../blobs/\(try #require(repo.etag(name)))")
      #expect(Array(try Data(contentsOf: folder.appendingPathComponent(name))) == repo.files[name]?.bytes)
    }
    #expect(repo.etag("model.safetensors") == FakeRepo.sha256(repo.files["model.safetensors"]!.bytes))
    let blobs = try FileManager.default.contentsOfDirectory(atPath: storage.appendingPathComponent("blobs").path)
    #expect(blobs.count == wanted.count && !blobs.contains { $0.hasSuffix(".incomplete") })
    // Never pickled weights, READMEs or subfolders; LFS content came from the CDN without the token.
    let paths = hub.hub.requests.map(\.path) + hub.cdn.requests.map(\.path)
    #expect(!paths.contains { $0.contains("pytorch_model.bin") || $0.contains("README") || $0.contains("onnx") })
    #expect(hub.cdn.requests.count == 1 && hub.cdn.requests[0].path.hasPrefix("/blobs/"))
    #expect(hub.hub.requests.first?.path == "/api/models/org/tiny/revision/main")
    #expect(hub.hub.requests.filter { $0.method == "HEAD" }.allSatisfy { $0.path.contains("/resolve/\(commitA)/") })
    // One line per finished file when the output is not a terminal.
    #expect(lines.lines.count == wanted.count)
    #expect(lines.lines.allSatisfy { $0.hasPrefix("downloaded org/tiny/") })
    // The folder loads as any model folder.
    let model = try ModelFolder(directory: folder)
    #expect(model.config.family == .qwen25VL)
    #expect(model.chatTemplate != nil)
    let weights = try SafeTensorsFile(url: folder.appendingPathComponent("model.safetensors"))
    #expect(try weights.elements("lm_head.weight", as: Float.self)[5] == 1.25)
  }

  @Test func cachedModelIsUsedWithoutRequests() async throws {
    let (hub, home, environment) = try await setUp()
    defer { try? FileManager.default.removeItem(at: home) }
    let first = try await HubModels.resolve("org/tiny", environment: environment, progress: .silent)
    let count = hub.hub.requests.count
    let second = try await HubModels.resolve("org/tiny", environment: environment, progress: .silent)
    await hub.shutdown()
    #expect(first == second)
    #expect(hub.hub.requests.count == count)
  }

  @Test func revisionResolvesToItsCommitThroughRefs() async throws {
    let (hub, home, environment) = try await setUp()
    defer { try? FileManager.default.removeItem(at: home) }
    let folder = try await HubModels.resolve("org/tiny", revision: "v1", environment: environment, progress: .silent)
    await hub.shutdown()
    let storage = home.appendingPathComponent("cache/models--org--tiny")
    #expect(folder.lastPathComponent == commitB)
    #expect(try String(contentsOf: storage.appendingPathComponent("refs/v1"), encoding: .utf8) == commitB)
    #expect(!FileManager.default.fileExists(atPath: storage.appendingPathComponent("refs/main").path))
    #expect(hub.hub.requests.filter { $0.method == "HEAD" }.allSatisfy { $0.path.contains("/resolve/\(commitB)/") })
    // The local resolver (what transformers' cache readers do) finds it by the ref.
    #expect(try ModelLocator.resolve("org/tiny", revision: "v1", environment: environment) == folder)
  }

  @Test func partialDownloadIsResumedWithARangeRequest() async throws {
    let (hub, home, environment) = try await setUp()
    defer { try? FileManager.default.removeItem(at: home) }
    let weights = try #require(try tinyModelRepo(commit: commitA, scratch: home).files["model.safetensors"]?.bytes)
    let sha = FakeRepo.sha256(weights)
    let blobs = home.appendingPathComponent("cache/models--org--tiny/blobs")
    try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
    let half = weights.count / 2
    try Data(weights[..<half]).write(to: blobs.appendingPathComponent("\(sha).incomplete"))
    let folder = try await HubModels.resolve("org/tiny", environment: environment, progress: .silent)
    await hub.shutdown()
    #expect(hub.cdn.requests.count == 1)
    #expect(hub.cdn.requests.first?.headers["range"] == "bytes=\(half)-")
    #expect(Array(try Data(contentsOf: folder.appendingPathComponent("model.safetensors"))) == weights)
    #expect(!FileManager.default.fileExists(atPath: blobs.appendingPathComponent("\(sha).incomplete").path))
  }

  @Test func checksumMismatchIsRefusedAndNothingStays() async throws {
    let (hub, home, environment) = try await setUp()
    defer { try? FileManager.default.removeItem(at: home) }
    hub.corrupted = ["model.safetensors"]
    let error = await #expect(throws: HubError.self) {
      try await HubModels.resolve("org/tiny", environment: environment, progress: .silent)
    }
    await hub.shutdown()
    guard case .checksumMismatch(let file, _, _)? = error else {
      Issue.record("expected a checksum mismatch, got \(String(describing: error))")
      return
    }
    #expect(file == "org/tiny/model.safetensors")
    #expect("\(error!)".contains("SHA-256"))
    let storage = home.appendingPathComponent("cache/models--org--tiny")
    let blobs = try FileManager.default.contentsOfDirectory(atPath: storage.appendingPathComponent("blobs").path)
    let weights = try #require(try tinyModelRepo(commit: commitA, scratch: home).files["model.safetensors"]?.bytes)
    #expect(!blobs.contains { $0.hasPrefix(FakeRepo.sha256(weights)) })
    #expect(!FileManager.default.fileExists(atPath: storage.appendingPathComponent("snapshots").path))
    #expect(!FileManager.default.fileExists(atPath: storage.appendingPathComponent("refs/main").path))
  }

  @Test func offlineModeMakesNoRequest() async throws {
    let (hub, home, environment) = try await setUp()
    defer { try? FileManager.default.removeItem(at: home) }
    let offline = environment.merging(["HF_HUB_OFFLINE": "1"]) { $1 }
    let error = await #expect(throws: HubError.self) {
      try await HubModels.resolve("org/tiny", environment: offline, progress: .silent)
    }
    #expect(hub.hub.requests.isEmpty)
    let message = "\(error.map { "\($0)" } ?? "")"
    #expect(message.contains("org/tiny") && message.contains("not in the hub cache") && message.contains("offline mode is on"))
    let downloaded = try await HubModels.resolve("org/tiny", environment: environment, progress: .silent)
    let count = hub.hub.requests.count
    for variable in ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"] {
      let cached = try await HubModels.resolve("org/tiny", environment: environment.merging([variable: "true"]) { $1 }, progress: .silent)
      #expect(cached == downloaded)
    }
    await hub.shutdown()
    #expect(hub.hub.requests.count == count)
  }

  @Test func tokenGoesToTheHubOnly() async throws {
    let (hub, home, environment) = try await setUp()
    defer { try? FileManager.default.removeItem(at: home) }
    hub.token = "hf_secret"
    _ = try await HubModels.resolve("org/tiny", environment: environment.merging(["HF_TOKEN": "hf_secret"]) { $1 }, progress: .silent)
    #expect(!hub.hub.requests.isEmpty)
    #expect(hub.hub.requests.allSatisfy { $0.headers["authorization"] == "Bearer hf_secret" })
    #expect(hub.cdn.requests.count == 1 && hub.cdn.requests.allSatisfy { $0.headers["authorization"] == nil })
    // The token file of HF_HOME serves when HF_TOKEN is unset.
    let hfHome = home.appendingPathComponent("hf-home")
    try FileManager.default.createDirectory(at: hfHome, withIntermediateDirectories: true)
    try Data("hf_secret\n".utf8).write(to: hfHome.appendingPathComponent("token"))
    let other = environment.merging(["HF_HOME": hfHome.path, "HF_HUB_CACHE": home.appendingPathComponent("cache2").path]) { $1 }
    let folder = try await HubModels.resolve("org/tiny", environment: other, progress: .silent)
    await hub.shutdown()
    #expect(folder.path.contains("/cache2/models--org--tiny/"))
  }

  @Test func failuresAreNamedPlainly() async throws {
    let (hub, home, environment) = try await setUp()
    defer { try? FileManager.default.removeItem(at: home) }
    hub.token = "hf_secret"
    let unauthorized = await #expect(throws: HubError.self) {
      try await HubModels.resolve("org/tiny", environment: environment, progress: .silent)
    }
    #expect("\(unauthorized!)".contains("org/tiny: 401 Unauthorized") && "\(unauthorized!)".contains("set HF_TOKEN"))
    hub.token = nil
    // Neither a local folder nor a hub repo: both are named.
    let missing = await #expect(throws: ModelConfigError.self) {
      try await HubModels.resolve("org/missing", environment: environment, progress: .silent)
    }
    #expect("\(missing!)".hasPrefix("model 'org/missing' not found; searched:\n  org/missing\n"))
    #expect("\(missing!)".contains(home.path + "/cache/models--org--missing/refs/main"))
    #expect("\(missing!)".contains(hub.endpoint + "/api/models/org/missing/revision/main (no such repo on the hub)"))
    let revision = await #expect(throws: HubError.self) {
      try await HubModels.resolve("org/tiny", revision: "nope", environment: environment, progress: .silent)
    }
    #expect("\(revision!)".contains("404") && "\(revision!)".contains("no such revision"))
    // A server that hangs up without answering: the URL is named.
    let silent = try await LoopbackServer()
    silent.serve { _ in LoopbackReply(status: 0) }
    let closed = environment.merging(["HF_ENDPOINT": silent.baseURL]) { $1 }
    let unreachable = await #expect(throws: HubError.self) {
      try await HubModels.resolve("org/tiny", environment: closed, progress: .silent)
    }
    #expect("\(unreachable!)".contains("cannot reach \(silent.baseURL)/api/models/org/tiny/revision/main"))
    await silent.shutdown()
    await hub.shutdown()
  }

  @Test func relativeRedirectOfARenamedRepoIsFollowed() async throws {
    let (hub, home, environment) = try await setUp()
    defer { try? FileManager.default.removeItem(at: home) }
    hub.renamed = ["old-org/tiny": "org/tiny"]
    let folder = try await HubModels.resolve("old-org/tiny", environment: environment, progress: .silent)
    await hub.shutdown()
    // huggingface_hub keeps the cache under the name asked for.
    #expect(folder.path.contains("/models--old-org--tiny/snapshots/\(commitA)"))
    #expect(hub.hub.requests.contains { $0.path == "/api/models/org/tiny/revision/main" })
    #expect(try ModelFolder(directory: folder).config.family == .qwen25VL)
  }

  @Test func localFoldersAndNonHubArgumentsAreNotLookedUp() async throws {
    let (hub, home, environment) = try await setUp()
    defer { try? FileManager.default.removeItem(at: home) }
    let error = await #expect(throws: ModelConfigError.self) {
      try await HubModels.resolve(home.appendingPathComponent("no/such/folder").path, environment: environment, progress: .silent)
    }
    await hub.shutdown()
    guard case .modelNotFound? = error else {
      Issue.record("expected modelNotFound, got \(String(describing: error))")
      return
    }
    #expect(hub.hub.requests.isEmpty)
  }
}
