import Foundation

/// A Parquet file, read row group by row group: only the requested columns' chunks are read from
/// disk, so memory stays bounded by one row group of those columns.
///
/// Supported: data pages v1 and v2, dictionary pages; PLAIN, PLAIN_DICTIONARY / RLE_DICTIONARY,
/// RLE (levels and booleans), DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY,
/// BYTE_STREAM_SPLIT; uncompressed, Snappy, gzip, Zstandard and LZ4 chunks; nested groups, lists
/// and maps at any depth. See docs/formats.md.
public final class ParquetFile: Sendable {
  /// Top-level column names in schema order.
  public let columnNames: [String]
  /// Rows in the whole file.
  public var rowCount: Int { metadata.rowCount }
  public var rowGroupCount: Int { metadata.rowGroups.count }
  /// Rows in each row group.
  public var rowGroupRowCounts: [Int] { metadata.rowGroups.map(\.rowCount) }

  private let name: String
  private let source: any ByteSource
  private let metadata: FileMetadata
  private let columns: [SchemaNode]
  private let leaves: [LeafColumn]

  /// Opens `url` and reads its footer; no column data is read yet.
  public convenience init(url: URL) throws {
    try self.init(source: try FileByteSource(url: url), name: url.path)
  }

  /// Reads a Parquet file held in memory; `name` is used in error messages.
  public convenience init(bytes: [UInt8], name: String = "<memory>") throws {
    try self.init(source: MemoryByteSource(bytes), name: name)
  }

  init(source: any ByteSource, name: String) throws {
    self.name = name
    self.source = source
    let (footer, footerStart) = try withLocation(file: name, "footer") { try ParquetFile.readFooter(source) }
    metadata = footer
    (columns, leaves) = try withLocation(file: name, "schema") { try SchemaBuilder.build(footer.schema) }
    columnNames = columns.map(\.name)
    try withLocation(file: name, "footer") { try validate(footerStart: footerStart) }
  }

  private static func readFooter(_ source: any ByteSource) throws -> (FileMetadata, Int) {
    guard source.size >= 12 else { throw DecodeFailure.corrupt("\(source.size) bytes is too short for Parquet") }
    let head = try source.read(offset: 0, count: 4)
    let tail = try source.read(offset: source.size - 8, count: 8)
    if tail.suffix(4) == Array("PARE".utf8) { throw DecodeFailure.unsupported("encrypted footer") }
    guard head == Array("PAR1".utf8), tail.suffix(4) == Array("PAR1".utf8) else {
      throw DecodeFailure.corrupt("missing PAR1 magic")
    }
    var lengthReader = ByteReader(tail)
    let length = try checkedCount(try lengthReader.readInt32(), limit: source.size - 12, "footer length")
    let footerStart = source.size - 8 - length
    let bytes = try source.read(offset: footerStart, count: length)
    return (try FileMetadata(thrift: bytes, fileSize: source.size), footerStart)
  }

  private func validate(footerStart: Int) throws {
    var total = 0
    for (index, group) in metadata.rowGroups.enumerated() {
      guard group.columns.count == leaves.count else {
        throw DecodeFailure.corrupt("row group \(index) has \(group.columns.count) column chunks for \(leaves.count) columns")
      }
      for (chunk, leaf) in zip(group.columns, leaves) {
        guard chunk.type == leaf.type.physical else {
          throw DecodeFailure.corrupt("row group \(index) column \(leaf.path.joined(separator: ".")) has type \(chunk.type)")
        }
        guard chunk.startOffset >= 4, chunk.compressedSize <= footerStart - chunk.startOffset else {
          throw DecodeFailure.corrupt("row group \(index) column \(leaf.path.joined(separator: ".")) lies outside the data")
        }
      }
      total = total.addingReportingOverflow(group.rowCount).partialValue
    }
    guard total == metadata.rowCount else {
      throw DecodeFailure.corrupt("row groups hold \(total) rows, the footer says \(metadata.rowCount)")
    }
  }

