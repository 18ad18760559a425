import Foundation
import Testing

@testable import Formats

@Suite struct ArrowGoldenTests {
  @Test func fixturesAreListed() {
    #expect(Golden.arrowCases.count == 8)
  }

  @Test(arguments: Golden.arrowCases)
  func everyRowMatchesPyarrow(_ golden: Golden.ArrowCase) throws {
    let file = try ArrowIPCFile(url: Golden.url(golden.file))
    #expect(file.columnNames == golden.columns)
    #expect(file.batchCount == golden.batches)
    #expect(file.batchRowCounts == golden.batchRows)
    #expect(file.rowCount == golden.rows.count)
    var rows: [[String: FormatValue]] = []
    for batch in 0..<file.batchCount {
      rows += try file.readRows(batch: batch, columns: nil)
    }
    try #require(rows.count == golden.rows.count)
    for (index, (row, expected)) in zip(rows, golden.rows).enumerated() {
      #expect(row.count == golden.columns.count)
      for column in golden.columns {
        #expect(row[column] == expected[column], "\(golden.file) row \(index) column \(column)")
      }
    }
  }

  @Test(arguments: Golden.arrowCases)
  func selectedColumnsOnly(_ golden: Golden.ArrowCase) throws {
    let file = try ArrowIPCFile(url: Golden.url(golden.file))
    let wanted = [golden.columns.last!]
    let rows = try file.readRows(batch: file.batchCount - 1, columns: wanted)
    let offset = golden.batchRows.dropLast().reduce(0, +)
    #expect(rows.count == golden.batchRows.last)
    for (index, row) in rows.enumerated() {
      #expect(Array(row.keys) == wanted)
      #expect(row[wanted[0]] == golden.rows[offset + index][wanted[0]])
    }
  }

  /// Values typed in by hand from the script's tables.
  @Test func huggingFaceSaveToDiskShard() throws {
    let file = try ArrowIPCFile(url: Golden.url("hf_data-00000-of-00001.arrow"))
    #expect(file.columnNames == ["image", "problem", "solution"])
    #expect(file.batchRowCounts == [4, 4, 1])
    let rows = try file.readRows(batch: 2, columns: ["problem", "image"])
    let expectedBytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + (0..<5).map { UInt8(248 + $0) }  // 5 + 8 % 4 bytes
    #expect(rows == [[
      "problem": .string("How many objects are there? (8)"),
      "image": .record([("bytes", .bytes(expectedBytes)), ("path", .null)]),
    ]])
  }

  @Test func arrowOnlyTypesByHand() throws {
    let file = try ArrowIPCFile(url: Golden.url("extra_stream.arrow"))
    let rows = try file.readRows(batch: 0, columns: nil) + (try file.readRows(batch: 1, columns: nil))
    #expect(rows[0]["half"] == .double(0.5))
    #expect(rows[2]["half"] == .double(65504))
    #expect(rows[1]["day"] == .int(400))
    #expect(rows[1]["fsl"] == .null)
    #expect(rows[2]["fsl"] == .list([.double(3.5), .double(-1)]))
    #expect(rows[2]["ll"] == .null)
    #expect(rows[3]["ll"] == .list([.int(2), .int(3)]))
    #expect(rows[2]["u64"] == .int(Int64.max))
    #expect(rows[0]["ls"] == .string("α"))
  }

  /// The second batch indexes a value that only its dictionary delta adds; the third batch's
  /// dictionary replaces the first.
  @Test func dictionaryDeltaAndReplacement() throws {
    let file = try ArrowIPCFile(url: Golden.url("dictionary_stream.arrow"))
    #expect(try file.readColumns(batch: 0, columns: ["word"])["word"] == [.string("cat"), .string("dog"), .null, .string("cat")])
    #expect(try file.readColumns(batch: 1, columns: ["word"])["word"] == [.string("bird"), .string("bird"), .string("dog")])
    #expect(try file.readColumns(batch: 2, columns: ["word", "n"]) == ["word": [.string("zebra"), .null], "n": [.int(0), .int(1)]])
  }

  @Test func unsupportedColumnIsNamedAndLaterColumnsStillRead() throws {
    let url = Golden.url("union_stream.arrow")
    let file = try ArrowIPCFile(url: url)
    #expect(try file.readColumns(batch: 0, columns: ["x"]) == ["x": [.int(10), .int(20), .int(30)]])
    let error = #expect(throws: FormatsError.self) { try file.readColumns(batch: 0, columns: ["u"]) }
    guard case .unsupported(let name, let location, let feature) = error else {
      Issue.record("expected .unsupported, got \(String(describing: error))")
      return
    }
    #expect(name == url.path)
    #expect(location.hasPrefix("record batch 0 at byte ") && location.hasSuffix(", column u"))
    #expect(feature == "sparse Union column u")
  }

  @Test func halfFloatConversion() {
    #expect(halfToDouble(0x3C00) == 1)
    #expect(halfToDouble(0xC000) == -2)
    #expect(halfToDouble(0x0001) == 0x1p-24)
    #expect(halfToDouble(0x7C00) == .infinity)
    #expect(halfToDouble(0x7E00).isNaN)
  }

  @Test func outOfRangeBatchAndUnknownColumn() throws {
    let url = Golden.url("nested_stream.arrow")
    let file = try ArrowIPCFile(url: url)
    #expect(throws: FormatsError.indexOutOfRange(file: url.path, what: "record batch", index: 3, count: 3)) {
      try file.readRows(batch: 3, columns: nil)
    }
    #expect(throws: FormatsError.self) { try file.readRows(batch: 0, columns: ["nope"]) }
  }
}
