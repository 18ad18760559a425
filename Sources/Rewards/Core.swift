// The reward contract (specs/rewards.md, "Contract"): a batch in, one optional value per sample out.
import Common
import Foundation

/// Sizes of one image of the prompt: as stored on disk and as fed to the vision tower.
public struct ImageGeometry: Sendable, Hashable {
  public var originalWidth: Int
  public var originalHeight: Int
  public var resizedWidth: Int
  public var resizedHeight: Int

  public init(originalWidth: Int, originalHeight: Int, resizedWidth: Int, resizedHeight: Int) {
    self.originalWidth = originalWidth
    self.originalHeight = originalHeight
    self.resizedWidth = resizedWidth
    self.resizedHeight = resizedHeight
  }

  /// An image that was not resized.
  public init(width: Int, height: Int) {
    self.init(originalWidth: width, originalHeight: height, resizedWidth: width, resizedHeight: height)
  }
}

/// Attention diagnostics of one rollout sample (heads and layers already averaged by the rollout
/// engine): the mass generated tokens put on prompt text vs image tokens, and the token counts.
public struct AttentionDiagnostics: Sendable, Hashable {
  public var textMass: Double
  public var visionMass: Double
  public var textTokens: Int
  public var visionTokens: Int

  public init(textMass: Double, visionMass: Double, textTokens: Int, visionTokens: Int) {
    self.textMass = textMass
    self.visionMass = visionMass
    self.textTokens = textTokens
    self.visionTokens = visionTokens
  }
}

/// One sample to score: the prompt, the model's completion, the prompt's images and the dataset
/// record's fields (`solution`, `bbox`, `abs_box`, `ground_truth`, `label_idx`, `choices`, ...).
public struct RewardSample: Sendable, Hashable {
  public var prompt: String
  public var completion: String
  public var images: [ImageGeometry]
  public var fields: [String: JSONValue]
  public var attention: AttentionDiagnostics?

  public init(
    prompt: String = "", completion: String, images: [ImageGeometry] = [],
    fields: [String: JSONValue] = [:], attention: AttentionDiagnostics? = nil
  ) {
    self.prompt = prompt
    self.completion = completion
    self.images = images
    self.fields = fields
    self.attention = attention
  }
}

/// A reward: one value per sample, or nil where it does not apply (excluded from means and sums).
public protocol RewardFunction: Sendable {
  /// The registry name (used as the metric key).
  var name: String { get }
  /// Scores a batch; the result has exactly one entry per sample.
  func score(_ batch: [RewardSample]) async throws -> [Double?]
}

/// Errors of reward construction and of external rewards. Scoring errors never reach training:
/// the runner catches them, counts them and scores 0.
public enum RewardError: Error, CustomStringConvertible, Equatable {
  case unknownReward(name: String, known: [String])
  case badParameter(reward: String, parameter: String, message: String)
  /// A parameter key that none of `rewards` reads (a typo must never be silently ignored).
  case unknownParameter(parameter: String, rewards: [String], known: [String])
  case wrongCount(reward: String, expected: Int, got: Int)
  case external(reward: String, message: String)
  case badData(file: String, line: Int, message: String)

  public var description: String {
    switch self {
    case .unknownReward(let name, let known):
      return "unknown reward function '\(name)'; known: \(known.joined(separator: ", "))"
    case .badParameter(let reward, let parameter, let message):
      return "reward '\(reward)': parameter '\(parameter)': \(message)"
    case .unknownParameter(let parameter, let rewards, let known):
      let owners = rewards.count == 1 ? "reward '\(rewards[0])'" : "rewards \(rewards.joined(separator: ", "))"
      return "unknown parameter '\(parameter)' for \(owners); known: \(known.isEmpty ? "none" : known.joined(separator: ", "))"
    case .wrongCount(let reward, let expected, let got):
      return "reward '\(reward)' returned \(got) values for a batch of \(expected)"
    case .external(let reward, let message):
      return "reward '\(reward)': \(message)"
    case .badData(let file, let line, let message):
      return "\(file):\(line): \(message)"
    }
  }
}

/// A reward made from a synchronous per-sample closure (most rewards are pure functions of one
/// sample).
public struct SampleReward: RewardFunction {
  public let name: String
  private let body: @Sendable (RewardSample) -> Double?

  public init(name: String, _ body: @escaping @Sendable (RewardSample) -> Double?) {
    self.name = name
    self.body = body
  }

