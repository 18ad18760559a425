import Foundation
import Torch

/// How the summed per-token losses are normalized (TRL's `loss_type`).
public enum LossType: String, Sendable, Codable, CaseIterable {
  /// Mean over sequences of (sum of token losses / completion length), / accumulation steps.
  case grpo
  /// Sum over the micro-batch / its active tokens, / accumulation steps.
  case bnpo
  /// Sum / (micro-batch size * max_completion_length), / accumulation steps.
  case drGRPO = "dr_grpo"
  /// Sum / (active tokens of the whole generation batch, all ranks and micro-steps, / ranks).
  case dapo
}

/// Where the importance ratio is taken (TRL's `importance_sampling_level`).
public enum ImportanceSamplingLevel: String, Sendable, Codable, CaseIterable {
  /// One ratio per token: `exp(logp - logp_old)`.
  case token
  /// GSPO: one ratio per sequence, the exp of the masked mean of the token log-ratios.
  case sequence
}

/// The loss options of the GRPO objective (names follow TRL's GRPOConfig).
public struct GRPOLossOptions: Sendable, Equatable {
  public var lossType: LossType
  public var importanceSamplingLevel: ImportanceSamplingLevel
  /// Lower clip: the ratio is clipped at `1 - epsilon`.
  public var epsilon: Double
  /// Upper clip `1 + epsilonHigh`; nil means `epsilon` (TRL's default).
  public var epsilonHigh: Double?
  /// Two-sided clipping: the unclipped ratio is also capped at `delta` (nil = off).
  public var delta: Double?
  /// Weight of the k3 KL term; 0 skips it (and the reference pass).
  public var beta: Double
  /// Needed by `dr_grpo`.
  public var maxCompletionLength: Int?
  /// Micro-steps per optimizer step (`grpo`, `bnpo`, `dr_grpo` divide by it; `dapo` does not).
  public var gradientAccumulationSteps: Int
  /// Train only on tokens whose entropy is in the top `topEntropyQuantile` fraction (1 = all).
  public var topEntropyQuantile: Double

  public init(lossType: LossType = .grpo, importanceSamplingLevel: ImportanceSamplingLevel = .token,
              epsilon: Double = 0.2, epsilonHigh: Double? = nil, delta: Double? = nil, beta: Double = 0.04,
              maxCompletionLength: Int? = nil, gradientAccumulationSteps: Int = 1, topEntropyQuantile: Double = 1) {
    self.lossType = lossType
    self.importanceSamplingLevel = importanceSamplingLevel
    self.epsilon = epsilon
    self.epsilonHigh = epsilonHigh
    self.delta = delta
    self.beta = beta
    self.maxCompletionLength = maxCompletionLength
    self.gradientAccumulationSteps = gradientAccumulationSteps
    self.topEntropyQuantile = topEntropyQuantile
  }

  public var resolvedEpsilonHigh: Double { epsilonHigh ?? epsilon }
}

/// What one micro-batch's loss needs. Shapes: `[B, T]` per-token tensors, `[B]` advantages.
public struct GRPOLossInputs {
  /// Per-token log-probs under the current policy (carries the graph).
  public var logp: Tensor
  /// Log-probs when the batch was generated; nil means `logp.detach()` (one pass per generation).
  public var oldLogp: Tensor?
  /// Reference model log-probs; required when `beta != 0`.
  public var refLogp: Tensor?
  /// One advantage per sequence.
  public var advantages: Tensor
  /// 1 for completion tokens that count, 0 for padding (and for truncated completions when
  /// `mask_truncated_completions` is on: the caller zeroes their rows).
  public var completionMask: Tensor
  /// Per-token entropies of the policy (for `topEntropyQuantile < 1` and the `entropy` metric).
  public var entropies: Tensor?
  /// `dapo`: active tokens of the whole generation batch summed over ranks and micro-steps.
  public var activeTokensGlobal: Double?
  /// `dapo`: number of ranks the global count is shared by.
  public var worldSize: Int

  public init(logp: Tensor, oldLogp: Tensor? = nil, refLogp: Tensor? = nil, advantages: Tensor,
              completionMask: Tensor, entropies: Tensor? = nil, activeTokensGlobal: Double? = nil, worldSize: Int = 1) {
    self.logp = logp
    self.oldLogp = oldLogp
    self.refLogp = refLogp
    self.advantages = advantages
    self.completionMask = completionMask
    self.entropies = entropies
    self.activeTokensGlobal = activeTokensGlobal
    self.worldSize = worldSize
  }

