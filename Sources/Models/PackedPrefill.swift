import Foundation
import NN
import Torch

/// One prompt of a packed prefill: token ids and its images.
public struct PrefillPrompt: @unchecked Sendable {
  public var ids: [Int]
  public var pixelValues: Tensor?
  public var grids: [[Int]]
  public init(ids: [Int], pixelValues: Tensor?, grids: [[Int]]) {
    self.ids = ids
    self.pixelValues = pixelValues
    self.grids = grids
  }
}

/// The result of a packed prefill, per prompt: every layer's rotated keys and values
/// `[length, kvHeads, headDim]` (views into the packed tensors), the M-RoPE delta, and the final
/// hidden state of the last token (`lastHidden` row `i` for prompt `i`).
public struct PrefillResult: @unchecked Sendable {
  public var keys: [[Tensor]]
  public var values: [[Tensor]]
  public var deltas: [Int]
  public var lastHidden: Tensor
}

extension QwenVLModel {
  /// Whether `packedPrefill` runs on varlen flash attention here (CUDA, half precision); elsewhere it
  /// uses SDPA with a block-diagonal causal mask (tests compare that with per-prompt prefill).
  public var supportsPackedPrefill: Bool { PackedLayout.usesFlash(device: device, dtype: dtype) }

  /// Vision tower and prefill of several prompts in one pass (the rollout engine's admission of a
  /// batch of requests): the images of all prompts go through the vision tower together, the prompts
  /// are packed end to end and attend causally within themselves through varlen flash attention, and
  /// each layer's keys and values are kept. One launch sequence for all prompts instead of one per
  /// prompt.
  /// `alignedVision` (`visual.alignedMLPs()`) runs the vision MLPs with padded weights (faster on
  /// CUDA, not bit-identical to transformers; see `AlignedVisionMLP`).
  public func packedPrefill(_ prompts: [PrefillPrompt], alignedVision: [AlignedVisionMLP]? = nil) throws -> PrefillResult {
    // All images through the vision tower at once; each prompt then takes its rows (one per pad token).
    let withImages = prompts.filter { $0.pixelValues != nil && !$0.grids.isEmpty }
    StageTrace.mark("packed prefill: start", device: device)
    let allFeatures = withImages.isEmpty ? nil
      : visual(Tensor.cat(withImages.map { $0.pixelValues!.to(device) }), grids: withImages.flatMap(\.grids),
               alignedMLPs: alignedVision).to(dtype)
    StageTrace.mark("packed prefill: vision tower", device: device)
    var featureRow = 0
    var sequences: [PackedSequenceInput] = []
    for prompt in prompts {
      var features: Tensor? = nil
      if let allFeatures, prompt.pixelValues != nil, !prompt.grids.isEmpty {
        let rows = Swift.min(prompt.ids.filter { $0 == config.imageTokenId }.count, allFeatures.size(0) - featureRow)
        features = allFeatures.narrow(0, start: featureRow, length: rows)
        featureRow += rows
      }
      sequences.append(PackedSequenceInput(ids: prompt.ids, promptLength: prompt.ids.count, grids: prompt.grids,
                                           imageFeatures: features))
    }
    if let allFeatures, featureRow != allFeatures.size(0) {
      throw ModelError.imageTokenMismatch(tokens: featureRow, features: allFeatures.size(0))
    }
    let (embeddings, positions, layout, deltas) = try packedEmbeddings(sequences)
    let rotary = language.rotary(positions: positions, dtype: dtype)
    let cuSeqlens = layout.cumulativeLengths(device: device)
    let mask = supportsPackedPrefill ? nil : layout.blockCausalMask(device: device)
    var hidden = embeddings
    StageTrace.mark("packed prefill: embeddings, positions, rotary", device: device)
    var layerKeys: [Tensor] = [], layerValues: [Tensor] = []
    for layer in language.layers.items {
      let (attended, key, value) = layer.attention.packedWithCache(layer.inputNorm(hidden.unsqueeze(0)), rotary: rotary,
                                                                   cuSeqlens: cuSeqlens, maxLength: layout.maxLength, mask: mask)
      let h = hidden + attended[0]
      hidden = h + layer.mlp(layer.postAttentionNorm(h))
      layerKeys.append(key)
      layerValues.append(value)
    }
    StageTrace.mark("packed prefill: decoder layers", device: device)
    let ends = layout.lengths.reduce(into: [Int]()) { $0.append(($0.last ?? -1) + $1) }
    let last = language.norm(hidden.indexSelect(0, Tensor(ends).to(device)))
    var keys: [[Tensor]] = [], values: [[Tensor]] = []
    var start = 0
    for length in layout.lengths {
      keys.append(layerKeys.map { $0.narrow(0, start: start, length: length) })
      values.append(layerValues.map { $0.narrow(0, start: start, length: length) })
      start += length
    }
    return PrefillResult(keys: keys, values: values, deltas: deltas, lastHidden: last)
  }
}

extension SelfAttention {
  /// Packed causal attention (as `packed`) that also returns the rotated keys and values
  /// `[total, kvHeads, headDim]` for a KV cache. With `mask` (bool `[1, 1, total, total]`) SDPA
  /// replaces varlen flash attention.
  func packedWithCache(_ x: Tensor, rotary: (cos: Tensor, sin: Tensor), cuSeqlens: Tensor, maxLength: Int, mask: Tensor?)
    -> (output: Tensor, keys: Tensor, values: Tensor) {
    let total = x.size(1)
    let cos = rotary.cos[0].unsqueeze(1), sin = rotary.sin[0].unsqueeze(1)
    func rotate(_ t: Tensor) -> Tensor { t * cos + rotateHalf(t) * sin }
    let query = rotate(q(x).view(total, heads, headDim))
    let key = rotate(k(x).view(total, kvHeads, headDim))
    let value = v(x).view(total, kvHeads, headDim)
    let out: Tensor
    if let mask {
      func heads(_ t: Tensor) -> Tensor { t.transpose(0, 1).unsqueeze(0) }
      out = F.scaledDotProductAttention(heads(query), heads(key), heads(value), mask: mask, enableGQA: true)[0].transpose(0, 1)
    } else {
      out = F.flashAttentionVarlen(query, key, value, cuSeqlensQ: cuSeqlens, cuSeqlensK: cuSeqlens,
                                   maxSeqlenQ: maxLength, maxSeqlenK: maxLength, isCausal: true)
    }
    return (o(out.reshape(1, total, heads * headDim)), key, value)
  }
}
