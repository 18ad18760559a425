import Foundation
import Testing
@testable import Training

@Suite struct AdvantagesTests {
  @Test func groupScalingMatchesHandValues() throws {
    // Group 1: [1, 2, 3] mean 2, Bessel std 1. Group 2: [0, 0, 6] mean 2, std sqrt(12) = 3.4641.
    let (advantages, stats) = try Advantages.compute(totals: [1, 2, 3, 0, 0, 6], groupSize: 3)
    let s2 = 12.0.squareRoot()
    let expected = [-1 / 1.0001, 0, 1 / 1.0001, -2 / (s2 + 1e-4), -2 / (s2 + 1e-4), 4 / (s2 + 1e-4)]
    for (a, e) in zip(advantages, expected) { #expect(abs(a - e) < 1e-12) }
    #expect(stats.rewardMean == 2)
    #expect(abs(stats.rewardStd - (1 + s2) / 2) < 1e-12)
    #expect(stats.fracRewardZeroStd == 0)
  }

  @Test func batchScalingDividesByTheBatchStd() throws {
    // Group means 0.5 and 2.5; batch [0, 1, 2, 3] has Bessel std sqrt(5/3).
    let (advantages, stats) = try Advantages.compute(totals: [0, 1, 2, 3], groupSize: 2, scaling: .batch)
    let std = (5.0 / 3).squareRoot()
    let expected = [-0.5, 0.5, -0.5, 0.5].map { $0 / (std + 1e-4) }
    for (a, e) in zip(advantages, expected) { #expect(abs(a - e) < 1e-12) }
    #expect(abs(stats.rewardStd - std) < 1e-12)
  }

  @Test func noScalingOnlyCentres() throws {
    let (advantages, _) = try Advantages.compute(totals: [1, 3, 10, 10], groupSize: 2, scaling: .none)
    #expect(advantages == [-1, 1, 0, 0])
  }

  @Test func zeroStdGroupsGiveZeroAdvantageAndAreCounted() throws {
    let (advantages, stats) = try Advantages.compute(totals: [2, 2, 2, 1, 0, 1], groupSize: 3)
    #expect(advantages[0...2] == [0, 0, 0])
    #expect(stats.fracRewardZeroStd == 0.5)
  }

  @Test func allNilSamplesGetZeroAndLeaveTheGroupStats() throws {
    // nil is excluded: group 1 is [1, 3] (mean 2, std sqrt 2); group 2 has one value -> std NaN -> 0.
    let (advantages, stats) = try Advantages.compute(totals: [1, nil, 3, nil, 5, nil], groupSize: 3)
    let scale = 2.0.squareRoot() + 1e-4
    #expect(abs(advantages[0] + 1 / scale) < 1e-12)
    #expect(advantages[1] == 0)
    #expect(abs(advantages[2] - 1 / scale) < 1e-12)
    #expect(advantages[3...5] == [0, 0, 0])
    #expect(stats.notApplicableCount == 3)
    // Means: group 1 = 2, group 2 = 5 -> 3.5 over samples; std NaN of group 2 is left out of reward_std.
    #expect(stats.rewardMean == 3.5)
    #expect(abs(stats.rewardStd - 2.0.squareRoot()) < 1e-12)
  }

  @Test func badShapesThrow() {
    #expect(throws: TrainingError.self) { try Advantages.compute(totals: [1, 2, 3], groupSize: 2) }
    #expect(throws: TrainingError.self) { try Advantages.compute(totals: [1, 2], groupSize: 0) }
  }
}

@Suite struct StepStatsTests {
  @Test func completionLengthsAsTRLLogsThem() throws {
    let stats = try CompletionStats(lengths: [10, 256, 30, 256], truncated: [false, true, false, true])
    #expect(stats.meanLength == 138 && stats.minLength == 10 && stats.maxLength == 256)
    #expect(stats.clippedRatio == 0.5)
    #expect(stats.meanTerminatedLength == 20 && stats.minTerminatedLength == 10 && stats.maxTerminatedLength == 30)
    let allCut = try CompletionStats(lengths: [8, 8], truncated: [true, true])
    #expect(allCut.clippedRatio == 1 && allCut.meanTerminatedLength == 0)
    #expect(throws: TrainingError.self) { try CompletionStats(lengths: [1], truncated: []) }
  }

  @Test func perFunctionRewardsSkipNil() throws {
    let metrics = try RewardStats.metrics(names: ["format", "iou"], values: [[1, 0, 1, nil], [nil, nil, 0.5, nil]])
    #expect(metrics["rewards/format/mean"] == 2.0 / 3)
    #expect(abs((metrics["rewards/format/std"] ?? 0) - (1.0 / 3).squareRoot()) < 1e-12)
    #expect(metrics["rewards/iou/mean"] == 0.5)
    #expect(metrics["rewards/iou/std"]?.isNaN == true)
  }
}
