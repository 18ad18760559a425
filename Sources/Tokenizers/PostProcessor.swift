/// A `tokenizer.json` `post_processor`, applied to the ids of one sequence the way `tokenizers` 0.23
/// applies it (`PostProcessor::process`, then each kind's `process_encodings`).
///
/// The encoded text enters as a list of one part. Every processor maps the list of parts to a new
/// list; the ids returned are the final parts concatenated (`Encoding::merge`). Only
/// `TemplateProcessing` changes the number of parts: it emits one part per template piece, so in a
/// `Sequence` a template that left two parts makes the next template apply its *pair* template, and
/// makes Bert/Roberta treat the second part as a pair sequence. Type ids and offsets are not
/// produced (the encode API returns ids only), so ByteLevel (offsets only) leaves the ids as they are.
enum PostProcessor: Sendable, Equatable {
  case byteLevel
  /// `[CLS] A [SEP]` for the first part, `B [SEP]` for any other.
  case bert(cls: Int, sep: Int)
  /// `<s> A </s>` for the first part, `</s> B </s>` for any other.
  case roberta(cls: Int, sep: Int)
  /// `single` is applied to one part, `pair` to two (other counts are refused at load).
  case template(single: [TemplatePiece], pair: [TemplatePiece])
  case sequence([PostProcessor])

  enum TemplatePiece: Sendable, Equatable {
    /// Input sequence A (0) or B (1).
    case sequence(Int)
    /// A special token's ids; nil when `special_tokens` lacks the name (refused at load where a
    /// template that is applied with special tokens uses it).
    case specialToken(name: String, ids: [Int]?)
  }

  /// The parts after this processor. `addSpecialTokens` is the encode flag: false drops every special
  /// token (template pieces, cls/sep) but keeps the template's sequence pieces, repeats included.
  func process(_ parts: [[Int]], addSpecialTokens: Bool) -> [[Int]] {
    switch self {
    case .byteLevel:
      return parts
    case .bert(let cls, let sep):
      guard addSpecialTokens else { return parts }
      return parts.enumerated().map { index, ids in index == 0 ? [cls] + ids + [sep] : ids + [sep] }
    case .roberta(let cls, let sep):
      guard addSpecialTokens else { return parts }
      return parts.enumerated().map { index, ids in index == 0 ? [cls] + ids + [sep] : [sep] + ids + [sep] }
    case .template(let single, let pair):
      let pieces = parts.count == 1 ? single : pair
      return pieces.compactMap { piece in
        switch piece {
        case .sequence(let input): parts[input]
        case .specialToken(_, let ids): addSpecialTokens ? ids : nil
        }
      }
    case .sequence(let processors):
      return processors.reduce(parts) { current, processor in
        processor.process(current, addSpecialTokens: addSpecialTokens)
      }
    }
  }

  /// False when no input can change (ByteLevel alone or inside Sequences): `encode` then skips it.
  var changesIds: Bool {
    switch self {
    case .byteLevel: false
    case .sequence(let processors): processors.contains(where: \.changesIds)
    case .bert, .roberta, .template: true
    }
  }

  /// The number of parts `process` returns for `count` parts. Throws where `tokenizers` loads the
  /// file but panics on every encode: a template given other than 1 or 2 parts (`todo!()`), a
  /// template piece naming sequence B with only A present (index out of bounds), a special token
  /// missing from `special_tokens` (`no entry found for key`).
  func partCount(_ count: Int, addSpecialTokens: Bool, field: String, source: String) throws -> Int {
    switch self {
    case .byteLevel, .bert, .roberta:
      return count
    case .sequence(let processors):
      var parts = count
      for (index, processor) in processors.enumerated() {
        parts = try processor.partCount(
          parts, addSpecialTokens: addSpecialTokens, field: "\(field).processors[\(index)]", source: source)
      }
      return parts
    case .template(let single, let pair):
      guard count == 1 || count == 2 else {
        throw TokenizerError.invalidField(
          source: source, field: field,
          reason: "the processors before it leave \(count) parts; tokenizers applies a template to 1 or 2 and panics")
      }
      let (pieces, name) = count == 1 ? (single, "single") : (pair, "pair")
      var parts = 0
      for (index, piece) in pieces.enumerated() {
        let pieceField = "\(field).\(name)[\(index)]"
        switch piece {
        case .sequence(let input):
          guard input < count else {
            throw TokenizerError.invalidField(
              source: source, field: pieceField,
              reason: "sequence B in a template applied to one sequence; tokenizers panics (index out of bounds)")
          }
          parts += 1
        case .specialToken(let tokenName, let ids):
          guard addSpecialTokens else { continue }
          guard ids != nil else {
            throw TokenizerError.invalidField(
              source: source, field: pieceField,
              reason: "special token \"\(tokenName)\" is not in \(field).special_tokens; tokenizers panics")
          }
          parts += 1
        }
      }
      return parts
    }
  }
}

// MARK: - Reading the `post_processor` section

extension TokenizerPipeline {
  static let postProcessorTypes = "TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence"

