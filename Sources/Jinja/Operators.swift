#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// Python semantics of Jinja's operators, attribute and item access (jinja2.sandbox getattr/getitem:
// a missing key or out-of-range index gives Undefined; anything done to Undefined is an error).

enum Operators {
  /// Largest string or list a `*` may build, so a template cannot exhaust memory.
  static let maxRepeatLength = 16 << 20

  // MARK: access

  static func attribute(_ base: JinjaValue, _ name: String, describe: String) throws(JinjaError) -> JinjaValue {
    switch base {
    case .undefined: throw JinjaError.undefined("\(describe) is undefined")
    case .object(let object): return object[name] ?? .undefined
    case .namespace(let ns): return ns[name] ?? .undefined
    default: return .undefined
    }
  }

  static func item(_ base: JinjaValue, _ index: JinjaValue, describe: String) throws(JinjaError) -> JinjaValue {
    switch (base, index) {
    case (.undefined, _): throw JinjaError.undefined("\(describe) is undefined")
    case (.array(let items), _):
      guard let i = integerIndex(index), let resolved = resolve(i, count: items.count) else { return .undefined }
      return items[resolved]
    case (.string(let text), _):
      let scalars = Array(text.unicodeScalars)
      guard let i = integerIndex(index), let resolved = resolve(i, count: scalars.count) else { return .undefined }
      return .string(String(scalars[resolved]))
    case (.object(let object), .string(let key)): return object[key] ?? .undefined
    case (.namespace(let ns), .string(let key)): return ns[key] ?? .undefined
    default: return .undefined
    }
  }

  private static func integerIndex(_ value: JinjaValue) -> Int? {
    switch value {
    case .int(let i): return i
    case .bool(let b): return b ? 1 : 0
    default: return nil
    }
  }

  private static func resolve(_ index: Int, count: Int) -> Int? {
    let i = index < 0 ? index + count : index
    return i >= 0 && i < count ? i : nil
  }

  /// Python slicing `seq[start:stop:step]` for lists and strings.
  static func slice(_ base: JinjaValue, start: JinjaValue?, stop: JinjaValue?, step: JinjaValue?) throws(JinjaError) -> JinjaValue {
    func bound(_ value: JinjaValue?) throws(JinjaError) -> Int? {
      guard let value, !(value == .none) else { return nil }
      guard let i = integerIndex(value) else { throw JinjaError.runtime("slice indices must be integers or None") }
      return i
    }
    let stepValue = try bound(step) ?? 1
    guard stepValue != 0 else { throw JinjaError.runtime("slice step cannot be zero") }
    let (startValue, stopValue) = (try bound(start), try bound(stop))
    switch base {
    case .array(let items):
      return .array(sliceIndices(items.count, startValue, stopValue, stepValue).map { items[$0] })
    case .string(let text):
      let scalars = Array(text.unicodeScalars)
      var out = String.UnicodeScalarView()
      for i in sliceIndices(scalars.count, startValue, stopValue, stepValue) { out.append(scalars[i]) }
      return .string(String(out))
    case .undefined: throw JinjaError.undefined("cannot slice an undefined value")
    default: throw JinjaError.runtime("'\(base.typeName)' object is not subscriptable")
    }
  }

  /// The indices `range(*slice(start, stop, step).indices(count))` visits.
  static func sliceIndices(_ count: Int, _ start: Int?, _ stop: Int?, _ step: Int) -> [Int] {
    func clamp(_ value: Int?, _ defaultValue: Int, low: Int, high: Int) -> Int {
      guard var v = value else { return defaultValue }
      if v < 0 { v += count }
      return min(max(v, low), high)
    }
    var indices: [Int] = []
    if step > 0 {
      var i = clamp(start, 0, low: 0, high: count)
      let end = clamp(stop, count, low: 0, high: count)
      while i < end { indices.append(i); i += step }
    } else {
      var i = clamp(start, count - 1, low: -1, high: count - 1)
      let end = clamp(stop, -1, low: -1, high: count - 1)
      while i > end { indices.append(i); i += step }
    }
    return indices
  }

