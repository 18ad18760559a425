import Foundation

/// How advantages are scaled after subtracting the group mean (TRL's `scale_rewards`).
public enum RewardScaling: String, Sendable, Codable, CaseIterable {
  /// Divide by the Bessel-corrected std of the sample's group (GRPO, the default).
  case group
  /// Divide by the Bessel-corrected std of the whole batch (the group mean is still subtracted).
  case batch
  /// No division (Dr. GRPO).
  case none
}

/// Batch statistics that the trainer logs next to the advantages.
public struct AdvantageStats: Sendable, Equatable {
  /// Fraction of samples whose group reward std is zero (`frac_reward_zero_std`).
  public var fracRewardZeroStd: Double
  /// Mean over samples of the group mean reward (`reward`).
  public var rewardMean: Double
  /// Mean over samples of the std used for scaling (`reward_std`): group std, or the batch std.
  public var rewardStd: Double
  /// Samples whose every reward function said nil (they get advantage 0).
  public var notApplicableCount: Int
}

/// Group-relative advantages, as TRL's GRPOTrainer computes them in `_generate_and_score_completions`:
/// `A = r - mean_group(r)`, then unless `scaling == .none` divided by `std + 1e-4` with the
/// Bessel-corrected std of the group (or of the batch); a NaN advantage (a group of one) becomes 0.
///
/// Where this differs from TRL on purpose: a nil total (every reward function said "not
/// applicable") is left out of its group's mean and std and gets advantage 0 (docs/reward-definitions.md). TRL's
/// `nansum` would count it as a reward of 0 instead.
public enum Advantages {
  /// The `+ 1e-4` in the denominator (TRL's constant).
  public static let epsilon = 1e-4

  /// Advantages for `totals` laid out group after group (`groupSize` consecutive samples share a
  /// prompt). Rewards from every rank must already be gathered into `totals`.
  public static func compute(totals: [Double?], groupSize: Int,
                             scaling: RewardScaling = .group) throws -> (advantages: [Double], stats: AdvantageStats) {
    guard groupSize > 0 else { throw TrainingError.invalidArgument("advantages: group size must be positive, got \(groupSize)") }
    guard totals.count % groupSize == 0 else {
      throw TrainingError.invalidArgument(
        "advantages: \(totals.count) rewards do not split into groups of \(groupSize)")
    }
    let groupCount = totals.count / groupSize
    var groupMeans = [Double](repeating: .nan, count: totals.count)
    var groupStds = [Double](repeating: .nan, count: totals.count)
    for group in 0..<groupCount {
      let range = (group * groupSize)..<((group + 1) * groupSize)
      let present = totals[range].compactMap { $0 }
      let mean = mean(present)
      let std = besselStd(present, mean: mean)
      for index in range {
        groupMeans[index] = mean
        groupStds[index] = std
      }
    }
    let scaleStds: [Double]
    switch scaling {
    case .group, .none:
      scaleStds = groupStds
    case .batch:
      let present = totals.compactMap { $0 }
      scaleStds = [Double](repeating: besselStd(present, mean: mean(present)), count: totals.count)
    }
    var advantages = [Double](repeating: 0, count: totals.count)
    for (index, total) in totals.enumerated() {
      guard let total else { continue }
      var advantage = total - groupMeans[index]
      if scaling != .none { advantage /= scaleStds[index] + epsilon }
      advantages[index] = advantage.isNaN ? 0 : advantage
    }
    let stats = AdvantageStats(
      fracRewardZeroStd: totals.isEmpty ? 0 : Double(scaleStds.filter(isCloseToZero).count) / Double(totals.count),
      rewardMean: nanMean(groupMeans),
      rewardStd: nanMean(scaleStds),
      notApplicableCount: totals.filter { $0 == nil }.count)
    return (advantages, stats)
  }

  /// torch.isclose(std, 0) with its default tolerances (atol 1e-8): a NaN std is not close.
  static func isCloseToZero(_ value: Double) -> Bool { Swift.abs(value) <= 1e-8 }

  static func mean(_ values: [Double]) -> Double {
    values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
  }

  /// Bessel-corrected standard deviation (torch.std's default); NaN for fewer than two values.
  static func besselStd(_ values: [Double], mean: Double) -> Double {
    guard values.count > 1 else { return .nan }
    let squares = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
    return (squares / Double(values.count - 1)).squareRoot()
  }

  /// Mean of the non-NaN values (torch.nanmean); 0 when there are none, so a log line stays finite.
  static func nanMean(_ values: [Double]) -> Double {
    let finite = values.filter { !$0.isNaN }
    return finite.isEmpty ? 0 : finite.reduce(0, +) / Double(finite.count)
  }
}
