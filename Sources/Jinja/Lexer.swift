// Splits template source into text and tags, applying Jinja's whitespace rules as Hugging Face
// configures them (`trim_blocks=True`, `lstrip_blocks=True`, `keep_trailing_newline=False`), then
// tokenizes the expressions inside tags. Mirrors jinja2.lexer.Lexer.tokeniter.

/// A token inside `{{ }}` or `{% %}`.
enum TokenKind: Equatable, Sendable {
  case name(String)
  case string(String)
  case int(Int)
  case double(Double)
  case op(String)
}

struct Token: Sendable {
  var kind: TokenKind
  /// Scalar offset in the normalized source.
  var offset: Int
}

enum Segment: Sendable {
  case text(String)
  case output([Token], offset: Int)
  case statement([Token], offset: Int)
}

struct Lexer {
  let source: [Unicode.Scalar]
  private var pos = 0
  private var segments: [Segment] = []
  private var pendingText: [Unicode.Scalar] = []
  /// True when the previous tag consumed a newline (or at the start): lstrip_blocks then applies even
  /// when the text before the next tag contains no newline.
  private var lineStarting = true

  /// Normalizes newlines (`\r\n` and `\r` become `\n`) and drops one trailing newline, as Jinja does.
  static func normalize(_ text: String) -> [Unicode.Scalar] {
    var out: [Unicode.Scalar] = []
    out.reserveCapacity(text.unicodeScalars.count)
    var previousCR = false
    for scalar in text.unicodeScalars {
      if scalar == "\r" {
        out.append("\n")
        previousCR = true
        continue
      }
      if scalar == "\n" && previousCR {
        previousCR = false
        continue
      }
      previousCR = false
      out.append(scalar)
    }
    if out.last == "\n" { out.removeLast() }
    return out
  }

  init(source: [Unicode.Scalar]) { self.source = source }

  mutating func tokenize() throws(JinjaError) -> [Segment] {
    while pos < source.count {
      guard let tagStart = findTagStart(from: pos) else {
        pendingText += source[pos...]
        pos = source.count
        break
      }
      var text = Array(source[pos..<tagStart])
      let opener = source[tagStart + 1]
      let control: Unicode.Scalar? = tagStart + 2 < source.count ? source[tagStart + 2] : nil
      let hasControl = control == "-" || control == "+"
      if control == "-" {
        while let last = text.last, PythonString.isSpace(last) { text.removeLast() }
      } else if control != "+" && opener != "{" {
        lstrip(&text)
      }
      pendingText += text
      pos = tagStart + 2 + (hasControl ? 1 : 0)
      switch opener {
      case "#": try lexComment(start: tagStart)
      case "{": try lexTag(start: tagStart, isBlock: false)
      default:
        if try !lexRawIfPresent(start: tagStart) { try lexTag(start: tagStart, isBlock: true) }
      }
    }
    flushText()
    return segments
  }

  private func findTagStart(from start: Int) -> Int? {
    var i = start
    while i + 1 < source.count {
      if source[i] == "{" {
        let next = source[i + 1]
        if next == "{" || next == "%" || next == "#" { return i }
      }
      i += 1
    }
    return nil
  }

  /// lstrip_blocks: drop spaces between the start of the line and a block or comment tag.
  private func lstrip(_ text: inout [Unicode.Scalar]) {
    let lineStart = (text.lastIndex(of: "\n").map { $0 + 1 }) ?? 0
    guard lineStart > 0 || lineStarting, lineStart < text.count else { return }
    if text[lineStart...].allSatisfy(PythonString.isSpace) { text.removeSubrange(lineStart...) }
  }

  private mutating func flushText() {
    if !pendingText.isEmpty {
      segments.append(.text(String(String.UnicodeScalarView(pendingText))))
      pendingText.removeAll(keepingCapacity: true)
    }
  }

  /// After a tag's end marker: `-` strips all following whitespace; a plain block end (trim_blocks)
  /// eats one newline; `+` keeps everything.
  private mutating func finishTag(control: Unicode.Scalar?, trimBlock: Bool) {
    if control == "-" {
      while pos < source.count, PythonString.isSpace(source[pos]) { pos += 1 }
    } else if control == nil && trimBlock && pos < source.count && source[pos] == "\n" {
      pos += 1
    }
    lineStarting = pos > 0 && source[pos - 1] == "\n"
  }

  private mutating func lexComment(start: Int) throws(JinjaError) {
    var i = pos
    while i + 1 < source.count, !(source[i] == "#" && source[i + 1] == "}") { i += 1 }
    guard i + 1 < source.count else { throw error("unclosed comment", at: start) }
    let control: Unicode.Scalar? = i > pos && (source[i - 1] == "-" || source[i - 1] == "+") ? source[i - 1] : nil
    pos = i + 2
    finishTag(control: control, trimBlock: true)
  }

