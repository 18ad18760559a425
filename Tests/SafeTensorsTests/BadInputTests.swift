import Foundation
import Testing

@testable import SafeTensors

/// A file image from a header text and a data section, with the 8-byte length prefix.
func fileImage(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
  let headerBytes = Array(header.utf8)
  let length = declaredLength ?? UInt64(headerBytes.count)
  return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) } + headerBytes + data
}

func parseImage(_ bytes: [UInt8]) throws(SafeTensorsError) -> SafeTensorsHeader {
  try SafeTensorsHeader.parse(fileBytes: bytes, path: "test.safetensors")
}

@Suite struct BadInputTests {
  let path = "test.safetensors"

  @Test func truncatedPrefix() {
    #expect(throws: SafeTensorsError.truncatedFile(path: path, size: 5)) { try parseImage([1, 2, 3, 4, 5]) }
    #expect(throws: SafeTensorsError.truncatedFile(path: path, size: 0)) { try parseImage([]) }
  }

  @Test func headerLongerThanFile() {
    let image = fileImage(header: "{}", declaredLength: 50)
    #expect(throws: SafeTensorsError.headerBeyondFile(path: path, headerLength: 50, fileSize: 10)) { try parseImage(image) }
  }

  @Test func absurdHeaderLength() {
    let image = fileImage(header: "{}", declaredLength: UInt64.max)
    #expect(throws: SafeTensorsError.headerTooLarge(path: path, length: UInt64.max)) { try parseImage(image) }
    let justOver = fileImage(header: "{}", declaredLength: 100_000_001)
    #expect(throws: SafeTensorsError.headerTooLarge(path: path, length: 100_000_001)) { try parseImage(justOver) }
  }

  @Test func nonUTF8Header() {
    var image = fileImage(header: "{\"a\":\"xx\"}")
    image[14] = 0xFF
    #expect(throws: SafeTensorsError.headerNotUTF8(path: path)) { try parseImage(image) }
    // An overlong encoding of '/' is not UTF-8 either.
    var overlong = fileImage(header: "{\"a\":\"xx\"}")
    overlong[14] = 0xC0
    overlong[15] = 0xAF
    #expect(throws: SafeTensorsError.headerNotUTF8(path: path)) { try parseImage(overlong) }
  }

  @Test(arguments: ["", "not json", "[1,2]", "{\"a\":}", "{\"a\":1,}", "{} x", "{\"a\":1,\"a\":2}", "\"str\""])
  func nonJSONOrWrongShape(header: String) {
    #expect(throws: SafeTensorsError.self) { try parseImage(fileImage(header: header)) }
    do {
      _ = try parseImage(fileImage(header: header))
    } catch {
      guard case .invalidHeader(let errorPath, _) = error else {
        Issue.record("expected invalidHeader, got \(error)")
        return
      }
      #expect(errorPath == path)
    }
  }

