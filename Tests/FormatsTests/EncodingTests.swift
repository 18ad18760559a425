import Foundation
import Testing

@testable import Formats

/// Decoders checked on byte strings written by hand from the format documents.
@Suite struct EncodingTests {
  @Test func thriftSchemaElementSkipsUnknownFields() throws {
    let bytes: [UInt8] = [
      0x15, 0x02,  // field 1 (i32): type = INT32
      0x25, 0x02,  // field 3 (i32): repetition = OPTIONAL
      0x18, 0x02, 0x61, 0x62,  // field 4 (binary): name = "ab"
      0x05, 0x28, 0x0E,  // field 20 in long form (i32 = 7): unknown, skipped
      0x00,
    ]
    var reader = ThriftReader(ByteReader(bytes))
    let element = try SchemaElement(&reader)
    #expect(element.type == .int32)
    #expect(element.repetition == .optional)
    #expect(element.name == "ab")
    #expect(reader.bytes.isAtEnd)
  }

  @Test func thriftRefusesDeepNesting() {
    // Field 1 of type struct, nested 100 times: must throw, not overflow the stack.
    let bytes = [UInt8](repeating: 0x1C, count: 100) + [UInt8](repeating: 0, count: 101)
    var reader = ThriftReader(ByteReader(bytes))
    #expect(throws: DecodeFailure.self) { try reader.skip(.structure) }
  }

  @Test func hybridRunThenBitPacked() throws {
    // RLE run: 5 x value 4 (width 3 -> 1 byte value); then one bit-packed group of 0...7 (the
    // example of parquet-format Encodings.md: 10001000 11000110 11111010).
    let bytes: [UInt8] = [0x0A, 0x04, 0x03, 0x88, 0xC6, 0xFA]
    var decoder = try HybridDecoder(ByteReader(bytes), bitWidth: 3)
    #expect(try decoder.decode(count: 13, maximum: 7) == [4, 4, 4, 4, 4, 0, 1, 2, 3, 4, 5, 6, 7])
  }

  @Test func hybridRejectsValuesAboveTheMaximum() throws {
    var decoder = try HybridDecoder(ByteReader([0x04, 0x03]), bitWidth: 2)
    #expect(throws: DecodeFailure.self) { try decoder.decode(count: 2, maximum: 1) }
  }

  @Test func deltaBinaryPackedExamples() throws {
    // 1, 2, 3, 4, 5: block 128, 4 miniblocks, 5 values, first 1; min delta 1, all widths 0.
    var constant = ByteReader([0x80, 0x01, 0x04, 0x05, 0x02, 0x02, 0, 0, 0, 0])
    #expect(try DeltaDecoder.decode(&constant, limit: 5) == [1, 2, 3, 4, 5])
    #expect(constant.isAtEnd)
    // 7, 5, 3, 1, 2, 3, 4, 5: min delta -2, relative deltas 0 0 0 3 3 3 3 in 2 bits.
    let packed: [UInt8] = [0xC0, 0xFF, 0, 0, 0, 0, 0, 0]
    var mixed = ByteReader([0x80, 0x01, 0x04, 0x08, 0x0E, 0x03, 2, 0, 0, 0] + packed)
    #expect(try DeltaDecoder.decode(&mixed, limit: 8) == [7, 5, 3, 1, 2, 3, 4, 5])
    #expect(mixed.isAtEnd)
  }

  @Test func deltaRefusesMoreValuesThanAllowed() {
    var reader = ByteReader([0x80, 0x01, 0x04, 0x7F, 0x02])
    #expect(throws: DecodeFailure.self) { try DeltaDecoder.decode(&reader, limit: 10) }
  }

  @Test func lz4BlockWithOverlappingMatch() throws {
    // Literals "abc", match offset 3 length 6 (overlapping copy), then final literal "z".
    let block: [UInt8] = [0x32, 0x61, 0x62, 0x63, 0x03, 0x00, 0x10, 0x7A]
    #expect(try Codec.lz4Raw.decompress(block[...], size: 10) == Array("abcabcabcz".utf8))
    #expect(throws: DecodeFailure.self) { try Codec.lz4Raw.decompress(block[...], size: 9) }
    let badOffset: [UInt8] = [0x32, 0x61, 0x62, 0x63, 0x09, 0x00, 0x10, 0x7A]
    #expect(throws: DecodeFailure.self) { try Codec.lz4Raw.decompress(badOffset[...], size: 10) }
  }

  @Test func corruptCompressedDataThrows() {
    let garbage: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x01, 0x02, 0x03]
    #expect(throws: DecodeFailure.self) { try Codec.zstd.decompress(garbage[...], size: 100) }
    #expect(throws: DecodeFailure.self) { try Codec.snappy.decompress(garbage[...], size: 100) }
    #expect(throws: DecodeFailure.self) { try Codec.gzip.decompress(garbage[...], size: 100) }
  }

  @Test func levelBitWidths() {
    #expect([0, 1, 2, 3, 4, 7, 8].map { bitWidth(forMaximum: $0) } == [0, 1, 2, 2, 3, 3, 4])
  }

  @Test func recordEqualityKeepsFieldOrder() {
    let ab = FormatValue.record([("a", .int(1)), ("b", .null)])
    let ba = FormatValue.record([("b", .null), ("a", .int(1))])
    #expect(ab != ba)
    #expect(ab == .record([("a", .int(1)), ("b", .null)]))
    #expect(FormatValue.double(.nan) == .double(.nan))
    #expect(ab[field: "a"] == .int(1))
  }
}
