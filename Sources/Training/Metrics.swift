import Common
import Foundation

/// Metric names a run logs: TRL's where TRL has one (docs/grpo.md), vlmrl's timing split otherwise.
public enum MetricName {
  public static let loss = "loss"
  public static let gradNorm = "grad_norm"
  public static let learningRate = "learning_rate"
  public static let reward = "reward"
  public static let rewardStd = "reward_std"
  public static let fracRewardZeroStd = "frac_reward_zero_std"
  public static let meanLength = "completions/mean_length"
  public static let minLength = "completions/min_length"
  public static let maxLength = "completions/max_length"
  public static let clippedRatio = "completions/clipped_ratio"
  public static let meanTerminatedLength = "completions/mean_terminated_length"
  public static let kl = "kl"
  public static let entropy = "entropy"
  public static let clipRatioLow = "clip_ratio/low_mean"
  public static let clipRatioHigh = "clip_ratio/high_mean"
  public static let clipRatioRegion = "clip_ratio/region_mean"
  public static let numTokens = "num_tokens"
  public static let stepTime = "step_time"
  public static let tokensPerSecond = "tokens_per_second"
  public static let timeGenerate = "time/generate"
  public static let timeScore = "time/score"
  public static let timeLogprobs = "time/logprobs"
  public static let timeBackward = "time/backward"
  public static let timeOptimizer = "time/optimizer"
  /// The step-time split, in pipeline order.
  public static let timeSplit = [timeGenerate, timeScore, timeLogprobs, timeBackward, timeOptimizer]

  public static func rewardMean(_ function: String) -> String { "rewards/\(function)/mean" }
  public static func rewardStd(_ function: String) -> String { "rewards/\(function)/std" }
}

/// One logged row: the optimizer step, the epoch (fractional) and the metric values.
public struct MetricsRow: Sendable, Equatable {
  public var step: Int
  public var epoch: Double?
  public var values: [String: Double]

  public init(step: Int, epoch: Double? = nil, values: [String: Double]) {
    self.step = step
    self.epoch = epoch
    self.values = values
  }

  /// The JSON line: `{"epoch":..,"step":..,<metrics>}` with sorted keys; a non-finite value is `null`.
  public var jsonLine: String {
    var object: [String: JSONValue] = ["step": .int(step)]
    if let epoch { object["epoch"] = .double(epoch) }
    for (key, value) in values where key != "step" && key != "epoch" {
      object[key] = value.isFinite ? .double(value) : .null
    }
    return JSONValue.object(object).jsonString
  }

  /// Parses one line of `metrics.jsonl` (`null` values are left out).
  public init(jsonLine line: String, location: String) throws {
    guard let object = (try? JSONValue.parse(line))?.objectValue, let step = object["step"]?.intValue else {
      throw TrainingError.io(path: location, reason: "not a metrics row (a JSON object with an integer 'step')")
    }
    self.step = step
    epoch = object["epoch"]?.doubleValue
    values = object.filter { $0.key != "step" && $0.key != "epoch" }.compactMapValues(\.doubleValue)
  }
}

/// `metrics.jsonl`: one JSON object per logging step, appended and flushed as the run goes.
public final class MetricsJSONL: @unchecked Sendable {
  public let url: URL
  private let lock = NSLock()

  /// Opens (creating) the file. With `keepingThrough` (a resumed run), rows after that step,
  /// written by the interrupted run after its last checkpoint, are dropped first.
  public init(url: URL, keepingThrough step: Int? = nil) throws {
    self.url = url
    let manager = FileManager.default
    do {
      try manager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      if let step, manager.fileExists(atPath: url.path) {
        let kept = try Self.read(url).filter { $0.step <= step }
        try Data(kept.map { $0.jsonLine + "\n" }.joined().utf8).write(to: url, options: .atomic)
      } else if step == nil || !manager.fileExists(atPath: url.path) {
        try Data().write(to: url)
      }
    } catch let error as TrainingError {
      throw error
    } catch {
      throw TrainingError.io(path: url.path, reason: "cannot create the metrics file (\(error.localizedDescription))")
    }
  }

  public func append(_ row: MetricsRow) throws {
    let data = Data((row.jsonLine + "\n").utf8)
    try lock.withLock {
      do {
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: data)
      } catch {
        throw TrainingError.io(path: url.path, reason: "cannot append a metrics row (\(error.localizedDescription))")
      }
    }
  }

  /// Every row of a metrics file; a malformed line is an error naming its line number.
  public static func read(_ url: URL) throws -> [MetricsRow] {
    guard let data = FileManager.default.contents(atPath: url.path) else {
      throw TrainingError.io(path: url.path, reason: "cannot read the metrics file")
    }
    return try String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
      .enumerated().map { index, line in try MetricsRow(jsonLine: String(line), location: "\(url.path):\(index + 1)") }
  }
}

/// Averages per-step metrics over the steps of one logging interval, as TRL does between logs:
/// each key's mean over the steps that reported a finite value.
public struct MetricsAverager: Sendable {
  private var sums: [String: Double] = [:]
  private var counts: [String: Int] = [:]

  public init() {}

  public mutating func add(_ values: [String: Double]) {
    for (key, value) in values where value.isFinite {
      sums[key, default: 0] += value
      counts[key, default: 0] += 1
    }
  }

  public var isEmpty: Bool { counts.isEmpty }

  /// The means so far, and a fresh start.
  public mutating func flush() -> [String: Double] {
    var means: [String: Double] = [:]
    for (key, sum) in sums { means[key] = sum / Double(counts[key] ?? 1) }
    sums = [:]
    counts = [:]
    return means
  }
}