  /// Advantages given as Swift numbers, converted to `logp`'s dtype and device.
  public init(logp: Tensor, oldLogp: Tensor? = nil, refLogp: Tensor? = nil, advantages: [Double],
              completionMask: Tensor, entropies: Tensor? = nil, activeTokensGlobal: Double? = nil, worldSize: Int = 1) {
    self.init(logp: logp, oldLogp: oldLogp, refLogp: refLogp,
              advantages: Tensor(advantages).to(logp.dtype, device: logp.device),
              completionMask: completionMask, entropies: entropies, activeTokensGlobal: activeTokensGlobal,
              worldSize: worldSize)
  }
}

/// The metrics TRL logs from `_compute_loss` (means over the micro-batch's completion tokens; over
/// sequences for the clip ratios at sequence level).
public struct GRPOLossMetrics: Sendable, Equatable {
  /// `kl`: masked mean of the k3 estimate (nil when beta == 0).
  public var kl: Double?
  /// `entropy`: masked mean entropy (nil when no entropies were given).
  public var entropy: Double?
  /// `clip_ratio/low_mean`: ratio below `1 - epsilon` with a negative advantage.
  public var clipRatioLow: Double
  /// `clip_ratio/high_mean`: ratio above `1 + epsilon_high` with a positive advantage.
  public var clipRatioHigh: Double
  /// `clip_ratio/region_mean`: either of the two.
  public var clipRatioRegion: Double
}

/// The clipped surrogate objective of GRPO and its variants, matching TRL GRPOTrainer's
/// `_compute_loss` term by term (ratio, clip, `delta`, entropy mask, k3 KL, normalization).
public enum GRPOLoss {
  /// The loss to back-propagate for one micro-batch, and its metrics.
  public static func compute(_ inputs: GRPOLossInputs,
                             options: GRPOLossOptions) throws -> (loss: Tensor, metrics: GRPOLossMetrics) {
    try validate(inputs, options)
    let mask = inputs.completionMask.to(inputs.logp.dtype)
    let logp = inputs.logp
    let perTokenKL: Tensor? = try options.beta == 0 ? nil : {
      guard let ref = inputs.refLogp else {
        throw TrainingError.invalidArgument("GRPO loss: beta is \(options.beta) but no reference log-probs were given")
      }
      let difference = ref - logp
      return difference.exp() - difference - 1
    }()
    let old = inputs.oldLogp ?? logp.detach()
    let logRatio = logp - old
    let logWeights: Tensor
    switch options.importanceSamplingLevel {
    case .token: logWeights = logRatio
    case .sequence:
      logWeights = ((logRatio * mask).sum(dim: -1) / mask.sum(dim: -1).clamp(min: 1.0)).unsqueeze(-1)
    }
    var ratio = logWeights.exp()
    let clipped = ratio.clamp(min: 1 - options.epsilon, max: 1 + options.resolvedEpsilonHigh)
    if let delta = options.delta { ratio = ratio.clamp(max: delta) }
    let advantages = inputs.advantages.to(logp.dtype).unsqueeze(1)
    var perTokenLoss = -(ratio * advantages).minimum(clipped * advantages)
    if options.topEntropyQuantile < 1, let entropies = inputs.entropies {
      perTokenLoss = perTokenLoss * highEntropyMask(entropies: entropies, mask: mask,
                                                    threshold: 1 - options.topEntropyQuantile).to(logp.dtype)
    }
    if let perTokenKL { perTokenLoss = perTokenLoss + options.beta * perTokenKL }
    let loss = normalize(perTokenLoss * mask, mask: mask, inputs: inputs, options: options)
    let metrics = withNoGrad {
      lossMetrics(ratio: ratio, advantages: advantages, perTokenKL: perTokenKL, mask: mask,
                  entropies: inputs.entropies, options: options)
    }
    return (loss, metrics)
  }

  /// Tokens whose entropy is at least the `threshold` quantile (linear interpolation, as
  /// torch.quantile) of the entropies under `mask`; all false when the mask is empty (TRL's
  /// `get_high_entropy_mask` on one rank).
  public static func highEntropyMask(entropies: Tensor, mask: Tensor, threshold: Double) -> Tensor {
    let active = mask.gt(0)
    let values = withNoGrad { entropies.detach().maskedSelect(active).doubles() }
    guard let cutoff = quantile(values, threshold) else { return Tensor.zeros(entropies.shape, dtype: .bool, device: entropies.device) }
    return (entropies.detach() * mask.to(entropies.dtype)).ge(cutoff).logicalAnd(active)
  }

