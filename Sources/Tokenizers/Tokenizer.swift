import Dispatch
import Foundation
import Synchronization

/// A Qwen2-style byte-level BPE tokenizer read from a Hugging Face `tokenizer.json`, producing the
/// same ids and decoded text as the `tokenizers` library (docs/qwen-vl.md section 7).
///
/// Encoding: added tokens are split out of the raw text (leftmost-longest), the rest is NFC-normalized
/// when the file asks for it, cut into pieces by Qwen2's regex, and each piece's bytes are merged by
/// BPE rank; the file's post-processor then adds its special tokens (Qwen's adds none). Decoding
/// concatenates token bytes and decodes UTF-8 with U+FFFD replacement. Thread-safe: the word cache
/// is behind a lock.
public final class Tokenizer: Sendable {
  /// Where the tokenizer came from (a path or a caller-chosen name), used in messages.
  public let source: String
  /// One more than the largest id (regular or added): the minimum embedding table size.
  public let vocabularySize: Int
  /// Added tokens marked `special` (content -> id); `decode(skipSpecialTokens: true)` drops them.
  public let specialTokens: [String: Int]
  /// All added tokens, by increasing id.
  public let addedTokens: [AddedToken]

  let model: BPEModel
  let normalizesNFC: Bool
  /// nil when the file has none or one that never changes ids (Qwen's ByteLevel).
  let postProcessor: PostProcessor?
  /// Tokens matched on raw text, and tokens matched on normalized text (`normalized: true`).
  let rawTokenMatcher: AddedTokenMatcher
  let normalizedTokenMatcher: AddedTokenMatcher
  /// Indexed by id: token string, its bytes for decoding, and whether decoding may skip it.
  let tokenStrings: [String?]
  let tokenBytes: [[UInt8]]
  let skippableIds: [Bool]
  let addedTokenIds: [String: Int]
  let cache = WordCache()

  /// Ids are indices into per-id tables, so they must be small and non-negative.
  static let validIds = 0..<(1 << 24)

  /// Reads `tokenizer.json` from a model or tokenizer folder.
  public convenience init(directory: URL) throws {
    let file = directory.appendingPathComponent("tokenizer.json")
    let data: Data
    do {
      data = try Data(contentsOf: file)
    } catch {
      throw TokenizerError.unreadableFile(path: file.path, reason: error.localizedDescription)
    }
    try self.init(tokenizerJSON: data, source: file.path)
  }

  /// Parses the contents of a `tokenizer.json`; `source` names it in error messages.
  public init(tokenizerJSON: Data, source: String) throws {
    let file = try TokenizerFile.decode(tokenizerJSON, source: source)
    try TokenizerPipeline.validate(file, source: source)
    self.source = source
    if let (token, id) = file.model.vocab.first(where: { !Self.validIds.contains($0.value) }) {
      throw TokenizerError.invalidField(
        source: source, field: "model.vocab[\"\(token)\"]", reason: "id \(id) outside \(Self.validIds)")
    }
    model = try TokenizerPipeline.makeModel(file.model, source: source)
    normalizesNFC = try TokenizerPipeline.usesNFC(file.normalizer, source: source)
    postProcessor = try TokenizerPipeline.makePostProcessor(file.postProcessor, source: source)

    let added = (file.addedTokens ?? []).map(\.token)
    for (index, token) in added.enumerated() where !Self.validIds.contains(token.id) {
      throw TokenizerError.invalidField(
        source: source, field: "added_tokens[\(index)].id", reason: "id \(token.id) outside \(Self.validIds)")
    }

    addedTokens = added.sorted { $0.id < $1.id }
    addedTokenIds = Dictionary(added.map { ($0.content, $0.id) }, uniquingKeysWith: { _, last in last })
    specialTokens = Dictionary(added.filter(\.special).map { ($0.content, $0.id) }, uniquingKeysWith: { first, _ in first })
    // Hugging Face matches special tokens first, then the others, in file order (ties on equal text).
    let matchOrder = added.filter(\.special) + added.filter { !$0.special }
    rawTokenMatcher = AddedTokenMatcher(matchOrder.filter { !$0.normalized }.map { ($0.content, $0) })
    let nfc = normalizesNFC
    normalizedTokenMatcher = AddedTokenMatcher(matchOrder.filter(\.normalized).map { token in
      (nfc ? String(decoding: Self.nfc(Array(token.content.utf8)[...]), as: UTF8.self) : token.content, token)
    })

    let largestId = max(model.vocab.values.max() ?? -1, added.map(\.id).max() ?? -1)
    vocabularySize = largestId + 1
    var strings = [String?](repeating: nil, count: vocabularySize)
    for (token, id) in model.vocab where id >= 0 { strings[id] = token }
    for token in added { strings[token.id] = token.content }  // added tokens win, as in HF id_to_token
    tokenStrings = strings
    tokenBytes = strings.map { $0.map(ByteLevel.decode(token:)) ?? [] }
    let specialContents = Set(specialTokens.keys)
    skippableIds = strings.map { $0.map(specialContents.contains) ?? false }
  }

  // MARK: - Encoding

