/// The parts of Parquet's Thrift metadata (parquet.thrift of apache/parquet-format) this reader
/// uses. Field numbers in the `case` labels are those of parquet.thrift.
enum ParquetPhysicalType: Int, Sendable {
  case boolean = 0, int32 = 1, int64 = 2, int96 = 3, float = 4, double = 5, byteArray = 6, fixedLenByteArray = 7
}

enum ParquetRepetition: Int, Sendable {
  case required = 0, optional = 1, repeated = 2
}

/// The logical annotations that change how values are assembled or shown.
enum ParquetAnnotation: Sendable, Equatable {
  case none, string, list, map, unsignedInteger, float16
}

struct SchemaElement: Sendable {
  var type: ParquetPhysicalType?
  var typeLength = 0
  var repetition: ParquetRepetition = .required
  var name = ""
  var childCount = 0
  var annotation: ParquetAnnotation = .none
}

struct ColumnChunkMetadata: Sendable {
  var type: ParquetPhysicalType = .boolean
  var path: [String] = []
  var codec = 0
  var valueCount = 0
  var compressedSize = 0
  var dataPageOffset = 0
  var dictionaryPageOffset: Int?
  var externalFile: String?

  /// First byte of the chunk: its dictionary page when there is one.
  var startOffset: Int {
    if let dictionary = dictionaryPageOffset, dictionary > 0, dictionary < dataPageOffset { return dictionary }
    return dataPageOffset
  }
}

struct RowGroupMetadata: Sendable {
  var columns: [ColumnChunkMetadata] = []
  var rowCount = 0
}

struct FileMetadata: Sendable {
  var schema: [SchemaElement] = []
  var rowCount = 0
  var rowGroups: [RowGroupMetadata] = []
}

enum PageType: Int {
  case data = 0, index = 1, dictionary = 2, dataV2 = 3
}

struct PageHeader {
  var type = 0
  var uncompressedSize = 0
  var compressedSize = 0
  var valueCount = 0
  var encoding = 0
  // Data page v1 only: RLE (3) or the deprecated BIT_PACKED (4).
  var definitionLevelEncoding = 3
  var repetitionLevelEncoding = 3
  // Data page v2 only.
  var nullCount = 0
  var rowCount = 0
  var definitionLevelsLength = 0
  var repetitionLevelsLength = 0
  var isCompressed = true
}

// MARK: - Decoding

extension ThriftReader {
  /// An i32 field holding one of `E`'s raw values.
  mutating func readEnum<E: RawRepresentable>(_ type: WireType, as _: E.Type, _ what: String) throws -> E
  where E.RawValue == Int {
    let raw = try readInt(type)
    guard let value = E(rawValue: Int(truncatingIfNeeded: raw)) else { throw DecodeFailure.corrupt("\(what) is \(raw)") }
    return value
  }
}

extension FileMetadata {
  init(thrift bytes: [UInt8], fileSize: Int) throws {
    var reader = ThriftReader(ByteReader(bytes))
    var metadata = FileMetadata()
    try reader.readStruct { r, field in
      switch field.id {
      case 2: try r.readList(field.type) { r, _ in metadata.schema.append(try SchemaElement(&r)) }
      case 3: metadata.rowCount = try checkedCount(try r.readInt(field.type), limit: Int(Int64.max), "num_rows")
      case 4: try r.readList(field.type) { r, _ in metadata.rowGroups.append(try RowGroupMetadata(&r, fileSize)) }
      default: try r.skip(field.type)
      }
    }
    self = metadata
  }
}

extension SchemaElement {
  init(_ r: inout ThriftReader) throws {
    var element = SchemaElement()
    try r.readStruct { r, field in
      switch field.id {
      case 1: element.type = try r.readEnum(field.type, as: ParquetPhysicalType.self, "schema element type")
      case 2: element.typeLength = try r.readCount(field.type, "type_length")
      case 3: element.repetition = try r.readEnum(field.type, as: ParquetRepetition.self, "repetition_type")
      case 4: element.name = try r.readString(field.type)
      case 5: element.childCount = try r.readCount(field.type, "num_children")
      case 6: element.annotation = SchemaElement.annotation(convertedType: try r.readInt(field.type))
      case 10:
        let logical = try SchemaElement.annotation(logicalType: &r, field.type)
        if logical != .none { element.annotation = logical }
      default: try r.skip(field.type)
      }
    }
    self = element
  }

  /// ConvertedType: UTF8 = 0, MAP = 1, MAP_KEY_VALUE = 2, LIST = 3, ENUM = 4, UINT_* = 11...14, JSON = 19.
  static func annotation(convertedType: Int64) -> ParquetAnnotation {
    switch convertedType {
    case 0, 4, 19: return .string
    case 1, 2: return .map
    case 3: return .list
    case 11, 12, 13, 14: return .unsignedInteger
    default: return .none
    }
  }

