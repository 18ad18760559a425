import Datasets
import Foundation
import Imaging
import Jinja
import ModelConfig
import Processor
import Rewards
import Tokenizers
import Torch

/// A prompt ready for the model: the rendered chat text, token ids with expanded image pads, the
/// processed images, and what the rewards need to know about them.
public struct PreparedPrompt: @unchecked Sendable {
  /// The chat template's output with one `<|image_pad|>` per image (not expanded). This is the prompt
  /// text rewards, rollout logs and evaluation samples see, in training and evaluation alike.
  public var text: String
  /// Token ids of `text` with each image's pad expanded to its token count.
  public var ids: [Int]
  public var pixelValues: Tensor?
  public var grids: [[Int]]
  public var images: [ImageGeometry]
  /// Image tokens among `ids` (the expanded pads).
  public var imageTokenCount: Int
  public var example: Example

  public init(text: String, ids: [Int], pixelValues: Tensor? = nil, grids: [[Int]] = [], images: [ImageGeometry] = [],
              imageTokenCount: Int = 0, example: Example) {
    self.text = text
    self.ids = ids
    self.pixelValues = pixelValues
    self.grids = grids
    self.images = images
    self.imageTokenCount = imageTokenCount
    self.example = example
  }

  /// Prompt tokens that are not image tokens.
  public var textTokenCount: Int { ids.count - imageTokenCount }

  /// The prompt with its images dropped (so unused prompts cost no vision pass).
  public var withoutImages: PreparedPrompt {
    var copy = self
    copy.pixelValues = nil
    return copy
  }
}

/// Why a record could not become a prompt. Training skips and counts such records; evaluation lists them.
public enum PromptError: Error, CustomStringConvertible, Sendable {
  /// More tokens (image tokens included) than `max_prompt_length`.
  case tooLong(source: RecordLocation, tokens: Int, limit: Int)
  /// An image that does not decode or process.
  case image(source: RecordLocation, message: String)
  /// The chat template or the image pads do not fit the record.
  case template(source: RecordLocation, message: String)

  public var description: String {
    switch self {
    case .tooLong(let source, let tokens, let limit):
      return "\(source): prompt has \(tokens) tokens, over max_prompt_length \(limit)"
    case .image(let source, let message): return "\(source): image: \(message)"
    case .template(let source, let message): return "\(source): \(message)"
    }
  }

  /// Short reason key for skip counters (`skipped/<reason>`).
  public var reason: String {
    switch self {
    case .tooLong: return "prompt_too_long"
    case .image: return "bad_image"
    case .template: return "bad_prompt"
    }
  }
}

/// The one way from a record to model input: the checkpoint's chat template, its image processor and
/// its tokenizer, exactly as inference does. Training, evaluation and `vlmrl generate` all use it.
public struct PromptBuilder: @unchecked Sendable {
  public let tokenizer: Tokenizer
  public let template: Jinja.ChatTemplate
  public let processor: QwenImageProcessor
  public let maxPromptLength: Int?
  /// Token ids that end a completion: the model's `eos_token_id`s (generation_config.json and
  /// config.json) and the chat format's `<|im_end|>` / `<|endoftext|>` when the tokenizer has them.
  /// One set for training rollouts, evaluation and `vlmrl generate`.
  public let stopTokenIds: Set<Int>
  /// The image pad token of the model (`<|image_pad|>` for Qwen-VL).
  public let imagePadToken: String

  public init(folder: ModelFolder, minPixels: Int? = nil, maxPixels: Int? = nil, maxPromptLength: Int? = nil) throws {
    tokenizer = try Tokenizer(directory: folder.filesDirectory)
    template = try folder.chatTemplate.map { try Jinja.ChatTemplate(source: $0.text, name: $0.path) } ?? Jinja.ChatTemplate.chatML
    var settings = folder.imageProcessor
    if let minPixels { settings.minPixels = minPixels }
    if let maxPixels { settings.maxPixels = maxPixels }
    processor = QwenImageProcessor(config: settings)
    self.maxPromptLength = maxPromptLength
    let tokenizer = self.tokenizer
    let chatEnds = ["<|im_end|>", "<|endoftext|>"].compactMap { tokenizer.tokenToId($0) }
    stopTokenIds = Set(folder.config.eosTokenIds + folder.eosTokenIds + chatEnds)
    imagePadToken = tokenizer.idToToken(folder.config.imageTokenId) ?? "<|image_pad|>"
  }

