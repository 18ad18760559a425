import ArgumentParser
import Foundation
import Hub
import ModelConfig
import Models
import NN
import SafeTensors
import Torch
import Training

/// `vlmrl merge`: folds a LoRA adapter into its base model (`W + scaling * B @ A` for every adapted
/// linear layer, as peft's `merge_and_unload`) and writes a full model folder in the Hugging Face
/// layout, with the companion files, that transformers and every vlmrl command load.
struct Merge: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Merge a LoRA adapter (peft layout) into its base model and write a full model folder.")
  @Option(help: "LoRA adapter folder (adapter_config.json + adapter_model.safetensors), e.g. a LoRA run's final/.")
  var adapter: String
  @Option(help: "Base model folder or hub id, downloaded when missing (default: the adapter's base_model_name_or_path).") var base: String?
  @Option(help: "Output folder for the merged model (must not exist yet).") var out: String
  @Option(help: "Saved dtype: float32, bfloat16 or float16 (default: the dtype the base's weights are stored in).")
  var dtype: String?

  func run() async throws {
    let adapterURL = URL(fileURLWithPath: adapter).standardizedFileURL
    guard FileManager.default.fileExists(atPath: adapterURL.path) else { throw ValidationError("--adapter \(adapter): folder not found") }
    guard AdapterFolder.isAdapter(adapterURL) else {
      throw ValidationError("--adapter \(adapter): not a LoRA adapter folder (it needs adapter_config.json and no config.json)")
    }
    let outURL = URL(fileURLWithPath: out).standardizedFileURL
    guard !FileManager.default.fileExists(atPath: outURL.path) else {
      throw ValidationError("--out \(out): already exists; give a new folder (the merged model is written whole or not at all)")
    }
    var baseURL: URL?
    if let base {
      baseURL = try await HubModels.resolve(base)
    } else {
      _ = try await HubModels.resolve(adapterURL.path)  // the adapter's hub base, downloaded when missing
    }
    guard let folder = try AdapterFolder.read(adapterURL, base: baseURL) else {
      throw ValidationError("--adapter \(adapter): not a LoRA adapter folder")
    }
    let savedType: DType
    if let dtype {
      guard let chosen = DType(name: dtype), [.float32, .bfloat16, .float16].contains(chosen) else {
        throw ValidationError("--dtype: '\(dtype)' is not float32, bfloat16 or float16")
      }
      savedType = chosen
    } else {
      savedType = try Self.storedType(of: folder.base)
    }
    // Merged in float32 and rounded once to the saved dtype.
    let model = try QwenVLModel.load(adapter: folder, dtype: .float32, device: .cpu, use: .attached)
    let config = try LoRA.readConfig(directory: folder.directory)
    let layers = LoRA.merge(into: model)
    let files = ModelFolder.companionFolder(of: folder.directory, adapter: folder)
    try Checkpoint.writeWhole(outURL) { temporary in
      try model.save(to: temporary, dtype: savedType)
      try Checkpoint.copyCompanionFiles(from: files, to: temporary)
    }
    print("merged \(layers) LoRA layers (r \(config.rank), scaling \(config.scaling)) of \(folder.directory.path) "
      + "into \(folder.base.path); wrote \(outURL.path) (\(savedType))")
  }

  /// The floating-point dtype of the base's stored weights (transformers' `dtype="auto"`).
  static func storedType(of base: URL) throws -> DType {
    let weights = try ShardedSafeTensors(directory: base)
    for name in weights.names {
      if let type = DType(safeTensors: try weights.info(name).dtype), type.isFloatingPoint { return type }
    }
    return .float32
  }
}
