// Text forms of values as Python prints them: `str()` (what `{{ x }}` emits), `repr()` (used inside
// containers), and `json.dumps` (Hugging Face's `tojson` override).

extension JinjaValue {
  /// Python `str(value)`, with Jinja's `Undefined` printing as the empty string.
  public var pythonString: String {
    switch self {
    case .undefined: return ""
    case .string(let s): return s
    default: return pythonRepr
    }
  }

  /// Python `repr(value)`.
  public var pythonRepr: String {
    switch self {
    case .undefined: return "Undefined"
    case .none: return "None"
    case .bool(let b): return b ? "True" : "False"
    case .int(let i): return String(i)
    case .double(let d): return PythonFloat.repr(d)
    case .string(let s): return PythonString.repr(s)
    case .array(let items): return "[" + items.map(\.pythonRepr).joined(separator: ", ") + "]"
    case .object(let object):
      let body = object.pairs.map { PythonString.repr($0.key) + ": " + $0.value.pythonRepr }
      return "{" + body.joined(separator: ", ") + "}"
    case .namespace(let ns): return "<Namespace " + JinjaValue.object(ns.attributes).pythonRepr + ">"
    case .callable(let f):
      if case .macro = f.body { return "<Macro '\(f.name)'>" }
      return "<function \(f.name)>"
    }
  }
}

enum PythonFloat {
  /// Python's `repr(float)`: the shortest round-tripping digits, fixed notation when the decimal
  /// exponent is in [-4, 16), scientific otherwise ("1e-05", "1e+16", "1.5").
  static func repr(_ value: Double) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value < 0 ? "-inf" : "inf" }
    if value == 0 { return value.sign == .minus ? "-0.0" : "0.0" }
    let (negative, digits, pointPosition) = shortestDigits(value)
    let exponent = pointPosition - 1
    var text = negative ? "-" : ""
    if exponent >= -4 && exponent < 16 {
      if pointPosition <= 0 {
        text += "0." + String(repeating: "0", count: -pointPosition) + digits
      } else if pointPosition >= digits.count {
        text += digits + String(repeating: "0", count: pointPosition - digits.count) + ".0"
      } else {
        let split = digits.index(digits.startIndex, offsetBy: pointPosition)
        text += digits[..<split] + "." + digits[split...]
      }
    } else {
      text += String(digits.prefix(1))
      if digits.count > 1 { text += "." + digits.dropFirst() }
      let magnitude = abs(exponent)
      text += (exponent < 0 ? "e-" : "e+") + (magnitude < 10 ? "0" : "") + String(magnitude)
    }
    return text
  }

  /// Decomposes Swift's shortest round-trip description into sign, significant digits (no leading or
  /// trailing zeros) and the position of the decimal point relative to the first digit.
  static func shortestDigits(_ value: Double) -> (negative: Bool, digits: String, pointPosition: Int) {
    var text = Substring(abs(value).description)
    var exponent = 0
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
      exponent = Int(text[text.index(after: e)...]) ?? 0
      text = text[..<e]
    }
    var digits = ""
    var pointPosition = 0
    var seenPoint = false
    for ch in text {
      if ch == "." { seenPoint = true; continue }
      if digits.isEmpty && ch == "0" {
        if seenPoint { pointPosition -= 1 }
        continue
      }
      digits.append(ch)
      if !seenPoint { pointPosition += 1 }
    }
    while digits.count > 1 && digits.hasSuffix("0") { digits.removeLast() }
    return (value < 0, digits.isEmpty ? "0" : digits, pointPosition + exponent)
  }
}

