/// A small strict JSON reader for safetensors headers and index files.
///
/// Foundation's decoders lose key order, accept duplicate keys silently and read large integers
/// through `Double`; a header needs exact 64-bit offsets, its keys in order, and a parser that
/// cannot be driven into deep recursion by hostile input, so this one is written out.
enum HeaderJSON: Equatable, Sendable {
  case null
  case bool(Bool)
  /// A number: `integer` is set when the text is a non-negative integer that fits in UInt64.
  case number(text: String, integer: UInt64?)
  case string(String)
  case array([HeaderJSON])
  /// Members in document order.
  case object([(key: String, value: HeaderJSON)])

  static func == (lhs: HeaderJSON, rhs: HeaderJSON) -> Bool {
    switch (lhs, rhs) {
    case (.null, .null): return true
    case (.bool(let a), .bool(let b)): return a == b
    case (.number(let a, _), .number(let b, _)): return a == b
    case (.string(let a), .string(let b)): return a == b
    case (.array(let a), .array(let b)): return a == b
    case (.object(let a), .object(let b)):
      return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    default: return false
    }
  }

  /// A short name of the value's kind for error messages.
  var kindName: String {
    switch self {
    case .null: return "null"
    case .bool: return "a boolean"
    case .number: return "a number"
    case .string: return "a string"
    case .array: return "an array"
    case .object: return "an object"
    }
  }

  struct ParseError: Error, Equatable {
    var message: String
    var offset: Int
  }

  /// Parses a complete document; trailing bytes other than whitespace are an error.
  static func parse(_ bytes: UnsafeRawBufferPointer) throws(ParseError) -> HeaderJSON {
    var parser = Parser(bytes: bytes)
    parser.skipWhitespace()
    let value = try parser.parseValue(depth: 0)
    parser.skipWhitespace()
    guard parser.position == bytes.count else { throw parser.error("trailing characters") }
    return value
  }

  static func parse(_ bytes: [UInt8]) throws(ParseError) -> HeaderJSON {
    do {
      return try bytes.withUnsafeBytes { buffer in try parse(buffer) }
    } catch let error as ParseError {
      throw error
    } catch {
      throw ParseError(message: "\(error)", offset: 0)
    }
  }
}

private struct Parser {
  let bytes: UnsafeRawBufferPointer
  var position = 0
  static let maxDepth = 64

  init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

  func error(_ message: String) -> HeaderJSON.ParseError {
    HeaderJSON.ParseError(message: message, offset: position)
  }

  var current: UInt8? { position < bytes.count ? bytes[position] : nil }

