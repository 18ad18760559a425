// Jinja's built-in tests (`x is defined`, `x is string`, ...), as jinja2.tests defines them.

enum Tests {
  static func apply(
    _ name: String, to value: JinjaValue, _ args: [JinjaValue], renderer: Renderer
  ) throws(JinjaError) -> Bool {
    func argument() throws(JinjaError) -> JinjaValue {
      guard let first = args.first else { throw JinjaError.runtime("test '\(name)' needs an argument") }
      return first
    }
    switch name {
    case "defined": return !value.isUndefined
    case "undefined": return value.isUndefined
    case "none": if case .none = value { return true } else { return false }
    case "boolean": if case .bool = value { return true } else { return false }
    case "true": if case .bool(true) = value { return true } else { return false }
    case "false": if case .bool(false) = value { return true } else { return false }
    case "integer": if case .int = value { return true } else { return false }
    case "float": if case .double = value { return true } else { return false }
    case "number": return value.numeric != nil
    case "string": if case .string = value { return true } else { return false }
    case "mapping": if case .object = value { return true } else { return false }
    case "iterable", "sequence":
      switch value {
      case .string, .array, .object, .undefined: return true
      default: return false
      }
    case "callable": if case .callable = value { return true } else { return false }
    case "odd", "even":
      guard case .int(let i)? = value.numeric else { throw JinjaError.runtime("test '\(name)' needs an integer") }
      return (i % 2 != 0) == (name == "odd")
    case "divisibleby":
      guard case .int(let i)? = value.numeric, case .int(let d)? = try argument().numeric, d != 0 else {
        throw JinjaError.runtime("divisibleby needs integers and a non-zero divisor")
      }
      return i % d == 0
    case "lower", "upper":
      let text = value.pythonString
      let converted = name == "lower" ? text.lowercased() : text.uppercased()
      let hasCased = text.unicodeScalars.contains { $0.properties.isCased }
      return hasCased && converted == text
    case "sameas": return sameAs(value, try argument())
    case "escaped": return false
    case "in": return try Operators.contains(try argument(), value)
    default:
      if let op = comparison(name) { return try Operators.compare(op, value, try argument()) }
      throw JinjaError.unsupported("unknown test '\(name)'")
    }
  }

  private static func comparison(_ name: String) -> CompareOp? {
    switch name {
    case "eq", "equalto", "==": return .equal
    case "ne", "!=": return .notEqual
    case "lt", "lessthan", "<": return .less
    case "le", "<=": return .lessEqual
    case "gt", "greaterthan", ">": return .greater
    case "ge", ">=": return .greaterEqual
    default: return nil
    }
  }

  /// Python `is`: identity for None and booleans, value identity for numbers and strings (close
  /// enough for templates, which use it on constants).
  private static func sameAs(_ a: JinjaValue, _ b: JinjaValue) -> Bool {
    switch (a, b) {
    case (.none, .none), (.undefined, .undefined): return true
    case (.bool(let x), .bool(let y)): return x == y
    case (.int(let x), .int(let y)): return x == y
    case (.string(let x), .string(let y)): return x == y
    case (.namespace(let x), .namespace(let y)): return x === y
    default: return false
    }
  }
}
