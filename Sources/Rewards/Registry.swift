// Reward functions by the names configs use (`reward_funcs`), with aliases, and the parameter keys
// each one reads (a key no selected function reads is an error: STYLE.md, "unknown keys").
import Common
import Foundation

/// Builds reward functions from their registry names and parameters.
public enum RewardRegistry {
  typealias Factory = @Sendable (RewardParameters) throws -> any RewardFunction

  /// A registry entry: the parameter keys the function reads and how to build it.
  struct Entry: Sendable {
    let keys: [String]
    let factory: Factory

    init(_ keys: [String], _ factory: @escaping Factory) {
      self.keys = keys
      self.factory = factory
    }
  }

  static let singleBoxKeys = ["box_frame", "alpha"]
  static let iouKeys = ["box_frame", "pixel_inclusive"]

  /// Canonical name -> entry (grounding, R1 and multiple-choice families; the others in RegistryRegionCaptionExternal.swift).
  static let ruleEntries: [String: Entry] = [
    "format": Entry(["allow_decimals"]) { try GroundingRewards.format($0) },
    "gaussian_point": Entry(singleBoxKeys) { try GroundingRewards.gaussian($0, plane: false) },
    "gaussian_plane": Entry(singleBoxKeys) { try GroundingRewards.gaussian($0, plane: true) },
    "multi_box_format_reward": Entry([]) { try GroundingRewards.multiFormat($0) },
    "multi_gaussian_point": Entry(singleBoxKeys + ["match_iou"]) { try GroundingRewards.multiGaussian($0, plane: false) },
    "multi_gaussian_plane": Entry(singleBoxKeys + ["match_iou"]) { try GroundingRewards.multiGaussian($0, plane: true) },
    "think_format": Entry([]) { R1Rewards.thinkFormat($0) },
    "rec_format": Entry([]) { R1Rewards.recFormat($0) },
    "iou": Entry(iouKeys) { try R1Rewards.iou($0, threshold: nil) },
    "rec_accuracy": Entry(iouKeys + ["iou_threshold"]) { try R1Rewards.iou($0, threshold: 0.5) },
    "accuracy": Entry([]) { R1Rewards.accuracy($0) },
    "counting_accuracy": Entry([]) { R1Rewards.countingAccuracy($0) },
    "mc_idx": Entry([]) { ChoiceRewards.mcIndex($0) },
    "think_tag_format": Entry([]) { ChoiceRewards.thinkTagFormat($0) },
    "mdi": Entry(["mdi_balance_ratio"]) { try ChoiceRewards.mdi($0) },
  ]

  /// Every entry by canonical name.
  static let entries: [String: Entry] = ruleEntries.merging(regionCaptionExternalEntries) { core, _ in core }

  /// Alias -> canonical name: the names the reference systems' own configs and scripts use
  /// (docs/rewards.md, "Names from the reference systems").
  static let aliases: [String: String] = [
    // EasyDistill mmkd_rl_grounding.
    "multi_gaussian_plane_reward": "multi_gaussian_plane",
    // VLM-R1 / R1-V / PaddleMIX r1_mllm reward functions.
    "format_reward": "think_format",
    "r1_format": "think_format",
    "accuracy_reward": "accuracy",
    "math_accuracy": "accuracy",
    // The TRL MDI fork's reward functions.
    "mc_idx_reward": "mc_idx",
    "think_format_reward": "think_tag_format",
    "mdi_reward": "mdi",
  ]

  /// Weights used when a config gives none (the TRL MDI fork weighs `mc_idx` 4.0).
  static let defaultWeights: [String: Double] = ["mc_idx": 4.0]

  /// Every name a config may use (canonical names and aliases), sorted.
  public static var names: [String] { (Array(entries.keys) + Array(aliases.keys)).sorted() }

  /// The canonical name of `name` (itself when it is not an alias). A labelled name `base:label`
  /// (`command:length`, two differently configured rewards of one kind in one run) is its base's
  /// canonical name; the reward reports the labelled name as its metric name.
  public static func canonicalName(_ name: String) -> String {
    let base = name.firstIndex(of: ":").map { String(name[..<$0]) } ?? name
    return aliases[base] ?? base
  }

  /// The default mixing weight of a reward (1.0 unless the reference system says otherwise).
  public static func defaultWeight(for name: String) -> Double {
    defaultWeights[canonicalName(name)] ?? 1.0
  }

  /// The parameter keys reward `name` (or alias) reads, sorted. An unknown name throws.
  public static func parameterKeys(for name: String) throws -> [String] {
    try entry(name).keys.sorted()
  }

  static func entry(_ name: String) throws -> Entry {
    if let colon = name.firstIndex(of: ":"), name[name.index(after: colon)...].isEmpty || name[..<colon].isEmpty {
      throw RewardError.badParameter(
        reward: name, parameter: "reward_funcs", message: "a labelled reward name is 'base:label', both non-empty")
    }
    guard let entry = entries[canonicalName(name)] else { throw RewardError.unknownReward(name: name, known: names) }
    return entry
  }

  /// Builds the reward `name` (or alias) with its own parameters; the function reports `name` as
  /// given. An unknown name throws an error listing the known names; a key the function does not
  /// read throws an error listing the keys it does read.
  public static func make(_ name: String, parameters: [String: JSONValue] = [:]) throws -> any RewardFunction {
    let entry = try entry(name)
    let known = Set(entry.keys)
    if let unknown = parameters.keys.sorted().first(where: { !known.contains($0) }) {
      throw RewardError.unknownParameter(parameter: unknown, rewards: [name], known: entry.keys.sorted())
    }
    return try entry.factory(RewardParameters(reward: name, values: parameters, known: known))
  }

  /// Builds several rewards from one parameter block, as a config or `vlmrl reward --params` gives
  /// it. `shared` parameters go to every selected function that reads them; a shared key that no
  /// selected function reads is an error listing the keys they do read. `perFunction[name]`
  /// overrides `shared` for that function and is checked against that function's keys alone.
  public static func make(
    _ names: [String], shared: [String: JSONValue], perFunction: [String: [String: JSONValue]] = [:]
  ) throws -> [any RewardFunction] {
    let selectedEntries = try names.map { try entry($0) }
    let union = Set(selectedEntries.flatMap(\.keys))
    if let unknown = shared.keys.sorted().first(where: { !union.contains($0) }) {
      throw RewardError.unknownParameter(parameter: unknown, rewards: names, known: union.sorted())
    }
    if let stray = perFunction.keys.sorted().first(where: { !names.contains($0) }) {
      throw RewardError.badParameter(
        reward: stray, parameter: stray,
        message: "a parameter block for a reward that is not selected (selected: \(names.joined(separator: ", ")))")
    }
    return try zip(names, selectedEntries).map { name, entry in
      var own = shared.filter { key, _ in entry.keys.contains(key) }
      own.merge(perFunction[name] ?? [:]) { _, specific in specific }
      return try make(name, parameters: own)
    }
  }

  /// Splits a config's parameter block: an object under a reward's name is that function's block
  /// (an error when the reward is not selected), every other key is shared (`command`'s own
  /// `command` string stays shared).
  public static func make(_ names: [String], parameters: [String: JSONValue]) throws -> [any RewardFunction] {
    var shared: [String: JSONValue] = [:]
    var perFunction: [String: [String: JSONValue]] = [:]
    for (key, value) in parameters {
      if names.contains(key) || entries[canonicalName(key)] != nil, let block = value.objectValue {
        perFunction[key] = block
      } else {
        shared[key] = value
      }
    }
    return try make(names, shared: shared, perFunction: perFunction)
  }
}
