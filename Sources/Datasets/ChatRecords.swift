import Common
import Foundation

/// The TRL / Hugging Face conversational layout (kind `chat`) and text prompts with images (kind
/// `prompt`: TRL's standard `prompt` string, EasyR1's `problem`/`answer`/`images`).
extension ExampleBuilder {
  /// Prompt columns tried, in order, when `prompt_key` is not set.
  static let promptColumns = ["prompt", "messages"]
  /// EasyR1's prompt column; detected only together with its ground-truth column.
  static let easyR1PromptColumn = "problem"
  static let easyR1AnswerColumn = "answer"
  /// Image columns tried, in order, when `image_key` is not set.
  static let imageColumns = ["images", "image"]

  /// The kind of a record read through the column mapping, or nil when it is not one: a chat when
  /// the prompt column holds a list, else a text prompt.
  static func mappedKind(_ fields: Fields, columns: ColumnMapping) -> RecordKind? {
    let key: String
    if let named = columns.promptKey {
      key = named
    } else if let found = promptColumns.first(where: { fields.raw.fields[$0] != nil }) {
      key = found  // present even when null: the parser then names the missing prompt
    } else if fields.has(easyR1PromptColumn), fields.has(columns.solutionKey ?? columns.answerKey ?? easyR1AnswerColumn) {
      key = easyR1PromptColumn
    } else {
      return nil
    }
    return fields.raw.fields[key]?.arrayValue != nil ? .chat : .textPrompt
  }

  /// Builds a chat or text-prompt example and says which columns it came from.
  func mappedRecord(_ fields: Fields, kind: RecordKind, location: RecordLocation) throws -> (Example, ResolvedColumns) {
    let promptKey = try promptColumn(fields)
    let imageKey = try imageColumn(fields, promptKey: promptKey)
    var columnImages: [ImageSource] = []
    if let imageKey, fields.has(imageKey) {
      columnImages = try fields.images(imageKey, resolver: resolver, location: location, allowEmpty: true)
    }
    let value = try fields.value(promptKey)
    let turns: [ChatTurn]
    switch kind {
    case .chat:
      guard let items = value.arrayValue else {
        throw RecordProblem(.wrongType, field: promptKey, "expected a list of chat messages {role, content}, found \(preview(value))")
      }
      turns = try items.enumerated().map { try chatTurn($1, index: $0, field: promptKey, location: location) }
    default:
      guard let text = value.stringValue else {
        throw RecordProblem(.wrongType, field: promptKey, "expected a prompt string, found \(preview(value)) (a list of messages is kind chat)")
      }
      turns = [ChatTurn(role: "user", pieces: Self.splitMarkers(text))]
    }
    let layout = try ChatLayout(turns: turns, field: promptKey)
    let prompt = try placeImages(layout.firstUser.pieces, columnImages: columnImages, turns: turns, imageKey: imageKey ?? promptKey)
    var reward = passThroughFields(fields, excluding: [promptKey, imageKey].compactMap { $0 })
    let truthKey = try groundTruthColumn(fields)
    if let truthKey { reward["solution"] = try fields.value(truthKey) }
    let images = prompt.compactMap { part -> ImageSource? in
      if case .image(let source) = part { return source }
      return nil
    }
    let example = Example(
      source: location, kind: kind, prompt: prompt, conversation: layout.conversation, rewardFields: reward,
      images: try imageInfos(images, field: imageKey ?? promptKey, statedSize: nil), system: layout.system)
    let resolved = ResolvedColumns(prompt: promptKey, messages: kind == .chat, image: imageKey, groundTruth: truthKey)
    return (example, resolved)
  }

  // MARK: Columns

  private func promptColumn(_ fields: Fields) throws -> String {
    if let named = options.columns.promptKey { return named }
    if let found = Self.promptColumns.first(where: { fields.raw.fields[$0] != nil }) { return found }
    if fields.has(Self.easyR1PromptColumn) { return Self.easyR1PromptColumn }
    throw RecordProblem(.missingField, field: "prompt", "no prompt column: expected 'prompt', 'messages' or 'problem' (or set prompt_key)")
  }

