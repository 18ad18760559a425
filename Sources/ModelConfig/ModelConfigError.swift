/// Errors from resolving model folders and decoding their configuration files.
///
/// Each case names the file (and, for fields, the dotted path inside it) so that a user can fix the
/// file without reading this code.
public enum ModelConfigError: Error, Sendable, Equatable, CustomStringConvertible {
  /// A model argument was neither a folder nor a hub id found in a local cache.
  case modelNotFound(argument: String, searched: [String])
  /// A file the model folder must have is absent.
  case fileMissing(path: String)
  /// A file exists but could not be read.
  case unreadable(path: String, reason: String)
  /// A file is not valid JSON (or not a JSON object).
  case invalidJSON(path: String, reason: String)
  /// A required field is absent (or null).
  case missingField(file: String, field: String)
  /// A field has the wrong JSON type.
  case wrongType(file: String, field: String, expected: String, found: String)
  /// A field has a value outside what the model supports.
  case invalidValue(file: String, field: String, reason: String)
  /// `model_type` names a model this package does not implement.
  case unsupportedModel(file: String, modelType: String)
  /// `smart_resize` refuses an image (too small for the old guard, or aspect ratio over 200).
  case invalidImageSize(height: Int, width: Int, reason: String)
  /// A peft adapter folder whose base model (`base_model_name_or_path`) is neither a folder nor a
  /// cached hub id.
  case adapterBaseNotFound(adapter: String, base: String, searched: [String])

  public var description: String {
    switch self {
    case .modelNotFound(let argument, let searched):
      return "model '\(argument)' not found; searched:\n" + searched.map { "  \($0)" }.joined(separator: "\n")
    case .fileMissing(let path): return "\(path): file not found"
    case .unreadable(let path, let reason): return "\(path): cannot read: \(reason)"
    case .invalidJSON(let path, let reason): return "\(path): invalid JSON: \(reason)"
    case .missingField(let file, let field): return "\(file): missing required field '\(field)'"
    case .wrongType(let file, let field, let expected, let found):
      return "\(file): field '\(field)' should be \(expected), found \(found)"
    case .invalidValue(let file, let field, let reason): return "\(file): field '\(field)': \(reason)"
    case .unsupportedModel(let file, let modelType):
      return "\(file): model_type '\(modelType)' is not supported (expected qwen2_vl or qwen2_5_vl)"
    case .invalidImageSize(let height, let width, let reason):
      return "image of height \(height) and width \(width): \(reason)"
    case .adapterBaseNotFound(let adapter, let base, let searched):
      return "\(adapter): LoRA adapter folder whose base model '\(base)' (base_model_name_or_path in adapter_config.json) "
        + "was not found; searched:\n" + searched.map { "  \($0)" }.joined(separator: "\n")
    }
  }
}
