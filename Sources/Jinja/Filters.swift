#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// Jinja's built-in filters as jinja2.filters defines them, with Hugging Face's `tojson` override
// (`json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`).

enum Filters {
  static func apply(
    _ name: String, to value: JinjaValue, _ args: CallArguments, renderer: Renderer
  ) throws(JinjaError) -> JinjaValue {
    if let result = try strings(name, value, args) { return result }
    if let result = try sequences(name, value, args, renderer) { return result }
    if let result = try numbers(name, value, args) { return result }
    throw JinjaError.unsupported("unknown filter '\(name)'")
  }

  // MARK: string filters

  private static func strings(_ name: String, _ value: JinjaValue, _ args: CallArguments) throws(JinjaError) -> JinjaValue? {
    let text = value.pythonString
    switch name {
    case "string": return .string(text)
    case "safe": return value
    case "trim":
      return .string(StringMethods.strip(text, chars: try optionalString(args.argument(0, "chars")), left: true, right: true))
    case "lower": return .string(text.lowercased())
    case "upper": return .string(text.uppercased())
    case "capitalize": return .string(StringMethods.capitalize(text))
    case "title": return .string(jinjaTitle(text))
    case "replace":
      guard case .string(let old)? = args.argument(0, "old"), case .string(let new)? = args.argument(1, "new") else {
        throw JinjaError.runtime("replace filter needs two string arguments")
      }
      let count = try optionalInt(args.argument(2, "count")) ?? -1
      return .string(StringMethods.replace(text, old, new, count: count))
    case "escape", "e", "forceescape": return .string(htmlEscape(text))
    case "format": return .string(try PercentFormat.format(text, .array(args.positional)))
    case "indent": return .string(try indent(text, args))
    case "tojson":
      var options = JSONDumpOptions()
      options.ensureASCII = args.argument(0, "ensure_ascii")?.isTruthy ?? false
      switch args.argument(1, "indent") {
      case .int(let n)?: options.indent = String(repeating: " ", count: max(0, min(n, 64)))
      case .string(let s)?: options.indent = s
      default: break
      }
      if case .array(let separators)? = args.argument(2, "separators"), separators.count == 2 {
        options.itemSeparator = separators[0].pythonString
        options.keySeparator = separators[1].pythonString
      }
      options.sortKeys = args.argument(3, "sort_keys")?.isTruthy ?? false
      return .string(try PythonJSON.dumps(value, options))
    default: return nil
    }
  }

  /// Jinja's `title` filter: capitalizes after spaces, `-`, `(`, `{`, `[` and `<`.
  private static func jinjaTitle(_ text: String) -> String {
    var out = ""
    var atWordStart = true
    for scalar in text.unicodeScalars {
      let isSeparator = PythonString.isSpace(scalar) || "-({[<".unicodeScalars.contains(scalar)
      if isSeparator {
        out.unicodeScalars.append(scalar)
        atWordStart = true
      } else {
        out += atWordStart ? String(scalar).uppercased() : String(scalar).lowercased()
        atWordStart = false
      }
    }
    return out
  }

  private static func htmlEscape(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&#34;"
      case "'": out += "&#39;"
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out
  }

  /// Jinja 3 `indent(width=4, first=False, blank=False)`.
  private static func indent(_ text: String, _ args: CallArguments) throws(JinjaError) -> String {
    var prefix = "    "
    switch args.argument(0, "width") {
    case .int(let n)?: prefix = String(repeating: " ", count: max(0, min(n, 1024)))
    case .string(let s)?: prefix = s
    default: break
    }
    let first = args.argument(1, "first")?.isTruthy ?? false
    let blank = args.argument(2, "blank")?.isTruthy ?? false
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    var trailing = ""
    if text.hasSuffix("\n") {
      lines.removeLast()
      trailing = "\n"
    }
    guard !lines.isEmpty else { return (first ? prefix : "") + trailing }
    var out = (first && (blank || !lines[0].isEmpty) ? prefix : "") + lines[0]
    for line in lines.dropFirst() {
      out += "\n" + (blank || !line.allSatisfy(\.isWhitespace) ? prefix + line : line)
    }
    return out + trailing
  }

  // MARK: sequence filters

