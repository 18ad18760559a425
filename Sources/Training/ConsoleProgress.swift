import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The terminal line a progress bar is drawn on, shared by everything a run prints: a message
/// erases the bar first, so the two never share a line (`tok/s 3716saved checkpoint-5`), and the
/// next bar update draws it again below the message. Writes go through C's `stdout`, the stream
/// Swift's `print` uses, so bar, messages and plain prints keep their order.
public final class ConsoleLine: @unchecked Sendable {
  /// Standard output.
  public static let standardOutput = ConsoleLine(write: ConsoleLine.writeStdout)

  private let write: @Sendable (String) -> Void
  private var barShown = false
  /// A message that did not end its line is on the screen: the bar starts on the next line.
  private var midLine = false
  private let lock = NSLock()

  public init(write: @escaping @Sendable (String) -> Void) { self.write = write }

  /// Writes `text` to C's stdout and flushes it (a bar has no newline to flush a line-buffered stream).
  public static let writeStdout: @Sendable (String) -> Void = { StandardOutput.write($0) }

  /// Draws `bar` in place of the previous bar.
  public func drawBar(_ bar: String) {
    lock.withLock {
      if midLine { write("\n") }
      midLine = false
      write("\r\u{1B}[2K" + bar)
      barShown = true
    }
  }

  /// Writes `text` (a newline is not added), erasing the bar first when one is shown.
  public func message(_ text: String) {
    guard !text.isEmpty else { return }
    lock.withLock {
      write((barShown ? "\r\u{1B}[2K" : "") + text)
      barShown = false
      midLine = !text.hasSuffix("\n")
    }
  }

  /// Leaves the bar as it is and moves the cursor to the next line (the end of a run, or an error).
  public func endBar() {
    lock.withLock {
      if barShown { write("\n") }
      barShown = false
    }
  }
}

/// Where a run's messages go: `Console.log("saved checkpoint-5")` prints a line that never shares
/// the terminal line with the progress bar.
public enum Console {
  /// Prints `message` and a newline to standard output, on a line of its own.
  public static func log(_ message: String) { ConsoleLine.standardOutput.message(message + "\n") }

  /// Standard output line-buffered even when it is a file or a pipe, so a killed run's log keeps
  /// every line printed before the kill (C makes such a stream fully buffered: 4 KiB lost).
  public static func lineBufferStandardOutput() { StandardOutput.lineBuffer() }
}

/// The console view of a run: a progress bar redrawn in place on a terminal (step/total, ETA,
/// reward, tokens/s), plain lines when stdout is a file or pipe (the first step, the last, and
/// otherwise at most one every `plainInterval` seconds, so a log file is not one line per step),
/// and per-step summaries that are colored only when `colorize_output` is on and stdout is a
/// terminal.
public final class ConsoleProgress: @unchecked Sendable {
  public let totalSteps: Int
  public let isTerminal: Bool
  public let colorize: Bool
  private let line: ConsoleLine
  private let clock: @Sendable () -> Double
  private var start: (step: Int, time: Double)?
  private var lastPlainLine: Double?
  /// Seconds between plain status lines when stdout is not a terminal.
  public let plainInterval: Double
  private let lock = NSLock()

  /// `isTerminal` defaults to `isatty(stdout)`; `line` (standard output's by default) is where the
  /// bar and the messages go; `clock` is replaceable for tests.
  public init(totalSteps: Int, colorize: Bool, isTerminal: Bool = ConsoleProgress.stdoutIsTerminal,
              line: ConsoleLine = .standardOutput,
              clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }, plainInterval: Double = 10) {
    self.totalSteps = totalSteps
    self.plainInterval = plainInterval
    self.isTerminal = isTerminal
    self.colorize = colorize && isTerminal
    self.line = line
    self.clock = clock
  }

  /// As above, writing to `write` through a line of its own (tests).
  public convenience init(totalSteps: Int, colorize: Bool, isTerminal: Bool, write: @escaping @Sendable (String) -> Void,
                          clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }, plainInterval: Double = 10) {
    self.init(totalSteps: totalSteps, colorize: colorize, isTerminal: isTerminal, line: ConsoleLine(write: write),
              clock: clock, plainInterval: plainInterval)
  }

  public static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) != 0 }

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
        line.drawBar(Self.bar(step: step, total: totalSteps) + " " + status)
      } else if lastPlainLine.map({ now - $0 >= plainInterval }) ?? true || step >= totalSteps {
        line.message(status + "\n")
        lastPlainLine = now
      }
    }
  }

  /// A one-line summary of a logged step: reward in green/red by sign followed by each reward
  /// function's mean (`reward 1.25 (format 1, iou 0.25)`), KL in yellow, loss plain.
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
        if key == MetricName.reward, let perFunction = Self.rewardMeans(metrics) { text += " " + perFunction }
        parts.append(text)
      }
      line.message(parts.joined(separator: "  ") + "\n")
    }
  }

  /// `(format 1, iou 0.25)` from the `rewards/<name>/mean` entries, names sorted; nil when none.
  static func rewardMeans(_ metrics: [String: Double]) -> String? {
    let prefix = "rewards/", suffix = "/mean"
    let entries = metrics.keys.filter { $0.hasPrefix(prefix) && $0.hasSuffix(suffix) }.sorted().compactMap { key in
      metrics[key].map { "\(key.dropFirst(prefix.count).dropLast(suffix.count)) \(number($0))" }
    }
    return entries.isEmpty ? nil : "(" + entries.joined(separator: ", ") + ")"
  }

  /// A message on a line of its own (the bar, when shown, is erased first and drawn again at the
  /// next update).
  public func message(_ text: String) { line.message(text.hasSuffix("\n") ? text : text + "\n") }

  /// Ends the bar's line.
  public func finish() { line.endBar() }

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
