import Foundation
import Prompting
import Rewards

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
public struct ScoringStage: Sendable {
  public let rewards: RewardRunner
  public let groupSize: Int
  public let scaling: RewardScaling

  public init(rewards: RewardRunner, groupSize: Int, scaling: RewardScaling) {
    self.rewards = rewards
    self.groupSize = groupSize
    self.scaling = scaling
  }

  /// The metric key of each function, in config order.
  public var keys: [String] { rewards.metricKeys }

  public func run(_ records: [RolloutRecord]) async throws -> ScoredBatch {
    let timer = Date()
    let scores = await rewards.score(records.map(\.rewardSample))
    let keys = self.keys
    let columns = keys.map { scores.perFunction[$0] ?? Array(repeating: nil, count: records.count) }
    let (advantages, stats) = try Advantages.compute(totals: scores.total, groupSize: groupSize, scaling: scaling)
    var metrics: [String: Double] = [
      MetricName.reward: stats.rewardMean, MetricName.rewardStd: stats.rewardStd,
      MetricName.fracRewardZeroStd: stats.fracRewardZeroStd,
    ]
    metrics.merge(try RewardStats.metrics(names: keys, values: columns)) { $1 }
    metrics.merge(try CompletionStats(lengths: records.map(\.tokens.count), truncated: records.map(\.truncated)).metrics) { $1 }
    for (key, count) in scores.errorCounts where count > 0 { metrics["rewards/\(key)/errors"] = Double(count) }
    // Extra metrics a reward reported (a persistent `command` reward's second output): `rewards/<key>/<name>`.
    for (name, value) in scores.metrics { metrics["rewards/\(name)"] = value }
    metrics[MetricName.timeScore] = Date().timeIntervalSince(timer)
    // The runner calls each function once per batch: an error count of 1 means it failed on all of it.
    let failed = keys.filter { (scores.errorCounts[$0] ?? 0) > 0 }
    return ScoredBatch(rewards: Array(zip(keys, columns)).map { (key: $0.0, values: $0.1) }, totals: scores.total,
                       advantages: advantages, metrics: metrics, failedFunctions: failed, errorMessages: scores.errorMessages)
  }
}
