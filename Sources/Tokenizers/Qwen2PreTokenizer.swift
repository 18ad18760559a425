/// Qwen2's pre-tokenization regex, matched by hand (docs/qwen-vl.md 7.3 step 3):
///
///     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|
///     \s*[\r\n]+|\s+(?!\S)|\s+
///
/// Hugging Face runs it with Oniguruma, Split behaviour "Isolated": at each position the first
/// alternative that matches wins (backtracking alternation, not longest match), and since some
/// alternative always matches a non-empty prefix, the matches tile the text. Classes follow
/// Oniguruma's Unicode definitions: `\p{L}` = general categories L*, `\p{N}` = N*, `\s` = the
/// White_Space property (which includes U+000B and U+0085 but not U+001C...U+001F).
enum Qwen2PreTokenizer {
  /// The pattern string this matcher implements, as it appears in Qwen2 `tokenizer.json` files.
  static let pattern =
    #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

  /// Character classes as bit flags; a character with no flag is "other" (`[^\s\p{L}\p{N}]`).
  struct CharClass: OptionSet {
    let rawValue: UInt8
    static let letter = CharClass(rawValue: 1)
    static let number = CharClass(rawValue: 2)
    static let space = CharClass(rawValue: 4)
    /// CR or LF exactly (`[\r\n]`); these also carry `.space`.
    static let lineBreak = CharClass(rawValue: 8)
  }

  /// Classes of ASCII characters, precomputed (most text is ASCII).
  private static let asciiClasses: [CharClass] = (0..<128).map { classify(UInt32($0)) }

  static func charClass(_ value: UInt32) -> CharClass {
    value < 128 ? asciiClasses[Int(value)] : classify(value)
  }

  private static func classify(_ value: UInt32) -> CharClass {
    guard let scalar = Unicode.Scalar(value) else { return [] }
    if value == 0x0A || value == 0x0D { return [.space, .lineBreak] }
    let properties = scalar.properties
    switch properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
      return .letter
    case .decimalNumber, .letterNumber, .otherNumber:
      return .number
    default:
      return properties.isWhitespace ? .space : []
    }
  }

  /// Splits (normalized, valid) UTF-8 text into pieces; returns each piece's range of indices
  /// into `bytes`.
  static func split(_ bytes: ArraySlice<UInt8>) -> [Range<Int>] {
    var scalars: [UInt32] = []
    var classes: [CharClass] = []
    var byteOffsets: [Int] = []
    scalars.reserveCapacity(bytes.count)
    classes.reserveCapacity(bytes.count)
    byteOffsets.reserveCapacity(bytes.count + 1)
    var offset = bytes.startIndex
    while offset < bytes.endIndex {
      let (value, width) = UTF8Scanning.decodeScalar(bytes, at: offset)
      scalars.append(value)
      classes.append(charClass(value))
      byteOffsets.append(offset)
      offset += width
    }
    byteOffsets.append(bytes.endIndex)

    var pieces: [Range<Int>] = []
    var position = 0
    let matcher = Matcher(scalars: scalars, classes: classes)
    while position < scalars.count {
      let length = matcher.matchLength(at: position)
      pieces.append(byteOffsets[position]..<byteOffsets[position + length])
      position += length
    }
    return pieces
  }

  /// The alternatives of the regex, each returning the match length in scalars (0 = no match).
  struct Matcher {
    let scalars: [UInt32]
    let classes: [CharClass]

    /// Length of the match starting at `start`; never 0 for a valid position.
    func matchLength(at start: Int) -> Int {
      if let length = contraction(at: start) { return length }
      if let length = optionalPrefixAndLetters(at: start) { return length }
      let cls = classes[start]
      if cls.contains(.number) { return 1 }
      if let length = optionalSpaceAndSymbols(at: start) { return length }
      // Remaining alternatives all start with whitespace; `start` must be whitespace here
      // (a letter, number or other character was taken above).
      return whitespace(at: start)
    }

    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)`: ASCII apostrophe; letters compared with Unicode case
    /// folding, under which U+017F (long s) also matches `s`.
    private func contraction(at start: Int) -> Int? {
      guard scalars[start] == 0x27, start + 1 < scalars.count else { return nil }
      let first = Self.foldedASCII(scalars[start + 1])
      if first == "s" || first == "t" || first == "m" || first == "d" { return 2 }
      guard start + 2 < scalars.count else { return nil }
      let second = Self.foldedASCII(scalars[start + 2])
      switch (first, second) {
      case ("r", "e"), ("v", "e"), ("l", "l"): return 3
      default: return nil
      }
    }

    private static func foldedASCII(_ value: UInt32) -> Character? {
      if value == 0x17F { return "s" }  // LATIN SMALL LETTER LONG S case-folds to "s"
      guard value < 128 else { return nil }
      let lowered = (0x41...0x5A).contains(value) ? value + 0x20 : value
      return Character(Unicode.Scalar(UInt8(lowered)))
    }

    /// `[^\r\n\p{L}\p{N}]?\p{L}+`.
    private func optionalPrefixAndLetters(at start: Int) -> Int? {
      var letterStart = start
      if !classes[start].contains(.letter) {
        let cls = classes[start]
        guard !cls.contains(.lineBreak), !cls.contains(.number), start + 1 < scalars.count,
          classes[start + 1].contains(.letter)
        else { return nil }
        letterStart = start + 1
      }
      return run(from: letterStart, while: .letter) - start
    }

    /// ` ?[^\s\p{L}\p{N}]+[\r\n]*`.
    private func optionalSpaceAndSymbols(at start: Int) -> Int? {
      var symbolStart = start
      if scalars[start] == 0x20, start + 1 < scalars.count, isOther(start + 1) { symbolStart = start + 1 }
      guard isOther(symbolStart) else { return nil }
      var end = symbolStart
      while end < scalars.count, isOther(end) { end += 1 }
      while end < scalars.count, classes[end].contains(.lineBreak) { end += 1 }
      return end - start
    }

    /// `\s*[\r\n]+|\s+(?!\S)|\s+`, resolved on the maximal whitespace run starting at `start`.
    private func whitespace(at start: Int) -> Int {
      let runEnd = run(from: start, while: .space)
      // \s*[\r\n]+ : greedy \s* backs off to the last line break of the run.
      var index = runEnd - 1
      while index >= start {
        if classes[index].contains(.lineBreak) { return index + 1 - start }
        index -= 1
      }
      // \s+(?!\S) : the whole run at the end of text, else the run minus its last character.
      if runEnd == scalars.count { return runEnd - start }
      if runEnd - 1 > start { return runEnd - 1 - start }
      // \s+ : a single whitespace character before a non-space.
      return max(runEnd - start, 1)
    }

    private func isOther(_ index: Int) -> Bool {
      classes[index].isDisjoint(with: [.letter, .number, .space])
    }

    private func run(from start: Int, while cls: CharClass) -> Int {
      var end = start
      while end < classes.count, classes[end].contains(cls) { end += 1 }
      return end
    }
  }
}
