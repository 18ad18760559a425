// Python methods that templates call on values: `str` (strip, split, startswith, ...), `dict`
// (items, get, keys, values) and `list` (index, count). Mutating methods are refused, as
// Hugging Face's ImmutableSandboxedEnvironment refuses them.

enum Methods {
  static func call(
    _ name: String, on base: JinjaValue, _ args: CallArguments, describe: String
  ) throws(JinjaError) -> JinjaValue {
    switch base {
    case .string(let text):
      if let result = try stringMethod(name, text, args) { return result }
    case .object(let object):
      if let result = try dictMethod(name, object, args) { return result }
    case .array(let items):
      if let result = try listMethod(name, items, args) { return result }
    case .undefined:
      throw JinjaError.undefined("\(describe) is undefined")
    default: break
    }
    throw JinjaError.unsupported("'\(base.typeName)' object has no supported method '\(name)'")
  }

  private static func stringArgument(_ args: CallArguments, _ index: Int, _ name: String) throws(JinjaError) -> String {
    guard case .string(let s)? = args.argument(index, name) else {
      throw JinjaError.runtime("argument '\(name)' must be a string")
    }
    return s
  }

  private static func stringMethod(_ name: String, _ text: String, _ args: CallArguments) throws(JinjaError) -> JinjaValue? {
    switch name {
    case "strip", "lstrip", "rstrip":
      let chars = try Filters.optionalString(args.argument(0, "chars"))
      return .string(StringMethods.strip(text, chars: chars, left: name != "rstrip", right: name != "lstrip"))
    case "split", "rsplit":
      let separator = try Filters.optionalString(args.argument(0, "sep"))
      let maxSplit = try Filters.optionalInt(args.argument(1, "maxsplit")) ?? -1
      if separator == "" { throw JinjaError.runtime("split: empty separator") }
      let parts = StringMethods.split(text, separator: separator, maxSplit: maxSplit, fromRight: name == "rsplit")
      return .array(parts.map(JinjaValue.string))
    case "splitlines":
      guard !text.isEmpty else { return .array([]) }
      let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { JinjaValue.string(String($0)) }
      return .array(Array(lines.dropLast(text.hasSuffix("\n") ? 1 : 0)))
    case "startswith", "endswith":
      let prefixes: [String]
      switch args.argument(0, "prefix") {
      case .string(let s)?: prefixes = [s]
      case .array(let items)?: prefixes = items.map(\.pythonString)
      default: throw JinjaError.runtime("\(name) needs a string or tuple argument")
      }
      let scalars = text.unicodeScalars
      return .bool(prefixes.contains { p in
        name == "startswith" ? scalars.starts(with: p.unicodeScalars)
          : scalars.reversed().starts(with: p.unicodeScalars.reversed())
      })
    case "replace":
      let count = try Filters.optionalInt(args.argument(2, "count")) ?? -1
      return .string(StringMethods.replace(
        text, try stringArgument(args, 0, "old"), try stringArgument(args, 1, "new"), count: count))
    case "upper": return .string(text.uppercased())
    case "lower": return .string(text.lowercased())
    case "title": return .string(StringMethods.pythonTitle(text))
    case "capitalize": return .string(StringMethods.capitalize(text))
    case "find", "rfind", "count", "index", "rindex":
      return try StringMethods.search(name, text, try stringArgument(args, 0, "sub"))
    case "join":
      guard let items = args.argument(0, "iterable") else { throw JinjaError.runtime("join needs an iterable") }
      var parts: [String] = []
      for item in try Operators.iterate(items, what: "join") {
        guard case .string(let s) = item else { throw JinjaError.runtime("join: expected str instance, \(item.typeName) found") }
        parts.append(s)
      }
      return .string(parts.joined(separator: text))
    case "removeprefix", "removesuffix":
      let affix = try stringArgument(args, 0, name == "removeprefix" ? "prefix" : "suffix")
      let scalars = Array(text.unicodeScalars)
      let a = Array(affix.unicodeScalars)
      if name == "removeprefix", scalars.starts(with: a) { return .string(String(String.UnicodeScalarView(scalars.dropFirst(a.count)))) }
      if name == "removesuffix", !a.isEmpty, scalars.reversed().starts(with: a.reversed()) {
        return .string(String(String.UnicodeScalarView(scalars.dropLast(a.count))))
      }
      return .string(text)
    case "isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower":
      return .bool(StringMethods.classify(name, text))
    case "format": return .string(try StringMethods.format(text, args))
    default: return nil
    }
  }

  private static func dictMethod(_ name: String, _ object: JinjaObject, _ args: CallArguments) throws(JinjaError) -> JinjaValue? {
    switch name {
    case "items": return .array(object.pairs.map { .array([.string($0.key), $0.value]) })
    case "keys": return .array(object.keys.map(JinjaValue.string))
    case "values": return .array(object.pairs.map(\.value))
    case "get":
      guard let key = args.argument(0, "key") else { throw JinjaError.runtime("get needs a key") }
      let fallback = args.argument(1, "default") ?? .none
      guard case .string(let k) = key else { return fallback }
      return object[k] ?? fallback
    case "copy": return .object(object)
    case "update", "pop", "popitem", "setdefault", "clear":
      throw JinjaError.runtime("access to attribute '\(name)' of 'dict' object is unsafe (templates are immutable)")
    default: return nil
    }
  }

  private static func listMethod(_ name: String, _ items: [JinjaValue], _ args: CallArguments) throws(JinjaError) -> JinjaValue? {
    switch name {
    case "index":
      guard let needle = args.positional.first, let i = items.firstIndex(where: { $0 == needle }) else {
        throw JinjaError.runtime("list.index(x): x not in list")
      }
      return .int(i)
    case "count":
      guard let needle = args.positional.first else { throw JinjaError.runtime("count needs an argument") }
      return .int(items.filter { $0 == needle }.count)
    case "copy": return .array(items)
    case "append", "extend", "insert", "pop", "remove", "sort", "reverse", "clear":
      throw JinjaError.runtime("access to attribute '\(name)' of 'list' object is unsafe (templates are immutable)")
    default: return nil
    }
  }
}
