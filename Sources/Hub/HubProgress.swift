import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Progress of file downloads on one output (standard error by default). On a terminal a line per
/// file is redrawn in place (bytes, total, rate) at most every quarter second; otherwise only one
/// line is written per finished file.
public struct HubProgress: Sendable {
  /// Whether the output is a terminal (lines redrawn with a carriage return).
  public var isTerminal: Bool
  /// Writes text as is (no newline added).
  public var write: @Sendable (String) -> Void

  public init(isTerminal: Bool, write: @escaping @Sendable (String) -> Void) {
    self.isTerminal = isTerminal
    self.write = write
  }

  /// Standard error.
  public static var standardError: HubProgress {
    HubProgress(isTerminal: isatty(STDERR_FILENO) == 1) { FileHandle.standardError.write(Data($0.utf8)) }
  }

  /// Nothing written.
  public static let silent = HubProgress(isTerminal: false) { _ in }

  /// `1.5 MB`, `230 B`: decimal units as huggingface_hub's progress bars.
  static func bytes(_ count: Int64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"]
    var value = Double(count)
    var unit = 0
    while value >= 1000 && unit < units.count - 1 {
      value /= 1000
      unit += 1
    }
    return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
  }
}

/// The progress line of one file being downloaded.
final class FileProgress: @unchecked Sendable {
  let progress: HubProgress
  let name: String
  let total: Int64?
  let resumedFrom: Int64
  let started = Date()
  private var lastDrawn = Date.distantPast
  private(set) var received: Int64

  init(_ progress: HubProgress, name: String, total: Int64?, resumedFrom: Int64) {
    self.progress = progress
    self.name = name
    self.total = total
    self.resumedFrom = resumedFrom
    received = resumedFrom
  }

  func advance(_ count: Int) {
    received += Int64(count)
    guard progress.isTerminal, Date().timeIntervalSince(lastDrawn) >= 0.25 else { return }
    lastDrawn = Date()
    progress.write("\r\u{1B}[K" + line(done: false))
  }

  func finish() {
    progress.write((progress.isTerminal ? "\r\u{1B}[K" : "") + line(done: true) + "\n")
  }

  func line(done: Bool) -> String {
    let seconds = max(Date().timeIntervalSince(started), 1e-3)
    let rate = Double(received - resumedFrom) / seconds
    let of = total.map { " / " + HubProgress.bytes($0) } ?? ""
    let resumed = resumedFrom > 0 ? ", resumed at \(HubProgress.bytes(resumedFrom))" : ""
    return (done ? "downloaded " : "downloading ") + "\(name): \(HubProgress.bytes(received))\(of)"
      + String(format: " in %.1f s (%@/s%@)", seconds, HubProgress.bytes(Int64(rate)), resumed)
  }
}
