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
    var base = 0
    for (group, rows) in file.rowGroupRowCounts.enumerated() {
      defer { base += rows }
      if let end = filter.endIndex, base >= end { return base }
      guard (base..<(base + rows)).contains(where: filter.wanted) else { continue }
      let decoded: [[String: FormatValue]]
      do { decoded = try file.readRows(rowGroup: group, columns: nil) } catch {
        throw DatasetError.invalidFile(url.path, reason: "row group \(group): \(error)")
      }
      for (offset, row) in decoded.enumerated() {
        let index = base + offset
        if let end = filter.endIndex, index >= end { return index }
        guard filter.wanted(index) else { continue }
        let item = RawRecordItem(
          location: RecordLocation(file: url.path, index: index), record: .success(ColumnarRows.rawRecord(row)))
        guard try body(index, item) else { return index + 1 }
      }
    }
    return base
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

  private func batch(_ file: ArrowIPCFile, _ index: Int) throws -> [[String: FormatValue]] {
    do { return try file.readRows(batch: index, columns: nil) } catch {
      throw DatasetError.invalidFile(url.path, reason: "record batch \(index): \(error)")
    }
  }

  func count() throws -> Int { try open().rowCount }

  func forEach(_ filter: IndexFilter, _ body: (Int, RawRecordItem) throws -> Bool) throws -> Int {
    let file = try open()
    var base = 0
    for (batchIndex, rows) in file.batchRowCounts.enumerated() {
      defer { base += rows }
      if let end = filter.endIndex, base >= end { return base }
      guard (base..<(base + rows)).contains(where: filter.wanted) else { continue }
      for (offset, row) in try batch(file, batchIndex).enumerated() {
        let index = base + offset
        if let end = filter.endIndex, index >= end { return index }
        guard filter.wanted(index) else { continue }
        let item = RawRecordItem(
          location: RecordLocation(file: url.path, index: index), record: .success(ColumnarRows.rawRecord(row)))
        guard try body(index, item) else { return index + 1 }
      }
    }
    return base
  }
}
