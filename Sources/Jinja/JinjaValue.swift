import Synchronization

/// A value seen by a Jinja template: the Python objects that Hugging Face passes to chat templates
/// (JSON-like data), plus Jinja's `Undefined`, namespaces and callables.
///
/// Objects keep their key order, because `tojson` and `items` must reproduce Python dict order.
public indirect enum JinjaValue: Sendable {
  /// Jinja's default `Undefined`: prints as "", is falsy, iterates as empty, fails on most operations.
  case undefined
  /// Python `None`.
  case none
  case bool(Bool)
  case int(Int)
  case double(Double)
  case string(String)
  /// A Python list (tuples are represented as lists too).
  case array([JinjaValue])
  /// A Python dict with string keys, in insertion order.
  case object(JinjaObject)
  /// A `namespace(...)` object: mutable through `{% set ns.attr = ... %}`.
  case namespace(JinjaNamespace)
  /// A macro or a global function (`raise_exception`, `namespace`, `range`, ...).
  case callable(JinjaCallable)
}

// MARK: - Ordered object

/// An insertion-ordered string-keyed dictionary (Python `dict` semantics for string keys).
public struct JinjaObject: Sendable {
  public private(set) var keys: [String] = []
  private var storage: [String: JinjaValue] = [:]

  public init() {}

  /// Builds an object from pairs; a repeated key keeps its first position and takes the last value.
  public init(_ pairs: [(String, JinjaValue)]) {
    for (key, value) in pairs { self[key] = value }
  }

  public var count: Int { keys.count }
  public var isEmpty: Bool { keys.isEmpty }

  public subscript(key: String) -> JinjaValue? {
    get { storage[key] }
    set {
      if let newValue {
        if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
      } else if storage.removeValue(forKey: key) != nil {
        keys.removeAll { $0 == key }
      }
    }
  }

  /// Key/value pairs in insertion order.
  public var pairs: [(key: String, value: JinjaValue)] {
    keys.map { ($0, storage[$0] ?? .none) }
  }

  public func contains(_ key: String) -> Bool { storage[key] != nil }
}

// MARK: - Namespace and callables

/// The object made by `namespace(...)`. It is shared by reference like Jinja's, so that an assignment
/// inside a loop body is seen after the loop; a `Mutex` keeps it `Sendable`.
public final class JinjaNamespace: Sendable {
  private let state: Mutex<JinjaObject>

  public init(_ attributes: JinjaObject = JinjaObject()) { state = Mutex(attributes) }

  public subscript(name: String) -> JinjaValue? {
    state.withLock { $0[name] }
  }

  public func set(_ name: String, _ value: JinjaValue) {
    state.withLock { $0[name] = value }
  }

  public var attributes: JinjaObject { state.withLock { $0 } }
}

/// A function a template can call: positional and keyword arguments in, a value out.
public struct JinjaCallable: Sendable {
  public let name: String
  let body: Body

  enum Body: Sendable {
    case builtin(@Sendable (_ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue)
    case macro(Macro)
  }

  /// Wraps a Swift closure as a template global.
  public init(
    name: String,
    _ function: @escaping @Sendable (_ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue
  ) {
    self.name = name
    self.body = .builtin(function)
  }

  init(macro: Macro) {
    self.name = macro.name
    self.body = .macro(macro)
  }
}

// MARK: - Builders

extension JinjaValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
  ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
  public init(stringLiteral value: String) { self = .string(value) }
  public init(integerLiteral value: Int) { self = .int(value) }
  public init(floatLiteral value: Double) { self = .double(value) }
  public init(booleanLiteral value: Bool) { self = .bool(value) }
  public init(arrayLiteral elements: JinjaValue...) { self = .array(elements) }
  public init(dictionaryLiteral elements: (String, JinjaValue)...) { self = .object(JinjaObject(elements)) }
  public init(nilLiteral: ()) { self = .none }

  /// An object from ordered pairs.
  public static func object(_ pairs: [(String, JinjaValue)]) -> JinjaValue { .object(JinjaObject(pairs)) }
}

// MARK: - Inspection

extension JinjaValue {
  /// Python truthiness (`Undefined` is falsy).
  public var isTruthy: Bool {
    switch self {
    case .undefined, .none: return false
    case .bool(let b): return b
    case .int(let i): return i != 0
    case .double(let d): return d != 0
    case .string(let s): return !s.isEmpty
    case .array(let a): return !a.isEmpty
    case .object(let o): return !o.isEmpty
    case .namespace, .callable: return true
    }
  }

  public var isUndefined: Bool {
    if case .undefined = self { return true }
    return false
  }

  /// The Python type name, for error messages.
  var typeName: String {
    switch self {
    case .undefined: return "Undefined"
    case .none: return "NoneType"
    case .bool: return "bool"
    case .int: return "int"
    case .double: return "float"
    case .string: return "str"
    case .array: return "list"
    case .object: return "dict"
    case .namespace: return "Namespace"
    case .callable: return "function"
    }
  }

  /// The numeric value for arithmetic (bools count as ints, as in Python).
  var numeric: Numeric? {
    switch self {
    case .int(let i): return .int(i)
    case .bool(let b): return .int(b ? 1 : 0)
    case .double(let d): return .double(d)
    default: return nil
    }
  }

  enum Numeric {
    case int(Int)
    case double(Double)
    var asDouble: Double {
      switch self {
      case .int(let i): return Double(i)
      case .double(let d): return d
      }
    }
  }
}

// MARK: - Equality (Python ==)

extension JinjaValue: Equatable {
  /// Python equality: numbers compare across int/float/bool, strings by code points, containers deeply;
  /// `Undefined` equals only `Undefined`.
  public static func == (lhs: JinjaValue, rhs: JinjaValue) -> Bool {
    switch (lhs, rhs) {
    case (.undefined, .undefined), (.none, .none): return true
    case (.string(let a), .string(let b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
    case (.array(let a), .array(let b)): return a == b
    case (.object(let a), .object(let b)):
      guard a.count == b.count else { return false }
      return a.pairs.allSatisfy { pair in b[pair.key].map { $0 == pair.value } ?? false }
    case (.namespace(let a), .namespace(let b)): return a === b
    default:
      guard let a = lhs.numeric, let b = rhs.numeric else { return false }
      switch (a, b) {
      case (.int(let x), .int(let y)): return x == y
      default: return a.asDouble == b.asDouble
      }
    }
  }
}