  public func score(_ batch: [RewardSample]) async throws -> [Double?] {
    batch.map { sample in
      guard let value = body(sample) else { return nil }
      return value.isFinite ? value : 0
    }
  }
}

// MARK: - Runner

/// Scores of one batch by every configured function.
public struct RewardScores: Sendable, Equatable {
  /// Function name -> one value per sample (nil = not applicable).
  public var perFunction: [String: [Double?]]
  /// Weighted sum per sample over the functions that gave a value; nil when every function said nil.
  public var total: [Double?]
  /// Function name -> number of failed calls in this batch (each failure scored 0).
  public var errorCounts: [String: Int]
  /// The message of the first failure per function (for logs).
  public var errorMessages: [String: String]

  public init(
    perFunction: [String: [Double?]], total: [Double?], errorCounts: [String: Int],
    errorMessages: [String: String] = [:]
  ) {
    self.perFunction = perFunction
    self.total = total
    self.errorCounts = errorCounts
    self.errorMessages = errorMessages
  }
}

/// Runs several rewards concurrently and mixes them: `total = sum_k w_k * r_k` over non-nil values.
public struct RewardRunner: Sendable {
  public let functions: [any RewardFunction]
  public let weights: [Double]

  /// `weights` defaults to each function's registry default (1.0, `mc_idx` 4.0). A list of the wrong
  /// length is padded with those defaults or cut; `validated` rejects it instead.
  public init(functions: [any RewardFunction], weights: [Double]? = nil) {
    self.functions = functions
    self.weights = functions.enumerated().map { index, function in
      weights?[safe: index] ?? RewardRegistry.defaultWeight(for: function.name)
    }
  }

  /// A runner whose weights list must match the functions one to one.
  public static func validated(functions: [any RewardFunction], weights: [Double]?) throws -> RewardRunner {
    if let weights, weights.count != functions.count {
      throw RewardError.badParameter(
        reward: "runner", parameter: "reward_weights",
        message: "\(weights.count) weights for \(functions.count) reward functions")
    }
    if let bad = weights?.first(where: { !$0.isFinite }) {
      throw RewardError.badParameter(reward: "runner", parameter: "reward_weights", message: "weight \(bad) is not finite")
    }
    return RewardRunner(functions: functions, weights: weights)
  }

  /// Scores the batch with every function at once. A function that throws (or returns the wrong
  /// number of values) scores 0 for the whole batch and is counted in `errorCounts`.
  public func score(_ batch: [RewardSample]) async -> RewardScores {
    let results = await withTaskGroup(of: (Int, Result<[Double?], Error>).self) { group in
      for (index, function) in functions.enumerated() {
        group.addTask {
          do {
            let values = try await function.score(batch)
            guard values.count == batch.count else {
              throw RewardError.wrongCount(reward: function.name, expected: batch.count, got: values.count)
            }
            return (index, .success(values.map { v in v.map { $0.isFinite ? $0 : 0 } }))
          } catch {
            return (index, .failure(error))
          }
        }
      }
      var collected = [Result<[Double?], Error>?](repeating: nil, count: functions.count)
      for await (index, result) in group { collected[index] = result }
      return collected
    }
    return combine(results, batchSize: batch.count)
  }

  /// The function's name, with `#2`, `#3`... for repeated names (two `command` rewards).
  public func metricKey(_ index: Int) -> String {
    let name = functions[index].name
    let earlier = functions[..<index].filter { $0.name == name }.count
    return earlier == 0 ? name : "\(name)#\(earlier + 1)"
  }

  private func combine(_ results: [Result<[Double?], Error>?], batchSize: Int) -> RewardScores {
    var scores = RewardScores(
      perFunction: [:], total: Array(repeating: nil, count: batchSize), errorCounts: [:])
    for index in functions.indices {
      let key = metricKey(index)
      let values: [Double?]
      switch results[index] {
      case .success(let v)?: values = v
      case .failure(let error)?:
        scores.errorCounts[key, default: 0] += 1
        if scores.errorMessages[key] == nil { scores.errorMessages[key] = String(describing: error) }
        values = Array(repeating: 0, count: batchSize)
      case nil: values = Array(repeating: 0, count: batchSize)
      }
      scores.perFunction[key] = values
      for sample in 0..<batchSize {
        guard let value = values[sample] else { continue }
        scores.total[sample] = (scores.total[sample] ?? 0) + weights[index] * value
      }
    }
    return scores
  }
}