  private mutating func lexTag(start: Int, isBlock: Bool) throws(JinjaError) {
    var tokens: [Token] = []
    var depth = 0
    let closer: Unicode.Scalar = isBlock ? "%" : "}"
    while true {
      while pos < source.count, PythonString.isSpace(source[pos]) { pos += 1 }
      guard pos < source.count else {
        throw error("unclosed \(isBlock ? "'{%'" : "'{{'") tag", at: start)
      }
      if depth == 0, let control = endMarker(closer: closer) {
        flushText()
        segments.append(isBlock ? .statement(tokens, offset: start) : .output(tokens, offset: start))
        finishTag(control: control, trimBlock: isBlock)
        return
      }
      guard tokens.count < Self.maxTokensPerTag else {
        throw error("more than \(Self.maxTokensPerTag) tokens in one tag", at: start)
      }
      let token = try lexToken()
      if case .op(let op) = token.kind {
        if op == "(" || op == "[" || op == "{" { depth += 1 }
        if op == ")" || op == "]" || op == "}" { depth = max(0, depth - 1) }
      }
      tokens.append(token)
    }
  }

  /// Matches `-%}`, `+%}` (blocks only) or `%}` (`}}` for outputs) at `pos` and moves past it.
  /// Returns the control character, or `Optional(nil)` for a plain end; nil when no end is here.
  private mutating func endMarker(closer: Unicode.Scalar) -> Unicode.Scalar?? {
    func isEnd(_ at: Int) -> Bool {
      at + 1 < source.count && source[at] == closer && source[at + 1] == "}"
    }
    let c = source[pos]
    if (c == "-" || (c == "+" && closer == "%")) && isEnd(pos + 1) {
      pos += 3
      return .some(c)
    }
    if isEnd(pos) {
      pos += 2
      return .some(nil)
    }
    return nil
  }

  // MARK: raw blocks

  /// `{% raw %}...{% endraw %}`: the body is emitted as text, untouched.
  private mutating func lexRawIfPresent(start: Int) throws(JinjaError) -> Bool {
    var i = pos
    while i < source.count, PythonString.isSpace(source[i]) { i += 1 }
    guard matches("raw", at: i) else { return false }
    i += 3
    while i < source.count, PythonString.isSpace(source[i]) { i += 1 }
    var control: Unicode.Scalar? = nil
    if i < source.count, source[i] == "-" || source[i] == "+" { control = source[i]; i += 1 }
    guard matches("%}", at: i) else { return false }
    pos = i + 2
    finishTag(control: control, trimBlock: true)
    var j = pos
    while j < source.count {
      if matches("{%", at: j), let (endStart, endControl, bodyEnd) = endRaw(at: j) {
        var body = Array(source[pos..<bodyEnd])
        if source[j + 2] == "-" {
          while let last = body.last, PythonString.isSpace(last) { body.removeLast() }
        } else if source[j + 2] != "+" {
          lstrip(&body)
        }
        pendingText += body
        pos = endStart
        finishTag(control: endControl, trimBlock: true)
        return true
      }
      j += 1
    }
    throw error("missing '{% endraw %}'", at: start)
  }

  /// At a `{%` that opens `endraw`: returns the offset after the tag, its end control, and where the
  /// raw body ends.
  private func endRaw(at j: Int) -> (Int, Unicode.Scalar?, Int)? {
    var i = j + 2
    if i < source.count, source[i] == "-" || source[i] == "+" { i += 1 }
    while i < source.count, PythonString.isSpace(source[i]) { i += 1 }
    guard matches("endraw", at: i) else { return nil }
    i += 6
    while i < source.count, PythonString.isSpace(source[i]) { i += 1 }
    var control: Unicode.Scalar? = nil
    if i < source.count, source[i] == "-" || source[i] == "+" { control = source[i]; i += 1 }
    guard matches("%}", at: i) else { return nil }
    return (i + 2, control, j)
  }

  private func matches(_ literal: String, at index: Int) -> Bool {
    var i = index
    for scalar in literal.unicodeScalars {
      guard i < source.count, source[i] == scalar else { return false }
      i += 1
    }
    return true
  }

  // MARK: expression tokens

  /// Longer tags are refused: expression trees stay shallow enough to evaluate and free safely.
  static let maxTokensPerTag = 2000

  private static let twoCharOps: Set<String> = ["//", "**", "==", "!=", "<=", ">="]
  private static let oneCharOps: Set<Unicode.Scalar> = [
    "+", "-", "*", "/", "%", "~", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "=", "<", ">", ";",
  ]

