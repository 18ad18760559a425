/// One entry of `tokenizer.json`'s `added_tokens` (e.g. `<|im_start|>`).
public struct AddedToken: Sendable, Equatable {
  public var id: Int
  public var content: String
  /// Only match when not inside a word (no `\w` character directly before or after).
  public var singleWord: Bool
  /// The match also swallows whitespace on its left / right.
  public var leftStrip: Bool
  public var rightStrip: Bool
  /// Matched against normalized text (true) or against the raw input (false; Qwen's choice).
  public var normalized: Bool
  /// Dropped by `decode(_:skipSpecialTokens: true)`.
  public var special: Bool

  public init(id: Int, content: String, singleWord: Bool = false, leftStrip: Bool = false,
              rightStrip: Bool = false, normalized: Bool = false, special: Bool = true) {
    self.id = id
    self.content = content
    self.singleWord = singleWord
    self.leftStrip = leftStrip
    self.rightStrip = rightStrip
    self.normalized = normalized
    self.special = special
  }
}

/// A piece of input after added tokens were split out: plain text (a byte range) or a token id.
enum Segment: Equatable {
  case text(Range<Int>)
  case token(Int)
}

/// Finds added tokens in text the way Hugging Face's `AddedVocabulary::find_matches` does:
/// leftmost-longest matches (Aho-Corasick `LeftmostLongest`), scanning on after each match's end;
/// `single_word` discards a match touching a word character; `lstrip` / `rstrip` widen a kept
/// match over neighbouring whitespace (never back over an earlier match).
struct AddedTokenMatcher: Sendable {
  private struct Pattern: Sendable {
    var bytes: [UInt8]
    var token: AddedToken
  }

  /// Patterns by first byte, longest first.
  private let patternsByFirstByte: [[Pattern]]
  let isEmpty: Bool

  /// `patterns` pairs each token with the text to look for (its content, or its normalized content).
  init(_ patterns: [(text: String, token: AddedToken)]) {
    var table = [[Pattern]](repeating: [], count: 256)
    for (text, token) in patterns where !text.isEmpty {
      let bytes = Array(text.utf8)
      table[Int(bytes[0])].append(Pattern(bytes: bytes, token: token))
    }
    // Stable sort: among equal lengths the earlier pattern wins, like Aho-Corasick's lowest pattern id.
    patternsByFirstByte = table.map { bucket in
      bucket.enumerated().sorted { ($0.element.bytes.count, -$0.offset) > ($1.element.bytes.count, -$1.offset) }
        .map(\.element)
    }
    isEmpty = patterns.allSatisfy { $0.text.isEmpty }
  }

  /// Splits `bytes` into text ranges and added-token ids, covering all of it in order.
  func split(_ bytes: ArraySlice<UInt8>) -> [Segment] {
    guard !isEmpty else { return bytes.isEmpty ? [] : [.text(bytes.indices)] }
    var segments: [Segment] = []
    var textStart = bytes.startIndex
    var scan = bytes.startIndex
    while scan < bytes.endIndex {
      guard let pattern = longestMatch(in: bytes, at: scan) else {
        scan += 1
        continue
      }
      var start = scan
      var stop = scan + pattern.bytes.count
      scan = stop  // the next search starts after this match, kept or not
      let token = pattern.token
      if token.singleWord, !Self.isWordBoundary(bytes, start: start, stop: stop) { continue }
      if token.leftStrip { start = max(Self.startOfTrailingWhitespace(bytes, before: start), textStart) }
      if token.rightStrip { stop = Self.endOfLeadingWhitespace(bytes, from: stop) }
      if textStart < start { segments.append(.text(textStart..<start)) }
      segments.append(.token(token.id))
      textStart = stop
    }
    if textStart < bytes.endIndex { segments.append(.text(textStart..<bytes.endIndex)) }
    return segments
  }

  private func longestMatch(in bytes: ArraySlice<UInt8>, at index: Int) -> Pattern? {
    let candidates = patternsByFirstByte[Int(bytes[index])]
    if candidates.isEmpty { return nil }
    for pattern in candidates where index + pattern.bytes.count <= bytes.endIndex {
      if bytes[index..<(index + pattern.bytes.count)].elementsEqual(pattern.bytes) { return pattern }
    }
    return nil
  }

  // MARK: - Word and whitespace tests (Rust `regex` Unicode classes: `\w`, `\s`)

  private static func isWordBoundary(_ bytes: ArraySlice<UInt8>, start: Int, stop: Int) -> Bool {
    if let before = UTF8Scanning.scalar(before: start, in: bytes), isWordCharacter(before) { return false }
    if stop < bytes.endIndex, isWordCharacter(UTF8Scanning.decodeScalar(bytes, at: stop).0) { return false }
    return true
  }

  /// `\w` in Rust's regex: Alphabetic, marks, decimal digits, connector punctuation, Join_Control.
  static func isWordCharacter(_ value: UInt32) -> Bool {
    guard let scalar = Unicode.Scalar(value) else { return false }
    let properties = scalar.properties
    if properties.isAlphabetic || properties.isJoinControl { return true }
    switch properties.generalCategory {
    case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
    default: return false
    }
  }

  private static func isWhitespace(_ value: UInt32) -> Bool {
    Unicode.Scalar(value)?.properties.isWhitespace ?? false
  }

  private static func startOfTrailingWhitespace(_ bytes: ArraySlice<UInt8>, before index: Int) -> Int {
    var start = index
    while let previous = UTF8Scanning.scalar(before: start, in: bytes), isWhitespace(previous) {
      start -= UTF8.width(Unicode.Scalar(previous) ?? " ")
    }
    return start
  }

  private static func endOfLeadingWhitespace(_ bytes: ArraySlice<UInt8>, from index: Int) -> Int {
    var end = index
    while end < bytes.endIndex {
      let (value, width) = UTF8Scanning.decodeScalar(bytes, at: end)
      guard isWhitespace(value) else { break }
      end += width
    }
    return end
  }
}
