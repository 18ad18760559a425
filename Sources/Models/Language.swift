import Foundation
import ModelConfig
import NN
import Torch

/// Keys and values of every decoder layer for the sequences being generated (passed in, never
/// hidden inside layers). Layout per layer: `[batch, kvHeads, cachedLength, headDim]`.
public final class KVCache: @unchecked Sendable {
  public var keys: [Tensor?]
  public var values: [Tensor?]
  public init(layers: Int) {
    keys = Array(repeating: nil, count: layers)
    values = Array(repeating: nil, count: layers)
  }
  /// Tokens already cached (the `cache_position` of the next token).
  public var length: Int { keys.first.flatMap { $0?.size(2) } ?? 0 }

  func append(layer: Int, keys newKeys: Tensor, values newValues: Tensor) -> (Tensor, Tensor) {
    let k = keys[layer].map { Tensor.cat([$0, newKeys], dim: 2) } ?? newKeys
    let v = values[layer].map { Tensor.cat([$0, newValues], dim: 2) } ?? newValues
    keys[layer] = k
    values[layer] = v
    return (k, v)
  }
}

/// Attention over keys and values that the caller stores (the rollout engine's slot cache). Each
/// decoder layer hands over its rotated query `[B, heads, L, headDim]` and its new keys and values
/// `[B, kvHeads, L, headDim]`; the store writes them where it keeps them and returns the attention
/// output `[B, heads, L, headDim]`. The store is passed in per call, never kept by a layer.
public protocol ExternalAttention: AnyObject {
  func attend(layer: Int, query: Tensor, keys: Tensor, values: Tensor) -> Tensor
}

/// Qwen2 decoder with multimodal RoPE (docs/qwen-vl.md section 4).
public final class LanguageModel: Module, @unchecked Sendable {
  public let config: TextConfig
  let embedTokens: Embedding
  let layers: ModuleList<DecoderLayer>
  let norm: RMSNorm
  /// `1/theta^(2j/headDim)` in float32 on the CPU, as HF's rotary buffer.
  let inverseFrequencies: Tensor

  public init(config: TextConfig, dtype: DType = .float32, device: Device = .cpu) {
    self.config = config
    embedTokens = Embedding(config.vocabSize, config.hiddenSize, dtype: dtype, device: device)
    layers = ModuleList((0..<config.numHiddenLayers).map { _ in DecoderLayer(config, dtype: dtype, device: device) })
    norm = RMSNorm(config.hiddenSize, eps: config.rmsNormEps, dtype: dtype, device: device)
    let exponents = Tensor.arange(0, Double(config.headDim), step: 2, dtype: .int64).to(.float32) / Double(config.headDim)
    inverseFrequencies = Tensor.pow(config.ropeTheta, exponents).reciprocal()
  }

  public override var children: [(String, Module)] { [("embed_tokens", embedTokens), ("layers", layers), ("norm", norm)] }

  public var embeddingWeight: Parameter { embedTokens.weight }

  /// The float32 rotary inverse frequencies `[headDim / 2]` on the CPU.
  public var ropeInverseFrequencies: Tensor { inverseFrequencies }

  public func embed(_ ids: Tensor) -> Tensor { embedTokens(ids) }

  /// cos/sin `[B, L, headDim]` in the model dtype from positions `[3, B, L]` (docs/qwen-vl.md 4.3): float32
  /// angles, cos/sin in float32, cast to `dtype`, then the M-RoPE sections picked per channel.
  /// `frequencies` is a copy of `ropeInverseFrequencies` already on the positions' device (CUDA-graph
  /// capture allows no host-to-device copy).
  public func rotary(positions: Tensor, dtype: DType, frequencies: Tensor? = nil) -> (cos: Tensor, sin: Tensor) {
    let angles = positions.to(.float32).unsqueeze(-1) * (frequencies ?? inverseFrequencies.to(positions.device))
    let embedding = Tensor.cat([angles, angles], dim: -1)
    let sections = config.mropeSection + config.mropeSection
    func assemble(_ t: Tensor) -> Tensor {
      let chunks = t.split(sizes: sections, dim: -1)
      return Tensor.cat(chunks.enumerated().map { $0.element[$0.offset % 3] }, dim: -1)
    }
    return (assemble(embedding.cos().to(dtype)), assemble(embedding.sin().to(dtype)))
  }

  /// Runs the decoder over embeddings `[B, L, D]`. `mask` (bool `[B, 1, L, cached+L]`, true = attend)
  /// is needed only with padding; without it, attention is causal (prefill) or full (one new token).
  /// `hiddenLayers` collects each layer's output sum for debugging parity.
  public func callAsFunction(embeddings: Tensor, positions: Tensor, cache: KVCache? = nil, mask: Tensor? = nil,
                             checkpointLayers: Bool = false) -> Tensor {
    let rotary = rotary(positions: positions, dtype: embeddings.dtype)
    var hidden = embeddings
    for (index, layer) in layers.items.enumerated() {
      if checkpointLayers && cache == nil {
        hidden = checkpoint([hidden], outputCount: 1) { inputs in [layer(inputs[0], rotary: rotary, layerIndex: index, cache: nil, mask: mask)] }[0]
      } else {
        hidden = layer(hidden, rotary: rotary, layerIndex: index, cache: cache, mask: mask)
      }
    }
    return norm(hidden)
  }

