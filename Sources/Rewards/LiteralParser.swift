// A tolerant parser for model-written data: JSON and Python literals (`ast.literal_eval` subset).
import Common
import Foundation

/// Parses JSON or a Python literal into a `JSONValue`: dicts with int or string keys (keys become
/// strings: `0` -> `"0"`), single- or double-quoted strings, lists and tuples (both become arrays),
/// ints, floats, `True`/`False`/`None` and their JSON spellings, trailing commas. Nesting deeper than
/// `maxDepth` and numbers that overflow to infinity are rejected (nil), so hostile input cannot crash
/// or hang the trainer.
public struct LiteralParser {
  public static let maxDepth = 64
  private let bytes: [UInt8]
  private var index = 0

  private init(_ text: String) { bytes = Array(text.utf8) }

  /// The value of the whole text (surrounding whitespace allowed), else nil.
  public static func parse(_ text: String) -> JSONValue? {
    var parser = LiteralParser(text)
    guard let value = parser.value(depth: 0) else { return nil }
    parser.skipSpace()
    return parser.index == parser.bytes.count ? value : nil
  }

  /// Parses the text, or failing that the text without a Markdown code fence, or the span from the
  /// first `{` to the last `}` (models often wrap the mapping in prose).
  public static func parseLenient(_ text: String) -> JSONValue? {
    if let value = parse(stripCodeFence(text)) { return value }
    guard let open = text.firstIndex(of: "{"), let close = text.lastIndex(of: "}"), open < close
    else { return nil }
    return parse(String(text[open...close]))
  }

  /// Removes a surrounding ```lang ... ``` fence.
  public static func stripCodeFence(_ text: String) -> String {
    var body = text.trimmed
    guard body.hasPrefix("```") else { return body }
    body.removeFirst(3)
    if let newline = body.firstIndex(of: "\n") { body = String(body[body.index(after: newline)...]) }
    if body.hasSuffix("```") { body.removeLast(3) }
    return body.trimmed
  }

  private mutating func skipSpace() {
    while index < bytes.count, AnswerParsing.isSpace(bytes[index]) { index += 1 }
  }

  private mutating func value(depth: Int) -> JSONValue? {
    guard depth < Self.maxDepth else { return nil }
    skipSpace()
    guard index < bytes.count else { return nil }
    switch bytes[index] {
    case UInt8(ascii: "{"): return mapping(depth: depth)
    case UInt8(ascii: "["): return sequence(close: UInt8(ascii: "]"), depth: depth)
    case UInt8(ascii: "("): return sequence(close: UInt8(ascii: ")"), depth: depth)
    case UInt8(ascii: "\""), UInt8(ascii: "'"): return string().map(JSONValue.string)
    default: return scalar()
    }
  }

  private mutating func sequence(close: UInt8, depth: Int) -> JSONValue? {
    index += 1
    var items: [JSONValue] = []
    while true {
      skipSpace()
      guard index < bytes.count else { return nil }
      if bytes[index] == close {
        index += 1
        return .array(items)
      }
      guard let item = value(depth: depth + 1) else { return nil }
      items.append(item)
      guard separator(close: close) else { return nil }
    }
  }

  private mutating func mapping(depth: Int) -> JSONValue? {
    index += 1
    var members: [String: JSONValue] = [:]
    while true {
      skipSpace()
      guard index < bytes.count else { return nil }
      if bytes[index] == UInt8(ascii: "}") {
        index += 1
        return .object(members)
      }
      guard let key = value(depth: depth + 1), let keyText = Self.keyString(key) else { return nil }
      skipSpace()
      guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
      index += 1
      guard let item = value(depth: depth + 1) else { return nil }
      members[keyText] = item
      guard separator(close: UInt8(ascii: "}")) else { return nil }
    }
  }

  /// After an item: a comma (a trailing one is fine) or the closing bracket, left unconsumed.
  private mutating func separator(close: UInt8) -> Bool {
    skipSpace()
    guard index < bytes.count else { return false }
    if bytes[index] == UInt8(ascii: ",") {
      index += 1
      return true
    }
    return bytes[index] == close
  }

  private static func keyString(_ key: JSONValue) -> String? {
    switch key {
    case .string(let s): return s
    case .int(let i): return String(i)
    case .double(let d): return d.rounded() == d && abs(d) < 1e15 ? String(Int(d)) : String(d)
    case .bool(let b): return b ? "True" : "False"
    default: return nil
    }
  }

  private mutating func string() -> String? {
    let quote = bytes[index]
    index += 1
    var out: [UInt8] = []
    while index < bytes.count {
      let byte = bytes[index]
      index += 1
      if byte == quote { return String(decoding: out, as: UTF8.self) }
      guard byte == UInt8(ascii: "\\") else {
        out.append(byte)
        continue
      }
      guard index < bytes.count else { return nil }
      let escaped = bytes[index]
      index += 1
      switch escaped {
      case UInt8(ascii: "n"): out.append(10)
      case UInt8(ascii: "t"): out.append(9)
      case UInt8(ascii: "r"): out.append(13)
      case UInt8(ascii: "u"):
        guard index + 4 <= bytes.count,
          let code = UInt32(String(decoding: bytes[index..<(index + 4)], as: UTF8.self), radix: 16)
        else { return nil }
        index += 4
        let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
        out.append(contentsOf: Array(String(Character(scalar)).utf8))
      default: out.append(escaped)
      }
    }
    return nil
  }

  /// Numbers and bare words (`True`, `false`, `None`, `null`).
  private mutating func scalar() -> JSONValue? {
    let start = index
    while index < bytes.count, Self.isScalarByte(bytes[index]) { index += 1 }
    guard index > start else { return nil }
    let token = String(decoding: bytes[start..<index], as: UTF8.self)
    switch token {
    case "True", "true": return .bool(true)
    case "False", "false": return .bool(false)
    case "None", "null": return .null
    default: break
    }
    let plain = token.replacingOccurrences(of: "_", with: "")
    if plain.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "-" || $0 == "+") }),
      let integer = Int(plain)
    {
      return .int(integer)
    }
    guard plain.first.map({ $0.isNumber || $0 == "-" || $0 == "+" || $0 == "." }) == true,
      let double = Double(plain), double.isFinite
    else { return nil }
    return .double(double)
  }

  private static func isScalarByte(_ byte: UInt8) -> Bool {
    AnswerParsing.isDigit(byte) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
      || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".")
      || byte == UInt8(ascii: "_")
  }
}
