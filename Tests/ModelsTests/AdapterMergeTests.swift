import Foundation
import ModelConfig
import NN
import SafeTensors
import Testing
@testable import Models
@testable import Torch

/// A peft adapter folder loads wherever a model folder does (its base with the adapter merged in),
/// and the merge equals peft's `merge_and_unload` (tools/golden/peft_merge.py), also with rsLoRA.
@Suite struct AdapterMergeTests {
  static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
  static let base = fixtures.appendingPathComponent("qwen25vl_tied").standardizedFileURL
  static let peftAdapter = fixtures.appendingPathComponent("../../TrainingTests/Fixtures/peft_adapter").standardizedFileURL
  static let reference = fixtures.appendingPathComponent("peft_merge/reference.safetensors")

  /// The committed peft adapter copied into a temporary folder, its base named by absolute path
  /// (the fixture names it relative to the checkout), with `edit` applied to adapter_config.json.
  static func adapterCopy(_ edit: (inout [String: Any]) -> Void = { _ in }) throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-adapter-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    for name in ["adapter_config.json", "adapter_model.safetensors"] {
      try FileManager.default.copyItem(at: peftAdapter.appendingPathComponent(name), to: folder.appendingPathComponent(name))
    }
    let configURL = folder.appendingPathComponent("adapter_config.json")
    var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any])
    config["base_model_name_or_path"] = base.path
    edit(&config)
    try JSONSerialization.data(withJSONObject: config).write(to: configURL)
    return folder
  }

  func tensor(_ file: SafeTensorsFile, _ name: String) throws -> Tensor {
    let info = try file.info(name)
    return Tensor(bytes: try file.bytes(name), shape: info.shape, dtype: try #require(DType(safeTensors: info.dtype)))
  }

  /// Every merged weight's first row (to 1e-5) and its sum and sum of squares (relative 1e-5)
  /// against peft's, for the reference keys with `prefix`; returns how many weights were compared.
  func compareMerged(_ model: QwenVLModel, prefix: String) throws -> Int {
    let file = try SafeTensorsFile(url: Self.reference)
    let parameters = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.0, $0.1.value) })
    var compared = 0
    for key in file.names where key.hasPrefix(prefix + ".") && key.hasSuffix(".stats") {
      let name = String(key.dropFirst(prefix.count + 1).dropLast(".stats".count))
      let weight = try #require(parameters[name], "\(name) is not a parameter of vlmrl's model")
      let row = try tensor(file, "\(prefix).\(name).row0")
      #expect(weight[0].maxAbsDifference(row) <= 1e-5, "\(name): first row")
      let stats = try tensor(file, key).doubles()
      let w64 = weight.to(.float64)
      let sum: Double = w64.sum().item(), squares: Double = (w64 * w64).sum().item()
      #expect(Swift.abs(sum - stats[0]) <= 1e-5 * Swift.max(1, Swift.abs(stats[0])), "\(name): sum \(sum) vs \(stats[0])")
      #expect(Swift.abs(squares - stats[1]) <= 1e-5 * stats[1], "\(name): sum of squares \(squares) vs \(stats[1])")
      compared += 1
    }
    return compared
  }

  @Test func adapterFolderLoadsMergedAsPeftMergeAndUnload() throws {
    let adapter = try Self.adapterCopy()
    defer { try? FileManager.default.removeItem(at: adapter) }
    let model = try QwenVLModel.load(directory: adapter)  // the plain model loader accepts the adapter folder
    #expect(LoRA.adapters(in: model).isEmpty)
    #expect(model.parameters.allSatisfy { $0.trainable })
    #expect(try compareMerged(model, prefix: "merged") == 16)
    let file = try SafeTensorsFile(url: Self.reference)
    let logits = try withNoGrad { try model.logits(ids: try tensor(file, "input_ids").ints())[0] }
    let last = logits[logits.size(0) - 1]
    let expected = try tensor(file, "logits_last")
    #expect(last.maxAbsDifference(expected) <= 1e-5 * Swift.max(1, expected.abs().max().item()))
    // The merge moved the weights: the base alone is far from peft's merged logits.
    let baseLogits = try withNoGrad { try QwenVLModel.load(directory: Self.base).logits(ids: try tensor(file, "input_ids").ints())[0] }
    #expect(baseLogits[baseLogits.size(0) - 1].maxAbsDifference(expected) > 1e-2)
  }

  @Test func rsLoRAMergesWithAlphaOverSquareRootOfRank() throws {
    let adapter = try Self.adapterCopy { $0["use_rslora"] = true }
    defer { try? FileManager.default.removeItem(at: adapter) }
    #expect(try LoRA.readConfig(directory: adapter).scaling == 8.0 / 2.0)
    let model = try QwenVLModel.load(directory: adapter)
    #expect(try compareMerged(model, prefix: "rslora") == 16)
  }

  @Test func modelFolderOfAnAdapterReadsTheBase() throws {
    let adapter = try Self.adapterCopy()
    defer { try? FileManager.default.removeItem(at: adapter) }
    let folder = try ModelFolder(resolving: adapter.path)
    #expect(folder.adapter?.base.path == Self.base.path)
    #expect(folder.weightsDirectory.path == Self.base.path && folder.filesDirectory.path == Self.base.path)
    #expect(folder.chatTemplate != nil && folder.config.family == .qwen25VL)
    // Unmerged, as peft runs it: the same logits as merged, within float32 rounding.
    let attached = try QwenVLModel.load(folder: folder, adapter: .attached)
    #expect(LoRA.adapters(in: attached).count == 16)
    let merged = try QwenVLModel.load(folder: folder)
    let ids = [3, 17, 250, 901]
    let a = try withNoGrad { try attached.logits(ids: ids) }, b = try withNoGrad { try merged.logits(ids: ids) }
    #expect(a.maxAbsDifference(b) <= 1e-4)
  }

  @Test func adapterWithoutItsBaseIsAnErrorNamingTheFolder() throws {
    let adapter = try Self.adapterCopy { $0["base_model_name_or_path"] = "/nonexistent/base-model" }
    defer { try? FileManager.default.removeItem(at: adapter) }
    for load in [{ _ = try ModelLocator.resolve(adapter.path) }, { _ = try QwenVLModel.load(directory: adapter) }] {
      do {
        try load()
        Issue.record("an adapter without its base loaded")
      } catch {
        let message = "\(error)"
        #expect(message.contains(adapter.path) && message.contains("/nonexistent/base-model")
          && message.contains("base_model_name_or_path"), "\(message)")
      }
    }
    let nested = try Self.adapterCopy { $0["base_model_name_or_path"] = Self.peftAdapter.path }
    defer { try? FileManager.default.removeItem(at: nested) }
    #expect(throws: ModelConfigError.self) { _ = try ModelLocator.resolve(nested.path) }
  }
}