enum PythonString {
  /// Python `repr(str)`: single quotes unless the text has a single quote and no double quote.
  static func repr(_ text: String) -> String {
    let quote: Character = text.contains("'") && !text.contains("\"") ? "\"" : "'"
    var out = String(quote)
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      default:
        if Character(scalar) == quote {
          out += "\\" + String(quote)
        } else if isPrintable(scalar) {
          out.unicodeScalars.append(scalar)
        } else {
          out += escapeHex(scalar.value)
        }
      }
    }
    out.append(quote)
    return out
  }

  private static func escapeHex(_ value: UInt32) -> String {
    let hex = String(value, radix: 16)
    if value < 0x100 { return "\\x" + String(repeating: "0", count: 2 - hex.count) + hex }
    if value < 0x10000 { return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex }
    return "\\U" + String(repeating: "0", count: 8 - hex.count) + hex
  }

  /// Python's `str.isprintable` per code point: everything but control, format, surrogate, private-use,
  /// unassigned and separator characters (the ASCII space excepted).
  static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
    if scalar == " " { return true }
    switch scalar.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned,
      .spaceSeparator, .lineSeparator, .paragraphSeparator:
      return false
    default:
      return true
    }
  }

  /// Python's `str.isspace` per code point (Unicode White_Space plus the four ASCII separators
  /// U+001C...U+001F, which Python counts as whitespace).
  static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
    (0x1C...0x1F).contains(scalar.value) || scalar.properties.isWhitespace
  }
}

// MARK: - JSON (json.dumps)

/// Options of Python's `json.dumps` as Hugging Face's `tojson` filter exposes them.
struct JSONDumpOptions {
  var ensureASCII = false
  var indent: String? = nil
  var itemSeparator: String? = nil
  var keySeparator: String? = nil
  var sortKeys = false
}

enum PythonJSON {
  /// `json.dumps(value, ...)`; `Undefined`, namespaces and callables are not serializable.
  static func dumps(_ value: JinjaValue, _ options: JSONDumpOptions) throws(JinjaError) -> String {
    var out = ""
    let itemSeparator = options.itemSeparator ?? (options.indent == nil ? ", " : ",")
    let keySeparator = options.keySeparator ?? ": "
    try write(value, into: &out, depth: 0, options, itemSeparator, keySeparator)
    return out
  }

  private static func write(
    _ value: JinjaValue, into out: inout String, depth: Int, _ options: JSONDumpOptions,
    _ itemSeparator: String, _ keySeparator: String
  ) throws(JinjaError) {
    guard depth < 512 else { throw JinjaError.runtime("tojson: nesting too deep") }
    switch value {
    case .none: out += "null"
    case .bool(let b): out += b ? "true" : "false"
    case .int(let i): out += String(i)
    case .double(let d):
      if d.isNaN { out += "NaN" } else if d.isInfinite { out += d < 0 ? "-Infinity" : "Infinity" } else {
        out += PythonFloat.repr(d)
      }
    case .string(let s): writeString(s, into: &out, ensureASCII: options.ensureASCII)
    case .array(let items):
      if items.isEmpty { out += "[]"; return }
      out += "["
      for (i, item) in items.enumerated() {
        if i > 0 { out += itemSeparator }
        newline(&out, depth + 1, options)
        try write(item, into: &out, depth: depth + 1, options, itemSeparator, keySeparator)
      }
      newline(&out, depth, options)
      out += "]"
    case .object(let object):
      if object.isEmpty { out += "{}"; return }
      var pairs = object.pairs
      if options.sortKeys {
        pairs.sort { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) }
      }
      out += "{"
      for (i, pair) in pairs.enumerated() {
        if i > 0 { out += itemSeparator }
        newline(&out, depth + 1, options)
        writeString(pair.key, into: &out, ensureASCII: options.ensureASCII)
        out += keySeparator
        try write(pair.value, into: &out, depth: depth + 1, options, itemSeparator, keySeparator)
      }
      newline(&out, depth, options)
      out += "}"
    case .undefined, .namespace, .callable:
      throw JinjaError.runtime("tojson: Object of type \(value.typeName) is not JSON serializable")
    }
  }

  private static func newline(_ out: inout String, _ depth: Int, _ options: JSONDumpOptions) {
    guard let indent = options.indent else { return }
    out += "\n" + String(repeating: indent, count: depth)
  }

  static func writeString(_ text: String, into out: inout String, ensureASCII: Bool) {
    out += "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case "\u{08}": out += "\\b"
      case "\u{0C}": out += "\\f"
      default:
        if scalar.value < 0x20 || (ensureASCII && scalar.value > 0x7E) {
          if scalar.value > 0xFFFF {
            let v = scalar.value - 0x10000
            out += hex4(0xD800 + (v >> 10)) + hex4(0xDC00 + (v & 0x3FF))
          } else {
            out += hex4(scalar.value)
          }
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    out += "\""
  }

  private static func hex4(_ value: UInt32) -> String {
    let hex = String(value, radix: 16)
    return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
  }
}
