import Foundation
import Models
import NN
import Prompting
import Torch

/// What a policy (or reference) pass gives the loss: `[N, T]` tensors padded to the longest
/// completion (`T`), with a float mask of the real completion tokens.
public struct PolicyPassOutput {
  /// Per-token log p(token | prefix), logits divided by the sampling temperature.
  public var logp: Tensor
  /// 1 for completion tokens, 0 for padding.
  public var mask: Tensor
  /// Per-token entropy of the temperature-scaled distribution (no graph).
  public var entropies: Tensor
}

/// Per-token log-probs of completions under a model (docs/grpo.md step 4). The vision tower runs
/// once per prompt and its features serve the prompt's G completions; the sequences (prompt +
/// completion) are packed without padding into variable-length forwards of at most `tokenBudget`
/// tokens each (varlen flash attention on CUDA, a block-diagonal causal mask on CPU); the log-probs
/// come from vocabulary-sized chunks whose float32 logits are recomputed in backward.
public enum PolicyPass {
  /// Default tokens per packed forward.
  public static let defaultTokenBudget = 16_384
  /// Tokens per packed forward on the CPU. There the packed sequences share one attention over the
  /// whole pack with a block-diagonal causal mask, whose cost grows with the square of the pack's
  /// length: 64 sequences of 97 tokens in one pack of 6,208 cost ~64x the attention of separate
  /// sequences (the demo's GRPO step went from 1.2 s to 4.3 s). Packs of ~1k tokens keep the waste
  /// near 10x of a tiny part of the step while still batching the matmuls. CUDA's varlen flash
  /// attention has no such waste and keeps `defaultTokenBudget`.
  public static let cpuTokenBudget = 1_024

  /// The vision features of each prompt (nil for prompts without images). Pass them to `logProbs`
  /// to reuse them; when the vision tower has nothing to train, they are computed under no-grad.
  public static func imageFeatures(model: QwenVLModel, prompts: [PreparedPrompt]) -> [Tensor?] {
    let frozen = !model.visual.parameters.contains(where: \.trainable)
      && !LoRA.namedParameters(in: model.visual).contains(where: { $0.1.trainable })
    return prompts.map { prompt in
      guard let pixels = prompt.pixelValues, !prompt.grids.isEmpty else { return nil }
      return frozen ? withNoGrad { model.imageFeatures(pixelValues: pixels, grids: prompt.grids) }
        : model.imageFeatures(pixelValues: pixels, grids: prompt.grids)
    }
  }

