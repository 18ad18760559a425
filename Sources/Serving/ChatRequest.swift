import Common
import Datasets
import Foundation

/// A `POST /v1/chat/completions` body, checked field by field. Every field is honoured, ignored
/// because it cannot change the answer (`ignoredFields`), accepted only with its neutral value
/// (`neutralFields`), or refused with a 400 naming it: a request never silently loses a setting.
public struct ChatRequest: Sendable {
  /// One piece of a message, in order.
  public enum Part: Sendable, Equatable {
    case text(String)
    case image(ImageSource)
  }

  public struct Message: Sendable, Equatable {
    /// `system`, `user` or `assistant` (`developer` is read as `system`).
    public var role: String
    public var parts: [Part]
    /// The content was a plain string (rendered as such by the chat template).
    public var isPlainText: Bool
  }

  public var model: String?
  public var messages: [Message]
  /// `max_completion_tokens` or `max_tokens`; nil = the server's default, bounded by the context.
  public var maxTokens: Int?
  /// 0 = greedy.
  public var temperature = 1.0
  public var topP = 1.0
  /// Extension (as vLLM): 0 or -1 = off.
  public var topK = 0
  /// Extension (as vLLM): 0 = off.
  public var minP = 0.0
  /// Extension (as vLLM): 1 = off.
  public var repetitionPenalty = 1.0
  public var n = 1
  public var seed: UInt64?
  /// The text is cut before the first occurrence of any of these.
  public var stop: [String] = []
  public var stream = false
  /// `stream_options.include_usage`: a last chunk with the token counts.
  public var includeUsage = false

  /// Fields that cannot change the completion; read and dropped.
  public static let ignoredFields: Set<String> = ["user", "metadata", "store", "service_tier", "parallel_tool_calls"]
  /// Fields accepted only with the value that turns them off, with that value's description.
  public static let neutralFields: [String: String] = [
    "logprobs": "false", "top_logprobs": "0", "frequency_penalty": "0", "presence_penalty": "0", "logit_bias": "{}",
    "response_format": "{\"type\": \"text\"}", "tool_choice": "\"none\"", "modalities": "[\"text\"]",
  ]
  static let honouredFields: Set<String> = [
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p",
    "repetition_penalty", "n", "seed", "stop", "stream", "stream_options",
  ]
  /// Most completions one request may ask for.
  public static let maxChoices = 128
  /// Most stop strings (as OpenAI).
  public static let maxStopStrings = 4

  /// Parses a request body. Errors are 400s naming the field.
  public init(body: Data) throws(ServingError) {
    let json: JSONValue
    do { json = try JSONValue.parse(body) } catch {
      throw .invalid("the request body is not valid JSON: \(Self.reason(error))", code: "invalid_json")
    }
    try self.init(json: json)
  }

  public init(json: JSONValue) throws(ServingError) {
    guard let object = json.objectValue else { throw .invalid("the request body must be a JSON object") }
    // null is the same as leaving a field out (some clients send every field).
    let fields = object.filter { !$0.value.isNull }
    for name in fields.keys.sorted() where !Self.honouredFields.contains(name) && !Self.ignoredFields.contains(name) {
      guard let neutral = Self.neutralFields[name] else {
        throw .unsupported(name, "unknown or unsupported field")
      }
      guard Self.isNeutral(name, fields[name]!) else { throw .unsupported(name, "only \(neutral) is accepted") }
    }
    let reader = FieldReader(fields: fields)
    model = try reader.string("model")
    guard let list = fields["messages"] else { throw .invalid("'messages' is required", param: "messages") }
    guard let items = list.arrayValue, !items.isEmpty else {
      throw .invalid("'messages' must be a non-empty array", param: "messages")
    }
    messages = []
    for (index, item) in items.enumerated() { messages.append(try Self.message(item, at: "messages[\(index)]")) }
    maxTokens = try reader.int("max_completion_tokens", in: 1...Int(Int32.max))
    if maxTokens == nil { maxTokens = try reader.int("max_tokens", in: 1...Int(Int32.max)) }
    temperature = try reader.double("temperature", in: 0...2) ?? 1
    topP = try reader.double("top_p", in: 0...1) ?? 1
    guard topP > 0 else { throw .invalid("'top_p' must be in (0, 1], got 0", param: "top_p") }
    topK = try max(0, reader.int("top_k", in: -1...Int(Int32.max)) ?? 0)
    minP = try reader.double("min_p", in: 0...1) ?? 0
    repetitionPenalty = try reader.double("repetition_penalty", in: 0...100) ?? 1
    guard repetitionPenalty > 0 else { throw .invalid("'repetition_penalty' must be > 0", param: "repetition_penalty") }
    n = try reader.int("n", in: 1...Self.maxChoices) ?? 1
    seed = try reader.int("seed", in: Int.min...Int.max).map { UInt64(bitPattern: Int64($0)) }
    stop = try Self.stopStrings(fields["stop"])
    stream = try reader.bool("stream") ?? false
    if let options = fields["stream_options"] {
      guard let object = options.objectValue else { throw .invalid("'stream_options' must be an object", param: "stream_options") }
      for key in object.keys where key != "include_usage" {
        throw .unsupported("stream_options.\(key)", "only include_usage is read")
      }
      includeUsage = try FieldReader(fields: object, prefix: "stream_options.").bool("include_usage") ?? false
    }
  }

