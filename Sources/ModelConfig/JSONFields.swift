import Common
import Foundation

/// A JSON object being decoded, with the file name and the dotted path used in error messages.
///
/// Configs are decoded field by field through this reader rather than through `Decodable`, because
/// the two transformers layouts put the same value in different places and because a missing trap
/// field must be an error naming `file: path.field`, never a silent class default.
struct JSONFields {
  let members: [String: JSONValue]
  let file: String
  let path: String

  init(_ members: [String: JSONValue], file: String, path: String = "") {
    self.members = members
    self.file = file
    self.path = path
  }

  /// Reads a JSON object file.
  static func load(_ url: URL) throws -> JSONFields {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      var isFolder: ObjCBool = false
      if !FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) { throw ModelConfigError.fileMissing(path: url.path) }
      let reason = isFolder.boolValue ? "is a directory"
        : FileManager.default.isReadableFile(atPath: url.path) ? "read failed" : "permission denied"
      throw ModelConfigError.unreadable(path: url.path, reason: reason)
    }
    let value: JSONValue
    do { value = try JSONValue.parse(data) } catch {
      throw ModelConfigError.invalidJSON(path: url.path, reason: JSONSyntax.describe(data, fallback: unparsedReason))
    }
    guard case .object(let members) = value else {
      throw ModelConfigError.invalidJSON(path: url.path, reason: "expected an object at the top level")
    }
    return JSONFields(members, file: url.lastPathComponent)
  }

  /// What to say when Foundation refuses a document the syntax scanner accepts (in practice a
  /// number too large for a Double, such as 1e999).
  static let unparsedReason = "a value cannot be decoded (a number out of range?)"

  func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

  /// The value of `key`, treating JSON null as absent.
  func value(_ key: String) -> JSONValue? {
    guard let value = members[key], !value.isNull else { return nil }
    return value
  }

  func has(_ key: String) -> Bool { value(key) != nil }

  private func wrongType(_ key: String, _ expected: String, _ found: JSONValue) -> ModelConfigError {
    .wrongType(file: file, field: fieldPath(key), expected: expected, found: found.jsonString)
  }

  func required<T>(_ key: String, _ read: (String) throws -> T?) throws -> T {
    guard let value = try read(key) else { throw ModelConfigError.missingField(file: file, field: fieldPath(key)) }
    return value
  }

  func int(_ key: String) throws -> Int? {
    guard let value = value(key) else { return nil }
    guard let number = value.intValue else { throw wrongType(key, "an integer", value) }
    return number
  }

  func double(_ key: String) throws -> Double? {
    guard let value = value(key) else { return nil }
    guard let number = value.doubleValue else { throw wrongType(key, "a number", value) }
    return number
  }

  func bool(_ key: String) throws -> Bool? {
    guard let value = value(key) else { return nil }
    guard let flag = value.boolValue else { throw wrongType(key, "true or false", value) }
    return flag
  }

  func string(_ key: String) throws -> String? {
    guard let value = value(key) else { return nil }
    guard let text = value.stringValue else { throw wrongType(key, "a string", value) }
    return text
  }

  func ints(_ key: String) throws -> [Int]? {
    guard let value = value(key) else { return nil }
    guard let items = value.arrayValue else { throw wrongType(key, "a list of integers", value) }
    var result: [Int] = []
    for item in items {
      guard let number = item.intValue else { throw wrongType(key, "a list of integers", value) }
      result.append(number)
    }
    return result
  }

  func doubles(_ key: String) throws -> [Double]? {
    guard let value = value(key) else { return nil }
    guard let items = value.arrayValue else { throw wrongType(key, "a list of numbers", value) }
    var result: [Double] = []
    for item in items {
      guard let number = item.doubleValue else { throw wrongType(key, "a list of numbers", value) }
      result.append(number)
    }
    return result
  }

  /// An integer or a list of integers (as `eos_token_id` may be), always returned as a list.
  func intOrInts(_ key: String) throws -> [Int]? {
    guard let value = value(key) else { return nil }
    if let number = value.intValue { return [number] }
    return try ints(key)
  }

  func object(_ key: String) throws -> JSONFields? {
    guard let value = value(key) else { return nil }
    guard let members = value.objectValue else { throw wrongType(key, "an object", value) }
    return JSONFields(members, file: file, path: fieldPath(key))
  }

  func positive(_ key: String) throws -> Int {
    let value = try required(key, int)
    guard value > 0 else { throw ModelConfigError.invalidValue(file: file, field: fieldPath(key), reason: "must be positive, got \(value)") }
    return value
  }

  /// A required integer in `range`; an error naming the field otherwise.
  func int(_ key: String, in range: ClosedRange<Int>) throws -> Int {
    let value = try required(key, int)
    try check(key, value, in: range)
    return value
  }

  func check(_ key: String, _ value: Int, in range: ClosedRange<Int>) throws {
    guard range.contains(value) else {
      throw ModelConfigError.invalidValue(
        file: file, field: fieldPath(key), reason: "\(value) is outside the supported range \(range.lowerBound)...\(range.upperBound)")
    }
  }

  func invalid(_ key: String, _ reason: String) -> ModelConfigError {
    .invalidValue(file: file, field: fieldPath(key), reason: reason)
  }
}
