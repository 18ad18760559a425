import Foundation

/// An Arrow IPC file: the stream format (what Hugging Face `save_to_disk` writes as
/// `data-*.arrow`) or the file format (`ARROW1` magic and footer). Batches are read one at a time
/// and only the buffers of the requested columns are read from disk.
///
/// Body compression: Zstandard and LZ4 frames. Dictionary-encoded columns are decoded to their
/// values (dictionary deltas and, in streams, replacements are followed). View types are not
/// supported (reading such a column throws); see docs/formats.md.
public final class ArrowIPCFile: Sendable {
  /// Top-level column names in schema order.
  public let columnNames: [String]
  /// Rows over all record batches.
  public var rowCount: Int { batches.reduce(0) { $0 + $1.length } }
  public var batchCount: Int { batches.count }
  /// Rows in each record batch.
  public var batchRowCounts: [Int] { batches.map(\.length) }

  let name: String
  let source: any ByteSource
  let fields: [ArrowField]
  let batches: [RecordBatchInfo]

  public convenience init(url: URL) throws {
    try self.init(source: try FileByteSource(url: url), name: url.path)
  }

  /// Reads an Arrow IPC file held in memory; `name` is used in error messages.
  public convenience init(bytes: [UInt8], name: String = "<memory>") throws {
    try self.init(source: MemoryByteSource(bytes), name: name)
  }

  init(source: any ByteSource, name: String) throws {
    self.name = name
    self.source = source
    var location = "start of file"
    let (schema, batches) = try withLocation(file: name, location) {
      let magic = Array("ARROW1".utf8)
      if source.size >= 6, try source.read(offset: 0, count: 6) == magic {
        return try ArrowIPCFile.readFileFormat(source) { location = $0 }
      }
      return try ArrowIPCFile.readStream(source) { location = $0 }
    }
    fields = schema
    self.batches = batches
    columnNames = schema.map(\.name)
  }

  /// Decodes the rows of one record batch; `columns` are top-level names (nil: all).
  public func readRows(batch: Int, columns names: [String]?) throws -> [[String: FormatValue]] {
    let columns = try readColumns(batch: batch, columns: names)
    return (0..<batches[batch].length).map { row in columns.mapValues { $0[row] } }
  }

  /// Decodes whole columns of one record batch: for each requested column, one value per row.
  public func readColumns(batch: Int, columns names: [String]?) throws -> [String: [FormatValue]] {
    guard batch >= 0, batch < batches.count else {
      throw FormatsError.indexOutOfRange(file: name, what: "record batch", index: batch, count: batchCount)
    }
    let wanted = names ?? columnNames
    var result: [String: [FormatValue]] = [:]
    for column in wanted {
      guard let index = columnNames.firstIndex(of: column) else {
        throw FormatsError.unknownColumn(file: name, column: column, available: columnNames)
      }
      let info = batches[batch]
      result[column] = try withLocation(file: name, "record batch \(batch) at byte \(info.bodyOffset), column \(column)") {
        var decoder = try BatchDecoder(info: info, source: source, fields: fields, column: index,
                                       dictionaries: info.dictionaries)
        let values = try decoder.decode(fields[index])
        guard values.count >= info.length else { throw DecodeFailure.corrupt("column has \(values.count) of \(info.length) rows") }
        return Array(values.prefix(info.length))
      }
    }
    return result
  }
}

/// Where a record batch's body lies and how its buffers are laid out (RecordBatch of Message.fbs).
struct RecordBatchInfo: Sendable {
  var length: Int
  var nodes: [(length: Int, nullCount: Int)]
  var buffers: [(offset: Int, length: Int)]
  var codec: Codec?
  var bodyOffset: Int
  var bodyLength: Int
  /// For a record batch: the dictionary batches in effect (per id, a base and its deltas).
  var dictionaries: [Int64: [RecordBatchInfo]] = [:]
}

// MARK: - Messages

extension ArrowIPCFile {
  /// Most rows a batch may declare beyond what its body could hold (null columns take no bytes).
  static let maximumEmptyRows = 1 << 20

  struct Message {
    var headerType: Int64
    var header: FlatTable?
    var bodyOffset: Int
    var bodyLength: Int
  }

  /// Reads the message at `offset` (continuation marker, length, Message flatbuffer); nil at the
  /// end-of-stream marker or the end of the data.
  static func readMessage(_ source: any ByteSource, at offset: Int) throws -> Message? {
    guard offset <= source.size - 4 else { return nil }
    var prefix = ByteReader(try source.read(offset: offset, count: 4))
    var length = Int(try prefix.readInt32())
    var metadataStart = offset + 4
    if length == -1 {  // continuation marker, then the length (format 0.15 and later)
      guard offset <= source.size - 8 else { return nil }
      var second = ByteReader(try source.read(offset: offset + 4, count: 4))
      length = Int(try second.readInt32())
      metadataStart += 4
    }
    if length == 0 { return nil }
    let size = try checkedCount(length, limit: source.size - metadataStart, "message metadata length")
    let message = try FlatTable(root: try source.read(offset: metadataStart, count: size))
    // Message: version (0), header_type (1), header (2), bodyLength (3).
    let bodyOffset = metadataStart + size
    let bodyLength = try checkedCount(try message.integer(3, width: 8), limit: source.size - bodyOffset, "message body length")
    return Message(headerType: try message.integer(1, width: 1, signed: false), header: try message.table(2),
                   bodyOffset: bodyOffset, bodyLength: bodyLength)
  }