  /// `post_processor`: nil when absent or unable to change ids. Unknown types are refused, and so is
  /// any layout on which `tokenizers` would panic while encoding, with or without special tokens.
  static func makePostProcessor(
    _ section: TokenizerFile.PostProcessorSection?, source: String
  ) throws -> PostProcessor? {
    guard let section else { return nil }
    let field = "post_processor"
    let processor = try makePostProcessor(section, field: field, source: source)
    for addSpecialTokens in [true, false] {
      _ = try processor.partCount(1, addSpecialTokens: addSpecialTokens, field: field, source: source)
    }
    return processor.changesIds ? processor : nil
  }

  private static func makePostProcessor(
    _ section: TokenizerFile.PostProcessorSection, field: String, source: String
  ) throws -> PostProcessor {
    func required<Value>(_ value: Value?, _ key: String) throws -> Value {
      guard let value else {
        throw TokenizerError.invalidField(
          source: source, field: "\(field).\(key)", reason: "missing (required by \(section.type))")
      }
      return value
    }
    switch section.type {
    case "ByteLevel":
      return .byteLevel
    case "BertProcessing", "RobertaProcessing":
      let cls = try checkedId(try required(section.cls, "cls").id, field: "\(field).cls", source: source)
      let sep = try checkedId(try required(section.sep, "sep").id, field: "\(field).sep", source: source)
      return section.type == "BertProcessing" ? .bert(cls: cls, sep: sep) : .roberta(cls: cls, sep: sep)
    case "TemplateProcessing":
      let entries = try required(section.specialTokens, "special_tokens")
      var tokens: [String: [Int]] = [:]
      for (name, entry) in entries {
        tokens[name] = try entry.ids.map {
          try checkedId($0, field: "\(field).special_tokens[\"\(name)\"].ids", source: source)
        }
      }
      return .template(
        single: try templatePieces(try required(section.single, "single"), tokens, field: "\(field).single", source: source),
        pair: try templatePieces(try required(section.pair, "pair"), tokens, field: "\(field).pair", source: source))
    case "Sequence":
      return .sequence(try required(section.processors, "processors").enumerated().map { index, part in
        try makePostProcessor(part, field: "\(field).processors[\(index)]", source: source)
      })
    default:
      throw TokenizerError.unsupported(
        source: source, field: "\(field).type", value: "\(section.type) (known: \(postProcessorTypes))")
    }
  }

  private static func templatePieces(
    _ entries: [TokenizerFile.TemplatePieceEntry], _ tokens: [String: [Int]], field: String, source: String
  ) throws -> [PostProcessor.TemplatePiece] {
    try entries.enumerated().map { index, entry in
      switch (entry.sequence?.id, entry.specialToken?.id) {
      case ("A", nil): return .sequence(0)
      case ("B", nil): return .sequence(1)
      case (nil, let name?): return .specialToken(name: name, ids: tokens[name])
      default:
        throw TokenizerError.invalidField(
          source: source, field: "\(field)[\(index)]",
          reason: "expected {\"Sequence\": {\"id\": \"A\" or \"B\"}} or {\"SpecialToken\": {\"id\": ...}}")
      }
    }
  }

  /// Template ids are emitted as written (in the vocabulary or not, as `tokenizers` does), but must
  /// be valid ids.
  private static func checkedId(_ id: Int, field: String, source: String) throws -> Int {
    guard Tokenizer.validIds.contains(id) else {
      throw TokenizerError.invalidField(source: source, field: field, reason: "id \(id) outside \(Tokenizer.validIds)")
    }
    return id
  }
}

extension TokenizerFile {
  /// `post_processor`: its `type` and the fields of the kinds `tokenizers` defines.
  struct PostProcessorSection: Decodable {
    var type: String
    var processors: [PostProcessorSection]?
    var cls: TokenAndId?
    var sep: TokenAndId?
    var single: [TemplatePieceEntry]?
    var pair: [TemplatePieceEntry]?
    var specialTokens: [String: TemplateTokenEntry]?

    enum CodingKeys: String, CodingKey {
      case type, processors, cls, sep, single, pair, specialTokens = "special_tokens"
    }
  }

  /// Bert/Roberta's `["[SEP]", 102]`.
  struct TokenAndId: Decodable {
    var token: String
    var id: Int

    init(from decoder: Decoder) throws {
      var container = try decoder.unkeyedContainer()
      token = try container.decode(String.self)
      id = try container.decode(Int.self)
      guard container.isAtEnd else {
        throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected [token, id]")
      }
    }
  }

  /// `{"Sequence": {"id": "A", "type_id": 0}}` or `{"SpecialToken": {"id": "[CLS]", "type_id": 0}}`;
  /// `type_id` is not read (type ids are not exposed).
  struct TemplatePieceEntry: Decodable {
    struct Body: Decodable {
      var id: String
    }

    var sequence: Body?
    var specialToken: Body?

    enum CodingKeys: String, CodingKey {
      case sequence = "Sequence", specialToken = "SpecialToken"
    }
  }

  /// `{"id": "[CLS]", "ids": [101], "tokens": ["[CLS]"]}`: the ids are what a template emits.
  struct TemplateTokenEntry: Decodable {
    var ids: [Int]
  }
}
