import CSnappy
import CZlib
import CZstd
import Foundation

/// The block codecs Parquet pages and Arrow IPC buffers use. Snappy, Zstandard and gzip go through
/// the system libraries; LZ4 (raw blocks and frames) is decoded here, since no system LZ4 module is
/// wrapped, and it is a small format.
enum Codec: Sendable, Equatable {
  case uncompressed, snappy, gzip, zstd
  /// Parquet `LZ4_RAW`: one LZ4 block, no framing.
  case lz4Raw
  /// Parquet's deprecated `LZ4` (Hadoop framing: big-endian sizes before each block), with a
  /// fallback to a raw block as some writers did.
  case lz4Hadoop
  /// Arrow IPC `LZ4_FRAME`.
  case lz4Frame

  /// Largest decompressed buffer accepted, so a corrupt size field cannot ask for terabytes.
  static let maximumOutput = 1 << 31

  /// Decompresses `input` to exactly `size` bytes; throws when the data is corrupt or its length
  /// differs from `size`.
  func decompress(_ input: ArraySlice<UInt8>, size: Int) throws -> [UInt8] {
    guard size >= 0, size <= Codec.maximumOutput else {
      throw DecodeFailure.corrupt("uncompressed size \(size) out of range")
    }
    let output: [UInt8]
    switch self {
    case .uncompressed: output = Array(input)
    case .snappy: output = try Codec.snappy(input, size: size)
    case .gzip: output = try Codec.gzip(input, size: size)
    case .zstd: output = try Codec.zstd(input, size: size)
    case .lz4Raw: output = try LZ4.decodeBlock(input, size: size)
    case .lz4Hadoop: output = try LZ4.decodeHadoop(input, size: size)
    case .lz4Frame: output = try LZ4.decodeFrames(input, size: size)
    }
    guard output.count == size else {
      throw DecodeFailure.corrupt("\(self) data decompressed to \(output.count) bytes, expected \(size)")
    }
    return output
  }

  private static func snappy(_ input: ArraySlice<UInt8>, size: Int) throws -> [UInt8] {
    try input.withUnsafeBufferPointer { source in
      let base = UnsafeRawPointer(source.baseAddress ?? UnsafePointer(bitPattern: 1)!)
        .assumingMemoryBound(to: CChar.self)
      var declared = 0
      guard snappy_uncompressed_length(base, source.count, &declared) == SNAPPY_OK, declared == size else {
        throw DecodeFailure.corrupt("snappy header does not declare \(size) bytes")
      }
      return try [UInt8](unsafeUninitializedCapacity: max(size, 1)) { out, initialized in
        var length = size
        let status = out.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(size, 1)) {
          snappy_uncompress(base, source.count, $0, &length)
        }
        guard status == SNAPPY_OK else { throw DecodeFailure.corrupt("snappy data is invalid") }
        initialized = length
      }
    }
  }

  private static func zstd(_ input: ArraySlice<UInt8>, size: Int) throws -> [UInt8] {
    try input.withUnsafeBytes { source in
      guard let base = source.baseAddress else { throw DecodeFailure.corrupt("empty zstd data") }
      let declared = ZSTD_getFrameContentSize(base, source.count)
      if declared == ZSTD_CONTENTSIZE_ERROR { throw DecodeFailure.corrupt("not a zstd frame") }
      // A single frame that declares its size must declare exactly `size` (checked before allocating).
      let singleFrame = ZSTD_findFrameCompressedSize(base, source.count) == source.count
      if declared != ZSTD_CONTENTSIZE_UNKNOWN && (declared > UInt64(size) || (singleFrame && declared != UInt64(size))) {
        throw DecodeFailure.corrupt("zstd frame declares \(declared) bytes, expected \(size)")
      }
      return try [UInt8](unsafeUninitializedCapacity: max(size, 1)) { out, initialized in
        let written = ZSTD_decompress(out.baseAddress, size, base, source.count)
        if ZSTD_isError(written) != 0 {
          throw DecodeFailure.corrupt("zstd: \(String(cString: ZSTD_getErrorName(written)))")
        }
        initialized = written
      }
    }
  }

  /// gzip (and, through zlib's automatic header detection, zlib) streams; several members are
  /// decoded one after another.
  private static func gzip(_ input: ArraySlice<UInt8>, size: Int) throws -> [UInt8] {
    // Deflate expands at most about 1032:1, so a larger size is a corrupt header; refusing it
    // early avoids allocating what it asks for.
    guard size <= input.count &* 1032 &+ 1024 else { throw DecodeFailure.corrupt("gzip size \(size) for \(input.count) bytes") }
    var source = Array(input)
    return try source.withUnsafeMutableBufferPointer { src in
      try [UInt8](unsafeUninitializedCapacity: max(size, 1)) { out, initialized in
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
          throw DecodeFailure.corrupt("zlib initialisation failed")
        }
        defer { inflateEnd(&stream) }
        stream.next_in = src.baseAddress
        stream.avail_in = uInt(src.count)
        stream.next_out = out.baseAddress
        stream.avail_out = uInt(size)
        while true {
          let status = inflate(&stream, Z_NO_FLUSH)
          if status == Z_STREAM_END {
            // Another gzip member may follow (concatenated streams are valid gzip).
            if stream.avail_in > 0 && stream.avail_out > 0 && inflateReset(&stream) == Z_OK { continue }
            break
          }
          guard status == Z_OK else { throw DecodeFailure.corrupt("gzip data is invalid (zlib status \(status))") }
          if stream.avail_out == 0 {
            throw DecodeFailure.corrupt("gzip data decompresses to more than \(size) bytes")
          }
          if stream.avail_in == 0 { throw DecodeFailure.corrupt("gzip data is truncated") }
        }
        initialized = size - Int(stream.avail_out)
      }
    }
  }
}

