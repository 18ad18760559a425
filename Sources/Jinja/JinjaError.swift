/// An error from parsing or rendering a template. The message names the template and, when known,
/// the line and column of the tag that failed.
public struct JinjaError: Error, Sendable, CustomStringConvertible {
  public enum Kind: Sendable, Equatable {
    /// The template text is not valid Jinja.
    case syntax
    /// Valid Jinja that this interpreter does not implement (a tag, filter, test or method).
    case unsupported
    /// An operation on an undefined value, as Jinja's `UndefinedError`.
    case undefined
    /// A type or value error while rendering (e.g. `1 < 'a'`).
    case runtime
    /// The template called `raise_exception(message)`.
    case raised
  }

  public var kind: Kind
  public var message: String
  public var templateName: String?
  public var line: Int?
  public var column: Int?

  public init(_ kind: Kind, _ message: String, templateName: String? = nil, line: Int? = nil, column: Int? = nil) {
    self.kind = kind
    self.message = message
    self.templateName = templateName
    self.line = line
    self.column = column
  }

  static func runtime(_ message: String) -> JinjaError { JinjaError(.runtime, message) }
  static func undefined(_ message: String) -> JinjaError { JinjaError(.undefined, message) }
  static func unsupported(_ message: String) -> JinjaError { JinjaError(.unsupported, message) }

  public var description: String {
    var place = "template '\(templateName ?? "<string>")'"
    if let line { place += ", line \(line)" }
    if let column { place += ", column \(column)" }
    return "\(place): \(message)"
  }
}

/// Maps scalar offsets in the (newline-normalized) source to 1-based line and column numbers.
struct SourceMap: Sendable {
  private let lineStarts: [Int]

  init(_ source: [Unicode.Scalar]) {
    var starts = [0]
    for (i, scalar) in source.enumerated() where scalar == "\n" { starts.append(i + 1) }
    lineStarts = starts
  }

  func location(_ offset: Int) -> (line: Int, column: Int) {
    var low = 0
    var high = lineStarts.count - 1
    while low < high {
      let mid = (low + high + 1) / 2
      if lineStarts[mid] <= offset { low = mid } else { high = mid - 1 }
    }
    return (low + 1, offset - lineStarts[low] + 1)
  }
}
