import Foundation

/// Everything in a Qwen-VL checkpoint folder besides the weights themselves. The folder may be a
/// model folder, a peft LoRA adapter folder (`AdapterFolder`: config and weights from its base), or a
/// training checkpoint; the tokenizer, chat template, processor and generation config come from
/// `filesDirectory` (`companionFolder(of:adapter:)`).
public struct ModelFolder: Sendable {
  /// The folder as given (a snapshot folder for hub ids; the adapter folder for an adapter).
  public let directory: URL
  /// The adapter and its base when `directory` is a LoRA adapter folder.
  public let adapter: AdapterFolder?
  /// The folder with the tokenizer, chat template, processor and generation config files.
  public let filesDirectory: URL
  /// `config.json`.
  public let config: QwenVLConfig
  /// `generation_config.json`, when present.
  public let generationConfig: GenerationConfig?
  /// Image processor settings; transformers' class defaults when the folder has no processor file.
  public let imageProcessor: ImageProcessorConfig
  /// The file the image processor settings came from (nil: class defaults).
  public let imageProcessorFile: String?
  /// `tokenizer_config.json`, when present.
  public let tokenizerConfig: TokenizerConfig?
  /// The chat template, wherever it lives; nil when the checkpoint has none.
  public let chatTemplate: ChatTemplate?

  /// Resolves `argument` (folder or cached hub id) and reads the folder.
  public init(
    resolving argument: String, revision: String = "main",
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws {
    try self.init(directory: try ModelLocator.resolve(argument, revision: revision, environment: environment))
  }

  /// Reads the configuration files of `directory`. `config.json` is required (the base's for an
  /// adapter folder); the others are optional, but each one present must be valid.
  public init(directory: URL) throws {
    self.directory = directory
    adapter = try AdapterFolder.read(directory)
    let files = Self.companionFolder(of: directory, adapter: adapter)
    filesDirectory = files
    config = try QwenVLConfig(contentsOf: (adapter?.base ?? directory).appendingPathComponent("config.json"))
    let generation = files.appendingPathComponent("generation_config.json")
    generationConfig = Self.exists(generation) ? try GenerationConfig(contentsOf: generation) : nil
    let preprocessor = files.appendingPathComponent("preprocessor_config.json")
    let processor = files.appendingPathComponent("processor_config.json")
    if Self.exists(preprocessor) {
      imageProcessor = try ImageProcessorConfig(contentsOf: preprocessor)
      imageProcessorFile = preprocessor.lastPathComponent
    } else if Self.exists(processor) {
      imageProcessor = try ImageProcessorConfig(contentsOf: processor)
      imageProcessorFile = processor.lastPathComponent
    } else {
      imageProcessor = ImageProcessorConfig()
      imageProcessorFile = nil
    }
    let tokenizer = files.appendingPathComponent("tokenizer_config.json")
    tokenizerConfig = Self.exists(tokenizer) ? try TokenizerConfig(contentsOf: tokenizer) : nil
    chatTemplate = try ChatTemplate.locate(in: files)
  }

  /// The folder with `config.json` and the weights: the base model's for an adapter folder.
  public var weightsDirectory: URL { adapter?.base ?? directory }

  /// `tokenizer.json`, the fast tokenizer file.
  public var tokenizerFile: URL { filesDirectory.appendingPathComponent("tokenizer.json") }
  /// `model.safetensors` when present (transformers looks for it first), else
  /// `model.safetensors.index.json`; nil when the folder has neither.
  public var weightsEntryFile: URL? {
    let single = weightsDirectory.appendingPathComponent("model.safetensors")
    let index = weightsDirectory.appendingPathComponent("model.safetensors.index.json")
    return Self.exists(single) ? single : Self.exists(index) ? index : nil
  }

  /// Stop tokens for generation: generation_config's `eos_token_id` list, else config.json's.
  public var eosTokenIds: [Int] {
    if let ids = generationConfig?.eosTokenIds, !ids.isEmpty { return ids }
    return config.eosTokenIds
  }

  static func exists(_ url: URL) -> Bool { FileManager.default.fileExists(atPath: url.path) }
}
