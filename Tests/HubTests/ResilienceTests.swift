import Foundation
import ModelConfig
import Testing

@testable import Hub

/// Downloads under less friendly conditions: a CDN that ignores Range, two downloads of one repo at
/// once, an adapter folder whose base is a hub id, a terminal's progress line.
@Suite struct ResilienceTests {
  func setUp(_ name: String = #function) async throws -> (LoopbackHub, URL, [String: String], [UInt8]) {
    let home = try makeTempFolder(name)
    let hub = try await LoopbackHub()
    let repo = try tinyModelRepo(commit: commitA, scratch: home)
    hub.add("models/org/tiny", repo)
    return (hub, home, hubEnvironment(hub, home: home), try #require(repo.files["model.safetensors"]?.bytes))
  }

  @Test func serverIgnoringRangeSendsTheWholeFileAgain() async throws {
    let (hub, home, environment, weights) = try await setUp()
    defer { try? FileManager.default.removeItem(at: home) }
    hub.ignoresRange = true
    let blobs = home.appendingPathComponent("cache/models--org--tiny/blobs")
    try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
    try Data(weights[..<10]).write(to: blobs.appendingPathComponent("\(FakeRepo.sha256(weights)).incomplete"))
    let folder = try await HubModels.resolve("org/tiny", environment: environment, progress: .silent)
    await hub.shutdown()
    #expect(hub.cdn.requests.first?.headers["range"] == "bytes=10-")
    #expect(Array(try Data(contentsOf: folder.appendingPathComponent("model.safetensors"))) == weights)
  }

  @Test func twoDownloadsOfOneRepoAtOnceAgree() async throws {
    let (hub, home, environment, weights) = try await setUp()
    defer { try? FileManager.default.removeItem(at: home) }
    async let first = HubModels.resolve("org/tiny", environment: environment, progress: .silent)
    async let second = HubModels.resolve("org/tiny", environment: environment, progress: .silent)
    let (a, b) = try await (first, second)
    await hub.shutdown()
    #expect(a == b)
    #expect(Array(try Data(contentsOf: a.appendingPathComponent("model.safetensors"))) == weights)
    let blobs = try FileManager.default.contentsOfDirectory(atPath: home.appendingPathComponent("cache/models--org--tiny/blobs").path)
    #expect(!blobs.contains { $0.hasSuffix(".incomplete") })
  }

  @Test func adapterBaseOnTheHubIsDownloaded() async throws {
    let (hub, home, environment, _) = try await setUp()
    defer { try? FileManager.default.removeItem(at: home) }
    let adapter = home.appendingPathComponent("adapter")
    try FileManager.default.createDirectory(at: adapter, withIntermediateDirectories: true)
    try Data(#"{"base_model_name_or_path": "org/tiny", "peft_type": "LORA", "r": 4, "lora_alpha": 8}"#.utf8)
      .write(to: adapter.appendingPathComponent(AdapterFolder.configFile))
    let folder = try await HubModels.resolve(adapter.path, environment: environment, progress: .silent)
    await hub.shutdown()
    #expect(folder.standardizedFileURL.path == adapter.standardizedFileURL.path)
    let read = try #require(try AdapterFolder.read(folder, environment: environment))
    #expect(read.base.path.hasSuffix("/cache/models--org--tiny/snapshots/\(commitA)"))
    #expect(hub.hub.requests.first?.path == "/api/models/org/tiny/revision/main")
  }

  @Test func adapterBaseMissingEverywhereIsNamedWithTheAdapter() async throws {
    let (hub, home, environment, _) = try await setUp()
    defer { try? FileManager.default.removeItem(at: home) }
    let adapter = home.appendingPathComponent("adapter")
    try FileManager.default.createDirectory(at: adapter, withIntermediateDirectories: true)
    try Data(#"{"base_model_name_or_path": "org/gone"}"#.utf8).write(to: adapter.appendingPathComponent(AdapterFolder.configFile))
    let error = await #expect(throws: ModelConfigError.self) {
      try await HubModels.resolve(adapter.path, environment: environment, progress: .silent)
    }
    await hub.shutdown()
    guard case .adapterBaseNotFound(let folder, let base, let searched)? = error else {
      Issue.record("expected adapterBaseNotFound, got \(String(describing: error))")
      return
    }
    #expect(folder == adapter.standardizedFileURL.path && base == "org/gone")
    #expect(searched.last == hub.endpoint + "/api/models/org/gone/revision/main (no such repo on the hub)")
  }

  @Test func terminalProgressRedrawsOneLinePerFile() async throws {
    let (hub, home, environment, weights) = try await setUp()
    defer { try? FileManager.default.removeItem(at: home) }
    let text = ProgressLines()
    _ = try await HubModels.resolve("org/tiny", environment: environment, progress: HubProgress(isTerminal: true, write: text.append))
    await hub.shutdown()
    let lines = text.lines
    #expect(lines.count == 7)
    #expect(lines.allSatisfy { $0.hasPrefix("\r\u{1B}[K") })
    let last = try #require(lines.first { $0.contains("model.safetensors") })
    #expect(last.contains("downloaded org/tiny/model.safetensors: \(weights.count) B / \(weights.count) B in "))
  }
}
