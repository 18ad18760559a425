import Datasets
import Foundation
import Imaging
import Jinja
import ModelConfig
import Models
import Processor
import Rewards
import Tokenizers
import Torch

/// A prompt ready for the model: token ids with expanded image pads, the processed images, and what
/// the rewards need to know about them.
public struct PreparedPrompt: @unchecked Sendable {
  public var text: String
  public var ids: [Int]
  public var pixelValues: Tensor?
  public var grids: [[Int]]
  public var images: [ImageGeometry]
  public var example: Example
}

/// Renders examples with the checkpoint's chat template, runs the image processor and tokenizes,
/// exactly as inference does (one place for both).
public struct PromptBuilder: @unchecked Sendable {
  public let tokenizer: Tokenizer
  public let template: Jinja.ChatTemplate
  public let processor: QwenImageProcessor
  public let maxPromptLength: Int?

  public init(folder: ModelFolder, minPixels: Int? = nil, maxPixels: Int? = nil, maxPromptLength: Int? = nil) throws {
    tokenizer = try Tokenizer(directory: folder.directory)
    template = try folder.chatTemplate.map { try Jinja.ChatTemplate(source: $0.text, name: $0.path) } ?? Jinja.ChatTemplate.chatML
    var settings = folder.imageProcessor
    if let minPixels { settings.minPixels = minPixels }
    if let maxPixels { settings.maxPixels = maxPixels }
    processor = QwenImageProcessor(config: settings)
    self.maxPromptLength = maxPromptLength
  }

  /// The user turn (text and images in order) plus, for SFT, the assistant answer.
  public func messages(for example: Example, answer: String? = nil) -> [ChatMessage] {
    var parts: [ChatContent] = []
    for part in example.prompt {
      switch part {
      case .text(let text): parts.append(.text(text))
      case .image: parts.append(.image)
      }
    }
    var messages = [ChatMessage(role: "user", parts: parts)]
    if let answer { messages.append(ChatMessage(role: "assistant", text: answer)) }
    return messages
  }

  public func prepare(_ example: Example) throws -> PreparedPrompt {
    let decoded = try example.images.map { try ImageLoader.decode($0.source) }
    var text = try template.render(messages: messages(for: example), addGenerationPrompt: true)
    var pixelValues: Tensor?
    var grids: [[Int]] = []
    var geometry: [ImageGeometry] = []
    if !decoded.isEmpty {
      let processed = try processor.preprocess(decoded, names: example.images.map { $0.source.name })
      text = try expandImagePads(text, imageTokenCounts: processed.imageTokenCounts)
      pixelValues = processed.pixelValues
      grids = processed.gridTHW
      geometry = zip(decoded, processed.resizedSizes).map { image, resized in
        ImageGeometry(originalWidth: image.width, originalHeight: image.height, resizedWidth: resized.width,
                      resizedHeight: resized.height)
      }
    }
    let ids = tokenizer.encode(text)
    if let maxPromptLength, ids.count > maxPromptLength {
      throw TrainingError.invalidArgument("\(example.source): prompt has \(ids.count) tokens, over max_prompt_length \(maxPromptLength)")
    }
    return PreparedPrompt(text: text, ids: ids, pixelValues: pixelValues, grids: grids, images: geometry, example: example)
  }
}
