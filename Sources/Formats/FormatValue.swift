import Foundation

/// One decoded cell of a Parquet or Arrow column.
///
/// Integers of every width (and dates, times, timestamps: their stored integer) are `.int`;
/// `FLOAT`, `DOUBLE` and half floats are `.double`; UTF-8 annotated byte arrays are `.string`,
/// other byte arrays (including fixed-length ones) are `.bytes`. Structs are `.record` with the
/// schema's field order kept; lists and maps are `.list` (a map is a list of `key`/`value` records).
/// Not `indirect`: the recursive cases hold arrays, which are already references, so scalars are
/// stored inline instead of in one heap box each.
public enum FormatValue: Sendable, Equatable, CustomStringConvertible {
  case null
  case bool(Bool)
  case int(Int64)
  case double(Double)
  case string(String)
  case bytes([UInt8])
  case list([FormatValue])
  case record([(String, FormatValue)])

  /// Structural equality; records compare field names and values in order, and NaN equals NaN so
  /// that decoded columns compare equal to their reference values.
  public static func == (lhs: FormatValue, rhs: FormatValue) -> Bool {
    switch (lhs, rhs) {
    case (.null, .null): return true
    case (.bool(let a), .bool(let b)): return a == b
    case (.int(let a), .int(let b)): return a == b
    case (.double(let a), .double(let b)): return a == b || (a.isNaN && b.isNaN)
    case (.string(let a), .string(let b)): return a == b
    case (.bytes(let a), .bytes(let b)): return a == b
    case (.list(let a), .list(let b)): return a == b
    case (.record(let a), .record(let b)):
      return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    default: return false
    }
  }

  /// The field `name` of a record, `nil` for other values or a missing field.
  public subscript(field name: String) -> FormatValue? {
    guard case .record(let fields) = self else { return nil }
    return fields.first { $0.0 == name }?.1
  }

  // Payload accessors: the value when the case matches, nil (false for `isNull`) otherwise.
  public var isNull: Bool { if case .null = self { return true } else { return false } }
  public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
  public var bytesValue: [UInt8]? { if case .bytes(let b) = self { return b } else { return nil } }
  public var intValue: Int64? { if case .int(let i) = self { return i } else { return nil } }
  public var doubleValue: Double? { if case .double(let d) = self { return d } else { return nil } }
  public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
  public var listValue: [FormatValue]? { if case .list(let l) = self { return l } else { return nil } }

  public var description: String {
    switch self {
    case .null: return "null"
    case .bool(let b): return String(b)
    case .int(let i): return String(i)
    case .double(let d): return String(d)
    case .string(let s): return String(reflecting: s)
    case .bytes(let b): return "<\(b.count) bytes>"
    case .list(let l): return "[" + l.map(\.description).joined(separator: ", ") + "]"
    case .record(let f): return "{" + f.map { "\($0.0): \($0.1)" }.joined(separator: ", ") + "}"
    }
  }
}

/// A Parquet or Arrow IPC file that cannot be read. Messages name the file, where in it (column,
/// row group or batch, page or byte offset) and what is wrong.
public enum FormatsError: Error, CustomStringConvertible, Equatable {
  /// The file could not be opened or read.
  case io(file: String, reason: String)
  /// The bytes do not follow the format; `location` says where (column, row group, page, offset).
  case corrupt(file: String, location: String, reason: String)
  /// Valid but uses a feature this reader does not implement.
  case unsupported(file: String, location: String, feature: String)
  /// A requested column is not a top-level column of the file.
  case unknownColumn(file: String, column: String, available: [String])
  /// A row group or batch index outside `0..<count`.
  case indexOutOfRange(file: String, what: String, index: Int, count: Int)

  public var description: String {
    switch self {
    case .io(let file, let reason):
      return "\(file): cannot read: \(reason)"
    case .corrupt(let file, let location, let reason):
      return "\(file): \(location): corrupt: \(reason)"
    case .unsupported(let file, let location, let feature):
      return "\(file): \(location): unsupported: \(feature)"
    case .unknownColumn(let file, let column, let available):
      return "\(file): no column '\(column)' (columns: \(available.joined(separator: ", ")))"
    case .indexOutOfRange(let file, let what, let index, let count):
      return "\(file): \(what) \(index) out of range (file has \(count))"
    }
  }
}

/// IEEE 754 binary16 to Double (exact: every half value is a double).
func halfToDouble(_ bits: UInt16) -> Double {
  let sign: Double = bits & 0x8000 != 0 ? -1 : 1
  let exponent = Int((bits >> 10) & 0x1F)
  let fraction = Double(bits & 0x3FF)
  switch exponent {
  case 0: return sign * fraction * 0x1p-24
  case 31: return fraction == 0 ? sign * .infinity : .nan
  default: return sign * (1 + fraction / 1024) * Double(sign: .plus, exponent: exponent - 15, significand: 1)
  }
}

/// A failure inside a decoder, before the file and location are known; the file-level readers wrap
/// it into `FormatsError` with the column, row group / batch and page it happened in.
struct DecodeFailure: Error {
  enum Kind { case corrupt, unsupported }
  var kind: Kind
  var message: String

  static func corrupt(_ message: String) -> DecodeFailure { DecodeFailure(kind: .corrupt, message: message) }
  static func unsupported(_ message: String) -> DecodeFailure {
    DecodeFailure(kind: .unsupported, message: message)
  }

  func wrapped(file: String, location: String) -> FormatsError {
    switch kind {
    case .corrupt: return .corrupt(file: file, location: location, reason: message)
    case .unsupported: return .unsupported(file: file, location: location, feature: message)
    }
  }
}

/// Runs `body`, turning a `DecodeFailure` into a `FormatsError` that names `file` and `location`.
func withLocation<T>(file: String, _ location: @autoclosure () -> String, _ body: () throws -> T) throws -> T {
  do {
    return try body()
  } catch let failure as DecodeFailure {
    throw failure.wrapped(file: file, location: location())
  }
}