  static func isNeutral(_ name: String, _ value: JSONValue) -> Bool {
    switch name {
    case "logprobs": return value.boolValue == false
    case "top_logprobs", "frequency_penalty", "presence_penalty": return value.doubleValue == 0
    case "logit_bias": return value.objectValue?.isEmpty == true
    case "response_format": return value["type"]?.stringValue == "text" && value.objectValue?.count == 1
    case "tool_choice": return value.stringValue == "none"
    case "modalities": return value.arrayValue == [.string("text")]
    default: return false
    }
  }

  static func stopStrings(_ value: JSONValue?) throws(ServingError) -> [String] {
    guard let value else { return [] }
    let strings: [String]
    if let single = value.stringValue {
      strings = [single]
    } else if let list = value.arrayValue, list.allSatisfy({ $0.stringValue != nil }) {
      strings = list.compactMap(\.stringValue)
    } else {
      throw .invalid("'stop' must be a string or an array of strings", param: "stop")
    }
    guard strings.count <= maxStopStrings else { throw .invalid("'stop' has \(strings.count) strings; at most \(maxStopStrings)", param: "stop") }
    guard !strings.contains("") else { throw .invalid("'stop' strings must not be empty", param: "stop") }
    return strings
  }

  // MARK: Messages

  static func message(_ value: JSONValue, at path: String) throws(ServingError) -> Message {
    guard let object = value.objectValue else { throw .invalid("\(path) must be an object", param: path) }
    for key in object.keys.sorted() where !["role", "content", "name"].contains(key) {
      guard object[key]!.isNull else {
        throw .unsupported("\(path).\(key)", "messages carry role, content and name only (no tool or function calls)")
      }
    }
    guard let given = object["role"]?.stringValue else { throw .invalid("\(path).role must be a string", param: "\(path).role") }
    let role = given == "developer" ? "system" : given
    guard ["system", "user", "assistant"].contains(role) else {
      throw .invalid("\(path).role '\(given)' is not supported: use system, developer, user or assistant", param: "\(path).role")
    }
    guard let content = object["content"], !content.isNull else {
      throw .invalid("\(path).content is required", param: "\(path).content")
    }
    if let text = content.stringValue { return Message(role: role, parts: [.text(text)], isPlainText: true) }
    guard let items = content.arrayValue else {
      throw .invalid("\(path).content must be a string or an array of parts", param: "\(path).content")
    }
    var parts: [Part] = []
    for (index, item) in items.enumerated() {
      let partPath = "\(path).content[\(index)]"
      let part = try Self.part(item, at: partPath)
      if case .image = part, role != "user" {
        throw .invalid("\(partPath): images are accepted in user messages only", param: partPath)
      }
      parts.append(part)
    }
    return Message(role: role, parts: parts, isPlainText: false)
  }

  static func part(_ value: JSONValue, at path: String) throws(ServingError) -> Part {
    guard let type = value["type"]?.stringValue else { throw .invalid("\(path).type must be a string", param: "\(path).type") }
    switch type {
    case "text":
      guard let text = value["text"]?.stringValue else { throw .invalid("\(path).text must be a string", param: "\(path).text") }
      return .text(text)
    case "image_url":
      let urlPath = "\(path).image_url.url"
      guard let url = value["image_url"]?["url"]?.stringValue else { throw .invalid("\(urlPath) must be a string", param: urlPath) }
      return .image(try ImageReference.source(url, field: urlPath))
    default:
      throw .invalid("\(path).type '\(type)' is not supported: use text or image_url", param: "\(path).type")
    }
  }

