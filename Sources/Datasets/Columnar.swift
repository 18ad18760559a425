import Common
import Foundation
import Formats

/// Converts a Parquet / Arrow row to a raw record: byte strings go to `blobs` (see `RawRecord`).
enum ColumnarRows {
  static func rawRecord(_ row: [String: FormatValue]) -> RawRecord {
    var record = RawRecord(fields: [:])
    for (name, value) in row { record.fields[name] = json(value, blobs: &record.blobs) }
    return record
  }

  static func json(_ value: FormatValue, blobs: inout [Data]) -> JSONValue {
    switch value {
    case .null: return .null
    case .bool(let flag): return .bool(flag)
    case .int(let number): return .int(Int(truncatingIfNeeded: number))
    case .double(let number): return .double(number)
    case .string(let text): return .string(text)
    case .bytes(let bytes):
      blobs.append(Data(bytes))
      return .object([RawRecord.blobKey: .int(blobs.count - 1)])
    case .list(let items): return .array(items.map { json($0, blobs: &blobs) })
    case .record(let fields):
      var object: [String: JSONValue] = [:]
      for (name, field) in fields { object[name] = json(field, blobs: &blobs) }
      return .object(object)
    }
  }

  /// The pass shared by Parquet row groups and Arrow record batches: chunks without wanted rows
  /// are not decoded. Returns the records passed over (see `RecordReader.forEach`).
  static func forEachRow(
    path: String, chunkRowCounts: [Int], _ filter: IndexFilter, _ body: (Int, RawRecordItem) throws -> Bool,
    readChunk: (Int) throws -> [[String: FormatValue]]
  ) throws -> Int {
    var base = 0
    for (chunk, rows) in chunkRowCounts.enumerated() {
      defer { base += rows }
      if let end = filter.endIndex, base >= end { return base }
      guard (base..<(base + rows)).contains(where: filter.wanted) else { continue }
      for (offset, row) in try readChunk(chunk).enumerated() {
        let index = base + offset
        if let end = filter.endIndex, index >= end { return index }
        guard filter.wanted(index) else { continue }
        let item = RawRecordItem(location: RecordLocation(file: path, index: index), record: .success(rawRecord(row)))
        guard try body(index, item) else { return index + 1 }
      }
    }
    return base
  }
}

/// One Parquet file, read row group by row group (only groups that hold wanted rows are decoded).
struct ParquetReader: RecordReader {
  var url: URL
  var name: String { url.path }

  private func open() throws -> ParquetFile {
    guard FileManager.default.fileExists(atPath: url.path) else { throw DatasetError.fileNotFound(url.path) }
    do { return try ParquetFile(url: url) } catch {
      throw DatasetError.invalidFile(url.path, reason: "\(error)")
    }
  }

  func count() throws -> Int { try open().rowCount }

  func forEach(_ filter: IndexFilter, _ body: (Int, RawRecordItem) throws -> Bool) throws -> Int {
    let file = try open()
    return try ColumnarRows.forEachRow(
      path: url.path, chunkRowCounts: file.rowGroupRowCounts, filter, body
    ) { group in
      do { return try file.readRows(rowGroup: group, columns: nil) } catch {
        throw DatasetError.invalidFile(url.path, reason: "row group \(group): \(error)")
      }
    }
  }
}

/// One Arrow IPC file (the `data-*.arrow` shards of a Hugging Face `save_to_disk` folder).
struct ArrowReader: RecordReader {
  var url: URL
  var name: String { url.path }

  private func open() throws -> ArrowIPCFile {
    guard FileManager.default.fileExists(atPath: url.path) else { throw DatasetError.fileNotFound(url.path) }
    do { return try ArrowIPCFile(url: url) } catch {
      throw DatasetError.invalidFile(url.path, reason: "\(error)")
    }
  }

  func count() throws -> Int { try open().rowCount }

  func forEach(_ filter: IndexFilter, _ body: (Int, RawRecordItem) throws -> Bool) throws -> Int {
    let file = try open()
    return try ColumnarRows.forEachRow(
      path: url.path, chunkRowCounts: file.batchRowCounts, filter, body
    ) { batch in
      do { return try file.readRows(batch: batch, columns: nil) } catch {
        throw DatasetError.invalidFile(url.path, reason: "record batch \(batch): \(error)")
      }
    }
  }
}