  /// Decodes the rows of one row group. `columns` are top-level column names (nil: all of them);
  /// each row maps those names to their values.
  public func readRows(rowGroup: Int, columns names: [String]?) throws -> [[String: FormatValue]] {
    let (nodes, values) = try readColumns(rowGroup: rowGroup, columns: names)
    let rowTotal = metadata.rowGroups[rowGroup].rowCount
    return (0..<rowTotal).map { row in
      var record: [String: FormatValue] = [:]
      for (node, column) in zip(nodes, values) { record[node.name] = column[row] }
      return record
    }
  }

  /// Decodes whole columns of one row group: for each requested top-level column, one value per row.
  public func readColumns(rowGroup: Int, columns names: [String]?) throws -> [String: [FormatValue]] {
    let (nodes, values) = try readColumns(rowGroup: rowGroup, columns: names)
    return Dictionary(zip(nodes.map(\.name), values), uniquingKeysWith: { first, _ in first })
  }

  private func readColumns(rowGroup: Int, columns names: [String]?) throws -> ([SchemaNode], [[FormatValue]]) {
    guard rowGroup >= 0, rowGroup < metadata.rowGroups.count else {
      throw FormatsError.indexOutOfRange(file: name, what: "row group", index: rowGroup, count: rowGroupCount)
    }
    let nodes = try selectColumns(names)
    let group = metadata.rowGroups[rowGroup]
    var values: [[FormatValue]] = []
    for node in nodes {
      let leafData = try node.leaves.map { try readChunk(group, rowGroup: rowGroup, leaf: $0) }
      let location = "row group \(rowGroup), column \(node.name)"
      values.append(try withLocation(file: name, location) {
        if node.isLeaf && node.repetition != .repeated, let data = leafData.first {
          return try RecordAssembler.flatColumn(data, maxDefinition: node.definitionLevel)
        }
        var assembler = RecordAssembler(firstLeaf: node.leaves.lowerBound, columns: leafData)
        return try (0..<group.rowCount).map { _ in try assembler.readField(node) }
      })
    }
    return (nodes, values)
  }

  private func selectColumns(_ names: [String]?) throws -> [SchemaNode] {
    guard let names else { return columns }
    return try names.map { wanted in
      guard let node = columns.first(where: { $0.name == wanted }) else {
        throw FormatsError.unknownColumn(file: name, column: wanted, available: columnNames)
      }
      return node
    }
  }

  private func readChunk(_ group: RowGroupMetadata, rowGroup: Int, leaf: Int) throws -> LeafData {
    let chunk = group.columns[leaf]
    let column = leaves[leaf]
    let path = column.path.joined(separator: ".")
    var pageOffset = chunk.startOffset
    let location = { "row group \(rowGroup), column \(path), page at byte \(pageOffset)" }
    if let external = chunk.externalFile {
      throw FormatsError.unsupported(file: name, location: location(), feature: "column data in external file \(external)")
    }
    let bytes = try withLocation(file: name, location()) {
      try source.read(offset: chunk.startOffset, count: chunk.compressedSize)
    }
    let data = try withLocation(file: name, location()) {
      var reader = try ColumnChunkReader(leaf: column, codec: chunk.codec)
      return try reader.readPages(bytes, entryCount: chunk.valueCount, chunkOffset: chunk.startOffset) { pageOffset = $0 }
    }
    try withLocation(file: name, "row group \(rowGroup), column \(path)") {
      try checkRowCount(data, rows: group.rowCount, maxRepetition: column.maxRepetition)
    }
    return data
  }

  /// Entries must describe exactly the row group's rows: one per row without repetition,
  /// otherwise one repetition level 0 per row (and the first entry starts a row).
  private func checkRowCount(_ data: LeafData, rows: Int, maxRepetition: Int) throws {
    guard let repetitions = data.repetitions else {
      guard data.entryCount == rows else { throw DecodeFailure.corrupt("\(data.entryCount) values for \(rows) rows") }
      return
    }
    let starts = repetitions.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }
    guard starts == rows, repetitions.first.map({ $0 == 0 }) ?? (rows == 0) else {
      throw DecodeFailure.corrupt("repetition levels start \(starts) rows, the row group has \(rows)")
    }
  }
}
