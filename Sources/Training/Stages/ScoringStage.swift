import Foundation
import Prompting
import Rewards
import Torch

/// The rewards and advantages of one generation batch.
public struct ScoredBatch: Sendable {
  /// Per function (by metric key, config order) one value per record (nil: not applicable).
  public var rewards: [(key: String, values: [Double?])]
  /// The weighted sum per record; nil when no function applied.
  public var totals: [Double?]
  public var advantages: [Double]
  /// `reward`, `reward_std`, `frac_reward_zero_std`, `rewards/<key>/mean|std`, `rewards/<key>/errors`,
  /// `completions/*`, `time/score`.
  public var metrics: [String: Double]
  /// Function keys that failed on every call of this batch.
  public var failedFunctions: [String]
  /// The first error message per failing function.
  public var errorMessages: [String: String]
}

/// Stage 2 of a GRPO step: every reward function over the rollout records (concurrently), the
/// weighted totals, group advantages (mean/std over each prompt's G completions) and the reward
/// and completion metrics. Two functions of the same name keep separate keys (`command`,
/// `command#2`), each with its own metrics.
///
/// Data-parallel (`ranks` set): each rank scores its own records, then the rewards, lengths and
/// error counts of all ranks are gathered in rank order, so advantages (every `scale_rewards`
/// mode) and metrics are computed over the whole generation batch exactly as one process would,
/// and each rank keeps its own slice of the advantages.
public struct ScoringStage: Sendable {
  public let rewards: RewardRunner
  public let groupSize: Int
  public let scaling: RewardScaling
  public let ranks: ProcessGroup?

  public init(rewards: RewardRunner, groupSize: Int, scaling: RewardScaling, ranks: ProcessGroup? = nil) {
    self.rewards = rewards
    self.groupSize = groupSize
    self.scaling = scaling
    self.ranks = ranks
  }

  /// The metric key of each function, in config order.
  public var keys: [String] { rewards.metricKeys }

  public func run(_ records: [RolloutRecord]) async throws -> ScoredBatch {
    let timer = Date()
    let scores = await rewards.score(records.map(\.rewardSample))
    let keys = self.keys
    let columns = keys.map { scores.perFunction[$0] ?? Array(repeating: nil, count: records.count) }
    var errorCounts = keys.map { scores.errorCounts[$0] ?? 0 }
    var whole = (totals: scores.total, columns: columns, lengths: records.map(\.tokens.count),
                 truncated: records.map(\.truncated), offset: 0)
    if let ranks {
      // nil (no function applied) travels as NaN.
      func gathered(_ values: [Double?]) throws -> [Double?] {
        try ranks.concatenated(values.map { $0 ?? .nan }).values.map { $0.isNaN ? nil : $0 }
      }
      let totals = try ranks.concatenated(scores.total.map { $0 ?? .nan })
      whole.totals = totals.values.map { $0.isNaN ? nil : $0 }
      whole.offset = totals.offset
      whole.columns = try columns.map(gathered)
      whole.lengths = try ranks.concatenated(whole.lengths.map(Double.init)).values.map { Int($0) }
      whole.truncated = try ranks.concatenated(whole.truncated.map { $0 ? 1 : 0 }).values.map { $0 != 0 }
      errorCounts = try ranks.allGather(errorCounts.map(Double.init)).reduce(into: errorCounts.map { _ in 0 }) {
        for (index, count) in $1.enumerated() { $0[index] += Int(count) }
      }
    }
    let (allAdvantages, stats) = try Advantages.compute(totals: whole.totals, groupSize: groupSize, scaling: scaling)
    let advantages = Array(allAdvantages[whole.offset..<(whole.offset + records.count)])
    var metrics: [String: Double] = [
      MetricName.reward: stats.rewardMean, MetricName.rewardStd: stats.rewardStd,
      MetricName.fracRewardZeroStd: stats.fracRewardZeroStd,
    ]
    metrics.merge(try RewardStats.metrics(names: keys, values: whole.columns)) { $1 }
    metrics.merge(try CompletionStats(lengths: whole.lengths, truncated: whole.truncated).metrics) { $1 }
    for (key, count) in zip(keys, errorCounts) where count > 0 { metrics["rewards/\(key)/errors"] = Double(count) }
    // Extra metrics a reward reported (a persistent `command` reward's second output): `rewards/<key>/<name>`.
    for (name, value) in scores.metrics { metrics["rewards/\(name)"] = value }
    metrics[MetricName.timeScore] = Date().timeIntervalSince(timer)
    // The runner calls each function once per batch: an error count of 1 means it failed on all of
    // it; summed over ranks, one per rank means it failed on the whole batch.
    let failed = zip(keys, errorCounts).filter { $0.1 >= (ranks?.worldSize ?? 1) }.map { $0.0 }
    return ScoredBatch(rewards: Array(zip(keys, columns)).map { (key: $0.0, values: $0.1) }, totals: scores.total,
                       advantages: advantages, metrics: metrics, failedFunctions: failed, errorMessages: scores.errorMessages)
  }
}
