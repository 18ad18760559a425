/// Parquet value and level encodings (parquet-format Encodings.md). Every decoder takes the number
/// of values the page header promises and refuses to produce more, so a corrupt run length cannot
/// make a decoder loop or allocate without bound.
enum ParquetEncoding: Int {
  case plain = 0, plainDictionary = 2, rle = 3, bitPacked = 4, deltaBinaryPacked = 5
  case deltaLengthByteArray = 6, deltaByteArray = 7, rleDictionary = 8, byteStreamSplit = 9
}

/// Bits needed to store values `0...maximum`.
func bitWidth(forMaximum maximum: Int) -> Int {
  maximum <= 0 ? 0 : Int.bitWidth - maximum.leadingZeroBitCount
}

/// Reads `width`-bit little-endian-ordered values packed least significant bit first.
struct BitUnpacker {
  private var reader: ByteReader
  private var buffer: UInt64 = 0
  private var bufferedBits = 0

  init(_ bytes: ArraySlice<UInt8>) { reader = ByteReader(Array(bytes)) }

  mutating func next(width: Int) throws -> UInt64 {
    var value: UInt64 = 0
    var filled = 0
    while filled < width {
      if bufferedBits == 0 {
        buffer = UInt64(try reader.readByte())
        bufferedBits = 8
      }
      let take = min(width - filled, bufferedBits)
      let mask: UInt64 = take == 64 ? ~0 : (1 << UInt64(take)) - 1
      value |= (buffer & mask) << UInt64(filled)
      buffer >>= UInt64(take)
      bufferedBits -= take
      filled += take
    }
    return value
  }
}

/// The RLE / bit-packing hybrid used for levels, dictionary indices and RLE booleans.
struct HybridDecoder {
  private var reader: ByteReader
  private let width: Int

  init(_ reader: ByteReader, bitWidth: Int) throws {
    guard (0...32).contains(bitWidth) else { throw DecodeFailure.corrupt("RLE bit width \(bitWidth)") }
    self.reader = reader
    self.width = bitWidth
  }

  /// Decodes exactly `count` values, each checked to be at most `maximum`.
  mutating func decode(count: Int, maximum: Int) throws -> [Int] {
    var values: [Int] = []
    values.reserveCapacity(count)
    while values.count < count {
      let header = try reader.readVarint()
      let wanted = count - values.count
      if header & 1 == 0 {
        let runLength = min(header >> 1, UInt64(wanted))
        guard runLength > 0 else { throw DecodeFailure.corrupt("RLE run of length 0") }
        let value = Int(try reader.readLittleEndian(width: (width + 7) / 8))
        guard value <= maximum else { throw DecodeFailure.corrupt("RLE value \(value) above \(maximum)") }
        values.append(contentsOf: repeatElement(value, count: Int(runLength)))
      } else {
        let groups = header >> 1
        guard groups > 0, groups <= UInt64(reader.remaining) + 1 else {
          throw DecodeFailure.corrupt("bit-packed run of \(groups) groups")
        }
        let byteCount = min(Int(groups) * width, reader.remaining)
        var unpacker = BitUnpacker(try reader.readBytes(byteCount))
        let runValues = min(Int(groups) * 8, wanted)
        for _ in 0..<runValues {
          let value = Int(try unpacker.next(width: width))
          guard value <= maximum else { throw DecodeFailure.corrupt("bit-packed value \(value) above \(maximum)") }
          values.append(value)
        }
      }
    }
    return values
  }
}

