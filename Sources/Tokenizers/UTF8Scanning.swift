/// Small UTF-8 helpers over byte arrays that came from a Swift `String` (hence valid) or from
/// token bytes (possibly not valid, for the streaming decoder).
enum UTF8Scanning {
  /// Decodes the scalar starting at `index` of valid UTF-8; returns its value and byte width.
  /// An invalid lead byte decodes as U+FFFD of width 1 so a caller can never loop forever.
  @inline(__always)
  static func decodeScalar(_ bytes: ArraySlice<UInt8>, at index: Int) -> (UInt32, Int) {
    let lead = bytes[index]
    if lead < 0x80 { return (UInt32(lead), 1) }
    let width: Int
    var value: UInt32
    switch lead {
    case 0xC0..<0xE0: width = 2; value = UInt32(lead & 0x1F)
    case 0xE0..<0xF0: width = 3; value = UInt32(lead & 0x0F)
    case 0xF0..<0xF8: width = 4; value = UInt32(lead & 0x07)
    default: return (0xFFFD, 1)
    }
    guard index + width <= bytes.endIndex else { return (0xFFFD, 1) }
    for next in (index + 1)..<(index + width) { value = value << 6 | UInt32(bytes[next] & 0x3F) }
    return (value, width)
  }

  /// The scalar that ends just before `index` (valid UTF-8), or nil at the start.
  static func scalar(before index: Int, in bytes: ArraySlice<UInt8>) -> UInt32? {
    guard index > bytes.startIndex else { return nil }
    var start = index - 1
    while start > bytes.startIndex, index - start < 4, bytes[start] & 0xC0 == 0x80 { start -= 1 }
    return decodeScalar(bytes, at: start).0
  }

  /// Length of the incomplete but so far valid UTF-8 sequence at the end of `bytes` (0 if the
  /// bytes end on a complete character or with bytes that can never become valid). A streaming
  /// decoder holds these back until the next token completes them.
  static func incompleteSuffixLength(_ bytes: [UInt8]) -> Int {
    let count = bytes.count
    var back = 1
    while back <= min(3, count) {
      let lead = bytes[count - back]
      if lead & 0xC0 != 0x80 {
        let needed: Int
        switch lead {
        case 0xC2...0xDF: needed = 2
        case 0xE0...0xEF: needed = 3
        case 0xF0...0xF4: needed = 4
        default: return 0
        }
        guard back < needed else { return 0 }
        // The second byte of E0, ED, F0, F4 sequences has a narrower range than 80...BF.
        if back >= 2 {
          let second = bytes[count - back + 1]
          let valid: ClosedRange<UInt8>
          switch lead {
          case 0xE0: valid = 0xA0...0xBF
          case 0xED: valid = 0x80...0x9F
          case 0xF0: valid = 0x90...0xBF
          case 0xF4: valid = 0x80...0x8F
          default: valid = 0x80...0xBF
          }
          guard valid.contains(second) else { return 0 }
        }
        return back
      }
      back += 1
    }
    return 0
  }
}
