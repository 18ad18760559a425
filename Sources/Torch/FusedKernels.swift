import CTorch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Entry points of the fused decode kernels in `libvlmrl_cuda.so`.
struct FusedKernelSymbols: @unchecked Sendable {
  // The function types come from vlmrl_cuda.h, which the library's C++ is compiled against.
  let lastError: vtc_kernels_last_error_fn
  let load: vtc_kernels_load_fn
  let addRMSNorm: vtc_add_rmsnorm_fn
  let rotaryKV: vtc_rotary_kv_fn
  let swiGLU: vtc_swiglu_fn
  let sample: vtc_sample_fn
  let sampleStep: vtc_sample_step_fn
  let decodeAttention: vtc_decode_attention_fn
  let stepInputs: vtc_step_inputs_fn
  let visionRotary: vtc_vision_rotary_fn
  let attentionMass: vtc_attention_mass_fn
  let decodeAttentionMass: vtc_decode_attention_mass_fn

  init?(library: UnsafeMutableRawPointer) {
    func symbol<T>(_ name: String, _: T.Type) -> T? {
      dlsym(library, name).map { unsafeBitCast($0, to: T.self) }
    }
    guard let lastError = symbol("vtc_kernels_last_error", vtc_kernels_last_error_fn.self),
      let load = symbol("vtc_kernels_load", vtc_kernels_load_fn.self),
      let addRMSNorm = symbol("vtc_add_rmsnorm", vtc_add_rmsnorm_fn.self),
      let rotaryKV = symbol("vtc_rotary_kv", vtc_rotary_kv_fn.self),
      let swiGLU = symbol("vtc_swiglu", vtc_swiglu_fn.self),
      let sample = symbol("vtc_sample", vtc_sample_fn.self),
      let sampleStep = symbol("vtc_sample_step", vtc_sample_step_fn.self),
      let decodeAttention = symbol("vtc_decode_attention", vtc_decode_attention_fn.self),
      let stepInputs = symbol("vtc_step_inputs", vtc_step_inputs_fn.self),
      let visionRotary = symbol("vtc_vision_rotary", vtc_vision_rotary_fn.self),
      let attentionMass = symbol("vtc_attention_mass", vtc_attention_mass_fn.self),
      let decodeAttentionMass = symbol("vtc_decode_attention_mass", vtc_decode_attention_mass_fn.self)
    else { return nil }
    (self.visionRotary, self.attentionMass, self.decodeAttentionMass) = (visionRotary, attentionMass, decodeAttentionMass)
    (self.lastError, self.load, self.addRMSNorm, self.rotaryKV, self.swiGLU) = (lastError, load, addRMSNorm, rotaryKV, swiGLU)
    (self.sample, self.sampleStep, self.decodeAttention, self.stepInputs) = (sample, sampleStep, decodeAttention, stepInputs)
  }

  var message: String { lastError().map { String(cString: $0) } ?? "unknown error" }
}

extension CUDA {
  /// Fused bfloat16 kernels for the rollout engine's decode step (`csrc/decode_kernels.cu`, compiled
  /// at run time with NVRTC). Each reproduces the rounding of the PyTorch ops it replaces; see the
  /// source for the exact semantics.
  public enum FusedKernels {
    private static let availability = Mutex<[Int: String?]>([:])

    /// nil when the kernels are compiled and loaded for `device` (done once), else why not. Callers
    /// fall back to the unfused ops when this is not nil.
    public static func unavailableReason(device: Int = 0) -> String? {
      availability.withLock { cache in
        if let known = cache[device] { return known }
        let reason: String?
        switch CUDA.loaded {
        case .failure(let error): reason = error.message
        case .success(let shim):
          if let kernels = shim.kernels {
            reason = kernels.load(Int32(device)) == 0 ? nil : kernels.message
          } else {
            reason = "libvlmrl_cuda.so has no fused kernels (rebuild it with `make cuda-shim`)"
          }
        }
        cache[device] = reason
        return reason
      }
    }

    static var symbols: FusedKernelSymbols {
      guard let kernels = CUDA.shim.kernels else { fatalError("libvlmrl_cuda.so has no fused kernels") }
      return kernels
    }

