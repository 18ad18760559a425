import Foundation
import Testing

@testable import Formats

/// Record assembly on schemas and levels written by hand, for the legacy list layouts pyarrow
/// does not write (parquet-format LogicalTypes.md, "Backward-compatibility rules").
@Suite struct AssemblyTests {
  static func element(_ name: String, _ repetition: ParquetRepetition, type: ParquetPhysicalType? = nil,
                      children: Int = 0, annotation: ParquetAnnotation = .none) -> SchemaElement {
    SchemaElement(type: type, typeLength: 0, repetition: repetition, name: name, childCount: children,
                  annotation: annotation)
  }

  static func ints(_ values: [Int64]) -> [FormatValue] { values.map { .int($0) } }

  @Test func repeatedPrimitiveIsAList() throws {
    // message { required int64 id; repeated int32 xs; } rows: xs = [1, 2], [], [3]
    let (columns, leaves) = try SchemaBuilder.build([
      Self.element("schema", .required, children: 2),
      Self.element("id", .required, type: .int64),
      Self.element("xs", .repeated, type: .int32),
    ])
    #expect(leaves.map(\.maxDefinition) == [0, 1])
    #expect(leaves.map(\.maxRepetition) == [0, 1])
    let xs = LeafData(definitions: [1, 1, 0, 1], repetitions: [0, 1, 0, 0], values: Self.ints([1, 2, 3]), entryCount: 4)
    var assembler = RecordAssembler(firstLeaf: 1, columns: [xs])
    let rows = try (0..<3).map { _ in try assembler.readField(columns[1]) }
    #expect(rows == [.list(Self.ints([1, 2])), .list([]), .list(Self.ints([3]))])
  }

  @Test func groupNamedArrayIsTheElement() throws {
    // optional group pts (LIST) { repeated group array { required int32 x; } }
    // rows: [{x: 5}, {x: 6}], null, []
    let (columns, leaves) = try SchemaBuilder.build([
      Self.element("schema", .required, children: 1),
      Self.element("pts", .optional, children: 1, annotation: .list),
      Self.element("array", .repeated, children: 1),
      Self.element("x", .required, type: .int32),
    ])
    #expect(leaves[0].maxDefinition == 2 && leaves[0].maxRepetition == 1)
    let x = LeafData(definitions: [2, 2, 0, 1], repetitions: [0, 1, 0, 0], values: Self.ints([5, 6]), entryCount: 4)
    var assembler = RecordAssembler(firstLeaf: 0, columns: [x])
    let rows = try (0..<3).map { _ in try assembler.readField(columns[0]) }
    #expect(rows == [.list([.record([("x", .int(5))]), .record([("x", .int(6))])]), .null, .list([])])
  }

  @Test func levelsEndingEarlyThrow() throws {
    let (columns, _) = try SchemaBuilder.build([
      Self.element("schema", .required, children: 1),
      Self.element("xs", .repeated, type: .int32),
    ])
    let xs = LeafData(definitions: [1, 1], repetitions: [0, 1], values: Self.ints([1]), entryCount: 2)
    var assembler = RecordAssembler(firstLeaf: 0, columns: [xs])
    #expect(throws: DecodeFailure.self) { try assembler.readField(columns[0]) }
  }

  @Test func schemaWithTooManyChildrenThrows() {
    #expect(throws: DecodeFailure.self) {
      try SchemaBuilder.build([Self.element("schema", .required, children: 3), Self.element("a", .required, type: .int32)])
    }
    #expect(throws: DecodeFailure.self) {
      try SchemaBuilder.build([Self.element("schema", .required, children: 1), Self.element("g", .optional, children: 0)])
    }
  }

  @Test func deprecatedBitPackedLevels() throws {
    // 1 0 1 1 0 0 0 1 | 1 1, most significant bit first: 0xB1, 0xC0.
    var reader = ByteReader([0xB1, 0xC0, 0x99])
    #expect(try ColumnChunkReader.decodeBitPackedLevels(&reader, maximum: 1, count: 10) == [1, 0, 1, 1, 0, 0, 0, 1, 1, 1])
    #expect(reader.remaining == 1)
  }

  @Test func openColumnarFileDetectsTheFormat() throws {
    let parquet = try openColumnarFile(url: Golden.url("hf_snappy.parquet"))
    #expect(parquet is ParquetFile)
    #expect(parquet.chunkRowCounts == [5, 4])
    let arrow = try openColumnarFile(url: Golden.url("hf_data-00000-of-00001.arrow"))
    #expect(arrow is ArrowIPCFile)
    #expect(arrow.rowCount == 9)
    // Same table in both formats: the same rows.
    let fromParquet = try parquet.readRows(chunk: 0, columns: ["solution"]) + (try parquet.readRows(chunk: 1, columns: ["solution"]))
    let fromArrow = try (0..<3).flatMap { try arrow.readRows(chunk: $0, columns: ["solution"]) }
    #expect(fromParquet == fromArrow)
    #expect(fromArrow.last?["solution"] == .string("<answer> 0 </answer>"))
  }
}
