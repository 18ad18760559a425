import Foundation

/// Locates the first syntax error of a JSON document, so a message can say "line 3, column 14:
/// expected ',' or '}'" instead of Foundation's decoding error text.
///
/// Foundation's decoder does the real parsing; this scanner runs only after it failed. (ModelConfig
/// keeps an identical copy: the two modules share no dependency that could hold it.)
public enum JSONSyntax {
  struct Problem: CustomStringConvertible {
    var line: Int
    var column: Int
    var message: String
    var description: String { "line \(line), column \(column): \(message)" }
  }

  /// Deeper nesting than this is reported rather than followed.
  static let maxDepth = 512

  /// The first problem, or nil when the text is well-formed JSON.
  static func firstProblem(_ data: Data) -> Problem? {
    var scanner = Scanner(bytes: [UInt8](data))
    do {
      scanner.skipSpace()
      try scanner.value(depth: 0)
      scanner.skipSpace()
      if scanner.position < scanner.bytes.count { throw scanner.problem("unexpected text after the JSON value") }
      return nil
    } catch let problem as Problem {
      return problem
    } catch {
      return nil
    }
  }

  /// "line L, column C: what" when a problem is found, else `fallback`.
  public static func describe(_ data: Data, fallback: String = "not valid JSON") -> String {
    firstProblem(data).map { "\($0)" } ?? fallback
  }

  private struct Scanner {
    let bytes: [UInt8]
    var position = 0

    init(bytes: [UInt8]) {
      self.bytes = bytes
      // A UTF-8 byte-order mark is not an error.
      if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
    }

    func problem(_ message: String) -> Problem {
      var line = 1
      var lineStart = 0
      for index in 0..<min(position, bytes.count) where bytes[index] == 0x0A {
        line += 1
        lineStart = index + 1
      }
      return Problem(line: line, column: position - lineStart + 1, message: message)
    }

    func unexpected(_ expected: String) -> Problem {
      guard position < bytes.count else { return problem("unexpected end of file; expected \(expected)") }
      let byte = bytes[position]
      let shown = (0x21...0x7E).contains(byte) ? "'\(Character(UnicodeScalar(byte)))'" : String(format: "byte 0x%02X", byte)
      return problem("unexpected \(shown); expected \(expected)")
    }

    mutating func skipSpace() {
      while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    mutating func value(depth: Int) throws {
      guard depth < JSONSyntax.maxDepth else { throw problem("nested more than \(JSONSyntax.maxDepth) levels deep") }
      guard position < bytes.count else { throw unexpected("a value") }
      switch bytes[position] {
      case UInt8(ascii: "{"): try object(depth: depth)
      case UInt8(ascii: "["): try array(depth: depth)
      case UInt8(ascii: "\""): try string()
      case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
      case UInt8(ascii: "t"): try literal("true")
      case UInt8(ascii: "f"): try literal("false")
      case UInt8(ascii: "n"): try literal("null")
      default: throw unexpected("a value")
      }
    }

    mutating func object(depth: Int) throws {
      position += 1
      skipSpace()
      if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
        position += 1
        return
      }
      while true {
        skipSpace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw unexpected("a quoted key") }
        try string()
        skipSpace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw unexpected("':'") }
        position += 1
        skipSpace()
        try value(depth: depth + 1)
        skipSpace()
        guard position < bytes.count else { throw unexpected("',' or '}'") }
        if bytes[position] == UInt8(ascii: ",") {
          position += 1
          continue
        }
        guard bytes[position] == UInt8(ascii: "}") else { throw unexpected("',' or '}'") }
        position += 1
        return
      }
    }

    mutating func array(depth: Int) throws {
      position += 1
      skipSpace()
      if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
        position += 1
        return
      }
      while true {
        skipSpace()
        try value(depth: depth + 1)
        skipSpace()
        guard position < bytes.count else { throw unexpected("',' or ']'") }
        if bytes[position] == UInt8(ascii: ",") {
          position += 1
          continue
        }
        guard bytes[position] == UInt8(ascii: "]") else { throw unexpected("',' or ']'") }
        position += 1
        return
      }
    }

    mutating func string() throws {
      position += 1
      while position < bytes.count {
        let byte = bytes[position]
        switch byte {
        case UInt8(ascii: "\""):
          position += 1
          return
        case UInt8(ascii: "\\"):
          position += 1
          guard position < bytes.count else { throw unexpected("an escape") }
          let escape = bytes[position]
          if escape == UInt8(ascii: "u") {
            for _ in 0..<4 {
              position += 1
              guard position < bytes.count, Character(UnicodeScalar(bytes[position])).isHexDigit else {
                throw unexpected("4 hex digits after \\u")
              }
            }
          } else if !Array("\"\\/bfnrt".utf8).contains(escape) {
            throw problem("invalid escape \\\(Character(UnicodeScalar(escape)))")
          }
          position += 1
        case 0..<0x20:
          throw problem(byte == 0x0A ? "line break inside a string (missing closing quote?)" : "control character inside a string")
        default:
          position += 1
        }
      }
      throw problem("unexpected end of file inside a string")
    }

    mutating func digits() -> Int {
      let start = position
      while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
      return position - start
    }

    mutating func number() throws {
      if bytes[position] == UInt8(ascii: "-") { position += 1 }
      let leadingZero = position < bytes.count && bytes[position] == UInt8(ascii: "0")
      let integerDigits = digits()
      guard integerDigits > 0 else { throw unexpected("a digit") }
      if leadingZero, integerDigits > 1 { throw problem("number with a leading zero") }
      if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
        position += 1
        guard digits() > 0 else { throw unexpected("a digit after '.'") }
      }
      if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
        position += 1
        if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
          position += 1
        }
        guard digits() > 0 else { throw unexpected("an exponent") }
      }
    }

    mutating func literal(_ word: String) throws {
      for expected in word.utf8 {
        guard position < bytes.count, bytes[position] == expected else { throw unexpected("'\(word)'") }
        position += 1
      }
    }
  }
}

extension JSONSyntax.Problem: Error {}