    static func result(_ handle: OpaquePointer?, _ op: String) -> Tensor {
      guard let handle else { fatalError("\(op) failed: \(symbols.message)") }
      return Tensor(handle: handle)
    }

    /// `residual += delta` (in place, bf16 add; skipped when `delta` is nil), then returns
    /// `weight * bf16(residual * rsqrt(mean(residual^2) + eps))`. `[rows, dim]` bf16 contiguous.
    public static func addRMSNorm(residual: Tensor, delta: Tensor?, weight: Tensor, eps: Double) -> Tensor {
      result(symbols.addRMSNorm(residual.handle, delta?.handle, weight.handle, eps), "fused add+RMSNorm")
    }

    /// Rotates the q and k parts of `qkv` `[slots, (heads + 2 kvHeads) * headDim]` (q in place) with
    /// `cos`/`sin` `[slots, headDim]`, and writes k and v into `keyCache`/`valueCache`
    /// `[slots, maxLength, kvHeads, headDim]` at `positions` (int64 `[slots]`).
    public static func rotaryKV(qkv: Tensor, cos: Tensor, sin: Tensor, keyCache: Tensor, valueCache: Tensor,
                                positions: Tensor, heads: Int, kvHeads: Int, headDim: Int) {
      let status = symbols.rotaryKV(qkv.handle, cos.handle, sin.handle, keyCache.handle, valueCache.handle, positions.handle,
                                    Int32(heads), Int32(kvHeads), Int32(headDim))
      if status != 0 { fatalError("fused rotary/KV write failed: \(symbols.message)") }
    }

    /// `bf16(silu(gate)) * up` for `gateUp` `[rows, 2 * inner]` (gate first): `[rows, inner]`.
    public static func swiGLU(_ gateUp: Tensor) -> Tensor {
      result(symbols.swiGLU(gateUp.handle), "fused SwiGLU")
    }

    /// One token per row of bf16 `logits` `[rows, vocab]`: greedy when `temperature <= 0`, else the
    /// inverse-CDF draw with `uniforms` (float32 `[rows]`) from softmax((logits + bias) / T), as
    /// `TokenSampler` without top-k/top-p/min-p/penalty. Returns int64 tokens and float32 log-probs.
    public static func sample(logits: Tensor, bias: Tensor?, uniforms: Tensor, temperature: Double) -> (tokens: Tensor, logProbs: Tensor) {
      let rows = logits.size(0)
      let tokens = Tensor.empty([rows], dtype: .int64, device: logits.device)
      let logProbs = Tensor.empty([rows], dtype: .float32, device: logits.device)
      // A temporary's handle must outlive the call: ARC may release the Tensor right after `.handle`.
      let contiguousUniforms = uniforms.contiguous()
      let status = withExtendedLifetime(contiguousUniforms) {
        symbols.sample(logits.handle, bias?.handle, contiguousUniforms.handle, temperature, tokens.handle, logProbs.handle)
      }
      if status != 0 { fatalError("fused sampler failed: \(symbols.message)") }
      return (tokens, logProbs)
    }
      /// The sampler as the last kernel of a decode step: row `r` of `logits` is slot `r`, whose
    /// uniform is `uniforms[slotSequence[r], min(slotStep[r], columns - 1)]`; the token and log-prob
    /// go to that cell of `tokens`/`logProbs` (`[sequences + 1, columns]`, int64/float32), then
    /// `slotTokens[r]` becomes the token and `slotLengths[r]`, `slotStep[r]` advance by one (int64).
    public static func sampleStep(logits: Tensor, bias: Tensor?, uniforms: Tensor, temperature: Double, slotSequence: Tensor,
                                  slotStep: Tensor, slotTokens: Tensor, slotLengths: Tensor, tokens: Tensor, logProbs: Tensor) {
      let status = symbols.sampleStep(logits.handle, bias?.handle, uniforms.handle, temperature, slotSequence.handle,
                                      slotStep.handle, slotTokens.handle, slotLengths.handle, tokens.handle, logProbs.handle)
      if status != 0 { fatalError("fused sampler (decode step) failed: \(symbols.message)") }
    }

