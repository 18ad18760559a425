import Foundation
import Testing

@testable import ModelConfig

@Suite struct ModelFolderTests {
  @Test func readsEveryFile() throws {
    let folder = try ModelFolder(directory: Fixtures.url("folder"))
    #expect(folder.config.family == .qwen25VL)
    #expect(folder.generationConfig?.eosTokenIds == [151645, 151643])
    #expect(folder.generationConfig?.topK == 1)
    #expect(folder.generationConfig?.repetitionPenalty == 1.05)
    #expect(folder.eosTokenIds == [151645, 151643])
    #expect(folder.imageProcessorFile == "preprocessor_config.json")
    #expect(folder.imageProcessor.maxPixels == 12_845_056)
    let tokenizer = try #require(folder.tokenizerConfig)
    #expect(tokenizer.addedTokens.count == 22)
    #expect(tokenizer.addedTokenId("<|image_pad|>") == 151655)
    #expect(tokenizer.addedTokens.first { $0.id == 151657 }?.special == false)
    #expect(tokenizer.eosToken == "<|im_end|>")
    #expect(tokenizer.padToken == "<|endoftext|>")
    #expect(tokenizer.bosToken == nil)
    #expect(tokenizer.modelMaxLength == 131072)
    #expect(tokenizer.additionalSpecialTokens.count == 13)
    let template = try #require(folder.chatTemplate)
    #expect(template.source == .jsonFile)
    #expect(template.text.hasPrefix("{% set image_count = namespace(value=0) %}"))
    #expect(template.text == tokenizer.chatTemplate)
  }

  @Test func chatTemplatePrecedence() throws {
    let folder = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    #expect(try ChatTemplate.locate(in: folder) == nil)
    try Data(#"{"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}"#.utf8)
      .write(to: folder.appendingPathComponent("tokenizer_config.json"))
    #expect(try ChatTemplate.locate(in: folder)?.text == "D")
    #expect(try ChatTemplate.locate(in: folder)?.source == .tokenizerConfig)
    try Data(#"{"chat_template": "J"}"#.utf8).write(to: folder.appendingPathComponent("chat_template.json"))
    #expect(try ChatTemplate.locate(in: folder)?.text == "J")
    try Data("{{ messages }}\n".utf8).write(to: folder.appendingPathComponent("chat_template.jinja"))
    let jinja = try #require(try ChatTemplate.locate(in: folder))
    #expect(jinja.text == "{{ messages }}\n")
    #expect(jinja.source == .jinjaFile)
  }

  @Test func processorConfigFallbackAndDefaults() throws {
    let folder = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    try FileManager.default.copyItem(at: Fixtures.url("configs/qwen2_vl_2b_instruct.tf5.json"), to: folder.appendingPathComponent("config.json"))
    let bare = try ModelFolder(directory: folder)
    #expect(bare.imageProcessorFile == nil)
    #expect(bare.imageProcessor.maxPixels == 1_003_520)
    #expect(bare.generationConfig == nil && bare.tokenizerConfig == nil && bare.chatTemplate == nil)
    #expect(bare.eosTokenIds == [151645])
    try FileManager.default.copyItem(at: Fixtures.url("processors/processor_config_v5.json"), to: folder.appendingPathComponent("processor_config.json"))
    let withProcessor = try ModelFolder(directory: folder)
    #expect(withProcessor.imageProcessorFile == "processor_config.json")
    #expect(withProcessor.imageProcessor.minPixels == 65536)
  }
}

@Suite struct ModelLocatorTests {
  /// A fake hub cache: models--ORG--NAME/{refs/main, snapshots/<hash>/}.
  func makeCache(_ root: URL, repo: String, snapshots: [String], main: String?) throws {
    let repoFolder = root.appendingPathComponent(repo)
    for hash in snapshots {
      try FileManager.default.createDirectory(at: repoFolder.appendingPathComponent("snapshots/\(hash)"), withIntermediateDirectories: true)
    }
    if let main {
      try FileManager.default.createDirectory(at: repoFolder.appendingPathComponent("refs"), withIntermediateDirectories: true)
      try Data("\(main)\n".utf8).write(to: repoFolder.appendingPathComponent("refs/main"))
    }
  }

  @Test func resolvesLocalFolderAndHubIds() throws {
    let root = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: root) }
    let hubCache = root.appendingPathComponent("hub-cache")
    let home = root.appendingPathComponent("home")
    try makeCache(hubCache, repo: "models--Qwen--Qwen2.5-VL-3B-Instruct", snapshots: ["aaa", "bbb"], main: "bbb")
    try makeCache(home.appendingPathComponent(".cache/huggingface/hub"), repo: "models--Qwen--Qwen2-VL-2B-Instruct", snapshots: ["ccc"], main: nil)
    let environment = ["HF_HUB_CACHE": hubCache.path, "HOME": home.path]

    #expect(try ModelLocator.resolve(root.path, environment: environment).path == root.standardizedFileURL.path)
    let main = try ModelLocator.resolve("Qwen/Qwen2.5-VL-3B-Instruct", environment: environment)
    #expect(main.path.hasSuffix("models--Qwen--Qwen2.5-VL-3B-Instruct/snapshots/bbb"))
    let pinned = try ModelLocator.resolve("Qwen/Qwen2.5-VL-3B-Instruct", revision: "aaa", environment: environment)
    #expect(pinned.lastPathComponent == "aaa")
    // Found under ~/.cache/huggingface/hub, the only snapshot (no refs/main).
    let fallback = try ModelLocator.resolve("Qwen/Qwen2-VL-2B-Instruct", environment: environment)
    #expect(fallback.lastPathComponent == "ccc")
    // HF_HOME/hub is searched too.
    let hfHome = root.appendingPathComponent("hf-home")
    try makeCache(hfHome.appendingPathComponent("hub"), repo: "models--org--tiny", snapshots: ["ddd"], main: "ddd")
    #expect(try ModelLocator.resolve("org/tiny", environment: ["HF_HOME": hfHome.path, "HOME": home.path]).lastPathComponent == "ddd")
  }

