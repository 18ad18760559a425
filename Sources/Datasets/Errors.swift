import Foundation

/// Why a record could not be used. Counted per reason in `LoadSummary`.
public enum BadRecordReason: String, Sendable, CaseIterable, Comparable {
  case malformedJSON = "malformed JSON"
  case notAnObject = "not an object"
  case unknownKind = "unknown record kind"
  case missingField = "missing field"
  case wrongType = "wrong field type"
  case nonFiniteNumber = "non-finite number"
  case invalidBox = "invalid box"
  case boxOutsideImage = "box outside image"
  case imageNotFound = "image not found"
  case unreadableImage = "unreadable image"
  case imageMarkerMismatch = "image markers do not match images"
  case imageTooBig = "image too big"
  case promptTooLong = "prompt too long"
  case invalidLabel = "invalid label"

  public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A record that was skipped (or, with `BadRecordPolicy.error`, stopped the load).
public struct BadRecord: Error, Sendable, Hashable, CustomStringConvertible {
  public var location: RecordLocation
  /// The field at fault, when one is.
  public var field: String?
  public var reason: BadRecordReason
  /// A sentence a user can act on.
  public var detail: String

  public init(location: RecordLocation, field: String?, reason: BadRecordReason, detail: String) {
    self.location = location
    self.field = field
    self.reason = reason
    self.detail = detail
  }

  public var description: String {
    let fieldPart = field.map { " field '\($0)'" } ?? ""
    return "\(location)\(fieldPart): \(reason.rawValue): \(detail)"
  }
}

/// What to do with a record that cannot be used (`on_bad_record: skip|error`).
public enum BadRecordPolicy: String, Sendable, Codable {
  /// Report, count and skip it (the default).
  case skip
  /// Stop the load with `DatasetError.badRecord`.
  case error
}

/// Errors of the Datasets module. Each message names the file (and record, field) at fault.
public enum DatasetError: Error, Sendable, CustomStringConvertible {
  case fileNotFound(String)
  case unsupportedFile(String, reason: String)
  case invalidFile(String, reason: String)
  case invalidConfig(String, reason: String)
  case badRecord(BadRecord)
  case image(String, reason: String)

  public var description: String {
    switch self {
    case .fileNotFound(let path): return "data file not found: \(path)"
    case .unsupportedFile(let path, let reason): return "unsupported data file \(path): \(reason)"
    case .invalidFile(let path, let reason): return "invalid data file \(path): \(reason)"
    case .invalidConfig(let path, let reason): return "invalid dataset config \(path): \(reason)"
    case .badRecord(let record): return "bad record \(record)"
    case .image(let name, let reason): return "image \(name): \(reason)"
    }
  }
}

/// An internal throw that carries a bad-record reason up to the loader, which adds the location.
struct RecordProblem: Error {
  var field: String?
  var reason: BadRecordReason
  var detail: String

  init(_ reason: BadRecordReason, field: String?, _ detail: String) {
    self.field = field
    self.reason = reason
    self.detail = detail
  }
}