  @Test func unknownDType() {
    let image = fileImage(header: #"{"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}"#, data: [0])
    #expect(throws: SafeTensorsError.unknownDType(path: path, tensor: "w", dtype: "Q4")) { try parseImage(image) }
  }

  @Test func dtypeShapeSizeMismatch() {
    let image = fileImage(header: #"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#, data: Array(repeating: 0, count: 12))
    #expect(throws: SafeTensorsError.sizeMismatch(path: path, tensor: "w", expected: 16, actual: 12)) { try parseImage(image) }
  }

  @Test func offsetsPastEndOfFile() {
    let image = fileImage(header: #"{"w":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#, data: [1, 2])
    #expect(throws: SafeTensorsError.self) { try parseImage(image) }
    do { _ = try parseImage(image) } catch {
      guard case .invalidOffsets(_, let tensor, let reason) = error else { Issue.record("\(error)"); return }
      #expect(tensor == "w")
      #expect(reason.contains("past"))
    }
  }

  @Test func overlappingOffsets() {
    let header = #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#
    do { _ = try parseImage(fileImage(header: header, data: Array(repeating: 0, count: 6))) } catch {
      guard case .invalidOffsets(_, let tensor, let reason) = error else { Issue.record("\(error)"); return }
      #expect(tensor == "b")
      #expect(reason.contains("overlaps"))
      return
    }
    Issue.record("overlap accepted")
  }

  @Test func gapBetweenTensors() {
    let header = #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}"#
    do { _ = try parseImage(fileImage(header: header, data: Array(repeating: 0, count: 5))) } catch {
      guard case .invalidOffsets(_, let tensor, let reason) = error else { Issue.record("\(error)"); return }
      #expect(tensor == "b")
      #expect(reason.contains("gap"))
      return
    }
    Issue.record("gap accepted")
  }

  @Test func tensorsNotCoveringBuffer() {
    let image = fileImage(header: #"{"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#, data: [1, 2, 3])
    #expect(throws: SafeTensorsError.incompleteBuffer(path: path, covered: 2, dataSize: 3)) { try parseImage(image) }
  }

  @Test func reversedOffsets() {
    let image = fileImage(header: #"{"w":{"dtype":"U8","shape":[0],"data_offsets":[2,0]}}"#, data: [1, 2])
    #expect(throws: SafeTensorsError.self) { try parseImage(image) }
  }

  @Test func shapeOverflow() {
    let header = #"{"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#
    #expect(throws: SafeTensorsError.overflow(path: path, tensor: "w")) { try parseImage(fileImage(header: header, data: Array(repeating: 0, count: 8))) }
  }

  @Test(arguments: [
    #"{"w":{"shape":[1],"data_offsets":[0,1]}}"#, #"{"w":{"dtype":"U8","data_offsets":[0,1]}}"#,
    #"{"w":{"dtype":"U8","shape":[1]}}"#, #"{"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}"#,
    #"{"w":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}"#, #"{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}"#,
    #"{"w":[1]}"#, #"{"w":{"dtype":1,"shape":[1],"data_offsets":[0,1]}}"#,
    #"{"__metadata__":{"k":1},"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
  ])
  func malformedEntry(header: String) {
    #expect(throws: SafeTensorsError.self) { try parseImage(fileImage(header: header, data: [0])) }
  }

  @Test func validMinimalFiles() throws {
    let empty = try parseImage(fileImage(header: "{}"))
    #expect(empty.tensors.isEmpty)
    let spaced = try parseImage(fileImage(header: " { \"__metadata__\" : { \"format\" : \"pt\" } }   "))
    #expect(spaced.metadata == ["format": "pt"])
    // Keys in any order: the tensors are sorted by data offset.
    let header = #"{"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]},"a":{"dtype":"I16","shape":[],"data_offsets":[0,2]}}"#
    let parsed = try parseImage(fileImage(header: header, data: [1, 2, 3]))
    #expect(parsed.tensors.map(\.name) == ["a", "b"])
    #expect(parsed.tensors.map(\.byteRange) == [(8 + header.utf8.count)..<(10 + header.utf8.count), (10 + header.utf8.count)..<(11 + header.utf8.count)])
  }

  @Test func errorsNameFileAndTensor() throws {
    try withTemporaryDirectory { folder in
      let url = folder.appendingPathComponent("bad.safetensors")
      try Data(fileImage(header: #"{"layer.0.weight":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8))).write(to: url)
      do {
        _ = try SafeTensorsFile(url: url)
        Issue.record("accepted a bad file")
      } catch let error as SafeTensorsError {
        #expect(error.description.contains(url.path))
        #expect(error.description.contains("layer.0.weight"))
      }
      #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(url: folder.appendingPathComponent("missing.safetensors")) }
      #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(url: folder) }
    }
  }
}

@Suite struct HeaderJSONTests {
  func parse(_ text: String) throws -> HeaderJSON { try HeaderJSON.parse(Array(text.utf8)) }

  @Test func stringEscapes() throws {
    #expect(try parse(#""a\"b\\c\/d\n\t\u00e9\ud83d\ude00""#) == .string("a\"b\\c/d\n\té\u{1F600}"))
    #expect(throws: HeaderJSON.ParseError.self) { try parse(#""\ud83d""#) }
    #expect(throws: HeaderJSON.ParseError.self) { try parse(#""\x""#) }
    #expect(throws: HeaderJSON.ParseError.self) { try parse("\"a\nb\"") }
  }

  @Test func numbers() throws {
    #expect(try parse("18446744073709551615") == .number(text: "18446744073709551615", integer: .max))
    guard case .number(_, let tooBig) = try parse("18446744073709551616") else { Issue.record("not a number"); return }
    #expect(tooBig == nil)
    guard case .number(_, let fraction) = try parse("1.0") else { Issue.record("not a number"); return }
    #expect(fraction == nil)
    #expect(throws: HeaderJSON.ParseError.self) { try parse("01") }
    #expect(throws: HeaderJSON.ParseError.self) { try parse("1.") }
    #expect(throws: HeaderJSON.ParseError.self) { try parse("-") }
  }

  @Test func depthLimit() throws {
    #expect(throws: HeaderJSON.ParseError.self) { try parse(String(repeating: "[", count: 100_000)) }
    _ = try parse(String(repeating: "[", count: 60) + String(repeating: "]", count: 60))
  }

  @Test func serializationEscapesLikeSerdeJSON() {
    let value = HeaderJSON.object([("k\u{1}", .string("\"\\/\u{7f}é\n"))])
    #expect(value.serialized == "{\"k\\u0001\":\"\\\"\\\\/\u{7f}é\\n\"}")
  }
}
