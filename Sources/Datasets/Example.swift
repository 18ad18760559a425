import Common
import Foundation

/// The record kinds of docs/data.md, detected from a record's fields or named in a dataset YAML.
public enum RecordKind: String, Sendable, CaseIterable, Codable {
  /// mmkd single-box grounding: `image_path, height, width, instruction, bbox`.
  case singleBox = "single_box"
  /// mmkd multi-box grounding: `image_path, height, width, instruction, abs_box`.
  case multiBox = "multi_box"
  /// SFT conversation: `image`, `conversations: [{from, value}]`.
  case sftConversation = "sft"
  /// VLM-R1 referring-expression comprehension: `image, problem, solution: box, normal_caption`.
  case rec
  /// R1-V question answering (CLEVR counting, GeoQA train): `image, problem, solution`.
  case r1vQA = "r1v_qa"
  /// R1-V evaluation lines (SuperCLEVR-200, GeoQA test): `image_path, question, ground_truth`.
  case r1vTest = "r1v_test"
  /// A-OKVQA multiple choice: `question, choices, correct_choice_idx, direct_answers, image|image_id`.
  case aokvqa
  /// Region captioning (GAR / describe-anything): `image, mask_rle, conversations`.
  case regionCaption = "region_caption"
  /// TRL / Hugging Face conversational: `prompt` or `messages` as chat messages `{role, content}`,
  /// images in `image` / `images`, every other column passed to the rewards.
  case chat
  /// A text prompt with images: TRL's standard `prompt` string, or EasyR1's `problem` with `answer`
  /// and `images`; every other column passed to the rewards.
  case textPrompt = "prompt"

  /// Parses a kind name as written in a dataset YAML (also accepts a few spelled-out aliases).
  public init?(name: String) {
    let key = name.lowercased().replacingOccurrences(of: "-", with: "_")
    if let kind = RecordKind(rawValue: key) { self = kind; return }
    let aliases: [String: RecordKind] = [
      "single": .singleBox, "multi": .multiBox, "conversation": .sftConversation,
      "sft_conversation": .sftConversation, "r1v": .r1vQA, "qa": .r1vQA, "a_okvqa": .aokvqa,
      "region_captioning": .regionCaption, "region": .regionCaption,
      "conversational": .chat, "messages": .chat, "trl": .chat, "standard": .textPrompt, "text_prompt": .textPrompt,
      "easyr1": .textPrompt, "easy_r1": .textPrompt,
    ]
    guard let kind = aliases[key] else { return nil }
    self = kind
  }
}

/// Where the pixels of one image come from. Nothing is decoded until asked (see `ImageLoader`).
public enum ImageSource: Sendable, Hashable, CustomStringConvertible {
  /// An image file on disk (path already resolved, see `ImagePathResolver`).
  case file(URL)
  /// Encoded bytes embedded in the data (Parquet/Arrow `{bytes, path}` struct, `data:` URL);
  /// `name` is the embedded path or a `file#index` label used in messages.
  case bytes(Data, name: String)

  /// A short label for messages and logs.
  public var name: String {
    switch self {
    case .file(let url): return url.path
    case .bytes(_, let name): return name
    }
  }

  public var description: String {
    switch self {
    case .file(let url): return url.path
    case .bytes(let data, let name): return "\(name) (\(data.count) embedded bytes)"
    }
  }
}

/// One piece of a prompt, in order: text and image positions (Qwen chat templates place
/// `<|vision_start|><|image_pad|>...<|vision_end|>` where the image part sits).
public enum PromptPart: Sendable, Hashable {
  case text(String)
  case image(ImageSource)
}

/// One turn of a conversation (SFT and region captioning).
public struct ConversationTurn: Sendable, Hashable {
  /// Chat-template role: `user`, `assistant` or `system` (`human`/`gpt` are mapped).
  public var role: String
  /// The turn's text; `<image>` markers are kept in user turns.
  public var text: String

  public init(role: String, text: String) {
    self.role = role
    self.text = text
  }
}

/// An image of an example with its original size when it is known without decoding
/// (from the record's `width`/`height`, or from the file header via `Imaging.imageSize`).
public struct ImageInfo: Sendable, Hashable {
  public var source: ImageSource
  public var width: Int?
  public var height: Int?

  public init(source: ImageSource, width: Int? = nil, height: Int? = nil) {
    self.source = source
    self.width = width
    self.height = height
  }
}

/// Where a record came from: the data file and the record's 0-based index in it.
public struct RecordLocation: Sendable, Hashable, CustomStringConvertible {
  public var file: String
  public var index: Int

  public init(file: String, index: Int) {
    self.file = file
    self.index = index
  }

  public var description: String { "\(file) #\(index)" }
}

/// A typed training / evaluation example built from one record.
public struct Example: Sendable {
  /// File and index of the record.
  public var source: RecordLocation
  public var kind: RecordKind
  /// The system turn of the prompt: the record's own, else the dataset's `system_prompt`, else nil
  /// (the chat template's default applies).
  public var system: String?
  /// The user prompt as text and image parts, in order.
  public var prompt: [PromptPart]
  /// Conversation turns (SFT, region captioning); empty for the RL kinds.
  public var conversation: [ConversationTurn]
  /// Ground truth and side fields under the names the reward functions read:
  /// `solution`, `bbox`, `abs_box`, `ground_truth`, `label_idx`, `choices`, `direct_answers`,
  /// `mask_rle`, `captions`, `judge_questions` (only those the kind has). The chat and prompt kinds
  /// carry every column of the record except the prompt and image columns, plus `solution` from the
  /// ground-truth column.
  public var rewardFields: [String: JSONValue]
  /// The images of the prompt, in prompt order, with their original sizes when known.
  public var images: [ImageInfo]

  public init(
    source: RecordLocation, kind: RecordKind, prompt: [PromptPart], conversation: [ConversationTurn] = [],
    rewardFields: [String: JSONValue], images: [ImageInfo], system: String? = nil
  ) {
    self.source = source
    self.kind = kind
    self.system = system
    self.prompt = prompt
    self.conversation = conversation
    self.rewardFields = rewardFields
    self.images = images
  }

  /// The prompt's text with `<image>` where each image sits (for logs and `data inspect`).
  public var renderedPrompt: String {
    prompt.map { part in
      switch part {
      case .text(let text): return text
      case .image: return "<image>"
      }
    }.joined()
  }

  /// The prompt's text parts only, joined.
  public var promptText: String {
    prompt.compactMap { part in
      if case .text(let text) = part { return text }
      return nil
    }.joined()
  }
}
