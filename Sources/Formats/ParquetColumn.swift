/// One leaf column of a Parquet schema: where it sits in the nesting and how to decode it.
struct LeafColumn: Sendable {
  var path: [String]
  var type: LeafType
  var maxDefinition: Int
  var maxRepetition: Int
}

/// The decoded content of one column chunk: levels for every entry (nil when the column's maximum
/// level is 0) and the non-null values in order.
struct LeafData {
  var definitions: [Int]?
  var repetitions: [Int]?
  var values: [FormatValue]
  var entryCount: Int
}

/// Reads the pages of one column chunk (dictionary page, data pages v1 and v2).
struct ColumnChunkReader {
  /// Most entries one page may declare; a corrupt count cannot allocate without bound.
  static let maximumPageEntries = 1 << 24

  let leaf: LeafColumn
  let codec: Codec
  var dictionary: [FormatValue]?
  var data = LeafData(definitions: nil, repetitions: nil, values: [], entryCount: 0)

  init(leaf: LeafColumn, codec rawCodec: Int) throws {
    self.leaf = leaf
    switch rawCodec {
    case 0: codec = .uncompressed
    case 1: codec = .snappy
    case 2: codec = .gzip
    case 5: codec = .lz4Hadoop
    case 6: codec = .zstd
    case 7: codec = .lz4Raw
    case 3: throw DecodeFailure.unsupported("LZO compression")
    case 4: throw DecodeFailure.unsupported("Brotli compression")
    default: throw DecodeFailure.corrupt("compression codec \(rawCodec)")
    }
    if leaf.maxDefinition > 0 { data.definitions = [] }
    if leaf.maxRepetition > 0 { data.repetitions = [] }
  }

  /// Decodes all pages in `chunk` (the chunk's bytes) until `entryCount` entries are read.
  /// `pageStart` receives the file offset of each page for error messages.
  mutating func readPages(_ chunk: [UInt8], entryCount: Int, chunkOffset: Int,
                          location: (Int) -> Void) throws -> LeafData {
    var reader = ByteReader(chunk)
    while data.entryCount < entryCount {
      guard !reader.isAtEnd else {
        throw DecodeFailure.corrupt("column chunk ended after \(data.entryCount) of \(entryCount) values")
      }
      location(chunkOffset + reader.position)
      let header = try PageHeader(&reader)
      let body = try reader.readBytes(header.compressedSize)
      switch PageType(rawValue: header.type) {
      case .dictionary: try readDictionaryPage(header, body)
      case .data: try readDataPageV1(header, body)
      case .dataV2: try readDataPageV2(header, body)
      case .index: continue
      case nil: throw DecodeFailure.corrupt("page type \(header.type)")
      }
      guard data.entryCount <= entryCount else {
        throw DecodeFailure.corrupt("pages hold \(data.entryCount) values, column chunk declares \(entryCount)")
      }
    }
    return data
  }

  private mutating func readDictionaryPage(_ header: PageHeader, _ body: ArraySlice<UInt8>) throws {
    guard dictionary == nil else { throw DecodeFailure.corrupt("second dictionary page") }
    let count = try checkedCount(header.valueCount, limit: ColumnChunkReader.maximumPageEntries, "dictionary size")
    guard header.encoding == ParquetEncoding.plain.rawValue || header.encoding == ParquetEncoding.plainDictionary.rawValue
    else { throw DecodeFailure.unsupported("dictionary page encoding \(header.encoding)") }
    var reader = ByteReader(try codec.decompress(body, size: header.uncompressedSize))
    dictionary = try ValueDecoder.plain(&reader, type: leaf.type, count: count)
  }

  private mutating func readDataPageV1(_ header: PageHeader, _ body: ArraySlice<UInt8>) throws {
    let count = try checkedCount(header.valueCount, limit: ColumnChunkReader.maximumPageEntries, "page value count")
    var reader = ByteReader(try codec.decompress(body, size: header.uncompressedSize))
    let repetitions = try readLevelsV1(&reader, maximum: leaf.maxRepetition, count: count,
                                       bitPacked: header.repetitionLevelEncoding == ParquetEncoding.bitPacked.rawValue)
    let definitions = try readLevelsV1(&reader, maximum: leaf.maxDefinition, count: count,
                                       bitPacked: header.definitionLevelEncoding == ParquetEncoding.bitPacked.rawValue)
    try appendPage(count: count, definitions: definitions, repetitions: repetitions, encoding: header.encoding, &reader)
  }

