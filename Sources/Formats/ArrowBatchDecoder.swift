/// Decodes one top-level column of a record batch into values, walking its field nodes and
/// buffers in pre-order as the Arrow columnar format lays them out. Buffers are read from the
/// file one by one, so other columns' data (embedded images, say) is never loaded.
struct BatchDecoder {
  private let info: RecordBatchInfo
  private let source: any ByteSource
  private let dictionaries: [Int64: [RecordBatchInfo]]
  /// Dictionaries decoded so far in this read, shared with the decoders of nested dictionaries.
  private let decoded: DecodedDictionaries
  private var nodeIndex: Int
  private var bufferIndex: Int

  init(info: RecordBatchInfo, source: any ByteSource, fields: [ArrowField], column: Int,
       dictionaries: [Int64: [RecordBatchInfo]] = [:], decoded: DecodedDictionaries = DecodedDictionaries()) throws {
    self.info = info
    self.source = source
    self.dictionaries = dictionaries
    self.decoded = decoded
    nodeIndex = 0
    bufferIndex = 0
    for field in fields.prefix(column) {
      guard let buffers = field.totalBufferCount else {
        throw DecodeFailure.unsupported("column \(field.name) (a view type) precedes this one")
      }
      nodeIndex += field.nodeCount
      bufferIndex += buffers
    }
  }

  mutating func decode(_ field: ArrowField) throws -> [FormatValue] {
    guard nodeIndex < info.nodes.count else { throw DecodeFailure.corrupt("batch has too few field nodes") }
    let node = info.nodes[nodeIndex]
    nodeIndex += 1
    if let dictionary = field.dictionary { return try decodeDictionaryEncoded(field, dictionary, node) }
    switch field.type {
    case .null:
      return Array(repeating: .null, count: node.length)
    case .opaque(let name, _), .unsupported(let name):
      throw DecodeFailure.unsupported("\(name) column \(field.name)")
    case .structure:
      let validity = try self.validity(node)
      let children = try field.children.map { child -> [FormatValue] in
        let values = try decode(child)
        guard values.count >= node.length else { throw DecodeFailure.corrupt("struct child \(child.name) is too short") }
        return values
      }
      return (0..<node.length).map { row in
        validity(row) ? .record(zip(field.children, children).map { ($0.name, $1[row]) }) : .null
      }
    case .list(let large):
      return try decodeList(field, node, large: large)
    case .map:
      return try decodeList(field, node, large: false)
    case .fixedList(let size):
      let validity = try self.validity(node)
      guard let child = field.children.first else { throw DecodeFailure.corrupt("fixed size list without a child") }
      let values = try decode(child)
      let needed = node.length.multipliedReportingOverflow(by: size)
      guard !needed.overflow, needed.partialValue <= values.count else {
        throw DecodeFailure.corrupt("fixed size list child is too short")
      }
      return (0..<node.length).map { row in validity(row) ? .list(Array(values[(row * size)..<((row + 1) * size)])) : .null }
    default:
      return try decodePrimitive(field.type, node)
    }
  }

  /// Indices into the dictionary batches (a base and its deltas) in effect for this batch.
  private mutating func decodeDictionaryEncoded(_ field: ArrowField, _ dictionary: (id: Int64, indexType: ArrowType),
                                                _ node: (length: Int, nullCount: Int)) throws -> [FormatValue] {
    let indices = try decodePrimitive(dictionary.indexType, node)
    if indices.allSatisfy(\.isNull) { return indices }
    let values = try dictionaryValues(field, id: dictionary.id)
    return try indices.map { index in
      guard case .int(let position) = index else { return .null }
      guard position >= 0, position < values.count else {
        throw DecodeFailure.corrupt("dictionary index \(position) outside \(values.count) values")
      }
      return values[Int(position)]
    }
  }

  /// Each dictionary is decoded once per read (so nested dictionaries cost linear work), and a
  /// dictionary whose values refer back to itself is refused.
  private func dictionaryValues(_ field: ArrowField, id: Int64) throws -> [FormatValue] {
    if let cached = decoded.values[id] { return cached }
    guard let batches = dictionaries[id] else {
      throw DecodeFailure.corrupt("no dictionary batch with id \(id) for column \(field.name)")
    }
    guard decoded.inProgress.insert(id).inserted else { throw DecodeFailure.corrupt("dictionary \(id) contains itself") }
    defer { decoded.inProgress.remove(id) }
    var values: [FormatValue] = []
    for batch in batches {
      var decoder = try BatchDecoder(info: batch, source: source, fields: [field.valueField], column: 0,
                                     dictionaries: dictionaries, decoded: decoded)
      values += try decoder.decode(field.valueField).prefix(batch.length)
    }
    decoded.values[id] = values
    return values
  }

  // MARK: - Buffers

