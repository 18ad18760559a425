import Common
import Foundation

/// Typed access to a raw record's fields; every failure is a `RecordProblem` naming the field.
struct Fields {
  var raw: RawRecord

  var keys: Set<String> { Set(raw.fields.keys) }

  func has(_ key: String) -> Bool {
    guard let value = raw.fields[key] else { return false }
    return !value.isNull
  }

  func value(_ key: String) throws -> JSONValue {
    guard let value = raw.fields[key], !value.isNull else {
      throw RecordProblem(.missingField, field: key, "required field is missing or null")
    }
    return value
  }

  func string(_ key: String) throws -> String {
    let value = try value(key)
    guard let text = value.stringValue else {
      throw RecordProblem(.wrongType, field: key, "expected a string, found \(preview(value))")
    }
    return text
  }

  func int(_ key: String) throws -> Int {
    let value = try value(key)
    if let number = value.intValue { return number }
    if let text = value.stringValue, let number = Int(text.trimmingCharacters(in: .whitespaces)) { return number }
    throw RecordProblem(.wrongType, field: key, "expected an integer, found \(preview(value))")
  }

  /// A list of strings; a stringified Python or JSON list (`"['a', 'b']"`) is parsed.
  func stringList(_ key: String) throws -> [String] {
    let value = try value(key)
    if let text = value.stringValue {
      guard let list = PythonLiteral.parseStringList(text) else {
        throw RecordProblem(.wrongType, field: key, "expected a list of strings, found \(preview(value))")
      }
      return list
    }
    guard let items = value.arrayValue else {
      throw RecordProblem(.wrongType, field: key, "expected a list of strings, found \(preview(value))")
    }
    return try items.map { item in
      if let text = item.stringValue { return text }
      if case .int(let number) = item { return String(number) }
      throw RecordProblem(.wrongType, field: key, "list item \(preview(item)) is not a string")
    }
  }
}

func preview(_ value: JSONValue, limit: Int = 60) -> String {
  let text = value.jsonString
  return text.count > limit ? String(text.prefix(limit)) + "..." : text
}

// MARK: - Boxes

/// A box `[x1, y1, x2, y2]` in original pixels.
struct Box {
  var x1, y1, x2, y2: Double

  /// Checks that `value` is four finite numbers with `x1 < x2` and `y1 < y2`.
  static func parse(_ value: JSONValue, field: String) throws -> Box {
    guard let items = value.arrayValue, items.count == 4 else {
      throw RecordProblem(.invalidBox, field: field, "expected [x1, y1, x2, y2], found \(preview(value))")
    }
    var numbers: [Double] = []
    for item in items {
      guard let number = item.doubleValue else {
        throw RecordProblem(.invalidBox, field: field, "box item \(preview(item)) is not a number")
      }
      guard number.isFinite else {
        throw RecordProblem(.nonFiniteNumber, field: field, "box \(preview(value)) has a non-finite number")
      }
      numbers.append(number)
    }
    let box = Box(x1: numbers[0], y1: numbers[1], x2: numbers[2], y2: numbers[3])
    guard box.x2 > box.x1, box.y2 > box.y1 else {
      throw RecordProblem(.invalidBox, field: field, "box \(preview(value)) needs x1 < x2 and y1 < y2")
    }
    return box
  }

  /// Boxes may touch the border; one pixel of slack absorbs the `x2 = width` convention of
  /// inclusive-coordinate annotations.
  static let borderSlack = 1.0

  func check(insideWidth width: Int?, height: Int?, field: String) throws {
    guard let width, let height else { return }
    let slack = Self.borderSlack
    guard x1 >= -slack, y1 >= -slack, x2 <= Double(width) + slack, y2 <= Double(height) + slack else {
      throw RecordProblem(
        .boxOutsideImage, field: field,
        "box [\(x1), \(y1), \(x2), \(y2)] is outside the \(width)x\(height) image")
    }
  }
}

// MARK: - Python literals

/// Parses the stringified Python lists of the Hugging Face A-OKVQA copy (`"['a', \"b's\"]"`).
enum PythonLiteral {
  static func parseStringList(_ text: String) -> [String]? {
    let characters = Array(text.trimmingCharacters(in: .whitespacesAndNewlines))
    guard characters.first == "[", characters.last == "]" else { return nil }
    var items: [String] = []
    var position = 1
    let end = characters.count - 1
    while position < end {
      let character = characters[position]
      if character == " " || character == "," || character == "\n" || character == "\t" {
        position += 1
        continue
      }
      guard character == "'" || character == "\"" else { return nil }
      guard let (item, next) = quoted(characters, from: position, end: end) else { return nil }
      items.append(item)
      position = next
    }
    return items
  }

  /// Reads one quoted string starting at `start` (the quote); returns it and the index after it.
  private static func quoted(_ characters: [Character], from start: Int, end: Int) -> (String, Int)? {
    let quote = characters[start]
    var result = ""
    var position = start + 1
    while position < end {
      let character = characters[position]
      if character == "\\", position + 1 < end {
        let escaped = characters[position + 1]
        switch escaped {
        case "n": result.append("\n")
        case "t": result.append("\t")
        default: result.append(escaped)
        }
        position += 2
        continue
      }
      if character == quote { return (result, position + 1) }
      result.append(character)
      position += 1
    }
    return nil
  }
}
