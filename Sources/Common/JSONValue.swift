import Foundation

/// A JSON value shared by the plain-Swift modules (datasets, rewards, configs, metrics).
///
/// Integers and floating-point numbers are kept apart (`.int` vs `.double`) so that a ground truth
/// written as `3` is not confused with `3.0` when a reward compares strings, and so that writing a
/// value back produces what was read.
public enum JSONValue: Sendable, Hashable, Codable, CustomStringConvertible {
  case null
  case bool(Bool)
  case int(Int)
  case double(Double)
  case string(String)
  case array([JSONValue])
  case object([String: JSONValue])

  public init(from decoder: Decoder) throws {
    let container = try decoder.singleValueContainer()
    if container.decodeNil() {
      self = .null
    } else if let value = try? container.decode(Bool.self) {
      self = .bool(value)
    } else if let value = try? container.decode(Int.self) {
      self = .int(value)
    } else if let value = try? container.decode(Double.self) {
      self = .double(value)
    } else if let value = try? container.decode(String.self) {
      self = .string(value)
    } else if let value = try? container.decode([JSONValue].self) {
      self = .array(value)
    } else if let value = try? container.decode([String: JSONValue].self) {
      self = .object(value)
    } else {
      throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a JSON value")
    }
  }

  public func encode(to encoder: Encoder) throws {
    var container = encoder.singleValueContainer()
    switch self {
    case .null: try container.encodeNil()
    case .bool(let value): try container.encode(value)
    case .int(let value): try container.encode(value)
    case .double(let value): try container.encode(value)
    case .string(let value): try container.encode(value)
    case .array(let value): try container.encode(value)
    case .object(let value): try container.encode(value)
    }
  }

  /// Parses one JSON document.
  public static func parse(_ data: Data) throws -> JSONValue {
    try JSONDecoder().decode(JSONValue.self, from: data)
  }

  /// Parses one JSON document from text.
  public static func parse(_ text: String) throws -> JSONValue {
    try parse(Data(text.utf8))
  }

  /// Compact JSON text with sorted keys (deterministic).
  public var jsonString: String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    guard let data = try? encoder.encode(self) else { return "null" }
    return String(decoding: data, as: UTF8.self)
  }

  public var description: String { jsonString }

  // MARK: Accessors (nil when the value has another type)

  public var isNull: Bool { if case .null = self { return true } else { return false } }
  public var boolValue: Bool? { if case .bool(let v) = self { return v } else { return nil } }
  public var stringValue: String? { if case .string(let v) = self { return v } else { return nil } }
  public var arrayValue: [JSONValue]? { if case .array(let v) = self { return v } else { return nil } }
  public var objectValue: [String: JSONValue]? { if case .object(let v) = self { return v } else { return nil } }

  /// The integer value of `.int`, or of a `.double` with no fractional part.
  public var intValue: Int? {
    switch self {
    case .int(let v): return v
    case .double(let v) where v.isFinite && v.rounded() == v && abs(v) < 9.0e15: return Int(v)
    default: return nil
    }
  }

  /// The numeric value of `.int` or `.double`.
  public var doubleValue: Double? {
    switch self {
    case .int(let v): return Double(v)
    case .double(let v): return v
    default: return nil
    }
  }

  /// Member of an object (nil for other kinds or a missing key).
  public subscript(key: String) -> JSONValue? { objectValue?[key] }
}