  /// The image column: `image_key` (which must exist; null means no image), else `images`, else `image`.
  private func imageColumn(_ fields: Fields, promptKey: String) throws -> String? {
    if let named = options.columns.imageKey {
      guard fields.raw.fields[named] != nil else {
        throw RecordProblem(.missingField, field: named, "image_key names '\(named)', which the record does not have")
      }
      return named
    }
    return Self.imageColumns.first { $0 != promptKey && fields.raw.fields[$0] != nil }
  }

  /// The ground-truth column: `answer_key`/`solution_key` (required when set), else `solution`, else
  /// EasyR1's `answer`.
  private func groundTruthColumn(_ fields: Fields) throws -> String? {
    // The loader checked that answer_key and solution_key agree (`ColumnMapping.validate`).
    if let named = options.columns.solutionKey ?? options.columns.answerKey {
      _ = try fields.value(named)
      return named
    }
    return ["solution", Self.easyR1AnswerColumn].first(where: fields.has)
  }

  /// Every column except the prompt and image columns, for the rewards (TRL passes the remaining
  /// columns to reward functions by name). Columns holding embedded bytes are left out: rewards read
  /// JSON, and bytes have no JSON form.
  private func passThroughFields(_ fields: Fields, excluding: [String]) -> [String: JSONValue] {
    var result: [String: JSONValue] = [:]
    for (key, value) in fields.raw.fields where !excluding.contains(key) && !containsBytes(value, raw: fields.raw) {
      result[key] = value
    }
    return result
  }

  private func containsBytes(_ value: JSONValue, raw: RawRecord) -> Bool {
    if raw.blob(value) != nil { return true }
    switch value {
    case .array(let items): return items.contains { containsBytes($0, raw: raw) }
    case .object(let object): return object.values.contains { containsBytes($0, raw: raw) }
    default: return false
    }
  }

  // MARK: Messages

  /// One message `{role, content}`: content is a string (`<image>` markers mark images) or a list of
  /// parts `{"type": "text", "text": ...}` / `{"type": "image"}` (an `image` value in the part is the
  /// image itself; without one the next image of the image column is used).
  private func chatTurn(_ item: JSONValue, index: Int, field: String, location: RecordLocation) throws -> ChatTurn {
    guard let message = item.objectValue, let speaker = (message["role"] ?? message["from"])?.stringValue else {
      throw RecordProblem(.wrongType, field: field, "message \(index) \(preview(item)) needs 'role' and 'content'")
    }
    guard let role = Self.role(speaker) else {
      throw RecordProblem(.wrongType, field: field, "message \(index) has the unknown role '\(speaker)'")
    }
    let content = message["content"] ?? message["value"] ?? .null
    if let text = content.stringValue { return ChatTurn(role: role, pieces: Self.splitMarkers(text)) }
    guard let parts = content.arrayValue else {
      throw RecordProblem(.wrongType, field: field, "message \(index) content is \(preview(content)), not a string or a list of parts")
    }
    let pieces = try parts.map { part -> ChatPiece in
      if let text = part.stringValue { return .text(text) }
      guard let type = part["type"]?.stringValue else {
        throw RecordProblem(.wrongType, field: field, "message \(index): part \(preview(part)) has no 'type'")
      }
      switch type {
      case "text":
        guard let text = part["text"]?.stringValue else {
          throw RecordProblem(.wrongType, field: field, "message \(index): text part \(preview(part)) has no 'text' string")
        }
        return .text(text)
      case "image":
        guard let inline = part["image"], !inline.isNull else { return .image(nil) }
        return .image(try inlineImage(inline, field: field, location: location, index: index))
      default:
        throw RecordProblem(
          .wrongType, field: field, "message \(index): part type '\(type)' is not supported (text and image are)")
      }
    }
    return ChatTurn(role: role, pieces: pieces)
  }

  /// An image given inside a content part (a path, a `data:` URL or a `{bytes, path}` struct).
  private func inlineImage(_ value: JSONValue, field: String, location: RecordLocation, index: Int) throws -> ImageSource {
    try Fields(raw: RawRecord(fields: [:])).image(
      value, field: field, resolver: resolver, label: "\(location) message \(index) image")
  }

