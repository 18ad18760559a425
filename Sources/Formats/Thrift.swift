/// Reader for the Thrift compact protocol, the encoding of Parquet's footer and page headers
/// (Apache Thrift, "Thrift Compact Protocol encoding"). Only what Parquet needs: structs, lists,
/// integers, binary, bool, double, and skipping of any field this reader does not know.
struct ThriftReader {
  enum WireType: UInt8 {
    case boolTrue = 1, boolFalse = 2, byte = 3, i16 = 4, i32 = 5, i64 = 6, double = 7, binary = 8
    case list = 9, set = 10, map = 11, structure = 12
  }

  struct Field {
    var id: Int
    var type: WireType
  }

  /// Nesting limit, so a corrupt footer cannot recurse until the stack overflows.
  static let maximumDepth = 64

  var bytes: ByteReader
  private var depth = 0

  init(_ bytes: ByteReader) { self.bytes = bytes }

  /// Calls `handle` for each field of the struct at the cursor, through the stop byte. A handler
  /// that does not want a field must call `skip(field.type)`.
  mutating func readStruct(_ handle: (inout ThriftReader, Field) throws -> Void) throws {
    depth += 1
    defer { depth -= 1 }
    guard depth <= ThriftReader.maximumDepth else { throw DecodeFailure.corrupt("thrift nesting too deep") }
    var lastID = 0
    while true {
      let header = try bytes.readByte()
      if header == 0 { return }
      guard let type = WireType(rawValue: header & 0x0F) else {
        throw DecodeFailure.corrupt("thrift field type \(header & 0x0F) at byte \(bytes.position - 1)")
      }
      let delta = Int(header >> 4)
      let id = delta != 0 ? lastID + delta : Int(truncatingIfNeeded: try bytes.readZigzag())
      lastID = id
      try handle(&self, Field(id: id, type: type))
    }
  }

  mutating func readInt(_ type: WireType) throws -> Int64 {
    switch type {
    case .byte: return Int64(Int8(bitPattern: try bytes.readByte()))
    case .i16, .i32, .i64: return try bytes.readZigzag()
    default: throw DecodeFailure.corrupt("thrift integer field has wire type \(type)")
    }
  }

  /// An i32 field that must fit in `Int` within `0...limit`.
  mutating func readCount(_ type: WireType, limit: Int = Int(Int32.max), _ what: String) throws -> Int {
    try checkedCount(try readInt(type), limit: limit, what)
  }

  mutating func readBool(_ type: WireType) throws -> Bool {
    switch type {
    case .boolTrue: return true
    case .boolFalse: return false
    default: throw DecodeFailure.corrupt("thrift bool field has wire type \(type)")
    }
  }

  mutating func readBinary(_ type: WireType) throws -> ArraySlice<UInt8> {
    guard type == .binary else { throw DecodeFailure.corrupt("thrift binary field has wire type \(type)") }
    let length = try checkedCount(try bytes.readVarint(), limit: bytes.remaining, "thrift binary length")
    return try bytes.readBytes(length)
  }

  mutating func readString(_ type: WireType) throws -> String {
    let raw = try readBinary(type)
    guard let text = String(validating: raw, as: UTF8.self) else {
      throw DecodeFailure.corrupt("thrift string is not UTF-8")
    }
    return text
  }

  /// Reads a list header and calls `element` once per element with the element wire type.
  mutating func readList(_ type: WireType, _ element: (inout ThriftReader, WireType) throws -> Void) throws {
    guard type == .list || type == .set else { throw DecodeFailure.corrupt("thrift list field has wire type \(type)") }
    let header = try bytes.readByte()
    var count = Int(header >> 4)
    if count == 15 { count = try checkedCount(try bytes.readVarint(), limit: bytes.remaining, "thrift list size") }
    guard count <= bytes.remaining else { throw DecodeFailure.corrupt("thrift list of \(count) in \(bytes.remaining) bytes") }
    guard let elementType = WireType(rawValue: header & 0x0F) else {
      throw DecodeFailure.corrupt("thrift list element type \(header & 0x0F)")
    }
    for _ in 0..<count { try element(&self, elementType) }
  }

  /// Reads a list element: booleans inside lists are one byte each (1 = true).
  mutating func readListBool(_ type: WireType) throws -> Bool {
    if type == .boolTrue || type == .boolFalse { return try bytes.readByte() == 1 }
    throw DecodeFailure.corrupt("thrift bool list element has wire type \(type)")
  }

  mutating func skip(_ type: WireType) throws {
    depth += 1
    defer { depth -= 1 }
    guard depth <= ThriftReader.maximumDepth else { throw DecodeFailure.corrupt("thrift nesting too deep") }
    switch type {
    case .boolTrue, .boolFalse: return
    case .byte: try bytes.skip(1)
    case .i16, .i32, .i64: _ = try bytes.readVarint()
    case .double: try bytes.skip(8)
    case .binary: _ = try readBinary(.binary)
    case .list, .set: try readList(type) { reader, element in try reader.skipElement(element) }
    case .map: try skipMap()
    case .structure: try readStruct { reader, field in try reader.skip(field.type) }
    }
  }

  private mutating func skipElement(_ type: WireType) throws {
    if type == .boolTrue || type == .boolFalse { try bytes.skip(1) } else { try skip(type) }
  }

  private mutating func skipMap() throws {
    let count = try checkedCount(try bytes.readVarint(), limit: bytes.remaining, "thrift map size")
    if count == 0 { return }
    let types = try bytes.readByte()
    guard let key = WireType(rawValue: types >> 4), let value = WireType(rawValue: types & 0x0F) else {
      throw DecodeFailure.corrupt("thrift map types \(types)")
    }
    for _ in 0..<count {
      try skipElement(key)
      try skipElement(value)
    }
  }
}
