import Foundation

/// Everything in a Qwen-VL checkpoint folder besides the weights themselves.
public struct ModelFolder: Sendable {
  /// The folder (a snapshot folder for hub ids).
  public let directory: URL
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

  /// Reads the configuration files of `directory`. `config.json` is required; the others are
  /// optional, but each one present must be valid.
  public init(directory: URL) throws {
    self.directory = directory
    config = try QwenVLConfig(contentsOf: directory.appendingPathComponent("config.json"))
    let generation = directory.appendingPathComponent("generation_config.json")
    generationConfig = Self.exists(generation) ? try GenerationConfig(contentsOf: generation) : nil
    let preprocessor = directory.appendingPathComponent("preprocessor_config.json")
    let processor = directory.appendingPathComponent("processor_config.json")
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
    let tokenizer = directory.appendingPathComponent("tokenizer_config.json")
    tokenizerConfig = Self.exists(tokenizer) ? try TokenizerConfig(contentsOf: tokenizer) : nil
    chatTemplate = try ChatTemplate.locate(in: directory)
  }

  /// `tokenizer.json`, the fast tokenizer file.
  public var tokenizerFile: URL { directory.appendingPathComponent("tokenizer.json") }
  /// `model.safetensors` when present (transformers looks for it first), else
  /// `model.safetensors.index.json`; nil when the folder has neither.
  public var weightsEntryFile: URL? {
    let single = directory.appendingPathComponent("model.safetensors")
    let index = directory.appendingPathComponent("model.safetensors.index.json")
    return Self.exists(single) ? single : Self.exists(index) ? index : nil
  }

  /// Stop tokens for generation: generation_config's `eos_token_id` list, else config.json's.
  public var eosTokenIds: [Int] {
    if let ids = generationConfig?.eosTokenIds, !ids.isEmpty { return ids }
    return config.eosTokenIds
  }

  static func exists(_ url: URL) -> Bool { FileManager.default.fileExists(atPath: url.path) }
}
