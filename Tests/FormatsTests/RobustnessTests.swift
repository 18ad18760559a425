import Foundation
import Testing

@testable import Formats

/// Corrupt and truncated files must throw a `FormatsError`: never crash, hang or read out of bounds.
@Suite(.timeLimit(.minutes(10))) struct RobustnessTests {
  /// SplitMix64: a seeded generator so every run mutates the same way.
  struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
  }

  static let parquetFiles = Golden.parquetCases.map(\.file)
  /// FNV-1a of the fixture name: each fixture gets its own mutation sequence.
  static func nameSeed(_ name: String) -> UInt64 {
    name.utf8.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
  }
  /// Mutations per fixture; FORMATS_FUZZ_CASES raises it for a longer search.
  static let cases = Int(ProcessInfo.processInfo.environment["FORMATS_FUZZ_CASES"] ?? "") ?? 300
  /// FORMATS_FUZZ_SEED changes the mutations.
  static let seed = UInt64(ProcessInfo.processInfo.environment["FORMATS_FUZZ_SEED"] ?? "") ?? 0
  static let arrowFiles = Golden.arrowCases.map(\.file)

  /// One mutation: byte changes anywhere or in `focus`, interesting values, truncation, deletion, duplication.
  static func mutate(_ original: [UInt8], focus: Range<Int>, _ rng: inout SeededGenerator) -> [UInt8] {
    var bytes = original
    let interesting: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x0F, 0xF0]
    switch Int.random(in: 0..<6, using: &rng) {
    case 0:
      for _ in 0..<Int.random(in: 1...4, using: &rng) {
        bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
      }
    case 1, 2:
      for _ in 0..<Int.random(in: 1...3, using: &rng) {
        let position = Int.random(in: focus, using: &rng)
        bytes[position] = Bool.random(using: &rng) ? interesting.randomElement(using: &rng)! : bytes[position] ^ 0x40
      }
    case 3:
      bytes.removeLast(Int.random(in: 1..<bytes.count, using: &rng))
    case 4:
      let start = Int.random(in: 0..<bytes.count, using: &rng)
      bytes.removeSubrange(start..<min(bytes.count, start + Int.random(in: 1...16, using: &rng)))
    default:
      let start = Int.random(in: 0..<bytes.count, using: &rng)
      let piece = bytes[start..<min(bytes.count, start + Int.random(in: 1...16, using: &rng))]
      bytes.insert(contentsOf: piece, at: Int.random(in: 0..<bytes.count, using: &rng))
    }
    return bytes
  }

  /// Opens and reads every row; returns whether it threw. Any error other than FormatsError fails.
  static func readAll(parquet bytes: [UInt8]) -> Bool {
    do {
      let file = try ParquetFile(bytes: bytes, name: "fuzz.parquet")
      for group in 0..<file.rowGroupCount { _ = try file.readRows(rowGroup: group, columns: nil) }
      return false
    } catch {
      #expect(error is FormatsError, "\(error)")
      return true
    }
  }

  static func readAll(arrow bytes: [UInt8]) -> Bool {
    do {
      let file = try ArrowIPCFile(bytes: bytes, name: "fuzz.arrow")
      for batch in 0..<file.batchCount { _ = try file.readRows(batch: batch, columns: nil) }
      return false
    } catch {
      #expect(error is FormatsError, "\(error)")
      return true
    }
  }

  @Test(arguments: parquetFiles)
  func parquetMutations(_ name: String) throws {
    let original = try Golden.bytes(name)
    let footerLength = Int(original[original.count - 8]) | Int(original[original.count - 7]) << 8
    let footer = (original.count - 8 - footerLength)..<(original.count - 8)
    var rng = SeededGenerator(state: Self.nameSeed(name) &+ Self.seed)
    var thrown = 0
    let cases = Self.cases
    for index in 0..<cases {
      // Half the cases hit the footer (Thrift metadata), half the pages.
      let focus = index % 2 == 0 ? footer : 4..<footer.lowerBound
      if Self.readAll(parquet: Self.mutate(original, focus: focus, &rng)) { thrown += 1 }
    }
    // Most mutations must be caught: values are rarely all that changes.
    #expect(thrown > cases / 3, "\(name): only \(thrown) of \(cases) mutations detected")
  }

  @Test(arguments: arrowFiles)
  func arrowMutations(_ name: String) throws {
    let original = try Golden.bytes(name)
    var rng = SeededGenerator(state: Self.nameSeed(name) &+ 1 &+ Self.seed)
    var thrown = 0
    let cases = Self.cases
    for _ in 0..<cases {
      if Self.readAll(arrow: Self.mutate(original, focus: 0..<original.count, &rng)) { thrown += 1 }
    }
    #expect(thrown > cases / 5, "\(name): only \(thrown) of \(cases) mutations detected")
  }

  @Test func everyTruncationThrows() throws {
    for name in ["plain_none_v1.parquet", "nested_snappy_v1.parquet"] {
      let original = try Golden.bytes(name)
      for length in stride(from: 0, to: original.count, by: 97) {
        #expect(Self.readAll(parquet: Array(original.prefix(length))), "\(name) cut at \(length)")
      }
    }
    let arrow = try Golden.bytes("primitive_file.arrow")
    for length in stride(from: 0, to: arrow.count, by: 97) {
      #expect(Self.readAll(arrow: Array(arrow.prefix(length))), "arrow file cut at \(length)")
    }
  }

  @Test func errorNamesFileColumnAndPage() throws {
    var bytes = try Golden.bytes("plain_none_v1.parquet")
    bytes[4] = 0xFF  // first page header of column `b`: not a Thrift field header
    let file = try ParquetFile(bytes: bytes, name: "broken.parquet")
    do {
      _ = try file.readRows(rowGroup: 0, columns: ["b"])
      Issue.record("corrupt page header was accepted")
    } catch let error as FormatsError {
      #expect(error.description.contains("broken.parquet"))
      #expect(error.description.contains("row group 0, column b, page at byte 4"))
      // Other columns of the same row group are still readable.
      #expect(try file.readRows(rowGroup: 0, columns: ["req"]).map { $0["req"] } == (100..<105).map { .int($0) })
    }
  }

  @Test func notParquetOrArrow() {
    let text = Array("this is a text file, not columnar data at all".utf8)
    #expect(throws: FormatsError.self) { try ParquetFile(bytes: text, name: "text.parquet") }
    #expect(throws: FormatsError.self) { try ArrowIPCFile(bytes: text, name: "text.arrow") }
    #expect(throws: FormatsError.self) { try ParquetFile(url: URL(fileURLWithPath: "/nonexistent/x.parquet")) }
  }
}
