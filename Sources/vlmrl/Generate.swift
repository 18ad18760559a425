import ArgumentParser
import Foundation
import Imaging
import Jinja
import ModelConfig
import Models
import Processor
import Tokenizers
import Torch

/// `vlmrl generate`: one prompt (optionally with an image) through the chat template, the image
/// processor and the model, with a KV cache. How users and tests check a model folder.
struct Generate: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Generate a completion for one prompt and image.")
  @Option(help: "Model folder or hub id (found in the local Hugging Face cache).") var model: String
  @Option(help: "Image file (JPEG, PNG, WebP).") var image: String?
  @Option(help: "User prompt text.") var prompt: String
  @Option(help: "Maximum new tokens.") var maxNewTokens = 128
  @Option(help: "Sampling temperature (0 = greedy).") var temperature = 0.0
  @Option(help: "Nucleus sampling mass.") var topP = 1.0
  @Option(help: "Top-k sampling (0 = off).") var topK = 0
  @Option(help: "Random seed.") var seed: UInt64 = 0
  @Option(help: "cpu or cuda[:i].") var device = "cpu"
  @Option(help: "float32 or bfloat16.") var dtype = "float32"
  @Flag(help: "Print JSON with ids and timings.") var json = false

  func run() throws {
    guard let device = Device(name: device) else { throw ValidationError("--device: unknown device '\(self.device)'") }
    guard let dtype = DType(name: dtype) else { throw ValidationError("--dtype: unknown dtype '\(self.dtype)'") }
    let folder = try ModelFolder(directory: try ModelLocator.resolve(model))
    let tokenizer = try Tokenizer(directory: folder.directory)
    let template = try folder.chatTemplate.map { try Jinja.ChatTemplate(source: $0.text, name: $0.path) } ?? Jinja.ChatTemplate.chatML
    var parts: [ChatContent] = []
    var processed: ProcessedImages?
    if let image {
      let decoded = try decodeImage(contentsOf: URL(fileURLWithPath: image))
      processed = try QwenImageProcessor(config: folder.imageProcessor).preprocess([decoded])
      parts.append(.image)
    }
    parts.append(.text(prompt))
    var text = try template.render(messages: [ChatMessage(role: "user", parts: parts)], addGenerationPrompt: true)
    if let processed { text = try expandImagePads(text, imageTokenCounts: processed.imageTokenCounts) }
    let ids = tokenizer.encode(text)
    let qwen = try QwenVLModel.load(directory: folder.directory, dtype: dtype, device: device)
    var options = GenerationOptions()
    options.maxNewTokens = maxNewTokens
    options.temperature = temperature
    options.topP = topP
    options.topK = topK
    options.seed = seed
    options.eosTokenIds = Set(folder.eosTokenIds)
    options.suppressedTokenIds = [qwen.config.imageTokenId, qwen.config.videoTokenId, qwen.config.visionStartTokenId,
                                  qwen.config.visionEndTokenId] + (qwen.config.visionTokenId.map { [$0] } ?? [])
    let result = try qwen.generate(promptIDs: ids, pixelValues: processed?.pixelValues.to(device), grids: processed?.gridTHW ?? [],
                                   options: options)
    let completion = tokenizer.decode(result.tokens, skipSpecialTokens: true)
    if json {
      let object: [String: Any] = [
        "completion": completion, "ids": result.tokens, "prompt_tokens": ids.count, "finished": result.finished,
        "prefill_seconds": result.prefillSeconds, "decode_seconds": result.decodeSeconds,
        "decode_tokens_per_second": Double(result.tokens.count) / Swift.max(result.decodeSeconds, 1e-9),
      ]
      let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
      print(String(decoding: data, as: UTF8.self))
    } else {
      print(completion)
    }
  }
}

/// `vlmrl preprocess`: what the model's image processor makes of some images.
struct Preprocess: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Resized size, grid, token count and pixel statistics of images.")
  @Option(help: "Model folder (its preprocessor settings are used).") var model: String
  @Argument(help: "Image files.") var images: [String]
  func run() throws {
    try PreprocessCommand.run(modelDirectory: URL(fileURLWithPath: model), images: images.map { URL(fileURLWithPath: $0) })
      .forEach { print($0) }
  }
}