  /// Log-probs, mask and entropies of `completions` (`[N, T]`, in the given order). `features`
  /// (from `imageFeatures`) are computed here for the prompts used when not given.
  public static func logProbs(model: QwenVLModel, prompts: [PreparedPrompt], completions: [RolloutRecord],
                              temperature: Double, checkpointLayers: Bool = false, features: [Tensor?]? = nil,
                              tokenBudget: Int = defaultTokenBudget) throws -> PolicyPassOutput {
    for completion in completions where !prompts.indices.contains(completion.promptIndex) {
      throw TrainingError.invalidArgument("policy pass: completion refers to prompt \(completion.promptIndex) of \(prompts.count)")
    }
    let features = features ?? imageFeatures(model: model, prompts: prompts.indices.map { index in
      completions.contains { $0.promptIndex == index } ? prompts[index] : prompts[index].withoutImages
    })
    var logpRows: [Tensor] = [], entropyRows: [Tensor] = []
    let budget = model.device.isCUDA ? tokenBudget : min(tokenBudget, cpuTokenBudget)
    for pack in packs(completions.indices.map { prompts[completions[$0].promptIndex].ids.count + completions[$0].tokens.count },
                      budget: budget) {
      let members = pack.map { completions[$0] }
      let inputs = members.map { completion in
        let prompt = prompts[completion.promptIndex]
        return PackedSequenceInput(ids: prompt.ids + completion.tokens, promptLength: prompt.ids.count, grids: prompt.grids,
                                   imageFeatures: features[completion.promptIndex])
      }
      let hidden = try model.packedHiddenStates(inputs, checkpointLayers: checkpointLayers)
      // Row of the hidden state that predicts each completion token: the token before it.
      var rows: [Int] = [], targets: [Int] = []
      var offset = 0
      for (input, completion) in zip(inputs, members) {
        rows += (0..<completion.tokens.count).map { offset + input.promptLength - 1 + $0 }
        targets += completion.tokens
        offset += input.ids.count
      }
      guard !rows.isEmpty else {
        logpRows += members.map { _ in Tensor.zeros([0], dtype: .float32, device: model.device) }
        entropyRows += members.map { _ in Tensor.zeros([0], dtype: .float32, device: model.device) }
        continue
      }
      let picked = hidden.indexSelect(0, Tensor(rows).to(model.device))
      let (logp, entropy) = tokenLogProbsAndEntropies(model: model, hidden: picked, targets: Tensor(targets).to(model.device),
                                                       temperature: temperature)
      let sizes = members.map(\.tokens.count)
      logpRows += logp.split(sizes: sizes, dim: 0)
      entropyRows += entropy.split(sizes: sizes, dim: 0)
    }
    let longest = completions.map(\.tokens.count).max() ?? 0
    func padded(_ rows: [Tensor]) -> Tensor {
      guard !rows.isEmpty else { return Tensor.zeros([0, longest], dtype: .float32, device: model.device) }
      return Tensor.stack(rows.map { $0.size(0) < longest ? $0.pad([0, longest - $0.size(0)]) : $0 })
    }
    var mask: [Float] = []
    for completion in completions {
      mask += Array(repeating: 1, count: completion.tokens.count) + Array(repeating: 0, count: longest - completion.tokens.count)
    }
    return PolicyPassOutput(logp: padded(logpRows), mask: Tensor(mask, shape: [completions.count, longest]).to(model.device),
                            entropies: padded(entropyRows).detach())
  }

  /// Consecutive groups of sequence indices whose lengths sum to at most `budget` (a longer
  /// sequence gets a group of its own).
  static func packs(_ lengths: [Int], budget: Int) -> [[Int]] {
    var groups: [[Int]] = []
    var current: [Int] = [], used = 0
    for (index, length) in lengths.enumerated() {
      if !current.isEmpty && used + length > budget {
        groups.append(current)
        current = []
        used = 0
      }
      current.append(index)
      used += length
    }
    if !current.isEmpty { groups.append(current) }
    return groups
  }

  /// log p(target) and the entropy of each row of `hidden` `[T, D]`, in chunks of rows whose float32
  /// logits are recomputed in backward (never `[T, vocab]` float32 at once). The entropy carries no
  /// graph (TRL uses it for masking and metrics only).
  public static func tokenLogProbsAndEntropies(model: QwenVLModel, hidden: Tensor, targets: Tensor, temperature: Double,
                                               chunkRows: Int = 512) -> (logp: Tensor, entropy: Tensor) {
    let weight = model.headWeight
    var logps: [Tensor] = [], entropies: [Tensor] = []
    var start = 0
    while start < hidden.size(0) {
      let count = Swift.min(chunkRows, hidden.size(0) - start)
      let chunkTargets = targets.narrow(0, start: start, length: count)
      let compute: ([Tensor]) -> [Tensor] = { inputs in
        var logits = F.linear(inputs[0], weight)
        if logits.dtype != .float64 { logits = logits.to(.float32) }
        if temperature != 1 { logits = logits / temperature }
        let logSoftmax = logits.logSoftmax(dim: -1)
        let entropy = withNoGrad { () -> Tensor in
          let detached = logSoftmax.detach()
          return -(detached.exp() * detached).sum(dim: -1)
        }
        return [logSoftmax.gather(1, chunkTargets.unsqueeze(1)).squeeze(1), entropy]
      }
      let chunk = hidden.narrow(0, start: start, length: count)
      let outputs = Autograd.isGradEnabled ? checkpoint([chunk], outputCount: 2, compute) : compute([chunk])
      logps.append(outputs[0])
      entropies.append(outputs[1].detach())
      start += count
    }
    return (Tensor.cat(logps), Tensor.cat(entropies))
  }
}