  /// Items of an iterable: list items, dict keys, string characters (code points); Undefined is empty.
  static func iterate(_ value: JinjaValue, what: String) throws(JinjaError) -> [JinjaValue] {
    switch value {
    case .array(let items): return items
    case .object(let object): return object.keys.map(JinjaValue.string)
    case .string(let text): return text.unicodeScalars.map { .string(String($0)) }
    case .undefined: return []
    default: throw JinjaError.runtime("\(what): '\(value.typeName)' object is not iterable")
    }
  }

  // MARK: unary and binary

  static func unary(_ op: UnaryOp, _ value: JinjaValue, describe: String) throws(JinjaError) -> JinjaValue {
    if op == .not { return .bool(!value.isTruthy) }
    if value.isUndefined { throw JinjaError.undefined("\(describe) is undefined") }
    switch value.numeric {
    case .int(let i)?:
      if op == .plus { return .int(i) }
      guard i != Int.min else { throw JinjaError.runtime("integer overflow") }
      return .int(-i)
    case .double(let d)?: return .double(op == .plus ? d : -d)
    case nil: throw JinjaError.runtime("bad operand type for unary \(op == .plus ? "+" : "-"): '\(value.typeName)'")
    }
  }

  static func binary(_ op: BinaryOp, _ left: JinjaValue, _ right: JinjaValue) throws(JinjaError) -> JinjaValue {
    if op == .concat { return .string(left.pythonString + right.pythonString) }
    if left.isUndefined || right.isUndefined {
      throw JinjaError.undefined("operand of '\(op.rawValue)' is undefined")
    }
    switch (op, left, right) {
    case (.add, .string(let a), .string(let b)): return .string(a + b)
    case (.add, .array(let a), .array(let b)): return .array(a + b)
    case (.multiply, .string, _), (.multiply, .array, _): return try repeated(left, right)
    case (.multiply, _, .string), (.multiply, _, .array): return try repeated(right, left)
    case (.modulo, .string(let format), _): return .string(try PercentFormat.format(format, right))
    default: break
    }
    guard let a = left.numeric, let b = right.numeric else {
      throw JinjaError.runtime(
        "unsupported operand type(s) for \(op.rawValue): '\(left.typeName)' and '\(right.typeName)'")
    }
    if case .int(let x) = a, case .int(let y) = b { return try integerArithmetic(op, x, y) }
    return try floatArithmetic(op, a.asDouble, b.asDouble)
  }

  private static func repeated(_ sequence: JinjaValue, _ times: JinjaValue) throws(JinjaError) -> JinjaValue {
    guard case .int(let n)? = times.numeric else {
      throw JinjaError.runtime("can't multiply sequence by non-int of type '\(times.typeName)'")
    }
    let count = max(n, 0)
    switch sequence {
    case .string(let s):
      guard s.utf8.count * count <= maxRepeatLength else { throw JinjaError.runtime("repeated string too long") }
      return .string(String(repeating: s, count: count))
    case .array(let items):
      guard items.count * count <= maxRepeatLength else { throw JinjaError.runtime("repeated list too long") }
      return .array(Array([[JinjaValue]](repeating: items, count: count).joined()))
    default: return .undefined
    }
  }

