/// Arrow column types (Schema.fbs of the Arrow format), as far as this reader decodes them.
indirect enum ArrowType: Sendable, Equatable {
  case null
  case bool
  case integer(bytes: Int, signed: Bool)
  /// 2, 4 or 8 bytes.
  case floatingPoint(bytes: Int)
  case utf8(large: Bool)
  case binary(large: Bool)
  case fixedBinary(bytes: Int)
  case list(large: Bool)
  case fixedList(size: Int)
  case structure
  case map
  /// Known layout (so later columns can still be located) but values not decoded.
  case opaque(name: String, buffers: Int)
  /// Layout depends on data this reader does not handle; the batch cannot be read past it.
  case unsupported(name: String)

  /// Buffers this type occupies in a record batch, its children not included (Arrow columnar
  /// format, "Buffer Layout"); nil when it cannot be known.
  var bufferCount: Int? {
    switch self {
    case .null: return 0
    case .bool, .integer, .floatingPoint, .fixedBinary: return 2
    case .utf8, .binary: return 3
    case .list, .map: return 2
    case .fixedList, .structure: return 1
    case .opaque(_, let buffers): return buffers
    case .unsupported: return nil
    }
  }
}

struct ArrowField: Sendable {
  var name: String
  var type: ArrowType
  var children: [ArrowField]
  /// For a dictionary-encoded field: the dictionary id and the integer type of the indices. The
  /// field's own type and children then describe the dictionary's values.
  var dictionary: (id: Int64, indexType: ArrowType)?

  /// The dictionary's values as a plain field.
  var valueField: ArrowField { ArrowField(name: name, type: type, children: children, dictionary: nil) }

  /// Field nodes this field and its descendants take in a record batch (one each, pre-order); a
  /// dictionary-encoded field is one node of indices, its values live in dictionary batches.
  var nodeCount: Int { dictionary != nil ? 1 : 1 + children.reduce(0) { $0 + $1.nodeCount } }

  /// Buffers of this field and its descendants; nil when a type's layout is unknown.
  var totalBufferCount: Int? {
    if dictionary != nil { return 2 }  // validity, indices
    guard var total = type.bufferCount else { return nil }
    for child in children {
      guard let count = child.totalBufferCount else { return nil }
      total += count
    }
    return total
  }
}

enum ArrowSchemaDecoder {
  static let maximumDepth = 64

  /// Schema table: endianness (0), fields (1).
  static func fields(_ schema: FlatTable) throws -> [ArrowField] {
    guard try schema.integer(0, width: 2) == 0 else { throw DecodeFailure.unsupported("big-endian Arrow data") }
    return try schema.tables(1).map { try field($0, depth: 1) }
  }

  /// Field table: name (0), nullable (1), type_type (2), type (3), dictionary (4), children (5).
  static func field(_ table: FlatTable, depth: Int) throws -> ArrowField {
    guard depth <= maximumDepth else { throw DecodeFailure.corrupt("Arrow schema nested deeper than \(maximumDepth)") }
    let name = try table.string(0) ?? ""
    let typeTag = try table.integer(2, width: 1, signed: false)
    let type = try arrowType(tag: typeTag, table: try table.table(3))
    let children = try table.tables(5).map { try field($0, depth: depth + 1) }
    var dictionary: (Int64, ArrowType)?
    // DictionaryEncoding: id (0), indexType (1, an Int table; default signed 32-bit).
    if let encoding = try table.table(4) {
      let indexType = try encoding.table(1).map { try arrowType(tag: 2, table: $0) } ?? .integer(bytes: 4, signed: true)
      dictionary = (try encoding.integer(0, width: 8), indexType)
    }
    return ArrowField(name: name, type: type, children: children, dictionary: dictionary)
  }

  /// The Type union (tags of Schema.fbs).
  private static func arrowType(tag: Int64, table: FlatTable?) throws -> ArrowType {
    func int(_ index: Int, width: Int, default value: Int64) throws -> Int64 {
      try table?.integer(index, width: width, default: value) ?? value
    }
    switch tag {
    case 1: return .null
    case 2:
      let bits = try int(0, width: 4, default: 0)
      guard [8, 16, 32, 64].contains(bits) else { throw DecodeFailure.corrupt("integer bit width \(bits)") }
      return .integer(bytes: Int(bits / 8), signed: try table?.bool(1) ?? false)
    case 3:
      switch try int(0, width: 2, default: 0) {
      case 0: return .floatingPoint(bytes: 2)
      case 1: return .floatingPoint(bytes: 4)
      case 2: return .floatingPoint(bytes: 8)
      case let precision: throw DecodeFailure.corrupt("floating point precision \(precision)")
      }
    case 4: return .binary(large: false)
    case 5: return .utf8(large: false)
    case 6: return .bool
    case 7:
      let bits = try int(2, width: 4, default: 128)
      guard bits == 128 || bits == 256 else { throw DecodeFailure.corrupt("decimal bit width \(bits)") }
      return .fixedBinary(bytes: Int(bits / 8))
    case 8: return .integer(bytes: try int(0, width: 2, default: 1) == 0 ? 4 : 8, signed: true)  // Date: DAY or MILLISECOND
    case 9:
      let bits = try int(1, width: 4, default: 32)
      guard bits == 32 || bits == 64 else { throw DecodeFailure.corrupt("time bit width \(bits)") }
      return .integer(bytes: Int(bits / 8), signed: true)
    case 10, 18: return .integer(bytes: 8, signed: true)  // Timestamp, Duration
    case 11: return .opaque(name: "Interval", buffers: 2)
    case 12: return .list(large: false)
    case 13: return .structure
    case 14: return try int(0, width: 2, default: 0) == 0 ? .opaque(name: "sparse Union", buffers: 1) : .opaque(name: "dense Union", buffers: 2)
    case 15:
      let width = try int(0, width: 4, default: 0)
      guard width > 0 else { throw DecodeFailure.corrupt("fixed size binary of width \(width)") }
      return .fixedBinary(bytes: Int(width))
    case 16:
      let size = try int(0, width: 4, default: 0)
      guard size >= 0 else { throw DecodeFailure.corrupt("fixed size list of size \(size)") }
      return .fixedList(size: Int(size))
    case 17: return .map
    case 19: return .binary(large: true)
    case 20: return .utf8(large: true)
    case 21: return .list(large: true)
    case 22: return .opaque(name: "RunEndEncoded", buffers: 0)
    case 23: return .unsupported(name: "BinaryView")
    case 24: return .unsupported(name: "Utf8View")
    case 25, 26: return .unsupported(name: "ListView")
    default: throw DecodeFailure.corrupt("Arrow type tag \(tag)")
    }
  }
}