  /// A decoding error's own words (the JSON decoder's debug description), without its type dump.
  static func reason(_ error: Error) -> String {
    if case DecodingError.dataCorrupted(let context) = error {
      let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
      return underlying ?? context.debugDescription
    }
    return "\(error)"
  }
}

/// Where an `image_url` points: embedded bytes (`data:image/...;base64,`) or a file on this machine
/// (`file:///abs/path` or `/abs/path`). Remote URLs are refused: the server never reaches the network.
enum ImageReference {
  static func source(_ url: String, field: String) throws(ServingError) -> ImageSource {
    let lower = url.prefix(16).lowercased()
    if lower.hasPrefix("data:") { return try embedded(url, field: field) }
    if lower.hasPrefix("http://") || lower.hasPrefix("https://") {
      throw .invalid("\(field): remote image URLs are not fetched (the server makes no network requests); "
        + "send the image as a data:image/...;base64 URL or a local file path", param: field, code: "invalid_image_url")
    }
    if lower.hasPrefix("file://") {
      guard let parsed = URL(string: url), parsed.isFileURL, parsed.path.hasPrefix("/") else {
        throw .invalid("\(field): a file URL must be file:///absolute/path", param: field, code: "invalid_image_url")
      }
      return .file(URL(fileURLWithPath: parsed.path))
    }
    if url.hasPrefix("/") { return .file(URL(fileURLWithPath: url)) }
    throw .invalid("\(field): expected a data:image/...;base64 URL, file:///absolute/path or /absolute/path",
                   param: field, code: "invalid_image_url")
  }

  static func embedded(_ url: String, field: String) throws(ServingError) -> ImageSource {
    guard let comma = url.firstIndex(of: ",") else {
      throw .invalid("\(field): a data URL needs a ',' before its payload", param: field, code: "invalid_image_url")
    }
    let header = url[url.index(url.startIndex, offsetBy: 5)..<comma].lowercased()
    guard header.hasPrefix("image/"), header.hasSuffix(";base64") else {
      throw .invalid("\(field): expected data:image/<type>;base64,<payload>, got data:\(header.prefix(40))",
                     param: field, code: "invalid_image_url")
    }
    guard let data = Data(base64Encoded: String(url[url.index(after: comma)...]), options: .ignoreUnknownCharacters),
      !data.isEmpty
    else {
      throw .invalid("\(field): the base64 payload does not decode", param: field, code: "invalid_image_url")
    }
    return .bytes(data, name: field)
  }
}

/// Typed reads of optional request fields; a wrong type or a value out of range is a 400 naming it.
struct FieldReader {
  let fields: [String: JSONValue]
  var prefix = ""

  func string(_ name: String) throws(ServingError) -> String? {
    guard let value = fields[name] else { return nil }
    guard let text = value.stringValue else { throw .invalid("'\(prefix)\(name)' must be a string", param: prefix + name) }
    return text
  }

  func bool(_ name: String) throws(ServingError) -> Bool? {
    guard let value = fields[name] else { return nil }
    guard let flag = value.boolValue else { throw .invalid("'\(prefix)\(name)' must be true or false", param: prefix + name) }
    return flag
  }

  func int(_ name: String, in range: ClosedRange<Int>) throws(ServingError) -> Int? {
    guard let value = fields[name] else { return nil }
    guard let number = value.intValue, range.contains(number) else {
      throw .invalid("'\(prefix)\(name)' must be an integer in \(range.lowerBound)...\(range.upperBound), got \(value.jsonString.prefix(40))",
                     param: prefix + name)
    }
    return number
  }

  func double(_ name: String, in range: ClosedRange<Double>) throws(ServingError) -> Double? {
    guard let value = fields[name] else { return nil }
    guard let number = value.doubleValue, number.isFinite, range.contains(number) else {
      throw .invalid("'\(prefix)\(name)' must be a number in \(range.lowerBound)...\(range.upperBound), got \(value.jsonString.prefix(40))",
                     param: prefix + name)
    }
    return number
  }
}
