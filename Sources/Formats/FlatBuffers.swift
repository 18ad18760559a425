/// Read-only access to FlatBuffers tables (the encoding of Arrow IPC metadata), every offset
/// checked against the buffer. Layout (flatbuffers "internals" doc): a table starts with a signed
/// offset back to its vtable; the vtable lists, per field, the field's offset inside the table
/// (0 = absent, use the default); references to tables, vectors and strings are unsigned offsets
/// forward from where they are stored.
struct FlatTable {
  let buffer: [UInt8]
  let position: Int
  private let vtable: Int
  private let vtableSize: Int

  /// The root table of a buffer.
  init(root buffer: [UInt8]) throws {
    let offset = try FlatTable.unsigned32(buffer, at: 0)
    try self.init(buffer, at: offset)
  }

  init(_ buffer: [UInt8], at position: Int) throws {
    self.buffer = buffer
    self.position = position
    let back = Int(Int32(truncatingIfNeeded: try FlatTable.unsigned32(buffer, at: position)))
    vtable = position - back
    guard vtable >= 0, vtable <= buffer.count - 4 else { throw DecodeFailure.corrupt("flatbuffer vtable at \(vtable)") }
    vtableSize = Int(try FlatTable.unsigned16(buffer, at: vtable))
    guard vtableSize >= 4, vtableSize <= buffer.count - vtable else {
      throw DecodeFailure.corrupt("flatbuffer vtable size \(vtableSize)")
    }
  }

  static func unsigned32(_ buffer: [UInt8], at offset: Int) throws -> Int {
    guard offset >= 0, offset <= buffer.count - 4 else { throw DecodeFailure.corrupt("flatbuffer offset \(offset) out of range") }
    return (0..<4).reduce(0) { $0 | Int(buffer[offset + $1]) << (8 * $1) }
  }

  static func unsigned16(_ buffer: [UInt8], at offset: Int) throws -> Int {
    guard offset >= 0, offset <= buffer.count - 2 else { throw DecodeFailure.corrupt("flatbuffer offset \(offset) out of range") }
    return Int(buffer[offset]) | Int(buffer[offset + 1]) << 8
  }

  /// Absolute position of field `index`, nil when the field is absent.
  private func field(_ index: Int) throws -> Int? {
    let entry = 4 + 2 * index
    guard entry + 2 <= vtableSize else { return nil }
    let offset = try FlatTable.unsigned16(buffer, at: vtable + entry)
    return offset == 0 ? nil : position + offset
  }

  /// A little-endian integer field of `width` bytes, sign-extended when `signed`.
  func integer(_ index: Int, width: Int, signed: Bool = true, default value: Int64 = 0) throws -> Int64 {
    guard let at = try field(index) else { return value }
    guard at >= 0, at <= buffer.count - width else { throw DecodeFailure.corrupt("flatbuffer scalar out of range") }
    var reader = ByteReader(buffer, start: at)
    let raw = try reader.readLittleEndian(width: width)
    guard signed, width < 8 else { return Int64(bitPattern: raw) }
    let shift = UInt64(64 - 8 * width)
    return Int64(bitPattern: raw << shift) >> Int64(shift)
  }

  func bool(_ index: Int, default value: Bool = false) throws -> Bool {
    try integer(index, width: 1, signed: false, default: value ? 1 : 0) != 0
  }

  private func reference(_ index: Int) throws -> Int? {
    guard let at = try field(index) else { return nil }
    return at + (try FlatTable.unsigned32(buffer, at: at))
  }

  func table(_ index: Int) throws -> FlatTable? {
    guard let at = try reference(index) else { return nil }
    return try FlatTable(buffer, at: at)
  }

  /// Start and element count of a vector field whose elements are `stride` bytes.
  func vector(_ index: Int, stride: Int) throws -> (start: Int, count: Int)? {
    guard let at = try reference(index) else { return nil }
    let count = try FlatTable.unsigned32(buffer, at: at)
    let start = at + 4
    guard start <= buffer.count, count <= (buffer.count - start) / stride else { throw DecodeFailure.corrupt("flatbuffer vector of \(count)") }
    return (start, count)
  }

  func tables(_ index: Int) throws -> [FlatTable] {
    guard let (start, count) = try vector(index, stride: 4) else { return [] }
    return try (0..<count).map { element in
      let at = start + 4 * element
      return try FlatTable(buffer, at: at + (try FlatTable.unsigned32(buffer, at: at)))
    }
  }

  func string(_ index: Int) throws -> String? {
    guard let (start, count) = try vector(index, stride: 1) else { return nil }
    guard let text = String(validating: buffer[start..<(start + count)], as: UTF8.self) else {
      throw DecodeFailure.corrupt("flatbuffer string is not UTF-8")
    }
    return text
  }

  /// Vector of inline structs made of `fields` little-endian 64-bit integers each.
  func int64Structs(_ index: Int, fields: Int) throws -> [[Int64]] {
    guard let (start, count) = try vector(index, stride: 8 * fields) else { return [] }
    var reader = ByteReader(buffer, start: start)
    return try (0..<count).map { _ in try (0..<fields).map { _ in try reader.readInt64() } }
  }
}
