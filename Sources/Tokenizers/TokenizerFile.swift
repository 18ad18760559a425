import Foundation

/// The parts of a Hugging Face `tokenizer.json` this implementation reads (docs/qwen-vl.md 7.2). Unknown keys
/// are ignored (the file carries truncation/padding settings and more); components that would
/// change the ids are checked by `TokenizerPipeline` and refused when unsupported.
struct TokenizerFile: Decodable {
  var addedTokens: [AddedTokenEntry]?
  var normalizer: Component?
  var preTokenizer: Component?
  var postProcessor: PostProcessorSection?
  var decoder: Component?
  var model: ModelSection

  enum CodingKeys: String, CodingKey {
    case addedTokens = "added_tokens", normalizer, preTokenizer = "pre_tokenizer"
    case postProcessor = "post_processor", decoder, model
  }

  struct AddedTokenEntry: Decodable {
    var id: Int
    var content: String
    var singleWord: Bool?
    var lstrip: Bool?
    var rstrip: Bool?
    var normalized: Bool?
    var special: Bool?

    enum CodingKeys: String, CodingKey {
      case id, content, singleWord = "single_word", lstrip, rstrip, normalized, special
    }

    var token: AddedToken {
      // Defaults are those of Hugging Face's AddedToken deserializer.
      AddedToken(id: id, content: content, singleWord: singleWord ?? false, leftStrip: lstrip ?? false,
                 rightStrip: rstrip ?? false, normalized: normalized ?? true, special: special ?? false)
    }
  }

  /// A normalizer, pre-tokenizer or decoder: `type` plus the options we inspect.
  struct Component: Decodable {
    var type: String
    var normalizers: [Component]?
    var pretokenizers: [Component]?
    var decoders: [Component]?
    var pattern: Pattern?
    var behavior: String?
    var invert: Bool?
    var addPrefixSpace: Bool?
    var useRegex: Bool?

    enum CodingKeys: String, CodingKey {
      case type, normalizers, pretokenizers, decoders, pattern, behavior, invert
      case addPrefixSpace = "add_prefix_space", useRegex = "use_regex"
    }
  }

  /// `{"Regex": "..."}` or `{"String": "..."}`.
  struct Pattern: Decodable {
    var regex: String?
    var string: String?

    enum CodingKeys: String, CodingKey {
      case regex = "Regex", string = "String"
    }
  }

  struct ModelSection: Decodable {
    var type: String?
    var vocab: [String: Int]
    var merges: [MergeEntry]
    var dropout: Double?
    var unkToken: String?
    var continuingSubwordPrefix: String?
    var endOfWordSuffix: String?
    var fuseUnk: Bool?
    var byteFallback: Bool?
    var ignoreMerges: Bool?

    enum CodingKeys: String, CodingKey {
      case type, vocab, merges, dropout, unkToken = "unk_token"
      case continuingSubwordPrefix = "continuing_subword_prefix", endOfWordSuffix = "end_of_word_suffix"
      case fuseUnk = "fuse_unk", byteFallback = "byte_fallback", ignoreMerges = "ignore_merges"
    }
  }

  /// A merge in either of the two layouts found in the wild: `"a b"` (older files) or `["a", "b"]`.
  struct MergeEntry: Decodable {
    var pair: (String, String)?
    var raw: String

    init(from decoder: Decoder) throws {
      let container = try decoder.singleValueContainer()
      if let text = try? container.decode(String.self) {
        raw = text
        let parts = text.split(separator: " ", omittingEmptySubsequences: false)
        pair = parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
      } else {
        let parts = try container.decode([String].self)
        raw = parts.description
        pair = parts.count == 2 ? (parts[0], parts[1]) : nil
      }
    }
  }

  /// Decodes the file, turning Foundation's decoding errors into messages naming the field path.
  static func decode(_ data: Data, source: String) throws -> TokenizerFile {
    do {
      return try JSONDecoder().decode(TokenizerFile.self, from: data)
    } catch let error as DecodingError {
      throw TokenizerError.invalidJSON(source: source, reason: describe(error))
    } catch {
      throw TokenizerError.invalidJSON(source: source, reason: "\(error)")
    }
  }

  private static func describe(_ error: DecodingError) -> String {
    func path(_ context: DecodingError.Context) -> String {
      let joined = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
      return joined.isEmpty ? "top level" : String(joined.drop { $0 == "." })
    }
    switch error {
    case .keyNotFound(let key, let context):
      let parent = path(context)
      return "missing field \(parent == "top level" ? key.stringValue : parent + "." + key.stringValue)"
    case .typeMismatch(let type, let context):
      return "field \(path(context)): expected \(type): \(context.debugDescription)"
    case .valueNotFound(let type, let context):
      return "field \(path(context)): expected \(type), found null"
    case .dataCorrupted(let context):
      return "\(path(context)): \(context.debugDescription)"
    @unknown default:
      return "\(error)"
    }
  }
}
