import Foundation

/// Errors of the training units: bad configs, bad arguments, I/O.
public enum TrainingError: Error, CustomStringConvertible, Sendable, Equatable {
  /// A config file or override is wrong: `source` names the file (or `--set`), `path` the key.
  case invalidConfig(source: String, path: String, reason: String)
  /// A caller passed values that do not fit together (shapes, sizes, options).
  case invalidArgument(String)
  /// Reading or writing an output failed.
  case io(path: String, reason: String)

  public var description: String {
    switch self {
    case .invalidConfig(let source, let path, let reason):
      return path.isEmpty ? "\(source): \(reason)" : "\(source): \(path): \(reason)"
    case .invalidArgument(let message):
      return message
    case .io(let path, let reason):
      return "\(path): \(reason)"
    }
  }
}