    /// Keys per block of `decodeAttention`: the whole cache, i.e. one block per slot and key/value
    /// head. Splitting the keys over more blocks (flash-decoding) costs a merge of partial results
    /// through global memory whose latency outweighed the extra parallelism on the H200 at every
    /// batch measured (16, 64 and 256 slots of ~400-640 keys: docs/benchmarks.md); the kernel still
    /// takes any split, and `vlmrl doctor` checks the merge path.
    public static func decodeAttentionSplit(maxLength: Int) -> Int {
      (maxLength + 63) / 64 * 64
    }

    /// Float32 workspace elements `decodeAttention` needs.
    public static func decodeAttentionWorkspace(slots: Int, heads: Int, maxLength: Int, split: Int) -> Int {
      slots * heads * ((maxLength + split - 1) / split) * 130
    }

    /// Attention of one query token per slot over the slot cache (head dim 128, at most 8 query
    /// heads per key/value head): queries are the first `heads * 128` columns of each `qkv` row
    /// (a strided view is fine), caches `[slots, maxLength, kvHeads, 128]`, keys
    /// `0...positions[slot]` visible. With `rotary` (`[slots, 128]` bf16 cos and sin) the kernel
    /// also does `rotaryKV`'s work: rotates the queries and the step's key and writes the key and the
    /// value into the caches at `positions` (`qkv` holds the unrotated q, k, v); without it the
    /// queries are rotated and the caches written already. `workspace` float32 of
    /// `decodeAttentionWorkspace`, `counters` int32 `[slots * kvHeads]` zeros (left zero). Returns
    /// `[slots, heads * 128]`.
    public static func decodeAttention(qkv: Tensor, keyCache: Tensor, valueCache: Tensor, positions: Tensor, heads: Int,
                                       kvHeads: Int, split: Int, workspace: Tensor, counters: Tensor,
                                       rotary: (cos: Tensor, sin: Tensor)? = nil) -> Tensor {
      result(symbols.decodeAttention(qkv.handle, keyCache.handle, valueCache.handle, positions.handle, Int32(heads),
                                     Int32(kvHeads), Int32(split), workspace.handle, counters.handle, rotary?.cos.handle,
                                     rotary?.sin.handle), "fused decode attention")
    }

    /// Where the attention diagnostics of a recorded layer go (`decodeAttention(..., mass:)` and
    /// `attentionMass`): float32 `[slots, >= maxLength]` masks of the prompt's text and image keys,
    /// the run's per-sequence buffers `text`/`vision` float32 `[rows, columns, recorded]` written at
    /// row `sequence[slot]`, column `min(step[slot], columns - 1)`, entry `column` (int64 `[slots]`
    /// slot state).
    public struct MassRecording {
      public let textMask: Tensor, visionMask: Tensor, text: Tensor, vision: Tensor, sequence: Tensor, step: Tensor
      public let column: Int
      public init(textMask: Tensor, visionMask: Tensor, text: Tensor, vision: Tensor, sequence: Tensor, step: Tensor, column: Int) {
        (self.textMask, self.visionMask, self.text, self.vision) = (textMask, visionMask, text, vision)
        (self.sequence, self.step, self.column) = (sequence, step, column)
      }
    }

    /// Float32 workspace elements of `decodeAttention` with `mass` (the splits' and the heads' masses).
    public static func decodeAttentionMassWorkspace(slots: Int, heads: Int, maxLength: Int, split: Int) -> Int {
      2 * slots * heads * ((maxLength + split - 1) / split + 1)
    }

    /// `decodeAttention` that also records its layer's attention diagnostics (the fused form of
    /// `attentionMass`, one launch): while the kernel holds each query head's probabilities it sums
    /// them on the text and on the image keys of `mass`, divides by the softmax's denominator and
    /// writes the heads' average where `attentionMass` would. The probabilities are the ones the
    /// attention applies (float32 scores; `attentionMass` and the ops round them to bf16 first).
    /// `massWorkspace` float32 of `decodeAttentionMassWorkspace`, `massCounters` int32 `[slots]`
    /// zeros (left zero).
    public static func decodeAttention(qkv: Tensor, keyCache: Tensor, valueCache: Tensor, positions: Tensor, heads: Int,
                                       kvHeads: Int, split: Int, workspace: Tensor, counters: Tensor,
                                       rotary: (cos: Tensor, sin: Tensor)?, mass: MassRecording, massWorkspace: Tensor,
                                       massCounters: Tensor) -> Tensor {
      result(symbols.decodeAttentionMass(qkv.handle, keyCache.handle, valueCache.handle, positions.handle, Int32(heads),
                                         Int32(kvHeads), Int32(split), workspace.handle, counters.handle, rotary?.cos.handle,
                                         rotary?.sin.handle, mass.textMask.handle, mass.visionMask.handle, mass.text.handle,
                                         mass.vision.handle, mass.sequence.handle, mass.step.handle, Int32(mass.column),
                                         massWorkspace.handle, massCounters.handle), "fused decode attention with attention mass")
    }

