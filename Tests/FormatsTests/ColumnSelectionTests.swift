import Foundation
import Testing

@testable import Formats

/// Only the requested columns' bytes are read from the file (Hugging Face shards carry images in
/// columns a caller may not want).
@Suite struct ColumnSelectionTests {
  /// Records every byte range read through it.
  /// `ranges` is guarded by `lock`.
  final class RecordingSource: ByteSource, @unchecked Sendable {
    let inner: any ByteSource
    private let lock = NSLock()
    private var ranges: [Range<Int>] = []
    var size: Int { inner.size }

    init(_ inner: any ByteSource) { self.inner = inner }

    func read(offset: Int, count: Int) throws -> [UInt8] {
      lock.withLock { ranges.append(offset..<(offset + count)) }
      return try inner.read(offset: offset, count: count)
    }

    /// Ranges read since the last call.
    func take() -> [Range<Int>] {
      lock.withLock {
        defer { ranges = [] }
        return ranges
      }
    }
  }

  static func overlap(_ a: [Range<Int>], _ b: [Range<Int>]) -> Bool {
    a.contains { first in b.contains { $0.overlaps(first) } }
  }

  @Test func parquetReadsOnlyRequestedChunks() throws {
    let source = RecordingSource(MemoryByteSource(try Golden.bytes("hf_snappy.parquet")))
    let file = try ParquetFile(source: source, name: "hf_snappy.parquet")
    _ = source.take()  // footer
    _ = try file.readRows(rowGroup: 1, columns: ["image"])
    let image = source.take()
    _ = try file.readRows(rowGroup: 1, columns: ["solution"])
    let solution = source.take()
    #expect(image.count == 2)  // image.bytes and image.path chunks
    #expect(solution.count == 1)
    #expect(!Self.overlap(image, solution))
  }

  @Test func arrowReadsOnlyRequestedBuffers() throws {
    let source = RecordingSource(MemoryByteSource(try Golden.bytes("hf_data-00000-of-00001.arrow")))
    let file = try ArrowIPCFile(source: source, name: "hf.arrow")
    _ = source.take()  // message headers
    _ = try file.readRows(batch: 0, columns: ["image"])
    let image = source.take()
    _ = try file.readRows(batch: 0, columns: ["problem"])
    let problem = source.take()
    #expect(!image.isEmpty && !problem.isEmpty)
    #expect(!Self.overlap(image, problem))
    // The image bytes (rows 0...3: 5 + i % 4 bytes after an 8-byte signature) are in what was read for `image`.
    let imageBytes = image.reduce(0) { $0 + $1.count }
    #expect(imageBytes >= (0..<4).reduce(0) { $0 + 13 + $1 })
  }
}
