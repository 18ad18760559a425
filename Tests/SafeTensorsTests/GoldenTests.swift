import Foundation
import Testing

@testable import SafeTensors

/// Files written by the reference Python library (tools/golden/safetensors_fixtures.py).
enum Golden {
  static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

  struct Tensor {
    var dtype: String
    var shape: [Int]
    var bytes: [UInt8]
    var values: [Any]?
  }

  struct FileExpectation {
    var metadata: [String: String]
    var tensors: [String: Tensor]
    var header: String?
  }

  static func expectation(_ file: String) throws -> FileExpectation {
    let data = try Data(contentsOf: folder.appendingPathComponent("expected.json"))
    let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    let entry = try #require(root[file] as? [String: Any])
    let metadata = try #require(entry["metadata"] as? [String: String])
    let rawTensors = try #require(entry["tensors"] as? [String: [String: Any]])
    var tensors: [String: Tensor] = [:]
    for (name, raw) in rawTensors {
      let hex = try #require(raw["hex"] as? String)
      tensors[name] = Tensor(
        dtype: try #require(raw["dtype"] as? String), shape: try #require(raw["shape"] as? [Int]),
        bytes: try hexBytes(hex), values: raw["values"] as? [Any])
    }
    return FileExpectation(metadata: metadata, tensors: tensors, header: entry["header"] as? String)
  }

  static func hexBytes(_ hex: String) throws -> [UInt8] {
    let digits = Array(hex.utf8)
    return try stride(from: 0, to: digits.count, by: 2).map { index in
      try #require(UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16))
    }
  }

  static func fileBytes(_ name: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: folder.appendingPathComponent(name)))
  }
}

/// A fresh temporary folder removed when the test ends.
func withTemporaryDirectory(_ body: (URL) throws -> Void) throws {
  let url = FileManager.default.temporaryDirectory
    .appendingPathComponent("safetensors-tests-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(at: url) }
  try body(url)
}

@Suite struct GoldenReadTests {
  @Test(arguments: ["dtypes.safetensors", "names.safetensors"])
  func readsReferenceFile(fileName: String) throws {
    let expected = try Golden.expectation(fileName)
    let file = try SafeTensorsFile(url: Golden.folder.appendingPathComponent(fileName))
    #expect(file.metadata == expected.metadata)
    #expect(Set(file.names) == Set(expected.tensors.keys))
    #expect(file.names.count == expected.tensors.count)
    for (name, tensor) in expected.tensors {
      let info = try file.info(name)
      #expect(info.dtype.rawValue == tensor.dtype, "\(name)")
      #expect(info.shape == tensor.shape, "\(name)")
      #expect(Array(try file.bytes(name)) == tensor.bytes, "\(name)")
    }
  }

  @Test func fileOrderFollowsDataOffsets() throws {
    let file = try SafeTensorsFile(url: Golden.folder.appendingPathComponent("names.safetensors"))
    // The reference orders by dtype alignment descending, then by name bytes.
    #expect(file.names == ["Z", "a", "b", "a.10", "a.9", "model.layers.0.mlp.up_proj.weight", "zz", "\u{e9}t\u{e9}/x"])
    let ranges = file.tensors.map(\.byteRange)
    #expect(ranges.first?.lowerBound == file.header.dataStart)
    for (previous, next) in zip(ranges, ranges.dropFirst()) { #expect(previous.upperBound == next.lowerBound) }
  }

  @Test func decodesFloatingPointValues() throws {
    let expected = try Golden.expectation("dtypes.safetensors")
    let file = try SafeTensorsFile(url: Golden.folder.appendingPathComponent("dtypes.safetensors"))
    func doubles(_ name: String) throws -> [Double] {
      try #require(expected.tensors[name]?.values as? [Double])
    }
    #expect(try file.elements("f64", as: Double.self) == doubles("f64"))
    #expect(try file.elements("f32", as: Float.self).map(Double.init) == doubles("f32"))
    #expect(try file.elements("scalar", as: Float.self) == [42.5])
    #expect(try file.elements("empty", as: Float.self) == [])
    #if arch(x86_64) || arch(arm64)
      #expect(try file.elements("f16", as: Float16.self).map(Double.init) == doubles("f16"))
    #endif
    let bf16 = try file.elements("bf16", as: UInt16.self).map { Double(Float(bitPattern: UInt32($0) << 16)) }
    #expect(bf16 == (try doubles("bf16")))
  }

  @Test func decodesIntegerValues() throws {
    let expected = try Golden.expectation("dtypes.safetensors")
    let file = try SafeTensorsFile(url: Golden.folder.appendingPathComponent("dtypes.safetensors"))
    func text(_ name: String) throws -> [String] {
      try #require(expected.tensors[name]?.values).map { "\($0)" }
    }
    #expect(try file.elements("i64", as: Int64.self).map { "\($0)" } == text("i64"))
    #expect(try file.elements("u64", as: UInt64.self).map { "\($0)" } == text("u64"))
    #expect(try file.elements("i32", as: Int32.self).map { "\($0)" } == text("i32"))
    #expect(try file.elements("u32", as: UInt32.self).map { "\($0)" } == text("u32"))
    #expect(try file.elements("i16", as: Int16.self).map { "\($0)" } == text("i16"))
    #expect(try file.elements("u16", as: UInt16.self).map { "\($0)" } == text("u16"))
    #expect(try file.elements("i8", as: Int8.self).map { "\($0)" } == text("i8"))
    #expect(try file.elements("u8", as: UInt8.self).map { "\($0)" } == text("u8"))
    #expect(try file.elements("bool", as: Bool.self) == [true, false, true])
    #expect(try file.elements("f8_e4m3", as: UInt8.self) == [0x38, 0xC0])
    #expect(try file.elements("f8_e5m2", as: UInt8.self) == [0x3C, 0xC0])
  }

  @Test func elementSizeMismatchIsAnError() throws {
    let file = try SafeTensorsFile(url: Golden.folder.appendingPathComponent("dtypes.safetensors"))
    #expect(throws: SafeTensorsError.self) { try file.elements("f32", as: Double.self) }
    #expect(throws: SafeTensorsError.tensorNotFound(path: file.url.path, tensor: "nope")) { try file.info("nope") }
  }
}

@Suite struct GoldenWriteTests {
  /// Swift writes the same tensors; the bytes must equal the reference library's file.
  @Test(arguments: ["dtypes.safetensors", "names.safetensors"])
  func writerMatchesReferenceBytes(fileName: String) throws {
    let expected = try Golden.expectation(fileName)
    let tensors = try expected.tensors.map { name, tensor in
      TensorToWrite(
        name: name, dtype: try #require(TensorDType(rawValue: tensor.dtype)), shape: tensor.shape,
        bytes: tensor.bytes)
    }
    try withTemporaryDirectory { folder in
      let url = folder.appendingPathComponent(fileName)
      try SafeTensorsWriter.write(tensors.shuffled(), metadata: expected.metadata, to: url)
      let written = [UInt8](try Data(contentsOf: url))
      #expect(written == (try Golden.fileBytes(fileName)))
    }
  }

  @Test func headerTextMatchesReference() throws {
    let expected = try Golden.expectation("names.safetensors")
    let file = try SafeTensorsFile(url: Golden.folder.appendingPathComponent("names.safetensors"))
    let headerBytes = UnsafeRawBufferPointer(rebasing: file.mapping.bytes[8..<file.header.dataStart])
    #expect(String(decoding: headerBytes, as: UTF8.self) == expected.header)
  }
}