  /// The example's system turn when it has one (else the template's default applies), the user turn
  /// (text and images in order) and, for SFT, the assistant answer.
  public func messages(for example: Example, answer: String? = nil) -> [ChatMessage] {
    Self.messages(for: example, answer: answer)
  }

  /// `messages(for:answer:)` without a builder (it needs neither the tokenizer nor the template).
  public static func messages(for example: Example, answer: String? = nil) -> [ChatMessage] {
    var parts: [ChatContent] = []
    for part in example.prompt {
      switch part {
      case .text(let text): parts.append(.text(text))
      case .image: parts.append(.image)
      }
    }
    var messages = example.system.map { [ChatMessage(role: "system", text: $0)] } ?? []
    messages.append(ChatMessage(role: "user", parts: parts))
    if let answer { messages.append(ChatMessage(role: "assistant", text: answer)) }
    return messages
  }

  /// Renders, processes and tokenizes one example. Errors are `PromptError`s naming the record.
  public func prepare(_ example: Example) throws -> PreparedPrompt {
    try prepare(example, messages: messages(for: example))
  }

  /// Renders, processes and tokenizes a whole chat (system, user and assistant turns, as `vlmrl serve`
  /// receives it) instead of the example's single user turn. `example.images` are the chat's images in
  /// the order its `.image` parts appear.
  public func prepare(_ example: Example, messages: [ChatMessage]) throws -> PreparedPrompt {
    let decoded: [RGBImage]
    do {
      decoded = try example.images.map { try ImageLoader.decode($0.source) }
    } catch {
      throw PromptError.image(source: example.source, message: "\(error)")
    }
    let text = try renderForGeneration(messages, source: example.source)
    var expanded = text
    var pixelValues: Tensor?
    var grids: [[Int]] = []
    var geometry: [ImageGeometry] = []
    var imageTokens = 0
    if !decoded.isEmpty {
      let processed: ProcessedImages
      do {
        processed = try processor.preprocess(decoded, names: example.images.map { $0.source.name })
      } catch {
        throw PromptError.image(source: example.source, message: "\(error)")
      }
      do {
        expanded = try expandImagePads(text, imageTokenCounts: processed.imageTokenCounts, padToken: imagePadToken)
      } catch {
        throw PromptError.template(source: example.source, message: "\(error)")
      }
      imageTokens = processed.imageTokenCounts.reduce(0, +)
      pixelValues = processed.pixelValues
      grids = processed.gridTHW
      geometry = zip(decoded, processed.resizedSizes).map { image, resized in
        ImageGeometry(originalWidth: image.width, originalHeight: image.height, resizedWidth: resized.width,
                      resizedHeight: resized.height)
      }
    }
    let ids = tokenizer.encode(expanded, addSpecialTokens: false)  // as transformers encodes a rendered chat
    if let maxPromptLength, ids.count > maxPromptLength {
      throw PromptError.tooLong(source: example.source, tokens: ids.count, limit: maxPromptLength)
    }
    return PreparedPrompt(text: text, ids: ids, pixelValues: pixelValues, grids: grids, images: geometry,
                          imageTokenCount: imageTokens, example: example)
  }

  /// The template's render of `messages` followed by the generation prompt.
  func renderForGeneration(_ messages: [ChatMessage], source: RecordLocation) throws -> String {
    do {
      return try template.render(messages: messages, addGenerationPrompt: true)
    } catch {
      throw PromptError.template(source: source, message: "chat template: \(error)")
    }
  }

  /// The text of completion tokens, special tokens dropped (what rewards and logs read).
  public func completionText(_ tokens: [Int]) -> String { tokenizer.decode(tokens, skipSpecialTokens: true) }
}