  /// Token ids of `text`; special tokens written in the text are recognized. `addSpecialTokens` is
  /// `tokenizers`' flag of the same name (default true, as in `tok.encode(text)`): it lets the
  /// file's post-processor add its tokens (a TemplateProcessing BOS, Bert's [CLS]/[SEP]). Qwen's
  /// post-processor adds none, so for Qwen both values give the same ids. Chat-template prompts are
  /// encoded with false in transformers.
  public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
    let ids = encodeWithoutPostProcessing(text)
    guard let postProcessor else { return ids }
    return postProcessor.process([ids], addSpecialTokens: addSpecialTokens).flatMap { $0 }
  }

  private func encodeWithoutPostProcessing(_ text: String) -> [Int] {
    var ids: [Int] = []
    ids.reserveCapacity(text.utf8.count / 3 + 1)
    let bytes = Array(text.utf8)
    for segment in rawTokenMatcher.split(bytes[...]) {
      switch segment {
      case .token(let id): ids.append(id)
      case .text(let range): encodeNormalizing(bytes[range], into: &ids)
      }
    }
    return ids
  }

  /// `encode` for many texts, spread over the available cores; results are in input order.
  public func encodeBatch(_ texts: [String], addSpecialTokens: Bool = true) -> [[Int]] {
    let results = Mutex([[Int]](repeating: [], count: texts.count))
    DispatchQueue.concurrentPerform(iterations: texts.count) { index in
      let ids = encode(texts[index], addSpecialTokens: addSpecialTokens)
      results.withLock { $0[index] = ids }
    }
    return results.withLock { $0 }
  }

  private func encodeNormalizing(_ raw: ArraySlice<UInt8>, into ids: inout [Int]) {
    let normalized = normalizesNFC ? Self.nfc(raw) : raw
    for segment in normalizedTokenMatcher.split(normalized) {
      switch segment {
      case .token(let id): ids.append(id)
      case .text(let range): encodePieces(normalized[range], into: &ids)
      }
    }
  }

  private func encodePieces(_ bytes: ArraySlice<UInt8>, into ids: inout [Int]) {
    for piece in Qwen2PreTokenizer.split(bytes) {
      let pieceBytes = bytes[piece]
      guard pieceBytes.count <= WordCache.maxPieceBytes else {
        ids.append(contentsOf: model.tokenize(pieceBytes).lazy.map(Int.init))
        continue
      }
      if let cached = cache.lookup(pieceBytes) {
        ids.append(contentsOf: cached.lazy.map(Int.init))
      } else {
        let pieceIds = model.tokenize(pieceBytes)
        cache.insert(pieceBytes, pieceIds)
        ids.append(contentsOf: pieceIds.lazy.map(Int.init))
      }
    }
  }

  /// Unicode NFC, computed piecewise. NFC never reaches across an ASCII character (ASCII
  /// characters are starters that compose with nothing before them), so the text is cut before
  /// each ASCII byte and only chunks holding a byte >= 0xCC (a code point >= U+0300, the first that
  /// NFC can change) are normalized. Uses the standard library's linear-time normalizer; on Linux,
  /// Foundation's `precomposedStringWithCanonicalMapping` is quadratic on large inputs.
  static func nfc(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
    guard var next = bytes.firstIndex(where: { $0 >= 0xCC }) else { return bytes }
    var result: [UInt8] = []
    result.reserveCapacity(bytes.count + bytes.count / 8)
    var copied = bytes.startIndex
    while true {
      // The chunk around `next`: from its last ASCII byte before (inclusive) to the next ASCII byte.
      var start = next
      while start > copied, bytes[start] >= 0x80 { start -= 1 }
      var end = next + 1
      while end < bytes.endIndex, bytes[end] >= 0x80 { end += 1 }
      result.append(contentsOf: bytes[copied..<start])
      result.append(contentsOf: String(decoding: bytes[start..<end], as: UTF8.self)._nfcCodeUnits)
      copied = end
      guard let found = bytes[end...].firstIndex(where: { $0 >= 0xCC }) else { break }
      next = found
    }
    result.append(contentsOf: bytes[copied...])
    return result[...]
  }

  // MARK: - Decoding

  /// Text of `ids`. Unknown ids are skipped (as Hugging Face does); with `skipSpecialTokens`
  /// special added tokens are dropped (non-special ones such as `<tool_call>` are kept).
  public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
    var bytes: [UInt8] = []
    appendBytes(of: ids, skipSpecialTokens: skipSpecialTokens, to: &bytes)
    return String(decoding: bytes, as: UTF8.self)
  }

  func appendBytes(of ids: [Int], skipSpecialTokens: Bool, to bytes: inout [UInt8]) {
    for id in ids where id >= 0 && id < vocabularySize && tokenStrings[id] != nil {
      if skipSpecialTokens && skippableIds[id] { continue }
      bytes.append(contentsOf: tokenBytes[id])
    }
  }

  /// A streaming decoder for generation: feed ids, get text as soon as characters are complete.
  public func makeIncrementalDecoder(skipSpecialTokens: Bool = false) -> IncrementalDecoder {
    IncrementalDecoder(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
  }

  // MARK: - Vocabulary

  /// Id of a token string (added tokens first, then the BPE vocabulary), as `token_to_id`.
  public func tokenToId(_ token: String) -> Int? {
    // Dictionary lookup compares strings by canonical equivalence; HF compares exact bytes.
    if let id = addedTokenIds[token], tokenStrings[id]?.utf8.elementsEqual(token.utf8) == true { return id }
    guard let id = model.vocab[token], tokenStrings[id]?.utf8.elementsEqual(token.utf8) == true else { return nil }
    return id
  }

  /// Token string of an id (byte-level form for regular tokens, e.g. `Ġthe`), as `id_to_token`.
  public func idToToken(_ id: Int) -> String? {
    id >= 0 && id < tokenStrings.count ? tokenStrings[id] : nil
  }
}
