import Foundation
import Models
import NN
import Prompting
import Torch

/// What one optimizer step over a generation batch reads: the batch's prompts, records and
/// advantages, its micro-batches and the fixed log-probs.
public struct UpdateInputs {
  public var prompts: [PreparedPrompt]
  public var records: [RolloutRecord]
  public var advantages: [Double]
  /// Record indices of each micro-batch (`BatchLayout.microBatches`: consecutive completions, which
  /// may split a prompt's group).
  public var microBatches: [[Int]]
  /// Vision features per prompt when the vision tower has nothing to train (computed once).
  public var features: [Tensor?]?
  public var fixed: BatchLogProbs
  /// Completion tokens that count in the loss over the whole generation batch (`dapo`).
  public var activeTokens: Double
}

/// Stage 4 of a GRPO step: for each micro-batch the policy pass with gradients, the GRPO loss
/// (truncated completions masked when asked) and backward; then the shared optimizer step.
public struct PolicyUpdate {
  public let model: QwenVLModel
  public let stepper: OptimizerStepper
  public let loss: GRPOLossOptions
  public let temperature: Double
  public let maskTruncatedCompletions: Bool
  public let checkpointLayers: Bool

  /// One optimizer step at `step` (0-based) over the micro-batches in `range` (default: all of
  /// them); returns the step's loss and timing metrics.
  public func run(_ inputs: UpdateInputs, step: Int, microBatches range: Range<Int>? = nil) throws -> [String: Double] {
    var lossSum = 0.0, forwardTime = 0.0, backwardTime = 0.0
    var sums: [String: Double] = [:]
    var finite = true
    let range = range ?? inputs.microBatches.indices
    for index in range {
      let members = inputs.microBatches[index]
      var timer = Date()
      let (loss, lossMetrics) = try microBatchLoss(inputs, members: members, old: inputs.fixed.old[index],
                                                   reference: inputs.fixed.reference[index])
      forwardTime += Date().timeIntervalSince(timer)
      timer = Date()
      let value = loss.item()
      lossSum += value
      if value.isFinite { loss.backward() } else { finite = false }
      RecomputeRegistry.shared.releaseAll()
      backwardTime += Date().timeIntervalSince(timer)
      for (key, metric) in [(MetricName.kl, lossMetrics.kl), (MetricName.entropy, lossMetrics.entropy),
                            (MetricName.clipRatioLow, lossMetrics.clipRatioLow), (MetricName.clipRatioHigh, lossMetrics.clipRatioHigh),
                            (MetricName.clipRatioRegion, lossMetrics.clipRatioRegion)] {
        if let metric { sums[key, default: 0] += metric / Double(range.count) }
      }
    }
    let result = try stepper.synchronizedStep(step, lossFinite: finite)
    return sums.merging([
      MetricName.loss: lossSum, MetricName.gradNorm: result.gradNorm, MetricName.learningRate: result.learningRate,
      MetricName.timeLogprobs: forwardTime, MetricName.timeBackward: backwardTime + result.clipSeconds,
      MetricName.timeOptimizer: result.optimizerSeconds, "skipped_steps_non_finite": Double(stepper.skippedNonFinite),
    ]) { $1 }
  }

  /// The GRPO loss of one micro-batch.
  func microBatchLoss(_ inputs: UpdateInputs, members: [Int], old: Tensor?, reference: Tensor?) throws -> (Tensor, GRPOLossMetrics) {
    let completions = members.map { inputs.records[$0] }
    let policy = try PolicyPass.logProbs(model: model, prompts: inputs.prompts, completions: completions,
                                         temperature: temperature, checkpointLayers: checkpointLayers, features: inputs.features)
    var mask = policy.mask
    if maskTruncatedCompletions {
      let keep = Tensor(completions.map { $0.truncated ? Float(0) : 1 }, shape: [completions.count, 1]).to(model.device)
      mask = mask * keep
    }
    return try GRPOLoss.compute(
      GRPOLossInputs(logp: policy.logp, oldLogp: old, refLogp: reference, advantages: members.map { inputs.advantages[$0] },
                     completionMask: mask, entropies: policy.entropies, activeTokensGlobal: max(1, inputs.activeTokens)),
      options: loss)
  }
}
