import Foundation
import ModelConfig
import NN
import Torch

/// Module names of vlmrl's Qwen-VL (the Hub's 4.x layout: `model.layers.*`, `visual.*`) against the
/// names current transformers gives the modules (`model.language_model.*`, `model.visual.*`), which
/// are what peft matches `target_modules` against and writes into adapter files.
public enum QwenModuleNames {
  public static func hub(_ name: String) -> String {
    if name == "visual" || name.hasPrefix("visual.") { return "model." + name }
    if name == "model" { return "model.language_model" }
    if name.hasPrefix("model.") { return "model.language_model." + name.dropFirst("model.".count) }
    return name
  }

  /// Either layout back to vlmrl's names.
  public static func canonical(_ name: String) -> String {
    if name.hasPrefix("model.visual.") { return String(name.dropFirst("model.".count)) }
    if name.hasPrefix("model.language_model.") { return "model." + name.dropFirst("model.language_model.".count) }
    return name
  }
}

extension QwenVLModel {
  /// Attaches LoRA adapters (peft semantics) and freezes everything else.
  @discardableResult
  public func addAdapters(_ config: LoRAConfig, seed: UInt64 = 0) throws -> [(String, LoRAAdapter)] {
    try LoRA.apply(to: self, config: config, hubName: QwenModuleNames.hub, seed: seed)
  }

  /// Loads a peft adapter folder (`adapter_config.json` + `adapter_model.safetensors`, keys in either
  /// transformers layout) onto this model; adds the adapters first when the model has none.
  @discardableResult
  public func loadAdapter(directory: URL) throws -> LoRAConfig {
    try LoRA.load(directory: directory, into: self, hubName: QwenModuleNames.hub, canonicalName: QwenModuleNames.canonical)
  }

  /// Writes the adapters in peft's layout (keys as current transformers + peft write them).
  public func saveAdapter(_ config: LoRAConfig, baseModel: String?, to directory: URL) throws {
    try LoRA.save(model: self, config: config, baseModel: baseModel, hubName: QwenModuleNames.hub, to: directory)
  }

  /// Whether any adapter is attached.
  public var hasAdapters: Bool { !LoRA.adapters(in: self).isEmpty }

  /// What an optimizer trains: the adapters when there are any, else the trainable parameters; by
  /// name (peft names for adapters), as checkpoints store optimizer state.
  public var namedTrainableParameters: [(String, Parameter)] {
    hasAdapters ? LoRA.namedParameters(in: self, hubName: QwenModuleNames.hub).filter { $0.1.trainable }
      : namedParameters().filter { $0.1.trainable }
  }
}

// MARK: - Loading a model folder or an adapter folder

extension QwenVLModel {
  /// What becomes of the adapter of an adapter folder.
  public enum AdapterUse: Sendable {
    /// Folded into the base weights (`LoRA.merge`): a plain model, as peft's `merge_and_unload`.
    case merged
    /// Kept as trainable adapters on the frozen base (training continues them).
    case attached
  }

  /// The one loader of a model argument (`vlmrl generate`, `eval`, `serve`, the trainers' `models.student`):
  /// a model folder, or a peft adapter folder whose base is loaded with the adapter applied.
  public static func load(folder: ModelFolder, dtype: DType = .float32, device: Device = .cpu,
                          adapter use: AdapterUse = .merged) throws -> QwenVLModel {
    guard let adapter = folder.adapter else { return try load(directory: folder.directory, dtype: dtype, device: device) }
    return try load(adapter: adapter, dtype: dtype, device: device, use: use)
  }

  /// The base of `adapter` with its adapter merged in or attached.
  public static func load(adapter: AdapterFolder, dtype: DType = .float32, device: Device = .cpu,
                          use: AdapterUse = .merged) throws -> QwenVLModel {
    let model = try load(directory: adapter.base, dtype: dtype, device: device)
    try model.apply(adapter)
    if use == .merged {
      LoRA.merge(into: model)
      model.setTrainable(true)  // a freshly loaded model trains whole; the adapter had frozen it
    }
    return model
  }

  /// The policy of a training run from `directory` (a model folder or an adapter folder). With
  /// `lora` (`use_peft`) it trains adapters: an adapter folder's own, loaded as saved (its rank,
  /// alpha, targets and rsLoRA; `lora`'s dropout), else new ones from `lora` initialised with
  /// `seed`. Without `lora` an adapter folder's adapter is merged and the whole model trains.
  /// Returns the model and the adapter settings it trains (nil without LoRA).
  public static func loadForTraining(directory: URL, lora: LoRAConfig?, seed: UInt64, dtype: DType = .float32,
                                     device: Device = .cpu) throws -> (model: QwenVLModel, adapter: LoRAConfig?) {
    guard let lora else { return (try load(directory: directory, dtype: dtype, device: device), nil) }
    guard let folder = try AdapterFolder.read(directory) else {
      let model = try load(directory: directory, dtype: dtype, device: device)
      try model.addAdapters(lora, seed: seed)
      return (model, lora)
    }
    var saved = try LoRA.readConfig(directory: folder.directory)
    saved.dropout = lora.dropout
    let model = try load(directory: folder.base, dtype: dtype, device: device)
    try model.addAdapters(saved, seed: seed)
    try model.apply(folder)
    return (model, saved)
  }

  /// Loads the adapter of `folder` onto this model (its base); errors name the adapter folder.
  func apply(_ folder: AdapterFolder) throws {
    do {
      try loadAdapter(directory: folder.directory)
    } catch {
      throw ModelError.weights("\(folder.directory.path): cannot apply the LoRA adapter to its base \(folder.base.path): \(error)")
    }
  }
}
