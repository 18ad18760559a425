import ArgumentParser
import Datasets
import Foundation
import Generation
import Hub
import ModelConfig
import Models
import Processor
import Prompting
import Torch

/// `vlmrl generate`: one prompt (optionally with an image) through the chat template, the image
/// processor and the model, with a KV cache. How users and tests check a model folder.
struct Generate: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Generate a completion for one prompt and image.")
  @Option(help: "Model folder or hub id (downloaded into the Hugging Face cache when missing).") var model: String
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

  func run() async throws {
    let device = try usableDevice(device)
    guard let dtype = DType(name: dtype) else { throw ValidationError("--dtype: unknown dtype '\(self.dtype)'") }
    guard temperature.isFinite, temperature >= 0 else { throw ValidationError("--temperature must be a number >= 0, got \(temperature)") }
    let folder = try ModelFolder(directory: try await HubModels.resolve(model))
    let builder = try PromptBuilder(folder: folder)
    var parts: [PromptPart] = []
    var images: [ImageInfo] = []
    if let image {
      let url = URL(fileURLWithPath: image)
      parts.append(.image(.file(url)))
      images.append(ImageInfo(source: .file(url)))
    }
    parts.append(.text(prompt))
    let example = Example(source: RecordLocation(file: "--prompt", index: 0), kind: .sftConversation, prompt: parts,
                          rewardFields: [:], images: images)
    let prepared = try builder.prepare(example)
    let qwen = try QwenVLModel.load(folder: folder, dtype: dtype, device: device)
    qwen.switches = KernelSwitches.fromEnvironment()
    let settings = SamplingSettings(maxNewTokens: maxNewTokens, temperature: temperature, topP: topP, topK: topK)
    let (records, timings) = try RolloutEngine(model: qwen).rollouts([prepared], builder: builder, samples: 1, settings: settings,
                                                                      seeds: [seed])
    guard let record = records.first else { throw ValidationError("generation produced no completion") }
    if json {
      let object: [String: Any] = [
        "completion": record.text, "ids": record.tokens, "prompt_tokens": prepared.ids.count, "finished": record.finished,
        "prefill_seconds": timings.prefillSeconds, "decode_seconds": timings.decodeSeconds,
        "decode_tokens_per_second": Double(record.tokens.count) / Swift.max(timings.decodeSeconds, 1e-9),
      ]
      let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
      print(String(decoding: data, as: UTF8.self))
    } else {
      print(record.text)
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
