import Foundation
import NN

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
