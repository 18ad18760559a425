import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Random access to the bytes of a file, read range by range so that large shards (Hugging Face
/// Parquet files carry embedded JPEGs) never need to be in memory whole.
protocol ByteSource: Sendable {
  var size: Int { get }
  /// Reads exactly `count` bytes at `offset`; throws when the range is not inside the source.
  func read(offset: Int, count: Int) throws -> [UInt8]
}

/// Reads with `pread`, which keeps no shared file position, so concurrent readers are safe.
final class FileByteSource: ByteSource {
  let size: Int
  private let descriptor: Int32
  private let name: String

  init(url: URL) throws {
    name = url.path
    let fd = open(url.path, O_RDONLY)
    guard fd >= 0 else {
      throw FormatsError.io(file: url.path, reason: String(cString: strerror(errno)))
    }
    var info = stat()
    guard fstat(fd, &info) == 0 else {
      close(fd)
      throw FormatsError.io(file: url.path, reason: "cannot stat")
    }
    descriptor = fd
    size = Int(info.st_size)
  }

  deinit { close(descriptor) }

  func read(offset: Int, count: Int) throws -> [UInt8] {
    try checkRange(offset: offset, count: count, size: size)
    if count == 0 { return [] }
    return try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
      var done = 0
      while done < count {
        let got = pread(descriptor, buffer.baseAddress! + done, count - done, off_t(offset + done))
        if got < 0 && errno == EINTR { continue }
        guard got > 0 else {
          throw FormatsError.io(file: name, reason: "short read at offset \(offset + done)")
        }
        done += got
      }
      initialized = count
    }
  }
}

/// An in-memory file (tests, fuzzing, or bytes already downloaded).
final class MemoryByteSource: ByteSource {
  let bytes: [UInt8]
  var size: Int { bytes.count }

  init(_ bytes: [UInt8]) { self.bytes = bytes }

  func read(offset: Int, count: Int) throws -> [UInt8] {
    try checkRange(offset: offset, count: count, size: size)
    return Array(bytes[offset..<(offset + count)])
  }
}

private func checkRange(offset: Int, count: Int, size: Int) throws {
  guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
    throw DecodeFailure.corrupt("byte range \(offset)+\(count) lies outside the file (\(size) bytes)")
  }
}

/// A bounds-checked little-endian cursor over bytes from the file. Every read throws on running
/// past the end instead of trapping, since the bytes are untrusted.
struct ByteReader {
  let bytes: [UInt8]
  private(set) var position: Int
  let end: Int

  init(_ bytes: [UInt8], start: Int = 0, end: Int? = nil) {
    self.bytes = bytes
    self.end = min(end ?? bytes.count, bytes.count)
    self.position = min(max(0, start), self.end)
  }

  var remaining: Int { end - position }
  var isAtEnd: Bool { position >= end }

  mutating func readByte() throws -> UInt8 {
    guard position < end else { throw DecodeFailure.corrupt("unexpected end of data at byte \(position)") }
    defer { position += 1 }
    return bytes[position]
  }

  mutating func readBytes(_ count: Int) throws -> ArraySlice<UInt8> {
    guard count >= 0, count <= remaining else {
      throw DecodeFailure.corrupt("\(count) bytes wanted at byte \(position), \(max(0, remaining)) left")
    }
    defer { position += count }
    return bytes[position..<(position + count)]
  }

  mutating func skip(_ count: Int) throws { _ = try readBytes(count) }

  /// Little-endian unsigned integer of `width` bytes (1...8).
  mutating func readLittleEndian(width: Int) throws -> UInt64 {
    let slice = try readBytes(width)
    var value: UInt64 = 0
    for (shift, byte) in slice.enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
    return value
  }

  mutating func readInt32() throws -> Int32 { Int32(truncatingIfNeeded: try readLittleEndian(width: 4)) }
  mutating func readInt64() throws -> Int64 { Int64(bitPattern: try readLittleEndian(width: 8)) }

  /// ULEB128 varint of at most 10 bytes.
  mutating func readVarint() throws -> UInt64 {
    var value: UInt64 = 0
    var shift: UInt64 = 0
    while true {
      let byte = try readByte()
      guard shift < 64 else { throw DecodeFailure.corrupt("varint longer than 10 bytes at byte \(position)") }
      value |= UInt64(byte & 0x7F) << shift
      if byte & 0x80 == 0 { return value }
      shift += 7
    }
  }

  /// Zigzag-encoded signed varint.
  mutating func readZigzag() throws -> Int64 {
    let raw = try readVarint()
    return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
  }
}

/// Checked conversion of a count or offset from the file into a non-negative `Int` no larger than
/// `limit`; `what` names the field for the error message.
func checkedCount<T: BinaryInteger>(_ value: T, limit: Int, _ what: String) throws -> Int {
  guard value >= 0, let count = Int(exactly: value), count <= limit else {
    throw DecodeFailure.corrupt("\(what) is \(value), outside 0...\(limit)")
  }
  return count
}