  private mutating func lexToken() throws(JinjaError) -> Token {
    let start = pos
    let c = source[pos]
    if c == "_" || (c.properties.isAlphabetic && c.isASCII) {
      var name = ""
      while pos < source.count, source[pos] == "_" || (source[pos].isASCII && source[pos].properties.isAlphabetic)
        || ("0"..."9").contains(source[pos])
      {
        name.unicodeScalars.append(source[pos])
        pos += 1
      }
      return Token(kind: .name(name), offset: start)
    }
    if ("0"..."9").contains(c) { return try lexNumber() }
    if c == "'" || c == "\"" { return try lexString(quote: c) }
    if pos + 1 < source.count {
      var pair = String(c)
      pair.unicodeScalars.append(source[pos + 1])
      if Self.twoCharOps.contains(pair) {
        pos += 2
        return Token(kind: .op(pair), offset: start)
      }
    }
    if Self.oneCharOps.contains(c) {
      pos += 1
      return Token(kind: .op(String(c)), offset: start)
    }
    throw error("unexpected character '\(c)'", at: start)
  }

  private mutating func lexNumber() throws(JinjaError) -> Token {
    let start = pos
    var text = ""
    func digits() {
      while pos < source.count, ("0"..."9").contains(source[pos]) || source[pos] == "_" {
        if source[pos] != "_" { text.unicodeScalars.append(source[pos]) }
        pos += 1
      }
    }
    digits()
    var isFloat = false
    if pos + 1 < source.count, source[pos] == ".", ("0"..."9").contains(source[pos + 1]) {
      isFloat = true
      text += "."
      pos += 1
      digits()
    }
    if pos < source.count, source[pos] == "e" || source[pos] == "E" {
      var probe = pos + 1
      if probe < source.count, source[probe] == "+" || source[probe] == "-" { probe += 1 }
      if probe < source.count, ("0"..."9").contains(source[probe]) {
        isFloat = true
        text += "e" + (source[pos + 1] == "-" ? "-" : "")
        pos = probe
        digits()
      }
    }
    if isFloat, let value = Double(text) { return Token(kind: .double(value), offset: start) }
    if !isFloat, let value = Int(text) { return Token(kind: .int(value), offset: start) }
    throw error("number '\(text)' is out of range", at: start)
  }

  /// String literals decode Python escapes (Jinja decodes them with `unicode-escape`); an unknown
  /// escape keeps its backslash.
  private mutating func lexString(quote: Unicode.Scalar) throws(JinjaError) -> Token {
    let start = pos
    pos += 1
    var value = String.UnicodeScalarView()
    while pos < source.count, source[pos] != quote {
      let c = source[pos]
      pos += 1
      guard c == "\\", pos < source.count else {
        value.append(c)
        continue
      }
      let e = source[pos]
      pos += 1
      switch e {
      case "n": value.append("\n")
      case "t": value.append("\t")
      case "r": value.append("\r")
      case "\\": value.append("\\")
      case "'": value.append("'")
      case "\"": value.append("\"")
      case "a": value.append("\u{07}")
      case "b": value.append("\u{08}")
      case "f": value.append("\u{0C}")
      case "v": value.append("\u{0B}")
      case "0"..."7": value.append(try octalEscape(first: e, start: start))
      case "x", "u", "U":
        value.append(try hexEscape(length: e == "x" ? 2 : e == "u" ? 4 : 8, start: start))
      case "\n": break
      default:
        value.append("\\")
        value.append(e)
      }
    }
    guard pos < source.count else { throw error("unterminated string", at: start) }
    pos += 1
    return Token(kind: .string(String(value)), offset: start)
  }

  private mutating func octalEscape(first: Unicode.Scalar, start: Int) throws(JinjaError) -> Unicode.Scalar {
    var value = first.value - 48
    var n = 1
    while n < 3, pos < source.count, ("0"..."7").contains(source[pos]) {
      value = value * 8 + source[pos].value - 48
      pos += 1
      n += 1
    }
    guard let scalar = Unicode.Scalar(value) else { throw error("bad octal escape", at: start) }
    return scalar
  }

  private mutating func hexEscape(length: Int, start: Int) throws(JinjaError) -> Unicode.Scalar {
    guard pos + length <= source.count else { throw error("truncated \\x/\\u escape", at: start) }
    let hex = String(String.UnicodeScalarView(source[pos..<pos + length]))
    guard let value = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(value) else {
      throw error("bad escape '\\\(hex)'", at: start)
    }
    pos += length
    return scalar
  }

  private func error(_ message: String, at offset: Int) -> JinjaError {
    let (line, column) = SourceMap(source).location(offset)
    return JinjaError(.syntax, message, line: line, column: column)
  }
}
