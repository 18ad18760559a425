import Common
import Foundation

/// One record as read from a file, before its kind is known: JSON fields plus the embedded byte
/// strings of columnar files. A byte string sits in `fields` as `{"$blob": k}` and its bytes in
/// `blobs[k]`, so the JSON tree stays small and bytes are never base64-encoded on the way.
struct RawRecord: Sendable {
  var fields: [String: JSONValue]
  var blobs: [Data] = []

  static let blobKey = "$blob"

  /// The bytes referred to by a `{"$blob": k}` value, if `value` is one.
  func blob(_ value: JSONValue) -> Data? {
    guard let object = value.objectValue, object.count == 1, let index = object[Self.blobKey]?.intValue,
      blobs.indices.contains(index)
    else { return nil }
    return blobs[index]
  }
}

/// A record read from a data source, or the reason it could not be read.
struct RawRecordItem {
  var location: RecordLocation
  var record: Result<RawRecord, RecordProblem>
}

/// Which global record indices a pass wants, so readers can stop early.
struct IndexFilter {
  var wanted: (Int) -> Bool
  /// No index at or above this is wanted (nil: read to the end).
  var endIndex: Int?

  static var all: IndexFilter { IndexFilter(wanted: { _ in true }, endIndex: nil) }
}

/// A data file (or several) seen as a sequence of raw records.
protocol RecordReader {
  /// The file or pattern this reader was made for (for messages and summaries).
  var name: String { get }
  /// Number of records (may need a pass over the file: JSON lines are counted, not loaded).
  func count() throws -> Int
  /// Calls `body` for each wanted record in order; `body` returns false to stop. Returns the number
  /// of records passed over (all of them when the pass was not stopped early).
  @discardableResult
  func forEach(_ filter: IndexFilter, _ body: (Int, RawRecordItem) throws -> Bool) throws -> Int
}

/// Several readers read one after another with global indices (glob patterns, split shards).
struct ConcatenatedReader: RecordReader {
  var name: String
  var parts: [any RecordReader]

  func count() throws -> Int {
    try parts.reduce(0) { $0 + (try $1.count()) }
  }

  func forEach(_ filter: IndexFilter, _ body: (Int, RawRecordItem) throws -> Bool) throws -> Int {
    guard parts.count > 1 else { return try parts.first?.forEach(filter, body) ?? 0 }
    var offset = 0
    for part in parts {
      if let end = filter.endIndex, offset >= end { return offset }
      let base = offset
      let local = IndexFilter(
        wanted: { filter.wanted(base + $0) }, endIndex: filter.endIndex.map { max(0, $0 - base) })
      var stopped = false
      let passed = try part.forEach(local) { index, item in
        let keepGoing = try body(base + index, item)
        stopped = !keepGoing
        return keepGoing
      }
      offset += passed
      if stopped { return offset }
    }
    return offset
  }
}

// MARK: - JSON array

/// A JSON file holding an array of record objects (read whole: such files are small in practice).
struct JSONArrayReader: RecordReader {
  var url: URL
  var name: String { url.path }

  private func load() throws -> [JSONValue] {
    let data = try readFile(url)
    let value: JSONValue
    do { value = try JSONValue.parse(data) } catch {
      throw DatasetError.invalidFile(url.path, reason: "not valid JSON: \(JSONSyntax.describe(data, fallback: "a value cannot be decoded"))")
    }
    switch value {
    case .array(let records): return records
    case .object: return [value]
    default: throw DatasetError.invalidFile(url.path, reason: "expected a JSON array of records")
    }
  }

  func count() throws -> Int { try load().count }

  func forEach(_ filter: IndexFilter, _ body: (Int, RawRecordItem) throws -> Bool) throws -> Int {
    let records = try load()
    for (index, value) in records.enumerated() {
      if let end = filter.endIndex, index >= end { return index }
      guard filter.wanted(index) else { continue }
      let location = RecordLocation(file: url.path, index: index)
      let record: Result<RawRecord, RecordProblem> =
        value.objectValue.map { .success(RawRecord(fields: $0)) }
        ?? .failure(RecordProblem(.notAnObject, field: nil, "record is \(value.jsonString.prefix(60)), not an object"))
      guard try body(index, RawRecordItem(location: location, record: record)) else { return index + 1 }
    }
    return records.count
  }
}

// MARK: - JSON lines

/// A JSON-lines file, streamed in chunks: never held whole in memory. Blank lines are not records.
struct JSONLinesReader: RecordReader {
  var url: URL
  var name: String { url.path }

  func count() throws -> Int {
    var count = 0
    try LineStream.forEachLine(url) { _, line in
      if !LineStream.isBlank(line) { count += 1 }
      return true
    }
    return count
  }

  func forEach(_ filter: IndexFilter, _ body: (Int, RawRecordItem) throws -> Bool) throws -> Int {
    var index = 0
    try LineStream.forEachLine(url) { lineNumber, line in
      if LineStream.isBlank(line) { return true }
      if let end = filter.endIndex, index >= end { return false }
      defer { index += 1 }
      guard filter.wanted(index) else { return true }
      let location = RecordLocation(file: url.path, index: index)
      let record: Result<RawRecord, RecordProblem>
      do {
        let value = try JSONValue.parse(Data(line))
        record = value.objectValue.map { .success(RawRecord(fields: $0)) }
          ?? .failure(RecordProblem(.notAnObject, field: nil, "line \(lineNumber) is not a JSON object"))
      } catch {
        let column = JSONSyntax.firstProblem(Data(line)).map { ", column \($0.column): \($0.message)" } ?? ""
        record = .failure(RecordProblem(.malformedJSON, field: nil, "line \(lineNumber) is not valid JSON\(column)"))
      }
      return try body(index, RawRecordItem(location: location, record: record))
    }
    return index
  }
}

/// Reads a file line by line in fixed-size chunks (memory stays at one chunk plus one line).
enum LineStream {
  static let chunkSize = 1 << 20

  /// Calls `body(lineNumber, bytes)` for every line (1-based numbers, no newline, `\r` removed).
  static func forEachLine(
    _ url: URL, chunkSize: Int = LineStream.chunkSize, _ body: (Int, ArraySlice<UInt8>) throws -> Bool
  ) throws {
    let handle = try openForReading(url)
    defer { try? handle.close() }
    var buffer: [UInt8] = []
    var lineNumber = 0
    while true {
      let chunk = try readChunk(handle, url, upTo: chunkSize)
      let atEnd = chunk.isEmpty
      buffer.append(contentsOf: chunk)
      var start = 0
      while let newline = buffer[start...].firstIndex(of: 0x0A) {
        lineNumber += 1
        guard try body(lineNumber, trimCR(buffer[start..<newline])) else { return }
        start = newline + 1
      }
      if atEnd {
        if start < buffer.count {
          lineNumber += 1
          _ = try body(lineNumber, trimCR(buffer[start..<buffer.count]))
        }
        return
      }
      buffer.removeFirst(start)
    }
  }

  private static func trimCR(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
    line.last == 0x0D ? line.dropLast() : line
  }

  static func isBlank(_ line: ArraySlice<UInt8>) -> Bool {
    line.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
  }
}
