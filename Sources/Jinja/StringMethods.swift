import Foundation

// Python `str` algorithms, on Unicode code points (Python's unit), not grapheme clusters.

enum StringMethods {
  private static func string(_ scalars: some Sequence<Unicode.Scalar>) -> String {
    var view = String.UnicodeScalarView()
    view.append(contentsOf: scalars)
    return String(view)
  }

  /// `str.strip(chars)` / `lstrip` / `rstrip`; without `chars`, strips Python whitespace.
  static func strip(_ text: String, chars: String?, left: Bool, right: Bool) -> String {
    let set = chars.map { Set($0.unicodeScalars) }
    let strippable: (Unicode.Scalar) -> Bool = { set?.contains($0) ?? PythonString.isSpace($0) }
    let scalars = Array(text.unicodeScalars)
    var start = 0
    var end = scalars.count
    if left { while start < end, strippable(scalars[start]) { start += 1 } }
    if right { while end > start, strippable(scalars[end - 1]) { end -= 1 } }
    return string(scalars[start..<end])
  }

  /// `str.split(sep, maxsplit)` and `str.rsplit`.
  static func split(_ text: String, separator: String?, maxSplit: Int, fromRight: Bool) -> [String] {
    var scalars = Array(text.unicodeScalars)
    var sep = separator.map { Array($0.unicodeScalars) }
    if fromRight {
      scalars.reverse()
      sep?.reverse()
    }
    var parts = sep.map { splitExact(scalars, $0, maxSplit) } ?? splitWhitespace(scalars, maxSplit)
    if fromRight { parts = parts.reversed().map { Array($0.reversed()) } }
    return parts.map { string($0) }
  }

  private static func splitExact(_ scalars: [Unicode.Scalar], _ sep: [Unicode.Scalar], _ maxSplit: Int) -> [[Unicode.Scalar]] {
    var parts: [[Unicode.Scalar]] = []
    var current: [Unicode.Scalar] = []
    var i = 0
    while i < scalars.count {
      if maxSplit < 0 || parts.count < maxSplit, i + sep.count <= scalars.count,
        scalars[i..<i + sep.count].elementsEqual(sep)
      {
        parts.append(current)
        current = []
        i += sep.count
      } else {
        current.append(scalars[i])
        i += 1
      }
    }
    parts.append(current)
    return parts
  }

  private static func splitWhitespace(_ scalars: [Unicode.Scalar], _ maxSplit: Int) -> [[Unicode.Scalar]] {
    var parts: [[Unicode.Scalar]] = []
    var i = 0
    while i < scalars.count {
      while i < scalars.count, PythonString.isSpace(scalars[i]) { i += 1 }
      guard i < scalars.count else { break }
      if maxSplit >= 0 && parts.count == maxSplit {
        var rest = Array(scalars[i...])
        while let last = rest.last, PythonString.isSpace(last) { rest.removeLast() }
        parts.append(rest)
        break
      }
      var word: [Unicode.Scalar] = []
      while i < scalars.count, !PythonString.isSpace(scalars[i]) {
        word.append(scalars[i])
        i += 1
      }
      parts.append(word)
    }
    return parts
  }

  /// `str.replace(old, new, count)`; an empty `old` inserts `new` around every code point.
  static func replace(_ text: String, _ old: String, _ new: String, count: Int) -> String {
    let scalars = Array(text.unicodeScalars)
    let oldScalars = Array(old.unicodeScalars)
    var out = String.UnicodeScalarView()
    var replaced = 0
    var i = 0
    let canReplace = { count < 0 || replaced < count }
    if oldScalars.isEmpty {
      for scalar in scalars {
        if canReplace() { out.append(contentsOf: new.unicodeScalars); replaced += 1 }
        out.append(scalar)
      }
      if canReplace() { out.append(contentsOf: new.unicodeScalars) }
      return String(out)
    }
    while i < scalars.count {
      if canReplace(), i + oldScalars.count <= scalars.count, scalars[i..<i + oldScalars.count].elementsEqual(oldScalars) {
        out.append(contentsOf: new.unicodeScalars)
        replaced += 1
        i += oldScalars.count
      } else {
        out.append(scalars[i])
        i += 1
      }
    }
    return String(out)
  }