  private static func integerArithmetic(_ op: BinaryOp, _ x: Int, _ y: Int) throws(JinjaError) -> JinjaValue {
    func checked(_ result: (partialValue: Int, overflow: Bool)) throws(JinjaError) -> JinjaValue {
      if result.overflow { throw JinjaError.runtime("integer overflow in '\(op.rawValue)'") }
      return .int(result.partialValue)
    }
    switch op {
    case .add: return try checked(x.addingReportingOverflow(y))
    case .subtract: return try checked(x.subtractingReportingOverflow(y))
    case .multiply: return try checked(x.multipliedReportingOverflow(by: y))
    case .divide:
      guard y != 0 else { throw JinjaError.runtime("division by zero") }
      return .double(Double(x) / Double(y))
    case .floorDivide, .modulo:
      guard y != 0 else { throw JinjaError.runtime("integer division or modulo by zero") }
      guard !(x == Int.min && y == -1) else { throw JinjaError.runtime("integer overflow") }
      var quotient = x / y
      var remainder = x % y
      if remainder != 0 && ((remainder < 0) != (y < 0)) {
        quotient -= 1
        remainder += y
      }
      return .int(op == .floorDivide ? quotient : remainder)
    case .power:
      if y < 0 { return .double(pow(Double(x), Double(y))) }
      var result = 1
      var base = x
      var exponent = y
      while exponent > 0 {
        if exponent & 1 == 1 {
          let (r, o) = result.multipliedReportingOverflow(by: base)
          if o { throw JinjaError.runtime("integer overflow in '**'") }
          result = r
        }
        exponent >>= 1
        if exponent > 0 {
          let (b, o) = base.multipliedReportingOverflow(by: base)
          if o { throw JinjaError.runtime("integer overflow in '**'") }
          base = b
        }
      }
      return .int(result)
    case .concat: return .undefined
    }
  }

  private static func floatArithmetic(_ op: BinaryOp, _ x: Double, _ y: Double) throws(JinjaError) -> JinjaValue {
    switch op {
    case .add: return .double(x + y)
    case .subtract: return .double(x - y)
    case .multiply: return .double(x * y)
    case .divide:
      guard y != 0 else { throw JinjaError.runtime("float division by zero") }
      return .double(x / y)
    case .floorDivide, .modulo:
      guard y != 0 else { throw JinjaError.runtime("float modulo by zero") }
      var remainder = fmod(x, y)
      if remainder != 0 && ((remainder < 0) != (y < 0)) { remainder += y }
      return .double(op == .modulo ? remainder : ((x - remainder) / y).rounded())
    case .power: return .double(pow(x, y))
    case .concat: return .undefined
    }
  }

  // MARK: comparison

  static func compare(_ op: CompareOp, _ left: JinjaValue, _ right: JinjaValue) throws(JinjaError) -> Bool {
    switch op {
    case .equal: return left == right
    case .notEqual: return !(left == right)
    case .isIn: return try contains(right, left)
    case .notIn: return !(try contains(right, left))
    case .less: return try order(left, right) < 0
    case .lessEqual: return try order(left, right) <= 0
    case .greater: return try order(left, right) > 0
    case .greaterEqual: return try order(left, right) >= 0
    }
  }

  /// Python ordering: numbers with numbers, strings by code point, lists lexicographically.
  static func order(_ left: JinjaValue, _ right: JinjaValue) throws(JinjaError) -> Int {
    switch (left, right) {
    case (.string(let a), .string(let b)):
      if a.unicodeScalars.elementsEqual(b.unicodeScalars) { return 0 }
      return a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) ? -1 : 1
    case (.array(let a), .array(let b)):
      for (x, y) in zip(a, b) where !(x == y) { return try order(x, y) }
      return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    default:
      if left.isUndefined || right.isUndefined { throw JinjaError.undefined("cannot compare an undefined value") }
      guard let a = left.numeric, let b = right.numeric else {
        throw JinjaError.runtime("'<' not supported between instances of '\(left.typeName)' and '\(right.typeName)'")
      }
      if case .int(let x) = a, case .int(let y) = b { return x == y ? 0 : (x < y ? -1 : 1) }
      let (x, y) = (a.asDouble, b.asDouble)
      return x == y ? 0 : (x < y ? -1 : 1)
    }
  }

  /// Python `needle in container`.
  static func contains(_ container: JinjaValue, _ needle: JinjaValue) throws(JinjaError) -> Bool {
    switch container {
    case .string(let text):
      guard case .string(let part) = needle else {
        throw JinjaError.runtime("'in <string>' requires string as left operand, not \(needle.typeName)")
      }
      return part.isEmpty || text.unicodeScalars.firstRange(of: part.unicodeScalars) != nil
    case .array(let items): return items.contains { $0 == needle }
    case .object(let object):
      if case .string(let key) = needle { return object.contains(key) }
      return false
    case .undefined: return false
    default: throw JinjaError.runtime("argument of type '\(container.typeName)' is not iterable")
    }
  }
}