  /// Text with LLaVA / EasyR1 `<image>` markers as pieces (a marker is a placeholder for the next image).
  static func splitMarkers(_ text: String) -> [ChatPiece] {
    let pieces = text.components(separatedBy: imageMarker)
    var result: [ChatPiece] = []
    for (offset, piece) in pieces.enumerated() {
      if !piece.isEmpty { result.append(.text(piece)) }
      if offset < pieces.count - 1 { result.append(.image(nil)) }
    }
    return result
  }

  /// The first user turn as prompt parts: placeholders take the image column's images in order (their
  /// count must match); without placeholders the column's images go before the text, as for SFT records.
  private func placeImages(_ pieces: [ChatPiece], columnImages: [ImageSource], turns: [ChatTurn], imageKey: String) throws -> [PromptPart] {
    let placeholders = turns.flatMap(\.pieces).filter { $0 == .image(nil) }.count
    guard placeholders == 0 || placeholders == columnImages.count else {
      throw RecordProblem(
        .imageMarkerMismatch, field: imageKey, "\(placeholders) image placeholders in the messages for \(columnImages.count) images")
    }
    var remaining = columnImages[...]
    var parts: [PromptPart] = placeholders == 0 ? columnImages.map { .image($0) } : []
    for piece in pieces {
      switch piece {
      case .text(let text): parts.append(.text(text))
      case .image(let inline?): parts.append(.image(inline))
      case .image(nil): if let next = remaining.popFirst() { parts.append(.image(next)) }
      }
    }
    return parts
  }
}

/// A piece of a chat message: text, or an image (nil: the next image of the image column).
enum ChatPiece: Hashable {
  case text(String)
  case image(ImageSource?)
}

struct ChatTurn {
  var role: String
  var pieces: [ChatPiece]

  var hasImages: Bool { pieces.contains { if case .image = $0 { return true } else { return false } } }

  /// The text with `<image>` where images sit (how `conversation` turns carry images).
  var text: String {
    pieces.map { piece in
      if case .text(let text) = piece { return text }
      return ExampleBuilder.imageMarker
    }.joined()
  }
}

/// The roles of a chat in the shapes vlmrl takes: leading system turns, then either one user turn
/// (a prompt) or a conversation that ends with an assistant turn (the SFT answer), whose first user
/// turn is the prompt.
struct ChatLayout {
  var system: String?
  var firstUser: ChatTurn
  var conversation: [ConversationTurn]

  init(turns: [ChatTurn], field: String) throws {
    let systemTurns = turns.prefix { $0.role == "system" }
    let rest = turns.dropFirst(systemTurns.count)
    if let imageTurn = systemTurns.first(where: \.hasImages) {
      throw RecordProblem(.wrongType, field: field, "a system message holds an image: \(imageTurn.text)")
    }
    if !systemTurns.isEmpty { system = systemTurns.map(\.text).joined(separator: "\n\n") }
    guard let first = rest.first, first.role == "user" else {
      throw RecordProblem(.missingField, field: field, "no user message after the system messages")
    }
    firstUser = first
    if rest.contains(where: { $0.role == "system" }) {
      throw RecordProblem(.wrongType, field: field, "a system message after the first user message")
    }
    let endsWithAnswer = rest.count > 1 && rest.last?.role == "assistant"
    guard rest.count == 1 || endsWithAnswer else {
      throw RecordProblem(
        .wrongType, field: field,
        "the prompt has \(rest.count) messages after the system ones and does not end with an assistant answer; "
          + "multi-turn prompts are not supported (one user message, or a conversation ending with the answer)")
    }
    if let later = rest.dropFirst().first(where: \.hasImages) {
      throw RecordProblem(.wrongType, field: field, "images after the first user message are not supported (\(later.role): \(later.text))")
    }
    conversation = endsWithAnswer ? turns.map { ConversationTurn(role: $0.role, text: $0.text) } : []
  }
}