  static func readStream(_ source: any ByteSource, location: (String) -> Void) throws
    -> ([ArrowField], [RecordBatchInfo])
  {
    var offset = 0
    var schema: [ArrowField]?
    var batches: [RecordBatchInfo] = []
    var dictionaries: [Int64: [RecordBatchInfo]] = [:]
    while true {
      location("message at byte \(offset)")
      guard let message = try readMessage(source, at: offset) else { break }
      switch message.headerType {
      case 1:
        guard schema == nil, let header = message.header else { throw DecodeFailure.corrupt("second or empty schema") }
        schema = try ArrowSchemaDecoder.fields(header)
      case 3:
        guard schema != nil else { throw DecodeFailure.corrupt("record batch before the schema") }
        var batch = try batchInfo(message, header: message.header)
        batch.dictionaries = dictionaries
        batches.append(batch)
      case 2: try addDictionary(message, to: &dictionaries)
      default: break  // tensors
      }
      offset = message.bodyOffset + message.bodyLength
    }
    guard let schema else { throw DecodeFailure.corrupt("no schema message") }
    return (schema, batches)
  }

  /// File format: magic, padding, stream, footer flatbuffer, footer length, magic.
  static func readFileFormat(_ source: any ByteSource, location: (String) -> Void) throws
    -> ([ArrowField], [RecordBatchInfo])
  {
    location("footer")
    guard source.size >= 18, try source.read(offset: source.size - 6, count: 6) == Array("ARROW1".utf8) else {
      throw DecodeFailure.corrupt("Arrow file without its closing ARROW1 magic")
    }
    var lengthReader = ByteReader(try source.read(offset: source.size - 10, count: 4))
    let length = try checkedCount(try lengthReader.readInt32(), limit: source.size - 18, "footer length")
    let footer = try FlatTable(root: try source.read(offset: source.size - 10 - length, count: length))
    // Footer: version (0), schema (1), dictionaries (2), recordBatches (3); Block is
    // { offset: long, metaDataLength: int (padded to 8), bodyLength: long }.
    guard let schemaTable = try footer.table(1) else { throw DecodeFailure.corrupt("footer without a schema") }
    let schema = try ArrowSchemaDecoder.fields(schemaTable)
    var dictionaries: [Int64: [RecordBatchInfo]] = [:]
    for block in try footer.int64Structs(2, fields: 3) {
      let offset = try checkedCount(block[0], limit: source.size, "dictionary batch offset")
      location("dictionary batch message at byte \(offset)")
      guard let message = try readMessage(source, at: offset), message.headerType == 2 else {
        throw DecodeFailure.corrupt("footer block does not point at a dictionary batch")
      }
      try addDictionary(message, to: &dictionaries)
    }
    let batches = try footer.int64Structs(3, fields: 3).map { block -> RecordBatchInfo in
      let offset = try checkedCount(block[0], limit: source.size, "record batch offset")
      location("record batch message at byte \(offset)")
      guard let message = try readMessage(source, at: offset), message.headerType == 3 else {
        throw DecodeFailure.corrupt("footer block does not point at a record batch")
      }
      var batch = try batchInfo(message, header: message.header)
      batch.dictionaries = dictionaries
      return batch
    }
    return (schema, batches)
  }

  /// DictionaryBatch: id (0), data (1: a RecordBatch), isDelta (2). A delta extends the
  /// dictionary with that id; otherwise it replaces it (stream format).
  static func addDictionary(_ message: Message, to dictionaries: inout [Int64: [RecordBatchInfo]]) throws {
    guard let header = message.header else { throw DecodeFailure.corrupt("dictionary batch without a header") }
    let id = try header.integer(0, width: 8)
    let data = try batchInfo(message, header: try header.table(1))
    if try header.bool(2) {
      dictionaries[id, default: []].append(data)
    } else {
      dictionaries[id] = [data]
    }
  }

  /// RecordBatch: length (0), nodes (1), buffers (2), compression (3: codec (0) LZ4_FRAME = 0, ZSTD = 1).
  static func batchInfo(_ message: Message, header: FlatTable?) throws -> RecordBatchInfo {
    guard let header else { throw DecodeFailure.corrupt("record batch without a header") }
    let rowLimit = message.bodyLength.multipliedReportingOverflow(by: 8).partialValue + maximumEmptyRows
    let length = try checkedCount(try header.integer(0, width: 8), limit: rowLimit, "record batch length")
    let nodes = try header.int64Structs(1, fields: 2).map { node in
      (length: try checkedCount(node[0], limit: rowLimit, "field node length"),
       nullCount: try checkedCount(node[1], limit: rowLimit, "field node null count"))
    }
    let buffers = try header.int64Structs(2, fields: 2).map { buffer in
      let offset = try checkedCount(buffer[0], limit: message.bodyLength, "buffer offset")
      return (offset: offset, length: try checkedCount(buffer[1], limit: message.bodyLength - offset, "buffer length"))
    }
    var codec: Codec?
    if let compression = try header.table(3) {
      switch try compression.integer(0, width: 1) {
      case 0: codec = .lz4Frame
      case 1: codec = .zstd
      case let other: throw DecodeFailure.corrupt("body compression codec \(other)")
      }
    }
    return RecordBatchInfo(length: length, nodes: nodes, buffers: buffers, codec: codec,
                           bodyOffset: message.bodyOffset, bodyLength: message.bodyLength)
  }
}