  /// `str.capitalize()`: first code point in title case, the rest lower case.
  static func capitalize(_ text: String) -> String {
    guard let first = text.unicodeScalars.first else { return "" }
    return first.properties.titlecaseMapping + string(text.unicodeScalars.dropFirst()).lowercased()
  }

  /// `str.title()`: title-cases a code point that follows an uncased one, lower-cases the rest.
  static func pythonTitle(_ text: String) -> String {
    var out = ""
    var previousCased = false
    for scalar in text.unicodeScalars {
      out += previousCased ? scalar.properties.lowercaseMapping : scalar.properties.titlecaseMapping
      previousCased = scalar.properties.isCased
    }
    return out
  }

  /// `find`, `rfind`, `index`, `rindex` (code-point offsets) and `count` (non-overlapping).
  static func search(_ name: String, _ text: String, _ sub: String) throws(JinjaError) -> JinjaValue {
    let scalars = Array(text.unicodeScalars)
    let needle = Array(sub.unicodeScalars)
    var matches: [Int] = []
    var i = 0
    while i + needle.count <= scalars.count {
      if scalars[i..<i + needle.count].elementsEqual(needle) {
        matches.append(i)
        if name == "find" || name == "index" { break }
        i += name == "count" ? max(needle.count, 1) : 1
      } else {
        i += 1
      }
    }
    switch name {
    case "count": return .int(matches.count)
    case "find": return .int(matches.first ?? -1)
    case "rfind": return .int(matches.last ?? -1)
    default:
      guard let found = name == "index" ? matches.first : matches.last else {
        throw JinjaError.runtime("substring not found")
      }
      return .int(found)
    }
  }

  /// `isdigit`, `isalpha`, `isalnum`, `isspace`, `isupper`, `islower`.
  static func classify(_ name: String, _ text: String) -> Bool {
    let scalars = text.unicodeScalars
    switch name {
    case "isupper", "islower":
      let cased = scalars.filter { $0.properties.isCased }
      guard !cased.isEmpty else { return false }
      return name == "isupper" ? !scalars.contains { $0.properties.isLowercase } : !scalars.contains { $0.properties.isUppercase }
    default:
      guard !scalars.isEmpty else { return false }
      return scalars.allSatisfy { s in
        switch name {
        case "isdigit": return s.properties.numericType == .decimal || s.properties.numericType == .digit
        case "isalpha": return s.properties.isAlphabetic
        case "isalnum": return s.properties.isAlphabetic || s.properties.numericType != nil
        default: return PythonString.isSpace(s)
        }
      }
    }
  }

  /// `str.format` with `{}`, `{0}` and `{name}` fields (no format specs).
  static func format(_ text: String, _ args: CallArguments) throws(JinjaError) -> String {
    var out = ""
    var autoIndex = 0
    var iterator = text.makeIterator()
    while let ch = iterator.next() {
      if ch == "}" {
        guard iterator.next() == "}" else { throw JinjaError.runtime("format: single '}' encountered") }
        out.append("}")
        continue
      }
      guard ch == "{" else { out.append(ch); continue }
      var field = ""
      var closed = false
      while let next = iterator.next() {
        if next == "{" && field.isEmpty { out.append("{"); closed = true; field = "\u{0}"; break }
        if next == "}" { closed = true; break }
        field.append(next)
      }
      guard closed else { throw JinjaError.runtime("format: unmatched '{'") }
      if field == "\u{0}" { continue }
      if field.contains(":") || field.contains("!") { throw JinjaError.unsupported("format specs in str.format") }
      let value: JinjaValue?
      if field.isEmpty {
        value = autoIndex < args.positional.count ? args.positional[autoIndex] : nil
        autoIndex += 1
      } else if let index = Int(field) {
        value = index < args.positional.count ? args.positional[index] : nil
      } else {
        value = args.keywordValue(field)
      }
      guard let value else { throw JinjaError.runtime("format: missing argument for field '{\(field)}'") }
      out += value.pythonString
    }
    return out
  }
}

