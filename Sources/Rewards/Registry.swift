// Reward functions by the names configs use (`reward_funcs`), with aliases.
import Common
import Foundation

/// Builds reward functions from their registry names and parameters.
public enum RewardRegistry {
  typealias Factory = @Sendable (RewardParameters) throws -> any RewardFunction

  /// Canonical name -> factory.
  static let factories: [String: Factory] = [
    "format": { try GroundingRewards.format($0) },
    "gaussian_point": { try GroundingRewards.gaussian($0, plane: false) },
    "gaussian_plane": { try GroundingRewards.gaussian($0, plane: true) },
    "multi_box_format_reward": { try GroundingRewards.multiFormat($0) },
    "multi_gaussian_point": { try GroundingRewards.multiGaussian($0, plane: false) },
    "multi_gaussian_plane": { try GroundingRewards.multiGaussian($0, plane: true) },
    "think_format": { R1Rewards.thinkFormat($0) },
    "rec_format": { R1Rewards.recFormat($0) },
    "iou": { try R1Rewards.iou($0, threshold: nil) },
    "rec_accuracy": { try R1Rewards.iou($0, threshold: 0.5) },
    "accuracy": { R1Rewards.accuracy($0) },
    "counting_accuracy": { R1Rewards.countingAccuracy($0) },
    "mc_idx": { ChoiceRewards.mcIndex($0) },
    "think_tag_format": { ChoiceRewards.thinkTagFormat($0) },
    "mdi": { try ChoiceRewards.mdi($0) },
  ]

  /// Alias -> canonical name.
  static let aliases: [String: String] = [
    "multi_gaussian_plane_reward": "multi_gaussian_plane",
    "format_reward": "think_format",
    "r1_format": "think_format",
    "math_accuracy": "accuracy",
  ]

  /// Weights used when a config gives none (the TRL MDI fork weighs `mc_idx` 4.0).
  static let defaultWeights: [String: Double] = ["mc_idx": 4.0]

  /// Every name a config may use (canonical names and aliases), sorted.
  public static var names: [String] { (Array(factories.keys) + Array(aliases.keys) + extraNames).sorted() }

  /// The canonical name of `name` (itself when it is not an alias).
  public static func canonicalName(_ name: String) -> String { aliases[name] ?? name }

  /// The default mixing weight of a reward (1.0 unless the reference system says otherwise).
  public static func defaultWeight(for name: String) -> Double {
    defaultWeights[canonicalName(name)] ?? 1.0
  }

  /// Builds the reward `name` (or alias) with its parameters; the function reports `name` as given.
  /// An unknown name throws an error listing the known names.
  public static func make(_ name: String, parameters: [String: JSONValue] = [:]) throws -> any RewardFunction {
    let canonical = canonicalName(name)
    let params = RewardParameters(reward: name, values: parameters)
    if let factory = factories[canonical] { return try factory(params) }
    if let factory = extraFactories[canonical] { return try factory(params) }
    throw RewardError.unknownReward(name: name, known: names)
  }
}