/// DELTA_BINARY_PACKED: a header, then blocks of (min delta, miniblock bit widths, miniblocks).
struct DeltaDecoder {
  /// Decodes the whole stream at the cursor, which must hold at most `limit` values, and leaves the
  /// cursor after its last miniblock.
  static func decode(_ reader: inout ByteReader, limit: Int) throws -> [Int64] {
    let blockSize = try checkedCount(try reader.readVarint(), limit: 1 << 20, "delta block size")
    let miniblockCount = try checkedCount(try reader.readVarint(), limit: 1 << 10, "delta miniblock count")
    let total = try checkedCount(try reader.readVarint(), limit: limit, "delta value count")
    var current = try reader.readZigzag()
    guard blockSize > 0, blockSize % 128 == 0, miniblockCount > 0, blockSize % miniblockCount == 0,
      (blockSize / miniblockCount) % 32 == 0
    else {
      throw DecodeFailure.corrupt("delta block size \(blockSize) with \(miniblockCount) miniblocks")
    }
    let miniblockSize = blockSize / miniblockCount
    var values: [Int64] = []
    values.reserveCapacity(total)
    if total > 0 { values.append(current) }
    while values.count < total {
      let minimumDelta = try reader.readZigzag()
      let widths = try reader.readBytes(miniblockCount)
      for width in widths where values.count < total {
        guard width <= 64 else { throw DecodeFailure.corrupt("delta bit width \(width)") }
        var unpacker = BitUnpacker(try reader.readBytes(miniblockSize * Int(width) / 8))
        for _ in 0..<miniblockSize where values.count < total {
          let delta = try unpacker.next(width: Int(width))
          current = current &+ minimumDelta &+ Int64(bitPattern: delta)
          values.append(current)
        }
      }
    }
    return values
  }
}

/// How one leaf column's physical values become `FormatValue`s.
struct LeafType: Sendable {
  var physical: ParquetPhysicalType
  var typeLength: Int
  var annotation: ParquetAnnotation

  func value(int: Int64) -> FormatValue {
    if physical == .int32 && annotation == .unsignedInteger { return .int(Int64(UInt32(truncatingIfNeeded: int))) }
    return .int(int)
  }

  func value(bytes: ArraySlice<UInt8>) throws -> FormatValue {
    if annotation == .float16 && bytes.count == 2 {
      return .double(halfToDouble(UInt16(bytes[bytes.startIndex]) | UInt16(bytes[bytes.startIndex + 1]) << 8))
    }
    guard annotation == .string else { return .bytes(Array(bytes)) }
    guard let text = String(validating: bytes, as: UTF8.self) else {
      throw DecodeFailure.corrupt("string value is not valid UTF-8")
    }
    return .string(text)
  }

  /// Size in bytes of one fixed-width value, nil for BYTE_ARRAY and BOOLEAN.
  var fixedWidth: Int? {
    switch physical {
    case .int32, .float: return 4
    case .int64, .double: return 8
    case .int96: return 12
    case .fixedLenByteArray: return typeLength
    case .boolean, .byteArray: return nil
    }
  }

  /// A fixed-width value from its little-endian bytes (`fixedWidth` of them).
  func value(fixed bytes: ArraySlice<UInt8>) throws -> FormatValue {
    var raw: UInt64 = 0
    if physical != .int96 && physical != .fixedLenByteArray {
      guard let width = fixedWidth, bytes.count == width else { throw DecodeFailure.corrupt("short fixed-width value") }
      for (shift, byte) in bytes.enumerated() { raw |= UInt64(byte) << UInt64(8 * shift) }
    }
    switch physical {
    case .int32: return value(int: Int64(Int32(truncatingIfNeeded: raw)))
    case .int64: return .int(Int64(bitPattern: raw))
    case .float: return .double(Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw))))
    case .double: return .double(Double(bitPattern: raw))
    case .int96, .fixedLenByteArray, .boolean, .byteArray: return try value(bytes: bytes)
    }
  }
}

enum ValueDecoder {
  /// Decodes `count` values of `type` stored with `encoding` (not the dictionary encodings).
  static func decode(_ reader: inout ByteReader, encoding: ParquetEncoding, type: LeafType, count: Int) throws
    -> [FormatValue]
  {
    switch encoding {
    case .plain: return try plain(&reader, type: type, count: count)
    case .rle:
      guard type.physical == .boolean else { throw DecodeFailure.unsupported("RLE encoding for \(type.physical)") }
      let length = try checkedCount(try reader.readInt32(), limit: reader.remaining, "RLE boolean length")
      var decoder = try HybridDecoder(ByteReader(Array(try reader.readBytes(length))), bitWidth: 1)
      return try decoder.decode(count: count, maximum: 1).map { .bool($0 == 1) }
    case .deltaBinaryPacked:
      guard type.physical == .int32 || type.physical == .int64 else {
        throw DecodeFailure.unsupported("DELTA_BINARY_PACKED for \(type.physical)")
      }
      let values = try DeltaDecoder.decode(&reader, limit: count)
      guard values.count == count else { throw DecodeFailure.corrupt("delta stream has \(values.count) of \(count) values") }
      return values.map { type.physical == .int32 ? type.value(int: Int64(Int32(truncatingIfNeeded: $0))) : .int($0) }
    case .deltaLengthByteArray:
      return try deltaLength(&reader, type: type, count: count).map { try type.value(bytes: $0) }
    case .deltaByteArray: return try deltaByteArray(&reader, type: type, count: count)
    case .byteStreamSplit: return try byteStreamSplit(&reader, type: type, count: count)
    case .plainDictionary, .rleDictionary, .bitPacked:
      throw DecodeFailure.unsupported("value encoding \(encoding)")
    }
  }