    /// Attention diagnostics of one recorded layer in a kernel of its own (`VLMRL_ATTENTION_MASS=separate`):
    /// the heads-averaged attention probability of each slot's query (the rotated queries at the head
    /// of each `qkv` row) on the text and on the image keys of `mass` among the keys
    /// `0..<keyLengths[slot]` of `keyCache` `[slots, maxLength, kvHeads, 128]`, written into `mass`'s
    /// buffers. The scores round to bf16 as a bf16 matmul's output and the softmax runs in float32,
    /// as the unfused ops it replaces.
    public static func attentionMass(qkv: Tensor, keyCache: Tensor, keyLengths: Tensor, heads: Int, kvHeads: Int,
                                     mass: MassRecording) {
      let status = symbols.attentionMass(qkv.handle, keyCache.handle, keyLengths.handle, mass.textMask.handle,
                                         mass.visionMask.handle, Int32(heads), Int32(kvHeads), mass.text.handle,
                                         mass.vision.handle, mass.sequence.handle, mass.step.handle, Int32(mass.column))
      if status != 0 { fatalError("fused attention mass failed: \(symbols.message)") }
    }

    /// The inputs of a fused decode step from the slots' state (`tokens`, `lengths`, rope `deltas`,
    /// int64 `[slots]`): `residual` gets the tokens' embedding rows; `writePositions` =
    /// min(length, maxLength - 1), `keyLengths`/`keyLengths32` = that + 1; `cos`/`sin`
    /// `[slots, headDim]` of the text position length + delta (float32 angles and cos/sin rounded to
    /// bf16, as `LanguageModel.rotary` for a decode token).
    public static func stepInputs(tokens: Tensor, lengths: Tensor, deltas: Tensor, embedding: Tensor, inverseFrequencies: Tensor,
                                  maxLength: Int, residual: Tensor, writePositions: Tensor, keyLengths: Tensor,
                                  keyLengths32: Tensor, cos: Tensor, sin: Tensor) {
      let status = symbols.stepInputs(tokens.handle, lengths.handle, deltas.handle, embedding.handle, inverseFrequencies.handle,
                                      Int32(maxLength), residual.handle, writePositions.handle, keyLengths.handle,
                                      keyLengths32.handle, cos.handle, sin.handle)
      if status != 0 { fatalError("fused step inputs failed: \(symbols.message)") }
    }
      /// The vision tower's rotary embedding of q and k as transformers computes it (float32, each op
    /// rounded alone; bit-identical to the separate ops): `qkv` `[length, 3 * heads * headDim]` bf16,
    /// `cos`/`sin` `[length, headDim]` float32. Returns q and k `[length, heads, headDim]` bf16.
    public static func visionRotary(qkv: Tensor, cos: Tensor, sin: Tensor, heads: Int, headDim: Int) -> (q: Tensor, k: Tensor) {
      let length = qkv.size(0)
      let q = Tensor.empty([length, heads, headDim], dtype: .bfloat16, device: qkv.device)
      let k = Tensor.empty([length, heads, headDim], dtype: .bfloat16, device: qkv.device)
      let (c, s) = (cos.contiguous(), sin.contiguous())
      let status = withExtendedLifetime((c, s)) {
        symbols.visionRotary(qkv.handle, c.handle, s.handle, Int32(heads), Int32(headDim), q.handle, k.handle)
      }
      if status != 0 { fatalError("fused vision rotary failed: \(symbols.message)") }
      return (q, k)
    }
  }
}
