import Foundation

/// Errors from loading a tokenizer or parsing command-line input. Every message names the file
/// (or input) and the field at fault, so a user can fix the file without reading this code.
public enum TokenizerError: Error, CustomStringConvertible, Sendable, Equatable {
  /// The file could not be read at all.
  case unreadableFile(path: String, reason: String)
  /// The file is not valid JSON, or a field has the wrong JSON type.
  case invalidJSON(source: String, reason: String)
  /// A field holds a value that is well-formed JSON but makes no sense (e.g. a merge of unknown tokens).
  case invalidField(source: String, field: String, reason: String)
  /// A pipeline component or option this implementation does not support (it would silently
  /// produce different ids than Hugging Face, so it is refused instead).
  case unsupported(source: String, field: String, value: String)
  /// Input text for the `tokenize` command that cannot be parsed (e.g. a non-numeric id).
  case invalidInput(String)

  public var description: String {
    switch self {
    case .unreadableFile(let path, let reason):
      return "cannot read tokenizer file \(path): \(reason)"
    case .invalidJSON(let source, let reason):
      return "\(source): invalid tokenizer JSON: \(reason)"
    case .invalidField(let source, let field, let reason):
      return "\(source): field \(field): \(reason)"
    case .unsupported(let source, let field, let value):
      return "\(source): field \(field): unsupported value \(value)"
    case .invalidInput(let message):
      return message
    }
  }
}