  private static func sequences(
    _ name: String, _ value: JinjaValue, _ args: CallArguments, _ renderer: Renderer
  ) throws(JinjaError) -> JinjaValue? {
    switch name {
    case "length", "count":
      switch value {
      case .string(let s): return .int(s.unicodeScalars.count)
      case .array(let a): return .int(a.count)
      case .object(let o): return .int(o.count)
      case .undefined: return .int(0)
      default: throw JinjaError.runtime("object of type '\(value.typeName)' has no len()")
      }
    case "first": return try Operators.iterate(value, what: "first").first ?? .undefined
    case "last": return try Operators.iterate(value, what: "last").last ?? .undefined
    case "list": return .array(try Operators.iterate(value, what: "list"))
    case "reverse":
      if case .string(let s) = value { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
      return .array(try Operators.iterate(value, what: "reverse").reversed())
    case "join":
      let separator = args.argument(0, "d")?.pythonString ?? ""
      var items = try Operators.iterate(value, what: "join")
      if let attribute = args.argument(1, "attribute") {
        items = try items.map { (item) throws(JinjaError) in try itemAttribute(item, attribute) }
      }
      return .string(items.map(\.pythonString).joined(separator: separator))
    case "default", "d":
      let fallback = args.argument(0, "default_value") ?? .string("")
      let boolean = args.argument(1, "boolean")?.isTruthy ?? false
      return value.isUndefined || (boolean && !value.isTruthy) ? fallback : value
    case "items":
      switch value {
      case .undefined: return .array([])
      case .object(let o): return .array(o.pairs.map { .array([.string($0.key), $0.value]) })
      default: throw JinjaError.runtime("items: can only get item pairs from a mapping, not '\(value.typeName)'")
      }
    case "map": return try map(value, args, renderer)
    case "select", "reject", "selectattr", "rejectattr":
      return try select(name, value, args, renderer)
    case "unique":
      var seen: [JinjaValue] = []
      var seenKeys: [JinjaValue] = []
      for item in try Operators.iterate(value, what: "unique") {
        let key = try sortKey(item, args, attributeIndex: 1, caseIndex: 0)
        if !seenKeys.contains(key) {
          seen.append(item)
          seenKeys.append(key)
        }
      }
      return .array(seen)
    case "sort": return try sort(value, args)
    case "min", "max":
      let items = try Operators.iterate(value, what: name)
      var best: JinjaValue? = nil
      for item in items {
        guard let current = best else { best = item; continue }
        let order = try Operators.order(
          try sortKey(item, args, attributeIndex: 1, caseIndex: 0),
          try sortKey(current, args, attributeIndex: 1, caseIndex: 0))
        if name == "min" ? order < 0 : order > 0 { best = item }
      }
      return best ?? .undefined
    case "sum":
      var total = args.argument(1, "start") ?? .int(0)
      for item in try Operators.iterate(value, what: "sum") {
        let term = try args.argument(0, "attribute").map { (a) throws(JinjaError) in try itemAttribute(item, a) } ?? item
        total = try Operators.binary(.add, total, term)
      }
      return total
    case "attr":
      guard case .string(let attribute)? = args.argument(0, "name") else { return .undefined }
      if case .namespace(let ns) = value { return ns[attribute] ?? .undefined }
      return .undefined
    default: return nil
    }
  }

  /// `item[attribute]` with Jinja's dotted paths (`"a.b"`, integer parts index lists).
  static func itemAttribute(_ item: JinjaValue, _ attribute: JinjaValue) throws(JinjaError) -> JinjaValue {
    guard case .string(let path) = attribute else {
      return try Operators.item(item, attribute, describe: "item")
    }
    var current = item
    for part in path.split(separator: ".", omittingEmptySubsequences: false) {
      let key: JinjaValue = Int(part).map(JinjaValue.int) ?? .string(String(part))
      if current.isUndefined { return .undefined }
      current = try Operators.item(current, key, describe: "item")
    }
    return current
  }

  private static func map(_ value: JinjaValue, _ args: CallArguments, _ renderer: Renderer) throws(JinjaError) -> JinjaValue {
    let items = try Operators.iterate(value, what: "map")
    if let attribute = args.keywordValue("attribute") {
      let fallback = args.keywordValue("default")
      return .array(try items.map { (item) throws(JinjaError) in
        let result = try itemAttribute(item, attribute)
        return result.isUndefined ? (fallback ?? result) : result
      })
    }
    guard case .string(let filterName)? = args.positional.first else {
      throw JinjaError.runtime("map requires a filter name or attribute=")
    }
    let rest = CallArguments(positional: Array(args.positional.dropFirst()), keyword: args.keyword)
    return .array(try items.map { (item) throws(JinjaError) in try apply(filterName, to: item, rest, renderer: renderer) })
  }

  private static func select(
    _ name: String, _ value: JinjaValue, _ args: CallArguments, _ renderer: Renderer
  ) throws(JinjaError) -> JinjaValue {
    let byAttribute = name.hasSuffix("attr")
    let keep = name.hasPrefix("select")
    var rest = args.positional
    var attribute: JinjaValue? = nil
    if byAttribute {
      guard !rest.isEmpty else { throw JinjaError.runtime("\(name) requires an attribute name") }
      attribute = rest.removeFirst()
    }
    let testName: String? = rest.isEmpty ? nil : rest.removeFirst().pythonString
    var kept: [JinjaValue] = []
    for item in try Operators.iterate(value, what: name) {
      let subject = try attribute.map { (a) throws(JinjaError) in try itemAttribute(item, a) } ?? item
      let passed = try testName.map { (t) throws(JinjaError) in try Tests.apply(t, to: subject, rest, renderer: renderer) }
        ?? subject.isTruthy
      if passed == keep { kept.append(item) }
    }
    return .array(kept)
  }

  /// The key `sort`, `unique`, `min` and `max` compare: the attribute if given, lowercased strings
  /// unless `case_sensitive`.
  private static func sortKey(
    _ item: JinjaValue, _ args: CallArguments, attributeIndex: Int, caseIndex: Int
  ) throws(JinjaError) -> JinjaValue {
    var key = item
    if let attribute = args.argument(attributeIndex, "attribute"), !(attribute == .none) {
      key = try itemAttribute(item, attribute)
    }
    let caseSensitive = args.argument(caseIndex, "case_sensitive")?.isTruthy ?? false
    if !caseSensitive, case .string(let s) = key { key = .string(s.lowercased()) }
    return key
  }

  private static func sort(_ value: JinjaValue, _ args: CallArguments) throws(JinjaError) -> JinjaValue {
    let reverse = args.argument(0, "reverse")?.isTruthy ?? false
    var keyed: [(key: JinjaValue, item: JinjaValue)] = []
    for item in try Operators.iterate(value, what: "sort") {
      keyed.append((try sortKey(item, args, attributeIndex: 2, caseIndex: 1), item))
    }
    // Insertion sort with a throwing comparison: stable like Python's sort, and lists are short.
    var sorted: [(key: JinjaValue, item: JinjaValue)] = []
    for entry in keyed {
      var position = sorted.count
      while position > 0 {
        let order = try Operators.order(sorted[position - 1].key, entry.key)
        if reverse ? order >= 0 : order <= 0 { break }
        position -= 1
      }
      sorted.insert(entry, at: position)
    }
    return .array(sorted.map(\.item))
  }

  // MARK: number filters

  private static func numbers(_ name: String, _ value: JinjaValue, _ args: CallArguments) throws(JinjaError) -> JinjaValue? {
    switch name {
    case "int":
      let fallback = args.argument(0, "default") ?? .int(0)
      let base = try optionalInt(args.argument(1, "base")) ?? 10
      return Conversions.int(value, base: base) ?? fallback
    case "float":
      return Conversions.float(value) ?? args.argument(0, "default") ?? .double(0)
    case "abs":
      switch value.numeric {
      case .int(let i)?: return i == Int.min ? .double(-Double(i)) : .int(abs(i))
      case .double(let d)?: return .double(abs(d))
      case nil: throw JinjaError.runtime("bad operand type for abs(): '\(value.typeName)'")
      }
    case "round":
      let precision = try optionalInt(args.argument(0, "precision")) ?? 0
      let method = args.argument(1, "method")?.pythonString ?? "common"
      guard let number = value.numeric else { throw JinjaError.runtime("round: '\(value.typeName)' is not a number") }
      if case .int(let i) = number, method == "common" { return .int(i) }
      let scale = pow(10.0, Double(precision))
      let rule: FloatingPointRoundingRule = method == "ceil" ? .up : method == "floor" ? .down : .toNearestOrEven
      return .double((number.asDouble * scale).rounded(rule) / scale)
    default: return nil
    }
  }

  static func optionalString(_ value: JinjaValue?) throws(JinjaError) -> String? {
    switch value {
    case nil, .none?, .undefined?: return nil
    case .string(let s)?: return s
    case let other?: throw JinjaError.runtime("expected a string, got '\(other.typeName)'")
    }
  }

  static func optionalInt(_ value: JinjaValue?) throws(JinjaError) -> Int? {
    switch value {
    case nil, .none?, .undefined?: return nil
    case .int(let i)?: return i
    case .bool(let b)?: return b ? 1 : 0
    case let other?: throw JinjaError.runtime("expected an integer, got '\(other.typeName)'")
    }
  }
}