/// LZ4 block and frame decoding (format: lz4_Block_format.md and lz4_Frame_format.md of the LZ4
/// project). Back-references are resolved inside one output buffer, so linked frame blocks work.
enum LZ4 {
  static func decodeBlock(_ input: ArraySlice<UInt8>, size: Int) throws -> [UInt8] {
    var output: [UInt8] = []
    output.reserveCapacity(min(size, input.count &* 255 &+ 64))
    try appendBlock(input, to: &output, limit: size)
    return output
  }

  /// Decodes one LZ4 block, appending to `output`, whose earlier bytes back-references may reach.
  static func appendBlock(_ input: ArraySlice<UInt8>, to output: inout [UInt8], limit: Int) throws {
    var reader = ByteReader(Array(input))
    while !reader.isAtEnd {
      let token = try reader.readByte()
      let literalCount = try extendedLength(Int(token >> 4), &reader)
      guard literalCount <= limit - output.count else { throw DecodeFailure.corrupt("lz4 output overflows") }
      output.append(contentsOf: try reader.readBytes(literalCount))
      if reader.isAtEnd { return }  // the last sequence has literals only
      let distance = Int(try reader.readLittleEndian(width: 2))
      let matchCount = try extendedLength(Int(token & 0x0F), &reader) + 4
      guard distance > 0, distance <= output.count else { throw DecodeFailure.corrupt("lz4 match offset \(distance)") }
      guard matchCount <= limit - output.count else { throw DecodeFailure.corrupt("lz4 output overflows") }
      let start = output.count - distance
      for index in 0..<matchCount { output.append(output[start + index]) }
    }
  }

  private static func extendedLength(_ nibble: Int, _ reader: inout ByteReader) throws -> Int {
    guard nibble == 15 else { return nibble }
    var length = nibble
    while true {
      let byte = try reader.readByte()
      length += Int(byte)
      guard length < Codec.maximumOutput else { throw DecodeFailure.corrupt("lz4 length too large") }
      if byte != 255 { return length }
    }
  }

  /// Hadoop's framing: repeated [uncompressed size BE32][compressed size BE32][raw block].
  static func decodeHadoop(_ input: ArraySlice<UInt8>, size: Int) throws -> [UInt8] {
    var reader = ByteReader(Array(input))
    var output: [UInt8] = []
    do {
      while !reader.isAtEnd {
        let header = try reader.readBytes(8)
        let expanded = header.prefix(4).reduce(0) { $0 << 8 | Int($1) }
        let compressed = header.suffix(4).reduce(0) { $0 << 8 | Int($1) }
        let before = output.count
        try appendBlock(try reader.readBytes(compressed), to: &output, limit: size)
        guard output.count - before == expanded else { throw DecodeFailure.corrupt("lz4 hadoop block size") }
      }
      return output
    } catch {
      return try decodeBlock(input, size: size)
    }
  }

  /// One or more LZ4 frames back to back.
  static func decodeFrames(_ input: ArraySlice<UInt8>, size: Int) throws -> [UInt8] {
    var reader = ByteReader(Array(input))
    var output: [UInt8] = []
    output.reserveCapacity(min(size, input.count &* 255 &+ 64))
    while !reader.isAtEnd {
      try decodeFrame(&reader, into: &output, limit: size)
    }
    return output
  }

  private static func decodeFrame(_ reader: inout ByteReader, into output: inout [UInt8], limit: Int) throws {
    guard try reader.readLittleEndian(width: 4) == 0x184D_2204 else { throw DecodeFailure.corrupt("not an lz4 frame") }
    let flags = try reader.readByte()
    _ = try reader.readByte()  // block maximum size: not needed, output is bounded by `limit`
    guard flags >> 6 == 1 else { throw DecodeFailure.corrupt("lz4 frame version \(flags >> 6)") }
    guard flags & 0x01 == 0 else { throw DecodeFailure.unsupported("lz4 frame with a dictionary") }
    let blockChecksums = flags & 0x10 != 0
    if flags & 0x08 != 0 { try reader.skip(8) }  // content size
    try reader.skip(1)  // header checksum
    while true {
      let word = try reader.readLittleEndian(width: 4)
      if word == 0 { break }
      let stored = word & 0x8000_0000 != 0
      let length = Int(word & 0x7FFF_FFFF)
      let block = try reader.readBytes(length)
      if stored {
        guard length <= limit - output.count else { throw DecodeFailure.corrupt("lz4 output overflows") }
        output.append(contentsOf: block)
      } else {
        try appendBlock(block, to: &output, limit: limit)
      }
      if blockChecksums { try reader.skip(4) }
    }
    if flags & 0x04 != 0 { try reader.skip(4) }  // content checksum
  }
}
