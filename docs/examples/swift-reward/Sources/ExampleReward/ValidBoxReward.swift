import Foundation
import VLMRLKit

/// A reward written in Swift, outside vlmrl: 1 when the completion's last `[x1, y1, x2, y2]` is a
/// proper box inside the image (x1 < x2, y1 < y2, all corners within the original width and height),
/// else 0. It also reports an extra metric, the share of completions that contain any four-number
/// bracket at all, which the trainer logs as `rewards/valid_box/has_brackets`.
public struct ValidBoxReward: RewardFunction {
  public let name = "valid_box"

  public init() {}

  public func score(_ batch: [RewardSample]) async throws -> [Double?] {
    try await scoreWithMetrics(batch).values
  }

  public func scoreWithMetrics(_ batch: [RewardSample]) async throws -> (values: [Double?], metrics: [String: Double]) {
    var bracketed = 0
    let values: [Double?] = batch.map { sample in
      guard let box = Self.lastBox(in: sample.completion) else { return 0 }
      bracketed += 1
      // No image (a text-only record): the reward does not apply, so it is left out of the means.
      guard let image = sample.images.first else { return nil }
      let (width, height) = (Double(image.originalWidth), Double(image.originalHeight))
      let inside = box[0] >= 0 && box[1] >= 0 && box[2] <= width && box[3] <= height
      return inside && box[0] < box[2] && box[1] < box[3] ? 1 : 0
    }
    return (values, ["has_brackets": batch.isEmpty ? 0 : Double(bracketed) / Double(batch.count)])
  }

  /// The last `[a, b, c, d]` of numbers in `text`, or nil.
  static func lastBox(in text: String) -> [Double]? {
    var found: [Double]?
    var rest = Substring(text)
    while let open = rest.firstIndex(of: "[") {
      let after = rest[rest.index(after: open)...]
      guard let close = after.firstIndex(of: "]") else { break }
      let numbers = after[..<close].split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
      if numbers.count == 4, numbers.allSatisfy({ $0 != nil }) { found = numbers.map { $0! } }
      rest = after[after.index(after: close)...]
    }
    return found
  }
}

/// Trains GRPO from a vlmrl config file with `ValidBoxReward` beside the config's own
/// `reward_funcs` (each with its default weight; `valid_box` weighs 1). Returns the logged rows.
public func trainWithValidBox(configFile: URL, overrides: [String] = [], device: Device = .cpu) async throws -> [MetricsRow] {
  let config = try TrainingConfig.load(configFile, overrides: overrides)
  guard let student = config.models.student else {
    throw TrainingError.invalidArgument("\(configFile.path): models.student is missing")
  }
  guard let data = config.dataset.labeledPath else {
    throw TrainingError.invalidArgument("\(configFile.path): dataset.labeled_path is missing")
  }
  let modelDirectory = try ModelLocator.resolve(student)
  let examples = try DatasetLoader.load(path: data).examples
  let rewards = try GRPOTrainer.configuredRewards(config: config, modelDirectory: modelDirectory, adding: [ValidBoxReward()])
  let trainer = try GRPOTrainer(config: config, modelDirectory: modelDirectory, examples: examples, rewards: rewards,
                                device: device)
  return try await trainer.run()
}
