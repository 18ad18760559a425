import Common
import Foundation

/// One entry of `added_tokens_decoder` in `tokenizer_config.json`.
public struct AddedTokenEntry: Sendable, Codable, Equatable {
  public var id: Int
  public var content: String
  public var special: Bool
  public var lstrip: Bool
  public var rstrip: Bool
  public var singleWord: Bool
  public var normalized: Bool
}

/// The fields of `tokenizer_config.json` that matter for Qwen checkpoints.
public struct TokenizerConfig: Sendable, Codable, Equatable {
  /// Added tokens, sorted by id.
  public var addedTokens: [AddedTokenEntry]
  public var bosToken: String?
  public var eosToken: String?
  public var padToken: String?
  public var unkToken: String?
  public var additionalSpecialTokens: [String]
  public var modelMaxLength: Int?
  public var cleanUpTokenizationSpaces: Bool?
  public var splitSpecialTokens: Bool?
  public var tokenizerClass: String?
  /// The template embedded in this file (the `default` one when the file holds a named list).
  public var chatTemplate: String?

  /// Reads `tokenizer_config.json`.
  public init(contentsOf url: URL) throws {
    let fields = try JSONFields.load(url)
    var added: [AddedTokenEntry] = []
    if let decoder = try fields.object("added_tokens_decoder") {
      for key in decoder.members.keys {
        guard let id = Int(key) else {
          throw ModelConfigError.invalidValue(file: fields.file, field: decoder.fieldPath(key), reason: "token id keys must be integers")
        }
        let token = try decoder.required(key, decoder.object)
        added.append(AddedTokenEntry(
          id: id, content: try token.required("content", token.string), special: try token.bool("special") ?? false,
          lstrip: try token.bool("lstrip") ?? false, rstrip: try token.bool("rstrip") ?? false,
          singleWord: try token.bool("single_word") ?? false, normalized: try token.bool("normalized") ?? false))
      }
    }
    addedTokens = added.sorted { $0.id < $1.id }
    bosToken = try Self.tokenText(fields, "bos_token")
    eosToken = try Self.tokenText(fields, "eos_token")
    padToken = try Self.tokenText(fields, "pad_token")
    unkToken = try Self.tokenText(fields, "unk_token")
    additionalSpecialTokens = []
    if let list = fields.value("additional_special_tokens")?.arrayValue {
      for item in list {
        if let text = item.stringValue ?? item["content"]?.stringValue { additionalSpecialTokens.append(text) }
      }
    }
    modelMaxLength = fields.value("model_max_length")?.doubleValue.map { $0 >= 9.0e15 ? Int.max : Int($0) }
    cleanUpTokenizationSpaces = try fields.bool("clean_up_tokenization_spaces")
    splitSpecialTokens = try fields.bool("split_special_tokens")
    tokenizerClass = try fields.string("tokenizer_class")
    chatTemplate = try Self.embeddedTemplate(fields)
  }

  /// A special token written as a string, or as an AddedToken object with `content` (older files).
  static func tokenText(_ fields: JSONFields, _ key: String) throws -> String? {
    guard let value = fields.value(key) else { return nil }
    if let text = value.stringValue { return text }
    if let text = value["content"]?.stringValue { return text }
    throw ModelConfigError.wrongType(file: fields.file, field: fields.fieldPath(key), expected: "a string or {content}", found: value.jsonString)
  }

  /// `chat_template` as a string, or as a list of `{name, template}` (the `default` entry).
  static func embeddedTemplate(_ fields: JSONFields) throws -> String? {
    guard let value = fields.value("chat_template") else { return nil }
    if let text = value.stringValue { return text }
    if let list = value.arrayValue {
      let named = list.compactMap { item -> (String, String)? in
        guard let name = item["name"]?.stringValue, let template = item["template"]?.stringValue else { return nil }
        return (name, template)
      }
      if let match = named.first(where: { $0.0 == "default" }) { return match.1 }
      throw ModelConfigError.invalidValue(
        file: fields.file, field: fields.fieldPath("chat_template"),
        reason: "a list of templates without a 'default' entry (names: \(named.map(\.0)))")
    }
    throw ModelConfigError.wrongType(file: fields.file, field: fields.fieldPath("chat_template"), expected: "a string or a list of {name, template}", found: value.jsonString)
  }

  /// The id of an added token with this content.
  public func addedTokenId(_ content: String) -> Int? {
    addedTokens.first { $0.content == content }?.id
  }
}

/// A chat template and where it was found.
public struct ChatTemplate: Sendable, Equatable {
  public enum Source: String, Sendable {
    case jinjaFile = "chat_template.jinja"
    case jsonFile = "chat_template.json"
    case tokenizerConfig = "tokenizer_config.json"
  }
  public var text: String
  public var source: Source
  /// The file it was read from.
  public var path: String

  /// Finds the template in `directory`, in transformers' order of preference:
  /// `chat_template.jinja`, then `chat_template.json` (`{"chat_template": ...}`), then
  /// `tokenizer_config.json`. Returns nil when none has one.
  public static func locate(in directory: URL) throws -> ChatTemplate? {
    let jinja = directory.appendingPathComponent(Source.jinjaFile.rawValue)
    if FileManager.default.fileExists(atPath: jinja.path) {
      do {
        return ChatTemplate(text: try String(contentsOf: jinja, encoding: .utf8), source: .jinjaFile, path: jinja.path)
      } catch {
        throw ModelConfigError.unreadable(path: jinja.path, reason: "not UTF-8 text")
      }
    }
    let json = directory.appendingPathComponent(Source.jsonFile.rawValue)
    if FileManager.default.fileExists(atPath: json.path) {
      let fields = try JSONFields.load(json)
      if let text = try TokenizerConfig.embeddedTemplate(fields) {
        return ChatTemplate(text: text, source: .jsonFile, path: json.path)
      }
    }
    let tokenizerConfig = directory.appendingPathComponent(Source.tokenizerConfig.rawValue)
    if FileManager.default.fileExists(atPath: tokenizerConfig.path),
      let text = try TokenizerConfig.embeddedTemplate(try JSONFields.load(tokenizerConfig))
    {
      return ChatTemplate(text: text, source: .tokenizerConfig, path: tokenizerConfig.path)
    }
    return nil
  }
}
