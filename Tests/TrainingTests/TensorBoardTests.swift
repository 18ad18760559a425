import Foundation
import Testing
@testable import Training

@Suite struct TensorBoardTests {
  static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/tensorboard/events.out.tfevents.1700000000.fixture")

  @Test func crc32cKnownAnswers() {
    // RFC 3720 (iSCSI) appendix B.4 vectors and the common "123456789" check value.
    #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
    #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
    #expect(CRC32C.checksum((0..<32).reversed().map { UInt8($0) }) == 0x113F_DB5C)
    #expect(CRC32C.checksum([]) == 0)
  }

  @Test func protobufWireFormatByHand() {
    #expect(TensorBoardEvent.varint(0) == [0x00])
    #expect(TensorBoardEvent.varint(300) == [0xAC, 0x02])
    #expect(TensorBoardEvent.varint(UInt64.max).count == 10)
    // Event{wall_time=0, step=1, summary{value{tag="a", simple_value=1}}}
    let expected: [UInt8] = [0x09] + [UInt8](repeating: 0, count: 8) + [0x10, 0x01, 0x2A, 0x0A, 0x0A, 0x08,
                                                                         0x0A, 0x01, 0x61, 0x15, 0x00, 0x00, 0x80, 0x3F]
    #expect(TensorBoardEvent.scalars([("a", 1.0)], step: 1, wallTime: 0) == expected)
    // The version record: wall_time 0, step 0, file_version "brain.Event:2" (13 bytes).
    #expect(Array(TensorBoardEvent.fileVersion(wallTime: 0).suffix(15)) == [0x1A, 0x0D] + Array("brain.Event:2".utf8))
  }

  @Test func recordFramingLayout() {
    let payload: [UInt8] = [1, 2, 3]
    let record = TFRecord.frame(payload)
    #expect(record.count == 8 + 4 + 3 + 4)
    #expect(Array(record[0..<8]) == [3, 0, 0, 0, 0, 0, 0, 0])
    #expect(Array(record[12..<15]) == payload)
  }

  /// Writes the fixture's content: three logging steps of a few metrics at fixed wall times.
  static func writeSample(to directory: URL, name: String) throws -> URL {
    let writer = try TensorBoardWriter(directory: directory, fileName: name, wallTime: 1_700_000_000.5)
    let rows: [[(tag: String, value: Double)]] = [
      [("loss", 0.5), ("reward", -1.25), ("rewards/format/mean", 0.125), ("kl", 3)],
      [("loss", 0.25), ("reward", 0.75), ("rewards/format/mean", 0.5), ("kl", 2.5)],
      [("loss", -0.125), ("reward", 1.5), ("rewards/format/mean", 1), ("kl", .nan)],
    ]
    for (index, row) in rows.enumerated() {
      try writer.add(row, step: (index + 1) * 4, wallTime: 1_700_000_001 + Double(index))
    }
    writer.close()
    return writer.url
  }

  @Test func writerBytesMatchTheCommittedFixture() throws {
    // The fixture was written by this writer and checked with the tensorboard package
    // (tools/verify_tensorboard.py); VLMRL_REGENERATE_FIXTURES=1 rewrites it.
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-tb-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let written = try Self.writeSample(to: folder, name: Self.fixture.lastPathComponent)
    let bytes = try Data(contentsOf: written)
    if ProcessInfo.processInfo.environment["VLMRL_REGENERATE_FIXTURES"] == "1" {
      try FileManager.default.createDirectory(at: Self.fixture.deletingLastPathComponent(), withIntermediateDirectories: true)
      try bytes.write(to: Self.fixture)
    }
    let committed = try Data(contentsOf: Self.fixture)
    #expect(bytes == committed)
  }

  @Test func defaultFileNameIsTensorBoardsPattern() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-tb-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let writer = try TensorBoardWriter(directory: folder, wallTime: 1_234_567_890)
    #expect(writer.url.lastPathComponent.hasPrefix("events.out.tfevents.1234567890."))
    try writer.add(["b": 2, "a": 1], step: 1, wallTime: 0)
    writer.close()
    let size = try FileManager.default.attributesOfItem(atPath: writer.url.path)[.size] as? Int
    // Version record: 8 + 4 + (9 + 2 + 15) + 4; one event of two 8-byte values: 8 + 4 + (9 + 2 + 2 + 20) + 4.
    #expect(size == 42 + 49)
  }
}
