import Foundation
import Testing

@testable import Formats

@Suite struct ParquetGoldenTests {
  @Test func fixturesAreListed() {
    // Guards the parametrized tests below against an empty expected.json.
    #expect(Golden.parquetCases.count == 12)
  }

  @Test(arguments: Golden.parquetCases)
  func everyRowMatchesPyarrow(_ golden: Golden.ParquetCase) throws {
    let file = try ParquetFile(url: Golden.url(golden.file))
    #expect(file.columnNames == golden.columns)
    #expect(file.rowGroupCount == golden.rowGroups)
    #expect(file.rowGroupRowCounts == golden.rowGroupRows)
    #expect(file.rowCount == golden.rows.count)
    var rows: [[String: FormatValue]] = []
    for group in 0..<file.rowGroupCount {
      rows += try file.readRows(rowGroup: group, columns: nil)
    }
    try #require(rows.count == golden.rows.count)
    for (index, (row, expected)) in zip(rows, golden.rows).enumerated() {
      for column in golden.columns {
        #expect(row[column] == expected[column], "\(golden.file) row \(index) column \(column)")
      }
    }
  }

  @Test(arguments: Golden.parquetCases)
  func selectedColumnsOnly(_ golden: Golden.ParquetCase) throws {
    let file = try ParquetFile(url: Golden.url(golden.file))
    let wanted = [golden.columns.last!, golden.columns.first!]
    let rows = try file.readRows(rowGroup: file.rowGroupCount - 1, columns: wanted)
    let offset = golden.rowGroupRows.dropLast().reduce(0, +)
    #expect(rows.count == golden.rowGroupRows.last)
    for (index, row) in rows.enumerated() {
      #expect(Set(row.keys) == Set(wanted))
      for column in wanted { #expect(row[column] == golden.rows[offset + index][column]) }
    }
  }

  /// Row groups read at the same time from several tasks decode as they do one by one.
  @Test func concurrentRowGroupReads() async throws {
    let file = try ParquetFile(url: Golden.url("nested_snappy_v1.parquet"))
    let sequential = try (0..<file.rowGroupCount).map { try file.readRows(rowGroup: $0, columns: nil) }
    let concurrent = try await withThrowingTaskGroup(of: (Int, [[String: FormatValue]]).self) { group in
      for index in 0..<(file.rowGroupCount * 4) {
        group.addTask { (index % file.rowGroupCount, try file.readRows(rowGroup: index % file.rowGroupCount, columns: nil)) }
      }
      return try await group.reduce(into: []) { $0.append($1) }
    }
    #expect(concurrent.count == file.rowGroupCount * 4)
    for (index, rows) in concurrent { #expect(rows == sequential[index]) }
  }

  @Test func unknownColumnAndRowGroupAreNamed() throws {
    let file = try ParquetFile(url: Golden.url("hf_snappy.parquet"))
    #expect(throws: FormatsError.unknownColumn(file: Golden.url("hf_snappy.parquet").path, column: "answer",
                                                available: ["image", "problem", "solution"])) {
      try file.readRows(rowGroup: 0, columns: ["answer"])
    }
    #expect(throws: FormatsError.indexOutOfRange(file: Golden.url("hf_snappy.parquet").path, what: "row group",
                                                  index: 2, count: 2)) {
      try file.readRows(rowGroup: 2, columns: nil)
    }
  }

  /// Values typed in by hand from the script's tables, independent of pyarrow's read-back.
  @Test func huggingFaceImageStruct() throws {
    let file = try ParquetFile(url: Golden.url("hf_snappy.parquet"))
    let rows = try file.readRows(rowGroup: 1, columns: ["image", "solution"])
    #expect(rows.count == 4)
    // Row 5 of the table: tiny_png(5) = PNG signature + bytes (5*31 + k) % 256 for k in 0..<6.
    let expectedBytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + (0..<6).map { UInt8((155 + $0) % 256) }
    #expect(rows[0]["image"] == .record([("bytes", .bytes(expectedBytes)), ("path", .null)]))
    #expect(rows[0]["solution"] == .string("<answer> 1 </answer>"))
    #expect(rows[0]["image"]?[field: "bytes"]?.bytesValue?.count == 14)
  }

  @Test func nestedListsByHand() throws {
    let file = try ParquetFile(url: Golden.url("nested_snappy_v1.parquet"))
    let first = try file.readRows(rowGroup: 0, columns: ["words", "numbers", "grid", "mapping"])
    #expect(first[0]["words"] == .list([.string("a"), .string("bb")]))
    #expect(first[1]["words"] == .list([]))
    #expect(first[2]["words"] == .null)
    #expect(first[0]["numbers"] == .list([.int(1), .int(2), .int(3)]))
    #expect(first[0]["grid"] == .list([.list([.int(1), .int(2)]), .list([.int(3)])]))
    #expect(first[0]["mapping"] == .list([.record([("key", .string("k1")), ("value", .int(1))])]))
    let second = try file.readRows(rowGroup: 1, columns: ["words", "grid", "people"])
    #expect(second[0]["words"] == .list([.string("x"), .null, .string("z")]))
    #expect(second[1]["grid"] == .list([.null, .list([.int(5), .null])]))
    #expect(second[0]["people"] == .list([
      .record([("name", .null), ("tags", .list([]))]),
      .record([("name", .string("bo")), ("tags", .null)]),
    ]))
    #expect(second[1]["people"] == .list([.null]))
  }
}