  /// Runs the decoder over embeddings `[B, L, D]` with precomputed rotary tables, attending through
  /// a caller-owned store (batched decode over a slot cache; no host synchronisation inside).
  public func callAsFunction(embeddings: Tensor, rotary: (cos: Tensor, sin: Tensor), attention: any ExternalAttention) -> Tensor {
    var hidden = embeddings
    for (index, layer) in layers.items.enumerated() {
      hidden = layer(hidden, rotary: rotary, layerIndex: index, cache: nil, mask: nil, external: attention)
    }
    return norm(hidden)
  }
}

final class DecoderLayer: Module, @unchecked Sendable {
  let attention: SelfAttention
  let mlp: GatedMLP
  let inputNorm: RMSNorm
  let postAttentionNorm: RMSNorm
  init(_ config: TextConfig, dtype: DType, device: Device) {
    attention = SelfAttention(config, dtype: dtype, device: device)
    mlp = GatedMLP(config, dtype: dtype, device: device)
    inputNorm = RMSNorm(config.hiddenSize, eps: config.rmsNormEps, dtype: dtype, device: device)
    postAttentionNorm = RMSNorm(config.hiddenSize, eps: config.rmsNormEps, dtype: dtype, device: device)
  }
  override var children: [(String, Module)] {
    [("self_attn", attention), ("mlp", mlp), ("input_layernorm", inputNorm), ("post_attention_layernorm", postAttentionNorm)]
  }
  func callAsFunction(_ x: Tensor, rotary: (cos: Tensor, sin: Tensor), layerIndex: Int, cache: KVCache?, mask: Tensor?,
                      external: (any ExternalAttention)? = nil) -> Tensor {
    let h = x + attention(inputNorm(x), rotary: rotary, layerIndex: layerIndex, cache: cache, mask: mask, external: external)
    return h + mlp(postAttentionNorm(h))
  }
}

final class SelfAttention: Module, @unchecked Sendable {
  let q: Linear, k: Linear, v: Linear, o: Linear
  let heads: Int, kvHeads: Int, headDim: Int
  init(_ c: TextConfig, dtype: DType, device: Device) {
    heads = c.numAttentionHeads
    kvHeads = c.numKeyValueHeads
    headDim = c.headDim
    q = Linear(c.hiddenSize, heads * headDim, bias: true, dtype: dtype, device: device)
    k = Linear(c.hiddenSize, kvHeads * headDim, bias: true, dtype: dtype, device: device)
    v = Linear(c.hiddenSize, kvHeads * headDim, bias: true, dtype: dtype, device: device)
    o = Linear(heads * headDim, c.hiddenSize, bias: false, dtype: dtype, device: device)
  }
  override var children: [(String, Module)] { [("q_proj", q), ("k_proj", k), ("v_proj", v), ("o_proj", o)] }

  func callAsFunction(_ x: Tensor, rotary: (cos: Tensor, sin: Tensor), layerIndex: Int, cache: KVCache?, mask: Tensor?,
                      external: (any ExternalAttention)? = nil) -> Tensor {
    let (batch, length) = (x.size(0), x.size(1))
    let cos = rotary.cos.unsqueeze(1), sin = rotary.sin.unsqueeze(1)
    // Three separately rounded ops in the model dtype, as HF's apply_multimodal_rotary_pos_emb.
    func rotate(_ t: Tensor) -> Tensor { t * cos + rotateHalf(t) * sin }
    let query = rotate(q(x).view(batch, length, heads, headDim).transpose(1, 2))
    var key = rotate(k(x).view(batch, length, kvHeads, headDim).transpose(1, 2))
    var value = v(x).view(batch, length, kvHeads, headDim).transpose(1, 2)
    if let external {
      let out = external.attend(layer: layerIndex, query: query, keys: key, values: value)
      return o(out.transpose(1, 2).reshape(batch, length, heads * headDim))
    }
    let cached = cache?.keys[layerIndex]?.size(2) ?? 0
    if let cache { (key, value) = cache.append(layer: layerIndex, keys: key, values: value) }
    let out: Tensor
    if let mask {
      out = F.scaledDotProductAttention(query, key, value, mask: mask, scale: transformersScale, enableGQA: true)
    } else {
      // Prefill of an empty cache: causal. One new token over a cache: attends to everything.
      precondition(cached == 0 || length == 1, "chunked prefill over a non-empty cache needs an explicit mask")
      out = F.scaledDotProductAttention(query, key, value, isCausal: cached == 0 && length > 1, scale: transformersScale,
                                        enableGQA: true)
    }
    return o(out.transpose(1, 2).reshape(batch, length, heads * headDim))
  }

