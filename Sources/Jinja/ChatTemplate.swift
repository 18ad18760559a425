// Chat rendering as Hugging Face's `apply_chat_template(..., tokenize=False)` does it: the template
// sees `messages`, `tools`, `documents`, `add_generation_prompt` and any extra keyword arguments
// (the tokenizer's special tokens such as `eos_token`, or `add_vision_id`).

/// One part of a multimodal message, as the Qwen-VL processor receives it.
public enum ChatContent: Sendable, Equatable {
  case text(String)
  case image
  case video

  /// The part as the template sees it: `{"type": "text", "text": ...}`, `{"type": "image"}`, ...
  public var jinjaValue: JinjaValue {
    switch self {
    case .text(let text): return .object([("type", "text"), ("text", .string(text))])
    case .image: return .object([("type", "image")])
    case .video: return .object([("type", "video")])
    }
  }
}

/// A chat message. `content` is either plain text or a list of parts; `fields` carries any other
/// keys the template reads (`tool_calls`, `name`, `reasoning_content`, ...).
public struct ChatMessage: Sendable {
  public enum Content: Sendable {
    case text(String)
    case parts([ChatContent])
  }

  public var role: String
  public var content: Content
  public var fields: JinjaObject

  public init(role: String, content: Content, fields: JinjaObject = JinjaObject()) {
    self.role = role
    self.content = content
    self.fields = fields
  }

  public init(role: String, text: String) { self.init(role: role, content: .text(text)) }

  public init(role: String, parts: [ChatContent]) { self.init(role: role, content: .parts(parts)) }

  /// The message as a dict: `role`, `content`, then the extra fields in order.
  public var jinjaValue: JinjaValue {
    var object = JinjaObject()
    object["role"] = .string(role)
    switch content {
    case .text(let text): object["content"] = .string(text)
    case .parts(let parts): object["content"] = .array(parts.map(\.jinjaValue))
    }
    for (key, value) in fields.pairs where key != "role" && key != "content" { object[key] = value }
    return .object(object)
  }
}

/// A checkpoint's chat template, parsed once.
public struct ChatTemplate: Sendable {
  public let template: JinjaTemplate

  /// Parses a template; `name` (e.g. the file it came from) appears in error messages.
  public init(source: String, name: String) throws(JinjaError) {
    template = try JinjaTemplate(source, name: name)
  }

  /// The Qwen2-VL / Qwen2.5-VL Instruct template (ChatML with a default system prompt and
  /// `<|vision_start|><|image_pad|><|vision_end|>` per image), for checkpoints that ship none.
  public static let chatML: ChatTemplate = {
    do {
      return try ChatTemplate(source: qwenVLInstructSource, name: "qwen-vl-chatml")
    } catch {
      preconditionFailure("built-in chat template does not parse: \(error)")
    }
  }()

  /// Renders typed messages. `addVisionId` is passed to the template only when true, as Hugging Face
  /// leaves it undefined by default; `extra` entries (special tokens, custom flags) override the rest.
  public func render(
    messages: [ChatMessage], addGenerationPrompt: Bool, addVisionId: Bool = false,
    tools: [JinjaValue]? = nil, extra: [String: JinjaValue] = [:]
  ) throws(JinjaError) -> String {
    var context = extra
    if addVisionId && context["add_vision_id"] == nil { context["add_vision_id"] = .bool(true) }
    return try render(messages: messages.map(\.jinjaValue), addGenerationPrompt: addGenerationPrompt,
                      tools: tools, extra: context)
  }

  /// Renders messages given as dicts (e.g. parsed from JSON). Like `apply_chat_template`, keys whose
  /// value is None are dropped from each message, and `reasoning_content` / `thinking` / `reasoning`
  /// are aliased to each other.
  public func render(
    messages: [JinjaValue], addGenerationPrompt: Bool, tools: [JinjaValue]? = nil,
    extra: [String: JinjaValue] = [:]
  ) throws(JinjaError) -> String {
    var context = extra
    context["messages"] = .array(messages.map(Self.normalizeMessage))
    context["tools"] = tools.map(JinjaValue.array) ?? JinjaValue.none
    context["documents"] = context["documents"] ?? JinjaValue.none
    context["add_generation_prompt"] = .bool(addGenerationPrompt)
    return try template.render(context)
  }

  /// Matches transformers' message clean-up before rendering (None-valued keys removed, reasoning
  /// fields aliased: `thinking` first, `reasoning_content` last).
  static func normalizeMessage(_ message: JinjaValue) -> JinjaValue {
    guard case .object(let object) = message else { return message }
    var cleaned = JinjaObject(object.pairs.filter { !($0.value == .none) }.map { ($0.key, $0.value) })
    let reasoningKeys = ["reasoning_content", "thinking", "reasoning"]
    if let reasoning = reasoningKeys.lazy.compactMap({ cleaned[$0] }).first {
      var aliased = JinjaObject([("thinking", reasoning)])
      for (key, value) in cleaned.pairs { aliased[key] = value }
      aliased["reasoning_content"] = reasoning
      cleaned = aliased
    }
    return .object(cleaned)
  }

  /// The widely shipped Qwen2-VL-Instruct / Qwen2.5-VL-Instruct `chat_template`.
  public static let qwenVLInstructSource =
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    + "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    + "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    + "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    + "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    + "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    + "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    + "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    + "{% elif content['type'] == 'video' or 'video' in content %}"
    + "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    + "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    + "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    + "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
}