  @Test func notFoundListsEverySearchedPath() throws {
    let root = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: root) }
    let environment = ["HF_HUB_CACHE": root.appendingPathComponent("a").path, "HF_HOME": root.appendingPathComponent("b").path, "HOME": root.path]
    do {
      _ = try ModelLocator.resolve("Qwen/Missing-Model", environment: environment)
      Issue.record("resolved a missing model")
    } catch let error as ModelConfigError {
      guard case .modelNotFound(let argument, let searched) = error else { Issue.record("\(error)"); return }
      #expect(argument == "Qwen/Missing-Model")
      #expect(searched.first == "Qwen/Missing-Model")
      for expected in ["a/models--Qwen--Missing-Model/refs/main", "b/hub/models--Qwen--Missing-Model/refs/main",
                       ".cache/huggingface/hub/models--Qwen--Missing-Model/refs/main"] {
        #expect(searched.contains { $0.hasSuffix(expected) }, "\(expected)")
      }
      #expect(error.description.contains("Missing-Model/snapshots"))
    }
    #expect(throws: ModelConfigError.self) { _ = try ModelLocator.resolve("./nowhere", environment: environment) }
  }

  @Test func cacheRootOrder() {
    let roots = ModelLocator.cacheRoots(environment: ["HF_HUB_CACHE": "/x/hub", "HF_HOME": "/y", "HOME": "/h", "XDG_CACHE_HOME": "/h/.cache"])
    #expect(roots.map(\.path) == ["/x/hub", "/y/hub", "/h/.cache/huggingface/hub"])
  }

  @Test func resolvesFolderThroughModelFolder() throws {
    let root = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: root) }
    try makeCache(root, repo: "models--Qwen--Qwen2.5-VL-3B-Instruct", snapshots: ["abc"], main: "abc")
    let snapshot = root.appendingPathComponent("models--Qwen--Qwen2.5-VL-3B-Instruct/snapshots/abc")
    for file in try FileManager.default.contentsOfDirectory(atPath: Fixtures.url("folder").path) {
      try FileManager.default.copyItem(at: Fixtures.url("folder/\(file)"), to: snapshot.appendingPathComponent(file))
    }
    let folder = try ModelFolder(resolving: "Qwen/Qwen2.5-VL-3B-Instruct", environment: ["HF_HUB_CACHE": root.path])
    #expect(folder.config.text.numHiddenLayers == 36)
    #expect(folder.directory.lastPathComponent == "abc")
  }
}
