// The runner that scores a batch with every configured reward and mixes them (docs/rewards.md,
// "Contract").
import Common
import Foundation

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
  /// Extra metrics the functions reported for this batch, as `metric key/name` -> value.
  public var metrics: [String: Double]

  public init(
    perFunction: [String: [Double?]], total: [Double?], errorCounts: [String: Int],
    errorMessages: [String: String] = [:], metrics: [String: Double] = [:]
  ) {
    self.perFunction = perFunction
    self.total = total
    self.errorCounts = errorCounts
    self.errorMessages = errorMessages
    self.metrics = metrics
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
    typealias Outcome = Result<(values: [Double?], metrics: [String: Double]), Error>
    let results = await withTaskGroup(of: (Int, Outcome).self) { group in
      for (index, function) in functions.enumerated() {
        group.addTask {
          do {
            let (values, metrics) = try await function.scoreWithMetrics(batch)
            guard values.count == batch.count else {
              throw RewardError.wrongCount(reward: function.name, expected: batch.count, got: values.count)
            }
            return (index, .success((values.map { v in v.map { $0.isFinite ? $0 : 0 } }, metrics)))
          } catch {
            return (index, .failure(error))
          }
        }
      }
      var collected = [Outcome?](repeating: nil, count: functions.count)
      for await (index, result) in group { collected[index] = result }
      return collected
    }
    var scores = combine(results.map { $0?.map(\.values) }, batchSize: batch.count)
    for (index, result) in results.enumerated() {
      guard case .success(let outcome)? = result else { continue }
      for (name, value) in outcome.metrics where value.isFinite { scores.metrics["\(metricKey(index))/\(name)"] = value }
    }
    return scores
  }

  /// The metric key of every function, in order (`metricKey(i)` for each index).
  public var metricKeys: [String] { functions.indices.map(metricKey) }

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