  private mutating func readDataPageV2(_ header: PageHeader, _ body: ArraySlice<UInt8>) throws {
    let count = try checkedCount(header.valueCount, limit: ColumnChunkReader.maximumPageEntries, "page value count")
    var levels = ByteReader(Array(body))
    let repetitionBytes = try levels.readBytes(header.repetitionLevelsLength)
    let definitionBytes = try levels.readBytes(header.definitionLevelsLength)
    let repetitions = try decodeLevels(repetitionBytes, maximum: leaf.maxRepetition, count: count)
    let definitions = try decodeLevels(definitionBytes, maximum: leaf.maxDefinition, count: count)
    let valueBytes = try levels.readBytes(levels.remaining)
    let levelBytes = header.repetitionLevelsLength + header.definitionLevelsLength
    let values: [UInt8]
    if header.isCompressed && codec != .uncompressed {
      guard header.uncompressedSize >= levelBytes else { throw DecodeFailure.corrupt("v2 page sizes disagree") }
      values = try codec.decompress(valueBytes, size: header.uncompressedSize - levelBytes)
    } else {
      values = Array(valueBytes)
    }
    var reader = ByteReader(values)
    try appendPage(count: count, definitions: definitions, repetitions: repetitions, encoding: header.encoding, &reader)
  }

  /// v1 levels: a 4-byte length, then the RLE/bit-packed hybrid; or, in old files, the deprecated
  /// BIT_PACKED encoding (no length, values packed most significant bit first). Absent when the
  /// maximum is 0.
  private func readLevelsV1(_ reader: inout ByteReader, maximum: Int, count: Int, bitPacked: Bool) throws -> [Int]? {
    guard maximum > 0 else { return nil }
    if bitPacked { return try ColumnChunkReader.decodeBitPackedLevels(&reader, maximum: maximum, count: count) }
    let length = try checkedCount(try reader.readInt32(), limit: reader.remaining, "level data length")
    return try decodeLevels(try reader.readBytes(length), maximum: maximum, count: count)
  }

  static func decodeBitPackedLevels(_ reader: inout ByteReader, maximum: Int, count: Int) throws -> [Int] {
    let width = bitWidth(forMaximum: maximum)
    let bytes = try reader.readBytes((count * width + 7) / 8)
    var levels: [Int] = []
    levels.reserveCapacity(count)
    for index in 0..<count {
      var value = 0
      for bit in (index * width)..<((index + 1) * width) {
        let byte = bytes[bytes.startIndex + bit / 8]
        value = value << 1 | Int((byte >> UInt8(7 - bit % 8)) & 1)
      }
      guard value <= maximum else { throw DecodeFailure.corrupt("bit-packed level \(value) above \(maximum)") }
      levels.append(value)
    }
    return levels
  }

  private func decodeLevels(_ bytes: ArraySlice<UInt8>, maximum: Int, count: Int) throws -> [Int]? {
    guard maximum > 0 else { return nil }
    var decoder = try HybridDecoder(ByteReader(Array(bytes)), bitWidth: bitWidth(forMaximum: maximum))
    return try decoder.decode(count: count, maximum: maximum)
  }

  private mutating func appendPage(count: Int, definitions: [Int]?, repetitions: [Int]?, encoding rawEncoding: Int,
                                   _ reader: inout ByteReader) throws {
    let present = definitions.map { levels in levels.reduce(0) { $0 + ($1 == leaf.maxDefinition ? 1 : 0) } } ?? count
    guard let encoding = ParquetEncoding(rawValue: rawEncoding) else {
      throw DecodeFailure.unsupported("value encoding \(rawEncoding)")
    }
    switch encoding {
    case .plainDictionary, .rleDictionary:
      guard let dictionary else { throw DecodeFailure.corrupt("dictionary-encoded page without a dictionary page") }
      let width = Int(try reader.readByte())
      var decoder = try HybridDecoder(reader, bitWidth: width)
      let indices = try decoder.decode(count: present, maximum: max(dictionary.count - 1, 0))
      guard !dictionary.isEmpty || present == 0 else { throw DecodeFailure.corrupt("index into an empty dictionary") }
      data.values.append(contentsOf: indices.map { dictionary[$0] })
    default:
      data.values.append(contentsOf: try ValueDecoder.decode(&reader, encoding: encoding, type: leaf.type, count: present))
    }
    if let definitions { data.definitions?.append(contentsOf: definitions) }
    if let repetitions { data.repetitions?.append(contentsOf: repetitions) }
    data.entryCount += count
  }
}
