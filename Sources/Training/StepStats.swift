import Foundation

/// The completion-length metrics TRL logs per step (`completions/*`), over the gathered batch.
public struct CompletionStats: Sendable, Equatable {
  public var meanLength: Double
  public var minLength: Double
  public var maxLength: Double
  /// Fraction of completions that hit the length limit (`completions/clipped_ratio`).
  public var clippedRatio: Double
  /// Length statistics of the completions that ended with EOS (0 when none did, as in TRL).
  public var meanTerminatedLength: Double
  public var minTerminatedLength: Double
  public var maxTerminatedLength: Double

  /// `lengths[i]` completion tokens; `truncated[i]` when completion `i` hit `max_completion_length`.
  public init(lengths: [Int], truncated: [Bool]) throws {
    guard lengths.count == truncated.count, !lengths.isEmpty else {
      throw TrainingError.invalidArgument(
        "completion stats: \(lengths.count) lengths and \(truncated.count) truncation flags (need equal, non-zero)")
    }
    let all = lengths.map(Double.init)
    var terminated = zip(all, truncated).filter { !$0.1 }.map(\.0)
    clippedRatio = 1 - Double(terminated.count) / Double(all.count)
    if terminated.isEmpty { terminated = [0] }
    meanLength = all.reduce(0, +) / Double(all.count)
    minLength = all.min() ?? 0
    maxLength = all.max() ?? 0
    meanTerminatedLength = terminated.reduce(0, +) / Double(terminated.count)
    minTerminatedLength = terminated.min() ?? 0
    maxTerminatedLength = terminated.max() ?? 0
  }

  /// The rows of `metrics.jsonl` these stats fill.
  public var metrics: [String: Double] {
    [MetricName.meanLength: meanLength, MetricName.minLength: minLength, MetricName.maxLength: maxLength,
     MetricName.clippedRatio: clippedRatio, MetricName.meanTerminatedLength: meanTerminatedLength,
     "completions/min_terminated_length": minTerminatedLength,
     "completions/max_terminated_length": maxTerminatedLength]
  }
}

/// Per-function reward metrics (`rewards/<name>/mean`, `rewards/<name>/std`): mean and
/// Bessel-corrected std over the samples where the function applied (TRL's nanmean / nanstd).
public enum RewardStats {
  /// `values[k][i]` is function `k`'s reward for sample `i` (nil: not applicable). A function that
  /// applied to no sample logs NaN (written as null); one that applied once has std NaN.
  public static func metrics(names: [String], values: [[Double?]]) throws -> [String: Double] {
    guard names.count == values.count else {
      throw TrainingError.invalidArgument("reward stats: \(names.count) names for \(values.count) value lists")
    }
    var result: [String: Double] = [:]
    for (name, column) in zip(names, values) {
      let present = column.compactMap { $0 }
      let mean = Advantages.mean(present)
      result[MetricName.rewardMean(name)] = mean
      result[MetricName.rewardStd(name)] = Advantages.besselStd(present, mean: mean)
    }
    return result
  }
}
