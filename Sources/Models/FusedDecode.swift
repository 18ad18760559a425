import Foundation
import NN
import Torch

/// The key/value store of a fused decode step (the rollout engine's slot cache): the fused rotary
/// kernel writes each layer's new key and value into `caches(layer:)` at `writePositions`, then the
/// store attends over what it holds.
public protocol SlotAttentionStore: AnyObject {
  /// Keys and values of `layer`, `[slots, maxLength, kvHeads, headDim]`, contiguous.
  func caches(layer: Int) -> (keys: Tensor, values: Tensor)
  /// int64 `[slots]`: where this step's key and value go.
  var writePositions: Tensor { get }
  /// Whether `attendCached` takes the rotary tables and does the rotation and the key/value write
  /// itself (then the decoder skips the rotary kernel).
  func attentionRotates(layer: Int) -> Bool
  /// Attention of the queries, the first `heads * headDim` columns of `qkv` (the fused projection),
  /// over the cached keys (this step's included); returns `[slots, heads * headDim]`. `rotary` is
  /// given exactly when `attentionRotates` (then `qkv` is unrotated and this step's key and value
  /// are not in the cache yet); otherwise the rotary kernel has run.
  func attendCached(layer: Int, qkv: Tensor, heads: Int, headDim: Int, rotary: (cos: Tensor, sin: Tensor)?) -> Tensor
}

/// The decoder's one-token-per-slot step on CUDA in bfloat16 with fused kernels
/// (`csrc/decode_kernels.cu`): per layer one residual-add + RMSNorm kernel before attention and one
/// before the MLP, one GEMM for q/k/v together, the store's decode attention (one kernel over the
/// slot cache that also rotates q and k and writes the step's key and value; a separate rotary +
/// key/value-write kernel where the store attends with flash attention), one GEMM for gate/up
/// together and one SwiGLU kernel — 8 launches per layer (plus cuBLAS's split-K reductions)
/// instead of about 30.
///
/// The q/k/v and gate/up weights (with LoRA adapters merged) are concatenated when the decoder is made (the rollout engine makes
/// one per `generate` call, so trained weights are always current); that costs one extra copy of
/// those weights while it lives (3.6 GB for the 3B model).
///
/// Numerics: the rotary and SwiGLU kernels round exactly where the unfused ops do (bit-identical);
/// the norm's float32 sum of squares is reduced in another order; the concatenated GEMMs may pick
/// other cuBLAS kernels. Greedy tokens can therefore part from the unfused path at near-ties, as
/// any change of kernel does (measured in docs/benchmarks.md).
public final class FusedDecoder {
  struct Layer {
    let qkvWeight: Tensor, qkvBias: Tensor?, output: Tensor, gateUp: Tensor, down: Tensor
    let inputNorm: Tensor, postNorm: Tensor, eps: Double
  }
  let layers: [Layer]
  let finalNorm: Tensor
  let finalEps: Double
  let heads: Int, kvHeads: Int, headDim: Int

  /// A fused decoder for `language`, or nil with the reason when the fused path does not apply (not
  /// CUDA, not bfloat16, an activation other than SiLU, or kernels that could not be loaded).
  public static func make(_ language: LanguageModel) -> (decoder: FusedDecoder?, reason: String?) {
    let weight = language.embeddingWeight.value
    guard case .cuda(let index) = weight.device else { return (nil, "not on CUDA") }
    guard weight.dtype == .bfloat16 else { return (nil, "fused kernels are bfloat16 only (model is \(weight.dtype))") }
    guard language.config.hiddenAct == "silu" else { return (nil, "activation \(language.config.hiddenAct) is not SiLU") }
    if let reason = CUDA.FusedKernels.unavailableReason(device: index) { return (nil, reason) }
    return (FusedDecoder(language), nil)
  }

  init(_ language: LanguageModel) {
    let config = language.config
    heads = config.numAttentionHeads
    kvHeads = config.numKeyValueHeads
    headDim = config.headDim
    layers = language.layers.items.map { layer in
      let a = layer.attention, m = layer.mlp
      let biases = [a.q.bias, a.k.bias, a.v.bias].compactMap { $0?.value }
      // The concatenated weights are stored transposed ([in, out] contiguous, used as `.mT`): cuBLAS's
      // kernels for x @ W with W row-major were 3-4% faster than for x @ W^T at these shapes
      // (bench/gemm_shapes.py, docs/benchmarks.md), and the copy is made anyway.
      return Layer(qkvWeight: Tensor.cat([a.q, a.k, a.v].map(Self.effectiveWeight), dim: 0).mT.contiguous().mT,
                   qkvBias: biases.count == 3 ? Tensor.cat(biases, dim: 0) : nil,
                   output: Self.effectiveWeight(a.o),
                   gateUp: Tensor.cat([m.gate, m.up].map(Self.effectiveWeight), dim: 0).mT.contiguous().mT,
                   down: Self.effectiveWeight(m.down), inputNorm: layer.inputNorm.weight.value,
                   postNorm: layer.postAttentionNorm.weight.value, eps: layer.inputNorm.eps)
    }
    finalNorm = language.norm.weight.value
    finalEps = language.norm.eps
  }

  /// The weight a linear layer applies: its own, or with an enabled LoRA adapter merged in
  /// (`W + scaling * B A`, summed in float32), so rollouts of a LoRA run sample from the adapted model.
  static func effectiveWeight(_ linear: Linear) -> Tensor {
    let weight = linear.weight.value
    guard let adapter = linear.adapter, adapter.enabled else { return weight }
    let update = F.matmul(adapter.up.weight.value, adapter.down.weight.value) * adapter.scaling
    return (weight.to(.float32) + update.to(.float32)).to(weight.dtype)
  }

  /// One decode step: `residual` `[slots, hidden]` holds the input embeddings and is used as the
  /// residual stream (overwritten), `cos`/`sin` `[slots, headDim]` (bf16), keys and values written
  /// into `store`. Returns the final-normed hidden states `[slots, hidden]`.
  public func callAsFunction(residual: Tensor, cos: Tensor, sin: Tensor, store: any SlotAttentionStore) -> Tensor {
    var delta: Tensor? = nil
    for (index, layer) in layers.enumerated() {
      let normed = CUDA.FusedKernels.addRMSNorm(residual: residual, delta: delta, weight: layer.inputNorm, eps: layer.eps)
      let qkv = F.linear(normed, layer.qkvWeight, layer.qkvBias)
      let attended: Tensor
      if store.attentionRotates(layer: index) {
        attended = store.attendCached(layer: index, qkv: qkv, heads: heads, headDim: headDim, rotary: (cos, sin))
      } else {
        let (keys, values) = store.caches(layer: index)
        CUDA.FusedKernels.rotaryKV(qkv: qkv, cos: cos, sin: sin, keyCache: keys, valueCache: values,
                                   positions: store.writePositions, heads: heads, kvHeads: kvHeads, headDim: headDim)
        attended = store.attendCached(layer: index, qkv: qkv, heads: heads, headDim: headDim, rotary: nil)
      }
      let projected = F.linear(attended, layer.output)
      let normedPost = CUDA.FusedKernels.addRMSNorm(residual: residual, delta: projected, weight: layer.postNorm, eps: layer.eps)
      let activated = CUDA.FusedKernels.swiGLU(F.linear(normedPost, layer.gateUp))
      delta = F.linear(activated, layer.down)
    }
    return CUDA.FusedKernels.addRMSNorm(residual: residual, delta: delta, weight: finalNorm, eps: finalEps)
  }
}