  /// `head_dim ** -0.5` as transformers passes it to SDPA (SDPA's own default, 1/sqrt(d), can differ in the last bit).
  var transformersScale: Double { Foundation.pow(Double(headDim), -0.5) }
}

final class GatedMLP: Module, @unchecked Sendable {
  let gate: Linear, up: Linear, down: Linear
  let activation: String
  init(_ c: TextConfig, dtype: DType, device: Device) {
    gate = Linear(c.hiddenSize, c.intermediateSize, bias: false, dtype: dtype, device: device)
    up = Linear(c.hiddenSize, c.intermediateSize, bias: false, dtype: dtype, device: device)
    down = Linear(c.intermediateSize, c.hiddenSize, bias: false, dtype: dtype, device: device)
    activation = c.hiddenAct
  }
  override var children: [(String, Module)] { [("gate_proj", gate), ("up_proj", up), ("down_proj", down)] }
  func callAsFunction(_ x: Tensor) -> Tensor { down(applyActivation(activation, gate(x)) * up(x)) }
}

// MARK: - Packed variable-length sequences (training passes)

/// Several sequences laid end to end in one row (`[1, total, D]`), each attending causally to itself
/// only: cu_seqlens for varlen flash attention on CUDA, a block-diagonal causal mask elsewhere.
public struct PackedLayout: @unchecked Sendable {
  /// Token count of each sequence, in packing order.
  public let lengths: [Int]
  public var total: Int { lengths.reduce(0, +) }
  public var maxLength: Int { lengths.max() ?? 0 }

  public init(lengths: [Int]) { self.lengths = lengths }

  /// `[0, l0, l0 + l1, ...]` as int32 on `device` (flash attention's `cu_seqlens`).
  public func cumulativeLengths(device: Device) -> Tensor {
    var offsets: [Int32] = [0]
    for length in lengths { offsets.append(offsets[offsets.count - 1] + Int32(length)) }
    return Tensor(offsets).to(device)
  }

  /// Bool `[1, 1, total, total]`, true where query i may attend to key j: same sequence and j <= i.
  public func blockCausalMask(device: Device) -> Tensor {
    var sequenceIDs: [Int] = []
    for (index, length) in lengths.enumerated() { sequenceIDs += Array(repeating: index, count: length) }
    let ids = Tensor(sequenceIDs).to(device)
    let sameSequence = ids.unsqueeze(1).eq(ids.unsqueeze(0))
    let causal = Tensor.ones([total, total], dtype: .bool, device: device).tril()
    return sameSequence.logicalAnd(causal).unsqueeze(0).unsqueeze(0)
  }

  /// Flash attention's varlen kernel takes half precision on CUDA; float32 and CPU use the mask.
  public static func usesFlash(device: Device, dtype: DType) -> Bool {
    device.isCUDA && (dtype == .bfloat16 || dtype == .float16)
  }
}

extension LanguageModel {
  /// Runs the decoder over packed sequences: `embeddings` `[1, total, D]`, `positions` `[3, 1, total]`
  /// (each sequence's own M-RoPE positions). Same result per sequence as separate forwards.
  public func callAsFunction(embeddings: Tensor, positions: Tensor, packed layout: PackedLayout,
                             checkpointLayers: Bool = false) -> Tensor {
    precondition(embeddings.size(1) == layout.total, "packed layout covers \(layout.total) tokens, embeddings \(embeddings.size(1))")
    let device = embeddings.device
    guard PackedLayout.usesFlash(device: device, dtype: embeddings.dtype) else {
      return self(embeddings: embeddings, positions: positions, mask: layout.blockCausalMask(device: device),
                  checkpointLayers: checkpointLayers)
    }
    let rotary = rotary(positions: positions, dtype: embeddings.dtype)
    let cuSeqlens = layout.cumulativeLengths(device: device)
    var hidden = embeddings
    for layer in layers.items {
      let run: ([Tensor]) -> [Tensor] = { inputs in
        [layer.packed(inputs[0], rotary: rotary, cuSeqlens: cuSeqlens, maxLength: layout.maxLength)]
      }
      hidden = checkpointLayers ? checkpoint([hidden], outputCount: 1, run)[0] : run([hidden])[0]
    }
    return norm(hidden)
  }
}

extension DecoderLayer {
  /// The layer over packed sequences through varlen flash attention (CUDA, half precision).
  func packed(_ x: Tensor, rotary: (cos: Tensor, sin: Tensor), cuSeqlens: Tensor, maxLength: Int) -> Tensor {
    let h = x + attention.packed(inputNorm(x), rotary: rotary, cuSeqlens: cuSeqlens, maxLength: maxLength)
    return h + mlp(postAttentionNorm(h))
  }
}

extension SelfAttention {
  /// `x` `[1, total, D]`; causal attention inside each `cuSeqlens` segment (GQA native in the kernel).
  func packed(_ x: Tensor, rotary: (cos: Tensor, sin: Tensor), cuSeqlens: Tensor, maxLength: Int) -> Tensor {
    packedWithCache(x, rotary: rotary, cuSeqlens: cuSeqlens, maxLength: maxLength, mask: nil).output
  }

}