  mutating func skipWhitespace() {
    while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
      position += 1
    }
  }

  mutating func expect(_ byte: UInt8) throws(HeaderJSON.ParseError) {
    guard current == byte else { throw error("expected '\(Character(UnicodeScalar(byte)))'") }
    position += 1
  }

  mutating func parseValue(depth: Int) throws(HeaderJSON.ParseError) -> HeaderJSON {
    guard depth < Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth)") }
    guard let byte = current else { throw error("unexpected end of input") }
    switch byte {
    case UInt8(ascii: "{"): return try parseObject(depth: depth)
    case UInt8(ascii: "["): return try parseArray(depth: depth)
    case UInt8(ascii: "\""): return .string(try parseString())
    case UInt8(ascii: "t"): try parseLiteral("true"); return .bool(true)
    case UInt8(ascii: "f"): try parseLiteral("false"); return .bool(false)
    case UInt8(ascii: "n"): try parseLiteral("null"); return .null
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
    default: throw error("unexpected character")
    }
  }

  mutating func parseLiteral(_ word: String) throws(HeaderJSON.ParseError) {
    let expected = Array(word.utf8)
    let count = expected.count
    guard position + count <= bytes.count else { throw error("unexpected end of input") }
    for index in 0..<count where bytes[position + index] != expected[index] {
      throw error("invalid literal")
    }
    position += count
  }

  mutating func parseObject(depth: Int) throws(HeaderJSON.ParseError) -> HeaderJSON {
    position += 1
    var members: [(key: String, value: HeaderJSON)] = []
    var seen = Set<String>()
    skipWhitespace()
    if current == UInt8(ascii: "}") { position += 1; return .object(members) }
    while true {
      skipWhitespace()
      guard current == UInt8(ascii: "\"") else { throw error("expected a string key") }
      let key = try parseString()
      guard seen.insert(key).inserted else { throw error("duplicate key '\(key)'") }
      skipWhitespace()
      try expect(UInt8(ascii: ":"))
      skipWhitespace()
      members.append((key, try parseValue(depth: depth + 1)))
      skipWhitespace()
      if current == UInt8(ascii: ",") { position += 1; continue }
      try expect(UInt8(ascii: "}"))
      return .object(members)
    }
  }

  mutating func parseArray(depth: Int) throws(HeaderJSON.ParseError) -> HeaderJSON {
    position += 1
    var elements: [HeaderJSON] = []
    skipWhitespace()
    if current == UInt8(ascii: "]") { position += 1; return .array(elements) }
    while true {
      skipWhitespace()
      elements.append(try parseValue(depth: depth + 1))
      skipWhitespace()
      if current == UInt8(ascii: ",") { position += 1; continue }
      try expect(UInt8(ascii: "]"))
      return .array(elements)
    }
  }

  mutating func parseNumber() throws(HeaderJSON.ParseError) -> HeaderJSON {
    let start = position
    if current == UInt8(ascii: "-") { position += 1 }
    guard let first = current, first >= 0x30, first <= 0x39 else { throw error("invalid number") }
    if first == 0x30 {
      position += 1
    } else {
      while let digit = current, digit >= 0x30, digit <= 0x39 { position += 1 }
    }
    var isInteger = true
    if current == UInt8(ascii: ".") {
      isInteger = false
      position += 1
      try skipDigits()
    }
    if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
      isInteger = false
      position += 1
      if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
      try skipDigits()
    }
    let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
    let integer = isInteger && !text.hasPrefix("-") ? UInt64(text) : nil
    return .number(text: text, integer: integer)
  }

  mutating func skipDigits() throws(HeaderJSON.ParseError) {
    guard let digit = current, digit >= 0x30, digit <= 0x39 else { throw error("invalid number") }
    while let digit = current, digit >= 0x30, digit <= 0x39 { position += 1 }
  }

  mutating func parseString() throws(HeaderJSON.ParseError) -> String {
    position += 1
    var scalars = String.UnicodeScalarView()
    var utf8Run: [UInt8] = []
    func flush() {
      if !utf8Run.isEmpty {
        scalars.append(contentsOf: String(decoding: utf8Run, as: UTF8.self).unicodeScalars)
        utf8Run.removeAll(keepingCapacity: true)
      }
    }
    while true {
      guard let byte = current else { throw error("unterminated string") }
      position += 1
      if byte == UInt8(ascii: "\"") { break }
      if byte < 0x20 { throw error("control character in string") }
      if byte != UInt8(ascii: "\\") { utf8Run.append(byte); continue }
      flush()
      scalars.append(try parseEscape())
    }
    flush()
    return String(scalars)
  }

  mutating func parseEscape() throws(HeaderJSON.ParseError) -> Unicode.Scalar {
    guard let byte = current else { throw error("unterminated escape") }
    position += 1
    switch byte {
    case UInt8(ascii: "\""): return "\""
    case UInt8(ascii: "\\"): return "\\"
    case UInt8(ascii: "/"): return "/"
    case UInt8(ascii: "b"): return "\u{08}"
    case UInt8(ascii: "f"): return "\u{0C}"
    case UInt8(ascii: "n"): return "\n"
    case UInt8(ascii: "r"): return "\r"
    case UInt8(ascii: "t"): return "\t"
    case UInt8(ascii: "u"):
      let high = try parseHex4()
      if (0xD800..<0xDC00).contains(high) {
        guard current == UInt8(ascii: "\\"), position + 1 < bytes.count,
          bytes[position + 1] == UInt8(ascii: "u")
        else { throw error("unpaired surrogate") }
        position += 2
        let low = try parseHex4()
        guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate") }
        let value = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        guard let scalar = Unicode.Scalar(value) else { throw error("invalid code point") }
        return scalar
      }
      guard let scalar = Unicode.Scalar(high) else { throw error("unpaired surrogate") }
      return scalar
    default:
      throw error("invalid escape")
    }
  }

  mutating func parseHex4() throws(HeaderJSON.ParseError) -> UInt32 {
    guard position + 4 <= bytes.count else { throw error("truncated \\u escape") }
    var value: UInt32 = 0
    for _ in 0..<4 {
      let byte = bytes[position]
      let digit: UInt8
      switch byte {
      case 0x30...0x39: digit = byte - 0x30
      case 0x41...0x46: digit = byte - 0x41 + 10
      case 0x61...0x66: digit = byte - 0x61 + 10
      default: throw error("invalid \\u escape")
      }
      value = value << 4 | UInt32(digit)
      position += 1
    }
    return value
  }
}

// MARK: - Writing

extension HeaderJSON {
  /// Compact JSON text with members in stored order, escaping as serde_json does (quote,
  /// backslash and control characters only; non-ASCII stays raw UTF-8), so written headers
  /// match the reference library byte for byte.
  var serialized: String {
    var out = ""
    write(to: &out)
    return out
  }

  func write(to out: inout String) {
    switch self {
    case .null: out += "null"
    case .bool(let value): out += value ? "true" : "false"
    case .number(let text, _): out += text
    case .string(let value): Self.writeString(value, to: &out)
    case .array(let elements):
      out += "["
      for (index, element) in elements.enumerated() {
        if index > 0 { out += "," }
        element.write(to: &out)
      }
      out += "]"
    case .object(let members):
      out += "{"
      for (index, member) in members.enumerated() {
        if index > 0 { out += "," }
        Self.writeString(member.key, to: &out)
        out += ":"
        member.value.write(to: &out)
      }
      out += "}"
    }
  }

  static func writeString(_ value: String, to out: inout String) {
    out += "\""
    for scalar in value.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case "\u{08}": out += "\\b"
      case "\u{0C}": out += "\\f"
      default:
        if scalar.value < 0x20 {
          let hex = String(scalar.value, radix: 16)
          out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    out += "\""
  }

  static func integer<T: BinaryInteger>(_ value: T) -> HeaderJSON {
    .number(text: String(value), integer: UInt64(exactly: value))
  }
}