  /// The next buffer of the batch, decompressed when the body is compressed (each buffer then
  /// starts with its uncompressed length, -1 meaning stored as is).
  private mutating func nextBuffer() throws -> [UInt8] {
    guard bufferIndex < info.buffers.count else { throw DecodeFailure.corrupt("batch has too few buffers") }
    let buffer = info.buffers[bufferIndex]
    bufferIndex += 1
    if buffer.length == 0 { return [] }
    let raw = try source.read(offset: info.bodyOffset + buffer.offset, count: buffer.length)
    guard let codec = info.codec else { return raw }
    var reader = ByteReader(raw)
    let size = try reader.readInt64()
    if size == -1 { return Array(raw.dropFirst(8)) }
    return try codec.decompress(raw.dropFirst(8), size: try checkedCount(size, limit: Codec.maximumOutput, "buffer size"))
  }

  private mutating func validity(_ node: (length: Int, nullCount: Int)) throws -> @Sendable (Int) -> Bool {
    let bitmap = try nextBuffer()
    if node.nullCount == 0 { return { _ in true } }
    guard bitmap.count >= (node.length + 7) / 8 else { throw DecodeFailure.corrupt("validity bitmap too short") }
    return { bitmap[$0 >> 3] & (1 << UInt8($0 & 7)) != 0 }
  }

  /// `count` offsets of 4 or 8 bytes, checked to be non-negative, non-decreasing and at most `limit`.
  private mutating func offsets(count: Int, large: Bool, limit: Int? = nil) throws -> [Int] {
    let buffer = try nextBuffer()
    if count == 1 && buffer.isEmpty { return [0] }
    let width = large ? 8 : 4
    guard buffer.count / width >= count else { throw DecodeFailure.corrupt("offsets buffer too short") }
    var reader = ByteReader(buffer)
    var result: [Int] = []
    result.reserveCapacity(count)
    for _ in 0..<count {
      let raw = large ? try reader.readInt64() : Int64(try reader.readInt32())
      guard raw >= 0, raw >= Int64(result.last ?? 0) else { throw DecodeFailure.corrupt("offsets decrease or are negative") }
      result.append(Int(raw))
    }
    return result
  }

  private mutating func decodeList(_ field: ArrowField, _ node: (length: Int, nullCount: Int), large: Bool) throws
    -> [FormatValue]
  {
    let validity = try self.validity(node)
    let offsets = try self.offsets(count: node.length + 1, large: large)
    guard let child = field.children.first else { throw DecodeFailure.corrupt("list column \(field.name) without a child") }
    let values = try decode(child)
    guard (offsets.last ?? 0) <= values.count else { throw DecodeFailure.corrupt("list offsets run past the child values") }
    return (0..<node.length).map { row in validity(row) ? .list(Array(values[offsets[row]..<offsets[row + 1]])) : .null }
  }

  private mutating func decodePrimitive(_ type: ArrowType, _ node: (length: Int, nullCount: Int)) throws -> [FormatValue] {
    let validity = try self.validity(node)
    let count = node.length
    switch type {
    case .bool:
      let bits = try nextBuffer()
      guard bits.count >= (count + 7) / 8 else { throw DecodeFailure.corrupt("boolean buffer too short") }
      return (0..<count).map { validity($0) ? .bool(bits[$0 >> 3] & (1 << UInt8($0 & 7)) != 0) : .null }
    case .utf8(let large), .binary(let large):
      let offsets = try self.offsets(count: count + 1, large: large)
      let data = try nextBuffer()
      guard (offsets.last ?? 0) <= data.count else { throw DecodeFailure.corrupt("offsets run past the data buffer") }
      let isText = type == .utf8(large: large)
      return try (0..<count).map { row in
        guard validity(row) else { return .null }
        let bytes = data[offsets[row]..<offsets[row + 1]]
        guard isText else { return .bytes(Array(bytes)) }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw DecodeFailure.corrupt("row \(row) is not UTF-8") }
        return .string(text)
      }
    case .integer(let width, _), .floatingPoint(let width), .fixedBinary(let width):
      let data = try nextBuffer()
      guard width > 0, data.count / width >= count else { throw DecodeFailure.corrupt("data buffer too short") }
      return (0..<count).map { row in
        validity(row) ? BatchDecoder.fixedValue(type, data[(row * width)..<((row + 1) * width)]) : .null
      }
    default:
      throw DecodeFailure.unsupported("type \(type)")
    }
  }

  private static func fixedValue(_ type: ArrowType, _ bytes: ArraySlice<UInt8>) -> FormatValue {
    var raw: UInt64 = 0
    if bytes.count <= 8 {
      for (shift, byte) in bytes.enumerated() { raw |= UInt64(byte) << UInt64(8 * shift) }
    }
    switch type {
    case .integer(let width, let signed):
      guard signed, width < 8 else { return .int(Int64(bitPattern: raw)) }
      let shift = UInt64(64 - 8 * width)
      return .int(Int64(bitPattern: raw << shift) >> Int64(shift))
    case .floatingPoint(2): return .double(halfToDouble(UInt16(truncatingIfNeeded: raw)))
    case .floatingPoint(4): return .double(Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw))))
    case .floatingPoint: return .double(Double(bitPattern: raw))
    default: return .bytes(Array(bytes))
    }
  }
}

/// Dictionary values decoded during one column read, by dictionary id.
final class DecodedDictionaries {
  var values: [Int64: [FormatValue]] = [:]
  var inProgress: Set<Int64> = []
}
