// JSON text to JinjaValue, as Python's `json.loads` reads it: object key order kept, integers stay
// ints and numbers with a fraction or exponent become floats. Used to load tools, messages and
// `chat_template.json`-style data without losing the order `tojson` must reproduce.

extension JinjaValue {
  /// Parses JSON text. Throws a `.syntax` error naming the byte offset on bad input.
  public init(json text: String) throws(JinjaError) {
    var parser = JSONReader(bytes: Array(text.utf8))
    self = try parser.parseDocument()
  }
}

private struct JSONReader {
  let bytes: [UInt8]
  var pos = 0
  var depth = 0

  init(bytes: [UInt8]) { self.bytes = bytes }

  mutating func parseDocument() throws(JinjaError) -> JinjaValue {
    let value = try parseValue()
    skipSpace()
    guard pos == bytes.count else { throw fail("trailing characters") }
    return value
  }

  private func fail(_ message: String) -> JinjaError {
    JinjaError(.syntax, "JSON: \(message) at byte \(pos)")
  }

  private mutating func skipSpace() {
    while pos < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[pos]) { pos += 1 }
  }

  private mutating func parseValue() throws(JinjaError) -> JinjaValue {
    skipSpace()
    guard pos < bytes.count else { throw fail("unexpected end") }
    switch bytes[pos] {
    case UInt8(ascii: "{"): return try nested { r throws(JinjaError) in try r.parseObject() }
    case UInt8(ascii: "["): return try nested { r throws(JinjaError) in try r.parseArray() }
    case UInt8(ascii: "\""): return .string(try parseString())
    case UInt8(ascii: "t"): try literal("true"); return .bool(true)
    case UInt8(ascii: "f"): try literal("false"); return .bool(false)
    case UInt8(ascii: "n"): try literal("null"); return .none
    case UInt8(ascii: "N"): try literal("NaN"); return .double(.nan)
    case UInt8(ascii: "I"): try literal("Infinity"); return .double(.infinity)
    default: return try parseNumber()
    }
  }

  private mutating func nested(_ body: (inout JSONReader) throws(JinjaError) -> JinjaValue) throws(JinjaError) -> JinjaValue {
    depth += 1
    defer { depth -= 1 }
    guard depth <= 512 else { throw fail("nesting too deep") }
    return try body(&self)
  }

  private mutating func literal(_ word: String) throws(JinjaError) {
    let w = Array(word.utf8)
    guard pos + w.count <= bytes.count, Array(bytes[pos..<pos + w.count]) == w else { throw fail("invalid literal") }
    pos += w.count
  }

  private mutating func parseObject() throws(JinjaError) -> JinjaValue {
    pos += 1
    var object = JinjaObject()
    skipSpace()
    if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(object) }
    while true {
      skipSpace()
      guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw fail("expected a key") }
      let key = try parseString()
      skipSpace()
      guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw fail("expected ':'") }
      pos += 1
      object[key] = try parseValue()
      skipSpace()
      guard pos < bytes.count else { throw fail("unterminated object") }
      if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
      guard bytes[pos] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
      pos += 1
      return .object(object)
    }
  }

  private mutating func parseArray() throws(JinjaError) -> JinjaValue {
    pos += 1
    var items: [JinjaValue] = []
    skipSpace()
    if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
    while true {
      items.append(try parseValue())
      skipSpace()
      guard pos < bytes.count else { throw fail("unterminated array") }
      if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
      guard bytes[pos] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
      pos += 1
      return .array(items)
    }
  }

  private mutating func parseString() throws(JinjaError) -> String {
    pos += 1
    var out: [UInt8] = []
    while pos < bytes.count {
      let b = bytes[pos]
      pos += 1
      if b == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
      guard b == UInt8(ascii: "\\") else {
        guard b >= 0x20 else { throw fail("control character in string") }
        out.append(b)
        continue
      }
      guard pos < bytes.count else { break }
      let e = bytes[pos]
      pos += 1
      switch e {
      case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
      case UInt8(ascii: "b"): out.append(0x08)
      case UInt8(ascii: "f"): out.append(0x0C)
      case UInt8(ascii: "n"): out.append(0x0A)
      case UInt8(ascii: "r"): out.append(0x0D)
      case UInt8(ascii: "t"): out.append(0x09)
      case UInt8(ascii: "u"): out.append(contentsOf: Array(String(try parseUnicodeEscape()).utf8))
      default: throw fail("bad escape")
      }
    }
    throw fail("unterminated string")
  }

  private mutating func hex4() throws(JinjaError) -> UInt32 {
    guard pos + 4 <= bytes.count,
      let value = UInt32(String(decoding: bytes[pos..<pos + 4], as: UTF8.self), radix: 16)
    else { throw fail("bad \\u escape") }
    pos += 4
    return value
  }

  /// `\uXXXX`, joining surrogate pairs; a lone surrogate becomes U+FFFD.
  private mutating func parseUnicodeEscape() throws(JinjaError) -> Unicode.Scalar {
    let high = try hex4()
    if (0xD800..<0xDC00).contains(high), pos + 6 <= bytes.count, bytes[pos] == UInt8(ascii: "\\"),
      bytes[pos + 1] == UInt8(ascii: "u")
    {
      let save = pos
      pos += 2
      let low = try hex4()
      if (0xDC00..<0xE000).contains(low) {
        return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)) ?? "\u{FFFD}"
      }
      pos = save
    }
    return Unicode.Scalar(high) ?? "\u{FFFD}"
  }

  private mutating func parseNumber() throws(JinjaError) -> JinjaValue {
    let start = pos
    var isFloat = false
    if pos < bytes.count, bytes[pos] == UInt8(ascii: "-") { pos += 1 }
    if pos + 8 <= bytes.count, String(decoding: bytes[pos..<pos + 8], as: UTF8.self) == "Infinity" {
      pos += 8
      return .double(-.infinity)
    }
    while pos < bytes.count {
      let b = bytes[pos]
      if b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") {
        pos += 1
      } else if b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E")
        || ((b == UInt8(ascii: "+") || b == UInt8(ascii: "-")) && isFloat)
      {
        isFloat = true
        pos += 1
      } else {
        break
      }
    }
    let text = String(decoding: bytes[start..<pos], as: UTF8.self)
    guard !text.isEmpty, text != "-" else { throw fail("unexpected character") }
    if !isFloat, let i = Int(text) { return .int(i) }
    guard let d = Double(text) else { throw fail("bad number '\(text)'") }
    return .double(d)
  }
}
