import Foundation
import Models
import NN
import Prompting
import Torch

/// Log-probs that stay fixed while a generation batch trains, per micro-batch: the old policy's
/// (when the generation batch serves more than one optimizer step; with one step `logp.detach()` is
/// the same thing) and the reference model's (`beta > 0`).
public struct BatchLogProbs {
  public var old: [Tensor?]
  public var reference: [Tensor?]
}

/// Stage 3 of a GRPO step: the old-policy and reference passes, once per generation batch, each
/// only when the loss needs it. With LoRA the reference is the policy with its adapters off (no
/// second copy of the weights).
public struct LogProbStage {
  public let model: QwenVLModel
  /// A separate frozen reference model (full or LM-only training with `beta > 0`).
  public let reference: QwenVLModel?
  public let temperature: Double
  public let beta: Double
  /// Record the sampling policy's log-probs (`BatchLayout.needsOldLogProbs`).
  public let recordOld: Bool

  public func run(prompts: [PreparedPrompt], records: [RolloutRecord], microBatches: [[Int]],
                  features: [Tensor?]?) throws -> BatchLogProbs {
    var fixed = BatchLogProbs(old: [], reference: [])
    for members in microBatches {
      let completions = members.map { records[$0] }
      fixed.old.append(recordOld ? try withNoGrad {
        try PolicyPass.logProbs(model: model, prompts: prompts, completions: completions, temperature: temperature,
                                features: features).logp
      } : nil)
      guard beta > 0 else { fixed.reference.append(nil); continue }
      fixed.reference.append(try withNoGrad {
        if let reference {
          return try PolicyPass.logProbs(model: reference, prompts: prompts, completions: completions,
                                         temperature: temperature).logp
        }
        return try LoRA.withAdaptersDisabled(model) {
          try PolicyPass.logProbs(model: model, prompts: prompts, completions: completions, temperature: temperature).logp
        }
      })
    }
    return fixed
  }
}
