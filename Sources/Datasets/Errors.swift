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
  case visionTokenInText = "vision token in text"
  case imageSizeMismatch = "stated image size differs from the file"

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
  /// A file or folder exists but cannot be read (permission denied, a folder where a file belongs, ...).
  case unreadable(String, reason: String)
  /// An output path that would overwrite an input or a non-empty folder, or could not be written.
  case output(String, reason: String)

  public var description: String {
    switch self {
    case .fileNotFound(let path): return "data file not found: \(path)"
    case .unsupportedFile(let path, let reason): return "unsupported data file \(path): \(reason)"
    case .invalidFile(let path, let reason): return "invalid data file \(path): \(reason)"
    case .invalidConfig(let path, let reason): return "invalid dataset config \(path): \(reason)"
    case .badRecord(let record): return "bad record \(record)"
    case .image(let name, let reason): return "image \(name): \(reason)"
    case .unreadable(let path, let reason): return "cannot read \(path): \(reason)"
    case .output(let path, let reason): return "output \(path): \(reason)"
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

/// Why a file could not be read, in a few plain words ("no such file", "permission denied", "is a
/// directory"), from the file system rather than from Foundation's error text.
public func fileProblem(_ path: String, error: Error? = nil) -> String {
  var isFolder: ObjCBool = false
  guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { return "no such file" }
  if isFolder.boolValue { return "is a directory" }
  if !FileManager.default.isReadableFile(atPath: path) { return "permission denied" }
  if let error, let code = posixCode(error) { return String(cString: strerror(code)).lowercased() }
  return "read failed"
}

/// Why a write failed, in plain words ("no space left on device", "permission denied", ...).
func writeProblem(_ error: Error) -> String {
  posixCode(error).map { String(cString: strerror($0)).lowercased() } ?? "write failed"
}

/// The POSIX error number under a Foundation file error, when there is one.
private func posixCode(_ error: Error) -> Int32? {
  let nsError = error as NSError
  if nsError.domain == NSPOSIXErrorDomain { return Int32(nsError.code) }
  if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
    return Int32(underlying.code)
  }
  return nil
}

/// Reads a whole file; failures are `DatasetError.fileNotFound` or `.unreadable` with a plain reason.
func readFile(_ url: URL) throws -> Data {
  do { return try Data(contentsOf: url) } catch {
    let problem = fileProblem(url.path, error: error)
    if problem == "no such file" { throw DatasetError.fileNotFound(url.path) }
    throw DatasetError.unreadable(url.path, reason: problem)
  }
}

/// Opens a file for streaming; failures as in `readFile`.
func openForReading(_ url: URL) throws -> FileHandle {
  do { return try FileHandle(forReadingFrom: url) } catch {
    let problem = fileProblem(url.path, error: error)
    if problem == "no such file" { throw DatasetError.fileNotFound(url.path) }
    throw DatasetError.unreadable(url.path, reason: problem)
  }
}

/// Reads the next chunk of an open file; a read failure names the file with a plain reason.
func readChunk(_ handle: FileHandle, _ url: URL, upTo count: Int) throws -> Data {
  do { return try handle.read(upToCount: count) ?? Data() } catch {
    throw DatasetError.unreadable(url.path, reason: fileProblem(url.path, error: error))
  }
}