  static func plain(_ reader: inout ByteReader, type: LeafType, count: Int) throws -> [FormatValue] {
    var values: [FormatValue] = []
    switch type.physical {
    case .boolean:
      var unpacker = BitUnpacker(try reader.readBytes(min((count + 7) / 8, reader.remaining)))
      for _ in 0..<count { values.append(.bool(try unpacker.next(width: 1) == 1)) }
    case .byteArray:
      guard count <= reader.remaining / 4 else { throw DecodeFailure.corrupt("\(count) byte arrays in \(reader.remaining) bytes") }
      values.reserveCapacity(count)
      for _ in 0..<count {
        let length = try checkedCount(try reader.readInt32(), limit: reader.remaining, "byte array length")
        values.append(try type.value(bytes: try reader.readBytes(length)))
      }
    default:
      guard let width = type.fixedWidth, width > 0 else { throw DecodeFailure.corrupt("fixed length \(type.typeLength)") }
      guard count <= reader.remaining / width else {
        throw DecodeFailure.corrupt("\(count) values of \(width) bytes in \(reader.remaining) bytes")
      }
      values.reserveCapacity(count)
      for _ in 0..<count { values.append(try type.value(fixed: try reader.readBytes(width))) }
    }
    return values
  }

  private static func deltaLength(_ reader: inout ByteReader, type: LeafType, count: Int) throws -> [ArraySlice<UInt8>] {
    guard type.physical == .byteArray else { throw DecodeFailure.unsupported("DELTA_LENGTH_BYTE_ARRAY for \(type.physical)") }
    let lengths = try DeltaDecoder.decode(&reader, limit: count)
    guard lengths.count == count else { throw DecodeFailure.corrupt("\(lengths.count) lengths for \(count) values") }
    return try lengths.map { try reader.readBytes(try checkedCount($0, limit: reader.remaining, "byte array length")) }
  }

  private static func deltaByteArray(_ reader: inout ByteReader, type: LeafType, count: Int) throws -> [FormatValue] {
    guard type.physical == .byteArray || type.physical == .fixedLenByteArray else {
      throw DecodeFailure.unsupported("DELTA_BYTE_ARRAY for \(type.physical)")
    }
    let prefixes = try DeltaDecoder.decode(&reader, limit: count)
    guard prefixes.count == count else { throw DecodeFailure.corrupt("\(prefixes.count) prefixes for \(count) values") }
    let suffixes = try deltaLength(&reader, type: LeafType(physical: .byteArray, typeLength: 0, annotation: .none),
                                   count: count)
    var previous: [UInt8] = []
    var values: [FormatValue] = []
    values.reserveCapacity(count)
    for (prefix, suffix) in zip(prefixes, suffixes) {
      let shared = try checkedCount(prefix, limit: previous.count, "DELTA_BYTE_ARRAY prefix")
      previous = Array(previous.prefix(shared)) + suffix
      values.append(try type.value(bytes: previous[...]))
    }
    return values
  }

  private static func byteStreamSplit(_ reader: inout ByteReader, type: LeafType, count: Int) throws -> [FormatValue] {
    guard let width = type.fixedWidth, width > 0 else { throw DecodeFailure.unsupported("BYTE_STREAM_SPLIT for \(type.physical)") }
    guard count <= reader.remaining / width else { throw DecodeFailure.corrupt("BYTE_STREAM_SPLIT data too short") }
    let data = try reader.readBytes(count * width)
    let base = data.startIndex
    return try (0..<count).map { index in
      try type.value(fixed: ArraySlice((0..<width).map { data[base + $0 * count + index] }))
    }
  }
}
