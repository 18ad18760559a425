import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The console view of a run: a progress bar redrawn in place on a terminal (step/total, ETA,
/// reward, tokens/s), plain lines when stdout is a file or pipe (the first step, the last, and
/// otherwise at most one every `plainInterval` seconds, so a log file is not one line per step),
/// and per-step summaries that are colored only when `colorize_output` is on and stdout is a
/// terminal.
public final class ConsoleProgress: @unchecked Sendable {
  public let totalSteps: Int
  public let isTerminal: Bool
  public let colorize: Bool
  private let write: @Sendable (String) -> Void
  private let clock: @Sendable () -> Double
  private var start: (step: Int, time: Double)?
  private var barShown = false
  private var lastPlainLine: Double?
  /// Seconds between plain status lines when stdout is not a terminal.
  public let plainInterval: Double
  private let lock = NSLock()

  /// `isTerminal` defaults to `isatty(stdout)`; `write` and `clock` are replaceable for tests.
  public init(totalSteps: Int, colorize: Bool, isTerminal: Bool = ConsoleProgress.stdoutIsTerminal,
              write: @escaping @Sendable (String) -> Void = ConsoleProgress.writeStdout,
              clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }, plainInterval: Double = 10) {
    self.totalSteps = totalSteps
    self.plainInterval = plainInterval
    self.isTerminal = isTerminal
    self.colorize = colorize && isTerminal
    self.write = write
    self.clock = clock
  }

  public static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) != 0 }

  public static let writeStdout: @Sendable (String) -> Void = { text in
    FileHandle.standardOutput.write(Data(text.utf8))
  }

  /// Reports that `step` finished. The first call sets the ETA's origin (so a resumed run's ETA
  /// counts only the steps it ran itself).
  public func update(step: Int, reward: Double? = nil, tokensPerSecond: Double? = nil) {
    lock.withLock {
      let now = clock()
      if start == nil { start = (step, now) }
      let eta = Self.eta(startStep: start?.step ?? 0, startTime: start?.time ?? now, step: step, now: now,
                         totalSteps: totalSteps)
      let status = Self.status(step: step, total: totalSteps, eta: eta, reward: reward, tokensPerSecond: tokensPerSecond)
      if isTerminal {
        write("\r\u{1B}[2K" + Self.bar(step: step, total: totalSteps) + " " + status)
        barShown = true
      } else if lastPlainLine.map({ now - $0 >= plainInterval }) ?? true || step >= totalSteps {
        write(status + "\n")
        lastPlainLine = now
      }
    }
  }

  /// A one-line summary of a logged step: reward in green/red by sign, KL in yellow, loss plain.
  public func summary(step: Int, metrics: [String: Double]) {
    lock.withLock {
      var parts = ["step \(step)"]
      for (key, color) in [(MetricName.loss, ""), (MetricName.reward, "reward"), (MetricName.kl, "\u{1B}[33m"),
                           (MetricName.meanLength, ""), (MetricName.stepTime, "")] {
        guard let value = metrics[key] else { continue }
        var text = "\(key) \(Self.number(value))"
        if colorize {
          let code = color == "reward" ? (value >= 0 ? "\u{1B}[32m" : "\u{1B}[31m") : color
          if !code.isEmpty { text = code + text + "\u{1B}[0m" }
        }
        parts.append(text)
      }
      let line = parts.joined(separator: "  ")
      write((barShown ? "\r\u{1B}[2K" : "") + line + "\n")
      barShown = false
    }
  }

  /// Ends the bar's line.
  public func finish() {
    lock.withLock {
      if barShown { write("\n") }
      barShown = false
    }
  }

  // MARK: Formatting

  /// `[#########...........]` with `width` cells.
  static func bar(step: Int, total: Int, width: Int = 24) -> String {
    let fraction = total > 0 ? min(1, max(0, Double(step) / Double(total))) : 0
    let filled = Int((fraction * Double(width)).rounded(.down))
    return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
  }

  static func status(step: Int, total: Int, eta: Double?, reward: Double?, tokensPerSecond: Double?) -> String {
    let percent = total > 0 ? Int((Double(step) / Double(total) * 100).rounded(.down)) : 0
    var parts = ["step \(step)/\(total) (\(percent)%)", "eta " + (eta.map(duration) ?? "--")]
    if let reward { parts.append("reward \(number(reward))") }
    if let tokensPerSecond { parts.append("tok/s \(Int(tokensPerSecond.rounded()))") }
    return parts.joined(separator: "  ")
  }

  /// Remaining time from the mean duration of the steps run since `startStep`.
  static func eta(startStep: Int, startTime: Double, step: Int, now: Double, totalSteps: Int) -> Double? {
    let done = step - startStep
    guard done > 0, now >= startTime else { return nil }
    return (now - startTime) / Double(done) * Double(max(0, totalSteps - step))
  }

  /// `45s`, `3m05s`, `2h07m`.
  static func duration(_ seconds: Double) -> String {
    let total = Int(seconds.rounded())
    if total < 60 { return "\(total)s" }
    if total < 3600 { return String(format: "%dm%02ds", total / 60, total % 60) }
    return String(format: "%dh%02dm", total / 3600, (total % 3600) / 60)
  }

  static func number(_ value: Double) -> String { String(format: "%.4g", value) }
}
