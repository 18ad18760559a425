import Foundation
import Testing

/// `vlmrl merge` writes a full model folder from a peft adapter; `vlmrl generate` takes the adapter
/// folder itself as `--model` and gives the merged folder's tokens; bad arguments are named.
@Suite struct MergeCommandTests {
  static let base = Catalog.root.appendingPathComponent("Tests/ModelsTests/Fixtures/qwen25vl_tied")
  static let peftAdapter = Catalog.root.appendingPathComponent("Tests/TrainingTests/Fixtures/peft_adapter")

  /// The committed adapter in `work/name`, its base named as `base`.
  static func adapter(in work: URL, _ name: String, base: String) throws -> URL {
    let folder = work.appendingPathComponent(name)
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    try FileManager.default.copyItem(at: peftAdapter.appendingPathComponent("adapter_model.safetensors"),
                                     to: folder.appendingPathComponent("adapter_model.safetensors"))
    let url = peftAdapter.appendingPathComponent("adapter_config.json")
    var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    config["base_model_name_or_path"] = base
    try JSONSerialization.data(withJSONObject: config).write(to: folder.appendingPathComponent("adapter_config.json"))
    return folder
  }

  @Test func mergeWritesAFullModelFolderThatGeneratesAsTheAdapter() throws {
    let executable = try #require(
      Harness.executable(), "no vlmrl binary next to the test bundle: build it (swift build --build-tests) or set VLMRL=path")
    let work = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-merge-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: work) }
    _ = try Self.adapter(in: work, "adapter", base: Self.base.path)

    let merged = try Harness.run(executable, ["merge", "--adapter", "adapter", "--out", "merged"], in: work, timeout: 120)
    #expect(merged.status == 0, "\(merged.stderr)")
    #expect(merged.stdout.contains("merged 16 LoRA layers"), "\(merged.stdout)")
    for name in ["config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja", "preprocessor_config.json",
                 "generation_config.json"] {
      #expect(FileManager.default.fileExists(atPath: work.appendingPathComponent("merged/\(name)").path), "merged/\(name)")
    }
    #expect(!FileManager.default.fileExists(atPath: work.appendingPathComponent(".merged.partial").path))

    func tokens(_ model: String) throws -> String {
      let run = try Harness.run(executable, ["generate", "--model", model, "--prompt", "name a shape", "--max-new-tokens", "6", "--json"],
                                in: work, timeout: 120)
      #expect(run.status == 0, "generate --model \(model): \(run.stderr)")
      let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
      return "\(object?["ids"] ?? "none")"
    }
    let fromMerged = try tokens("merged")
    #expect(fromMerged == (try tokens("adapter")))
    #expect(fromMerged != "none")

    // Written whole or not at all: an existing --out is refused and left as it was.
    let again = try Harness.run(executable, ["merge", "--adapter", "adapter", "--out", "merged"], in: work, timeout: 60)
    #expect(again.status != 0 && again.stderr.contains("--out merged"), "\(again.stderr)")
    // A model folder is not an adapter.
    let notAdapter = try Harness.run(executable, ["merge", "--adapter", "merged", "--out", "other"], in: work, timeout: 60)
    #expect(notAdapter.status != 0 && notAdapter.stderr.contains("not a LoRA adapter folder"), "\(notAdapter.stderr)")
  }

  @Test func anAdapterWhoseBaseIsMissingIsNamedAndBaseOverridesIt() throws {
    let executable = try #require(
      Harness.executable(), "no vlmrl binary next to the test bundle: build it (swift build --build-tests) or set VLMRL=path")
    let work = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-merge-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: work) }
    let adapter = try Self.adapter(in: work, "orphan", base: "/nowhere/base-model")
    for arguments in [["merge", "--adapter", "orphan", "--out", "merged"], ["generate", "--model", "orphan", "--prompt", "hi"]] {
      let run = try Harness.run(executable, arguments, in: work, timeout: 60)
      #expect(run.outcome(culprits: [adapter.path, "/nowhere/base-model"]) == .clearError, "\(arguments): \(run.status) \(run.stderr)")
      #expect(run.status == 1)
    }
    let withBase = try Harness.run(executable, ["merge", "--adapter", "orphan", "--base", Self.base.path, "--out", "merged",
                                                "--dtype", "bfloat16"], in: work, timeout: 120)
    #expect(withBase.status == 0 && withBase.stdout.contains("(bfloat16)"), "\(withBase.stderr)")
  }
}
