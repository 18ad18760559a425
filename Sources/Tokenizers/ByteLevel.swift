/// GPT-2's reversible byte <-> printable character table used by byte-level BPE (docs/qwen-vl.md 7.3 step 4).
///
/// Bytes 33...126, 161...172 and 174...255 stand for themselves; the remaining 68 bytes, in
/// increasing order, take the code points U+0100, U+0101, ... so every token string is printable.
enum ByteLevel {
  /// `scalarForByte[b]` is the character that stands for byte `b`.
  static let scalarForByte: [Unicode.Scalar] = {
    var table = [Unicode.Scalar](repeating: " ", count: 256)
    var nextShifted: UInt32 = 0x100
    for byte in 0..<256 {
      if (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte) {
        table[byte] = Unicode.Scalar(UInt8(byte))
      } else {
        table[byte] = Unicode.Scalar(nextShifted)!  // 0x100...0x143, always valid scalars
        nextShifted += 1
      }
    }
    return table
  }()

  /// Inverse table indexed by code point (all mapped code points are below 0x144); -1 = not mapped.
  static let byteForScalar: [Int16] = {
    var table = [Int16](repeating: -1, count: 0x144)
    for (byte, scalar) in scalarForByte.enumerated() { table[Int(scalar.value)] = Int16(byte) }
    return table
  }()

  /// The byte-level token string for raw bytes (what BPE vocabularies are keyed by).
  static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    var scalars = String.UnicodeScalarView()
    for byte in bytes { scalars.append(scalarForByte[Int(byte)]) }
    return String(scalars)
  }

  /// The bytes a token stands for, as Hugging Face's ByteLevel decoder computes them: if every
  /// character of the token is in the table, its bytes; otherwise the token's own UTF-8 (this is
  /// what happens to added tokens such as `<|im_end|>` whose characters are not all mapped).
  static func decode(token: String) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(token.unicodeScalars.count)
    for scalar in token.unicodeScalars {
      let value = Int(scalar.value)
      guard value < byteForScalar.count, byteForScalar[value] >= 0 else { return Array(token.utf8) }
      bytes.append(UInt8(byteForScalar[value]))
    }
    return bytes
  }
}