  /// LogicalType union: STRING = 1, MAP = 2, LIST = 3, ENUM = 4, INTEGER = 10, JSON = 12, FLOAT16 = 15.
  static func annotation(logicalType r: inout ThriftReader, _ type: ThriftReader.WireType) throws -> ParquetAnnotation {
    guard type == .structure else { throw DecodeFailure.corrupt("logicalType is not a struct") }
    var annotation = ParquetAnnotation.none
    try r.readStruct { r, field in
      switch field.id {
      case 1, 4, 12: annotation = .string; try r.skip(field.type)
      case 2: annotation = .map; try r.skip(field.type)
      case 3: annotation = .list; try r.skip(field.type)
      case 15: annotation = .float16; try r.skip(field.type)
      case 10:
        var signed = true
        try r.readStruct { r, inner in
          if inner.id == 2 { signed = try r.readBool(inner.type) } else { try r.skip(inner.type) }
        }
        if !signed { annotation = .unsignedInteger }
      default: try r.skip(field.type)
      }
    }
    return annotation
  }
}

extension RowGroupMetadata {
  init(_ r: inout ThriftReader, _ fileSize: Int) throws {
    var group = RowGroupMetadata()
    try r.readStruct { r, field in
      switch field.id {
      case 1: try r.readList(field.type) { r, _ in group.columns.append(try ColumnChunkMetadata(&r, fileSize)) }
      case 3: group.rowCount = try checkedCount(try r.readInt(field.type), limit: Int(Int64.max), "row group num_rows")
      default: try r.skip(field.type)
      }
    }
    self = group
  }
}

extension ColumnChunkMetadata {
  init(_ r: inout ThriftReader, _ fileSize: Int) throws {
    var chunk = ColumnChunkMetadata()
    try r.readStruct { r, field in
      switch field.id {
      case 1: chunk.externalFile = try r.readString(field.type)
      case 3:
        guard field.type == .structure else { throw DecodeFailure.corrupt("meta_data is not a struct") }
        try chunk.readColumnMetadata(&r, fileSize)
      default: try r.skip(field.type)
      }
    }
    self = chunk
  }

  private mutating func readColumnMetadata(_ r: inout ThriftReader, _ fileSize: Int) throws {
    try r.readStruct { r, field in
      switch field.id {
      case 1: type = try r.readEnum(field.type, as: ParquetPhysicalType.self, "column chunk type")
      case 3: try r.readList(field.type) { r, element in path.append(try r.readString(element)) }
      case 4: codec = try r.readCount(field.type, "codec")
      case 5: valueCount = try checkedCount(try r.readInt(field.type), limit: Int(Int64.max), "num_values")
      case 7: compressedSize = try checkedCount(try r.readInt(field.type), limit: fileSize, "total_compressed_size")
      case 9: dataPageOffset = try checkedCount(try r.readInt(field.type), limit: fileSize, "data_page_offset")
      case 11: dictionaryPageOffset = try checkedCount(try r.readInt(field.type), limit: fileSize, "dictionary_page_offset")
      default: try r.skip(field.type)
      }
    }
  }
}

extension PageHeader {
  /// Parses a page header from the start of `reader`, leaving the cursor on the page's data.
  init(_ bytes: inout ByteReader) throws {
    var thrift = ThriftReader(bytes)
    var header = PageHeader()
    try thrift.readStruct { r, field in
      switch field.id {
      case 1: header.type = try r.readCount(field.type, "page type")
      case 2: header.uncompressedSize = try r.readCount(field.type, "uncompressed_page_size")
      case 3: header.compressedSize = try r.readCount(field.type, "compressed_page_size")
      case 5, 7: try header.readDataOrDictionary(&r, field.type)
      case 8: try header.readDataV2(&r, field.type)
      default: try r.skip(field.type)
      }
    }
    bytes = thrift.bytes
    self = header
  }

  /// DataPageHeader and DictionaryPageHeader both start with num_values (1) and encoding (2).
  private mutating func readDataOrDictionary(_ r: inout ThriftReader, _ type: ThriftReader.WireType) throws {
    guard type == .structure else { throw DecodeFailure.corrupt("page sub-header is not a struct") }
    try r.readStruct { r, field in
      switch field.id {
      case 1: valueCount = try r.readCount(field.type, "num_values")
      case 2: encoding = try r.readCount(field.type, "encoding")
      // Field 3 is is_sorted (bool) in a dictionary page header, the level encodings in a data page header.
      case 3 where field.type == .i32: definitionLevelEncoding = try r.readCount(field.type, "definition_level_encoding")
      case 4 where field.type == .i32: repetitionLevelEncoding = try r.readCount(field.type, "repetition_level_encoding")
      default: try r.skip(field.type)
      }
    }
  }

  private mutating func readDataV2(_ r: inout ThriftReader, _ type: ThriftReader.WireType) throws {
    guard type == .structure else { throw DecodeFailure.corrupt("data_page_header_v2 is not a struct") }
    try r.readStruct { r, field in
      switch field.id {
      case 1: valueCount = try r.readCount(field.type, "num_values")
      case 2: nullCount = try r.readCount(field.type, "num_nulls")
      case 3: rowCount = try r.readCount(field.type, "num_rows")
      case 4: encoding = try r.readCount(field.type, "encoding")
      case 5: definitionLevelsLength = try r.readCount(field.type, "definition_levels_byte_length")
      case 6: repetitionLevelsLength = try r.readCount(field.type, "repetition_levels_byte_length")
      case 7: isCompressed = try r.readBool(field.type)
      default: try r.skip(field.type)
      }
    }
  }
}
