import Foundation

/// What Parquet and Arrow IPC files have in common: named top-level columns, and rows stored in
/// chunks (row groups, record batches) that are read one at a time.
public protocol ColumnarFile: Sendable {
  /// Top-level column names in schema order.
  var columnNames: [String] { get }
  /// Rows in the whole file.
  var rowCount: Int { get }
  /// Rows in each chunk; `readRows(chunk:columns:)` accepts `0..<chunkRowCounts.count`.
  var chunkRowCounts: [Int] { get }
  /// Decodes one chunk; `columns` are top-level names (nil: all).
  func readRows(chunk: Int, columns: [String]?) throws -> [[String: FormatValue]]
}

extension ParquetFile: ColumnarFile {
  public var chunkRowCounts: [Int] { rowGroupRowCounts }
  public func readRows(chunk: Int, columns: [String]?) throws -> [[String: FormatValue]] {
    try readRows(rowGroup: chunk, columns: columns)
  }
}

extension ArrowIPCFile: ColumnarFile {
  public var chunkRowCounts: [Int] { batchRowCounts }
  public func readRows(chunk: Int, columns: [String]?) throws -> [[String: FormatValue]] {
    try readRows(batch: chunk, columns: columns)
  }
}

/// Opens a Parquet (`PAR1` magic) or Arrow IPC file (file format or stream), whatever its extension.
public func openColumnarFile(url: URL) throws -> any ColumnarFile {
  let source = try FileByteSource(url: url)
  let head = source.size >= 4 ? try withLocation(file: url.path, "start of file") { try source.read(offset: 0, count: 4) } : []
  if head == Array("PAR1".utf8) { return try ParquetFile(source: source, name: url.path) }
  return try ArrowIPCFile(source: source, name: url.path)
}
