import Foundation
import Models
import Torch

/// One sampled completion of a prompt, as the loss needs it.
public struct SampledCompletion: Sendable {
  public var promptIndex: Int
  public var tokens: [Int]
  public var truncated: Bool
}

/// Per-token log-probs of completions under a model, padded to `[N, T]` with a float mask
/// (`T` = longest completion). Sequences run one at a time, each with its own vision-tower pass
/// (reusing a prompt's image features across its G completions, and packing the sequences into one
/// varlen pass, are the next steps for speed).
public enum PolicyPass {
  public static func logProbs(model: QwenVLModel, prompts: [PreparedPrompt], completions: [SampledCompletion],
                              temperature: Double, checkpointLayers: Bool = false) throws -> (logp: Tensor, mask: Tensor) {
    let longest = completions.map(\.tokens.count).max() ?? 0
    var rows: [Tensor] = []
    var mask: [Float] = []
    for completion in completions {
      let prompt = prompts[completion.promptIndex]
      let ids = prompt.ids + completion.tokens
      let hidden = try model.hiddenStates(ids: ids, promptLength: prompt.ids.count,
                                          pixelValues: prompt.pixelValues?.to(model.device), grids: prompt.grids,
                                          checkpointLayers: checkpointLayers)[0]
      let count = completion.tokens.count
      var row = count == 0 ? Tensor.zeros([0], dtype: .float32, device: model.device)
        : model.tokenLogProbs(hidden: hidden.narrow(0, start: prompt.ids.count - 1, length: count),
                              targets: Tensor(completion.tokens).to(model.device), temperature: temperature)
      if count < longest { row = row.pad([0, longest - count]) }
      rows.append(row)
      mask += Array(repeating: 1, count: count) + Array(repeating: 0, count: longest - count)
    }
    return (Tensor.stack(rows), Tensor(mask, shape: [completions.count, longest]).to(model.device))
  }
}
