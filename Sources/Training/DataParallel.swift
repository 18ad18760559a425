import Foundation
import NN
import Torch

/// What data-parallel training (docs/distributed.md) asks of a process group beyond its
/// collectives: a batch's values gathered in rank order, gradients averaged so every rank takes
/// the same step, and metrics reduced so rank 0 logs the whole batch.
extension ProcessGroup {
  /// Every rank's `values` concatenated in rank order, and where this rank's part starts. With the
  /// prompts split into contiguous blocks by rank, this is the one-process order of the batch.
  public func concatenated(_ values: [Double]) throws -> (values: [Double], offset: Int) {
    let parts = try allGather(values)
    return (parts.flatMap { $0 }, parts[..<rank].reduce(0) { $0 + $1.count })
  }

  /// Replaces each trainable parameter's gradient with its mean over the ranks (one flat buffer per
  /// dtype and device). A parameter with a gradient on some rank gets zeros where another has none,
  /// so every rank reduces the same list; one with none anywhere keeps none (AdamW skips it). Returns
  /// false on every rank when any rank's loss was not finite, so all skip the step together.
  ///
  /// Correctness first: this runs after the last backward of the step. Overlapping it with backward
  /// (as DistributedDataParallel does) needs gradient hooks on the autograd graph that launch an
  /// asynchronous all-reduce per bucket as its gradients complete, and a wait before clipping.
  public func averageGradients(_ parameters: [Parameter], lossFinite: Bool) throws -> Bool {
    let trainable = parameters.filter(\.trainable)
    var flags = trainable.map { $0.grad == nil ? Float(0) : 1 }
    flags.append(lossFinite ? 0 : 1)
    let shared = Tensor(flags, shape: [flags.count])
    try allReduceSum([shared])
    let counts = shared.floats()
    guard counts.last == 0 else { return false }
    var grads: [Tensor] = []
    for (parameter, count) in zip(trainable, counts) where count > 0 {
      if parameter.grad == nil { parameter.grad = Tensor.zeros(parameter.value.shape, dtype: parameter.value.dtype,
                                                                device: parameter.value.device) }
      grads.append(parameter.grad!)
    }
    try allReduceMean(grads)
    return true
  }

  /// Data-parallel start: every rank must stand at the same `step` (each resumed from the same
  /// checkpoint) and hold rank 0's trainable weights, so that identical averaged gradients keep
  /// them identical.
  public func synchronizeStart(step: Int, parameters: [Parameter]) throws {
    let steps = try allGather([Double(step)]).map { Int($0[0]) }
    guard Set(steps).count == 1 else {
      let list = steps.enumerated().map { "rank \($0.offset): \($0.element)" }.joined(separator: ", ")
      throw TrainingError.invalidArgument("ranks start at different steps (\(list)): every rank must see the same output_dir and checkpoint")
    }
    try broadcast(parameters.map(\.value))
  }

  /// One step's metrics over all ranks: counts and throughputs summed, times and memory the
  /// slowest rank's, everything else (losses, KL, entropy, clip ratios, rates) the mean over the
  /// ranks that report it; each rank holds the same number of completions, so that mean is the
  /// completion-weighted one. Scoring metrics are already over the whole batch (`ScoringStage`).
  public func reduceMetrics(_ values: [String: Double]) throws -> [String: Double] {
    // The union of the ranks' keys (they differ when a reward reports extra metrics on one rank).
    let names = try allGather(Array(values.keys.sorted().joined(separator: "\n").utf8).map(Double.init))
    let keys = Set(names.flatMap { String(decoding: $0.map { UInt8($0) }, as: UTF8.self).split(separator: "\n").map(String.init) })
      .sorted()
    let rows = try allGather(keys.map { values[$0] ?? .nan })
    var reduced: [String: Double] = [:]
    for (index, key) in keys.enumerated() {
      let present = rows.map { $0[index] }.filter { !$0.isNaN }
      guard !present.isEmpty else { reduced[key] = .nan; continue }
      switch Self.reduction(of: key) {
      case .sum: reduced[key] = present.reduce(0, +)
      case .max: reduced[key] = present.max()!
      case .mean: reduced[key] = present.reduce(0, +) / Double(present.count)
      }
    }
    return reduced
  }

  enum MetricReduction { case sum, max, mean }

  static func reduction(of key: String) -> MetricReduction {
    if [MetricName.numTokens, MetricName.tokensPerSecond, "rollout/decode_tokens_per_second"].contains(key) { return .sum }
    if key == MetricName.stepTime || key.hasPrefix("time/") || key.hasPrefix("memory/") { return .max }
    // Counted over the whole batch on every rank already (prompt preparation, skipped steps).
    if key.hasPrefix("skipped") { return .max }
    return .mean
  }
}
