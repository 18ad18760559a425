/// Checks that a `tokenizer.json` describes the pipeline implemented here (Qwen2's, docs/qwen-vl.md 7.2) and
/// builds its parts (the post-processor in PostProcessor.swift). Anything else is refused with the field at
/// fault rather than tokenized wrongly.
enum TokenizerPipeline {
  typealias Component = TokenizerFile.Component

  static func validate(_ file: TokenizerFile, source: String) throws {
    try checkPreTokenizer(file.preTokenizer, source: source)
    try checkDecoder(file.decoder, source: source)
  }

  /// `normalizer`: null, `NFC`, or a `Sequence` of `NFC`s.
  static func usesNFC(_ normalizer: Component?, source: String) throws -> Bool {
    guard let normalizer else { return false }
    switch normalizer.type {
    case "NFC": return true
    case "Sequence":
      let parts = normalizer.normalizers ?? []
      for (index, part) in parts.enumerated() where part.type != "NFC" {
        throw TokenizerError.unsupported(source: source, field: "normalizer.normalizers[\(index)].type", value: part.type)
      }
      return !parts.isEmpty
    default:
      throw TokenizerError.unsupported(source: source, field: "normalizer.type", value: normalizer.type)
    }
  }

  /// `pre_tokenizer`: Sequence [Split(Qwen2 regex, Isolated), ByteLevel(no prefix space, no regex)].
  private static func checkPreTokenizer(_ component: Component?, source: String) throws {
    let field = "pre_tokenizer"
    guard let component else { throw TokenizerError.unsupported(source: source, field: field, value: "null") }
    guard component.type == "Sequence", let parts = component.pretokenizers, parts.count == 2 else {
      throw TokenizerError.unsupported(
        source: source, field: field, value: "\(component.type) (expected Sequence of Split and ByteLevel)")
    }
    let split = parts[0]
    guard split.type == "Split" else {
      throw TokenizerError.unsupported(source: source, field: "\(field).pretokenizers[0].type", value: split.type)
    }
    let pattern = split.pattern?.regex ?? split.pattern?.string ?? "null"
    guard split.pattern?.regex == Qwen2PreTokenizer.pattern else {
      throw TokenizerError.unsupported(
        source: source, field: "\(field).pretokenizers[0].pattern", value: "\(pattern) (only Qwen2's regex is implemented)")
    }
    guard split.behavior == "Isolated", split.invert != true else {
      throw TokenizerError.unsupported(
        source: source, field: "\(field).pretokenizers[0].behavior",
        value: "\(split.behavior ?? "null"), invert \(split.invert ?? false)")
    }
    let byteLevel = parts[1]
    guard byteLevel.type == "ByteLevel" else {
      throw TokenizerError.unsupported(source: source, field: "\(field).pretokenizers[1].type", value: byteLevel.type)
    }
    guard byteLevel.addPrefixSpace != true, byteLevel.useRegex != true else {
      throw TokenizerError.unsupported(
        source: source, field: "\(field).pretokenizers[1]",
        value: "add_prefix_space \(byteLevel.addPrefixSpace ?? false), use_regex \(byteLevel.useRegex ?? true)")
    }
  }

  /// `decoder`: ByteLevel.
  private static func checkDecoder(_ component: Component?, source: String) throws {
    guard component?.type != "ByteLevel" else { return }
    throw TokenizerError.unsupported(source: source, field: "decoder.type", value: component?.type ?? "null")
  }

  /// `model`: BPE without dropout, word prefixes/suffixes or byte fallback.
  static func makeModel(_ section: TokenizerFile.ModelSection, source: String) throws -> BPEModel {
    if let type = section.type, type != "BPE" {
      throw TokenizerError.unsupported(source: source, field: "model.type", value: type)
    }
    if let dropout = section.dropout, dropout != 0 {
      throw TokenizerError.unsupported(source: source, field: "model.dropout", value: "\(dropout)")
    }
    if let prefix = section.continuingSubwordPrefix, !prefix.isEmpty {
      throw TokenizerError.unsupported(source: source, field: "model.continuing_subword_prefix", value: prefix)
    }
    if let suffix = section.endOfWordSuffix, !suffix.isEmpty {
      throw TokenizerError.unsupported(source: source, field: "model.end_of_word_suffix", value: suffix)
    }
    if section.byteFallback == true {
      throw TokenizerError.unsupported(source: source, field: "model.byte_fallback", value: "true")
    }
    var pairs: [(String, String)] = []
    pairs.reserveCapacity(section.merges.count)
    for (index, merge) in section.merges.enumerated() {
      guard let pair = merge.pair else {
        throw TokenizerError.invalidField(
          source: source, field: "model.merges[\(index)]", reason: "expected two tokens, got \(merge.raw)")
      }
      pairs.append(pair)
    }
    return try BPEModel(
      vocab: section.vocab, mergePairs: pairs, ignoreMerges: section.ignoreMerges ?? false,
      unknownToken: section.unkToken, fuseUnknown: section.fuseUnk ?? false, source: source)
  }
}