/// Python's `%` string formatting (`'%s: %d' % (a, b)`), for the `%` operator and `format` filter.
enum PercentFormat {
  static func format(_ template: String, _ values: JinjaValue) throws(JinjaError) -> String {
    var args: [JinjaValue]
    if case .array(let items) = values { args = items } else { args = [values] }
    var out = ""
    var chars = Array(template)
    var i = 0
    func fail(_ message: String) -> JinjaError { JinjaError.runtime("% formatting: \(message)") }
    while i < chars.count {
      guard chars[i] == "%" else { out.append(chars[i]); i += 1; continue }
      i += 1
      var spec = ""
      while i < chars.count, "-+ 0#.123456789".contains(chars[i]) { spec.append(chars[i]); i += 1 }
      guard i < chars.count else { throw fail("incomplete format") }
      let conversion = chars[i]
      i += 1
      if conversion == "%" { out.append("%"); continue }
      guard !args.isEmpty else { throw fail("not enough arguments for format string") }
      let value = args.removeFirst()
      out += try convert(value, conversion, spec)
    }
    chars.removeAll()
    guard args.isEmpty else { throw fail("not all arguments converted during string formatting") }
    return out
  }

  private static func convert(_ value: JinjaValue, _ conversion: Character, _ spec: String) throws(JinjaError) -> String {
    switch conversion {
    case "s": return pad(value.pythonString, spec)
    case "r": return pad(value.pythonRepr, spec)
    case "d", "i":
      guard let number = value.numeric else { throw JinjaError.runtime("%d format: a number is required") }
      switch number {
      case .int(let n): return pad(String(n), spec)
      case .double(let d): return pad(String(Int(d.rounded(.towardZero))), spec)
      }
    case "f", "F":
      guard let number = value.numeric else { throw JinjaError.runtime("%f format: a number is required") }
      let precision = spec.split(separator: ".").dropFirst().first.flatMap { Int($0) } ?? 6
      return pad(String(format: "%.\(precision)f", number.asDouble), spec.split(separator: ".").first.map(String.init) ?? "")
    default:
      throw JinjaError.unsupported("% formatting conversion '%\(conversion)'")
    }
  }

  private static func pad(_ text: String, _ spec: String) -> String {
    let widthText = spec.filter { $0.isNumber }
    let head = spec.split(separator: ".").first.map(String.init) ?? ""
    guard !head.isEmpty, let width = Int(head.filter(\.isNumber)), width > text.count, !widthText.isEmpty else { return text }
    let filler = String(repeating: " ", count: width - text.count)
    return head.contains("-") ? text + filler : filler + text
  }
}

/// Python `int(x)` / `float(x)` as Jinja's `int` and `float` filters use them.
enum Conversions {
  static func int(_ value: JinjaValue, base: Int) -> JinjaValue? {
    switch value {
    case .int(let i): return .int(i)
    case .bool(let b): return .int(b ? 1 : 0)
    case .double(let d): return d.isFinite && abs(d) < 9.2e18 ? .int(Int(d.rounded(.towardZero))) : nil
    case .string(let s):
      var text = StringMethods.strip(s, chars: nil, left: true, right: true).replacingOccurrences(of: "_", with: "")
      var negative = false
      if text.hasPrefix("-") || text.hasPrefix("+") {
        negative = text.hasPrefix("-")
        text.removeFirst()
      }
      let lowered = text.lowercased()
      let prefixes = [16: "0x", 8: "0o", 2: "0b"]
      if let prefix = prefixes[base], lowered.hasPrefix(prefix) { text = String(text.dropFirst(2)) }
      if !text.isEmpty, !text.hasPrefix("+"), !text.hasPrefix("-"), let parsed = Int(text, radix: base) {
        return .int(negative ? -parsed : parsed)
      }
      if case .double(let d)? = float(value) { return Self.int(.double(d), base: 10) }
      return nil
    default: return nil
    }
  }

  static func float(_ value: JinjaValue) -> JinjaValue? {
    switch value {
    case .int, .bool, .double: return value.numeric.map { .double($0.asDouble) }
    case .string(let s):
      let text = StringMethods.strip(s, chars: nil, left: true, right: true).lowercased()
      switch text {
      case "inf", "+inf", "infinity", "+infinity": return .double(.infinity)
      case "-inf", "-infinity": return .double(-.infinity)
      case "nan", "+nan", "-nan": return .double(.nan)
      default:
        let allowed = Set("0123456789+-.e_")
        guard !text.isEmpty, text.allSatisfy({ allowed.contains($0) }), !text.contains("__") else { return nil }
        return Double(text.replacingOccurrences(of: "_", with: "")).map(JinjaValue.double)
      }
    default: return nil
    }
  }
}