  /// torch.quantile's default (linear) interpolation; nil for no values.
  static func quantile(_ values: [Double], _ q: Double) -> Double? {
    guard !values.isEmpty else { return nil }
    let sorted = values.sorted()
    let position = Swift.min(Swift.max(q, 0), 1) * Double(sorted.count - 1)
    let lower = Int(position.rounded(.down))
    let upper = Swift.min(lower + 1, sorted.count - 1)
    return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - Double(lower))
  }

  private static func normalize(_ maskedLoss: Tensor, mask: Tensor, inputs: GRPOLossInputs,
                                options: GRPOLossOptions) -> Tensor {
    let accumulation = Double(options.gradientAccumulationSteps)
    switch options.lossType {
    case .grpo:
      return (maskedLoss.sum(dim: -1) / mask.sum(dim: -1).clamp(min: 1.0)).mean() / accumulation
    case .bnpo:
      return maskedLoss.sum() / mask.sum().clamp(min: 1.0) / accumulation
    case .drGRPO:
      let denominator = Double(maskedLoss.size(0) * (options.maxCompletionLength ?? 1))
      return maskedLoss.sum() / denominator / accumulation
    case .dapo:
      let normalizer = (inputs.activeTokensGlobal ?? 1) / Double(inputs.worldSize)
      return maskedLoss.sum() / normalizer
    }
  }

  private static func validate(_ inputs: GRPOLossInputs, _ options: GRPOLossOptions) throws {
    let shape = inputs.logp.shape
    guard shape.count == 2 else { throw TrainingError.invalidArgument("GRPO loss: logp must be [B, T], got \(shape)") }
    for (name, tensor) in [("oldLogp", inputs.oldLogp), ("refLogp", inputs.refLogp),
                           ("completionMask", inputs.completionMask), ("entropies", inputs.entropies)] {
      if let tensor, tensor.shape != shape {
        throw TrainingError.invalidArgument("GRPO loss: \(name) has shape \(tensor.shape), logp \(shape)")
      }
    }
    guard inputs.advantages.shape == [shape[0]] else {
      throw TrainingError.invalidArgument("GRPO loss: advantages have shape \(inputs.advantages.shape), want [\(shape[0])]")
    }
    guard options.gradientAccumulationSteps >= 1 else {
      throw TrainingError.invalidArgument("GRPO loss: gradient_accumulation_steps must be at least 1")
    }
    if options.lossType == .drGRPO, (options.maxCompletionLength ?? 0) < 1 {
      throw TrainingError.invalidArgument("GRPO loss: dr_grpo needs max_completion_length")
    }
    if options.lossType == .dapo {
      guard let tokens = inputs.activeTokensGlobal, tokens > 0, inputs.worldSize >= 1 else {
        throw TrainingError.invalidArgument("GRPO loss: dapo needs a positive activeTokensGlobal and worldSize >= 1")
      }
    }
    if options.topEntropyQuantile < 1 {
      guard options.topEntropyQuantile > 0 else {
        throw TrainingError.invalidArgument("GRPO loss: top_entropy_quantile must be in (0, 1]")
      }
      guard inputs.entropies != nil else {
        throw TrainingError.invalidArgument("GRPO loss: top_entropy_quantile < 1 needs per-token entropies")
      }
    }
  }

  private static func lossMetrics(ratio: Tensor, advantages: Tensor, perTokenKL: Tensor?, mask: Tensor,
                                  entropies: Tensor?, options: GRPOLossOptions) -> GRPOLossMetrics {
    let tokenCount = mask.sum().clamp(min: 1.0)
    // TRL's masked_batch_mean: a plain mean for [B, 1] (sequence-level) tensors.
    func maskedBatchMean(_ values: Tensor) -> Double {
      if values.size(1) == 1 { return values.mean().item() }
      return ((values * mask).sum() / tokenCount).item()
    }
    let low = ratio.lt(1 - options.epsilon).logicalAnd(advantages.lt(0))
    let high = ratio.gt(1 + options.resolvedEpsilonHigh).logicalAnd(advantages.gt(0))
    let region = low.logicalOr(high)
    let dtype = mask.dtype
    return GRPOLossMetrics(
      kl: perTokenKL.map { maskedBatchMean($0.detach()) },
      entropy: entropies.map { maskedBatchMean($0.detach().to(dtype)) },
      clipRatioLow: maskedBatchMean(low.to(dtype)),
      clipRatioHigh: maskedBatchMean(high.to(dtype)),
      clipRatioRegion: maskedBatchMean(region.to(dtype)))
  }
}
