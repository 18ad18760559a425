import Foundation
import ModelConfig
import NN
import Torch

/// The Qwen2-VL and Qwen2.5-VL vision towers (docs/qwen-vl.md, section 3). One class serves both families; the
/// differences (norm kind, MLP kind, window attention and reordering) are switched by `family`.
public final class VisionTower: Module, @unchecked Sendable {
  public let config: VisionConfig
  public let family: QwenVLFamily
  let patchEmbed: PatchEmbed
  let blocks: ModuleList<VisionBlock>
  let merger: PatchMerger
  /// The fast-path switches of the tower's attention (set through `QwenVLModel.switches`).
  public var switches = KernelSwitches() {
    didSet { for block in blocks.items { block.attn.switches = switches } }
  }
  /// Vision rotary frequencies, float32 on the CPU as HF builds them (`1/10000^(2i/d)`, d = headDim/2).
  let inverseFrequencies: Tensor

  public init(config: VisionConfig, family: QwenVLFamily, dtype: DType = .float32, device: Device = .cpu) {
    self.config = config
    self.family = family
    patchEmbed = PatchEmbed(config, dtype: dtype, device: device)
    blocks = ModuleList((0..<config.depth).map { _ in VisionBlock(config, family: family, dtype: dtype, device: device) })
    merger = PatchMerger(config, family: family, dtype: dtype, device: device)
    let rotaryDim = config.headDim / 2
    let exponents = Tensor.arange(0, Double(rotaryDim), step: 2, dtype: .int64).to(.float32) / Double(rotaryDim)
    inverseFrequencies = Tensor.pow(10000.0, exponents).reciprocal()
  }

  public override var children: [(String, Module)] { [("patch_embed", patchEmbed), ("blocks", blocks), ("merger", merger)] }

  /// `pixelValues` `[N, C*T*P*P]` (any float dtype; cast to the tower's dtype first, as HF does) and the
  /// per-image (t, h, w) grids in patches. Returns `[sum(t*h*w)/merge^2, outHiddenSize]` in processor
  /// order (the order of the `<|image_pad|>` tokens). `observe` sees every stage's output as transformers'
  /// forward hooks do (`patch_embed`, `block<i>` in window order, `merger`), for the bf16 parity test.
  /// `alignedMLPs` (from `alignedMLPs()`) replace the blocks' MLP weights with padded ones (faster
  /// on CUDA, not bit-identical).
  public func callAsFunction(_ pixelValues: Tensor, grids: [[Int]], observe: ((String, Tensor) -> Void)? = nil,
                             alignedMLPs: [AlignedVisionMLP]? = nil) -> Tensor {
    let weight = patchEmbed.proj.weight.value
    var hidden = patchEmbed(pixelValues.to(weight.dtype, device: weight.device))
    observe?("patch_embed", hidden)
    var angles = rotaryAngles(grids: grids, device: weight.device)
    let frameSegments = VisionLayout.frameSegments(grids: grids)
    var windowIndex: [Int] = []
    var windowSegments = frameSegments
    let unit = config.spatialMergeSize * config.spatialMergeSize
    if family == .qwen25VL {
      (windowIndex, windowSegments) = VisionLayout.windows(grids: grids, mergeSize: config.spatialMergeSize,
                                                          windowTokens: (config.windowSize ?? 112) / config.spatialMergeSize / config.patchSize)
      let order = Tensor(windowIndex).to(weight.device)
      hidden = hidden.reshape(-1, unit, hidden.size(-1)).indexSelect(0, order).reshape(-1, hidden.size(-1))
      angles = angles.reshape(-1, unit, angles.size(-1)).indexSelect(0, order).reshape(-1, angles.size(-1))
    }
    let embedding = Tensor.cat([angles, angles], dim: -1)
    let rotary = (cos: embedding.cos(), sin: embedding.sin())
    StageTrace.mark("vision: patch embedding, windows, rotary", device: weight.device)
    let fullBlocks = Set(config.fullAttentionBlockIndexes ?? [])
    for (index, block) in blocks.items.enumerated() {
      let segments = family == .qwen2VL || fullBlocks.contains(index) ? frameSegments : windowSegments
      hidden = block(hidden, segments: segments, rotary: rotary, aligned: alignedMLPs?[index])
      observe?("block\(index)", hidden)
    }
    StageTrace.mark("vision: blocks", device: weight.device)
    var merged = merger(hidden)
    observe?("merger", merged)
    if family == .qwen25VL {
      let inverse = Tensor(windowIndex).argsortStable().to(weight.device)
      merged = merged.indexSelect(0, inverse)
    }
    return merged
  }

  /// Per-patch (h, w) rotary angles `[N, headDim/2]` in processor order (docs/qwen-vl.md 3.2), float32.
  func rotaryAngles(grids: [[Int]], device: Device) -> Tensor {
    var rows: [Int64] = [], cols: [Int64] = []
    let m = config.spatialMergeSize
    for grid in grids {
      let (t, h, w) = (grid[0], grid[1], grid[2])
      var blockRows: [Int64] = [], blockCols: [Int64] = []
      for bh in 0..<(h / m) {
        for bw in 0..<(w / m) {
          for i in 0..<m { for j in 0..<m { blockRows.append(Int64(bh * m + i)); blockCols.append(Int64(bw * m + j)) } }
        }
      }
      for _ in 0..<t { rows += blockRows; cols += blockCols }
    }
    let frequencies = inverseFrequencies.to(device).unsqueeze(0)
    let hAngles = Tensor(rows).to(.float32, device: device).unsqueeze(1) * frequencies
    let wAngles = Tensor(cols).to(.float32, device: device).unsqueeze(1) * frequencies
    return Tensor.cat([hAngles, wAngles], dim: 1)
  }
}

extension Tensor {
  /// Indices that sort a 1-D integer tensor (stable), as `argsort`.
  func argsortStable() -> Tensor { sort(dim: 0, stable: true).indices }
}

// MARK: - Layout (window partition and segments)

/// The integer bookkeeping of the vision tower: per-frame segments and Qwen2.5-VL's windows.
public enum VisionLayout {
  /// `cu_seqlens` as segment lengths: one segment of h*w patches per frame of each image.
  public static func frameSegments(grids: [[Int]]) -> [Int] {
    grids.flatMap { grid in Array(repeating: grid[1] * grid[2], count: grid[0]) }
  }

  /// `get_window_index` (docs/qwen-vl.md 3.3): the merged-token permutation and the window segment lengths in
  /// patches, with empty windows dropped (HF's `unique_consecutive` of the cumulative list).
  public static func windows(grids: [[Int]], mergeSize: Int, windowTokens ws: Int) -> (index: [Int], segments: [Int]) {
    var index: [Int] = []
    var segments: [Int] = []
    var offset = 0
    let unit = mergeSize * mergeSize
    for grid in grids {
      let (t, mh, mw) = (grid[0], grid[1] / mergeSize, grid[2] / mergeSize)
      let padH = ws - mh % ws, padW = ws - mw % ws
      let windowRows = (mh + padH) / ws, windowCols = (mw + padW) / ws
      for ti in 0..<t {
        for wr in 0..<windowRows {
          for wc in 0..<windowCols {
            var count = 0
            for a in 0..<ws {
              for b in 0..<ws {
                let y = wr * ws + a, x = wc * ws + b
                guard y < mh, x < mw else { continue }
                index.append(offset + ti * mh * mw + y * mw + x)
                count += 1
              }
            }
            if count > 0 { segments.append(count * unit) }
          }
        }
      }
      offset += t * mh * mw
    }
    return (index, segments)
  }
}

// MARK: - Parts

final class PatchEmbed: Module, @unchecked Sendable {
  let proj: Conv3dNoBias
  let config: VisionConfig
  init(_ config: VisionConfig, dtype: DType, device: Device) {
    self.config = config
    proj = Conv3dNoBias(config: config, dtype: dtype, device: device)
  }
  override var children: [(String, Module)] { [("proj", proj)] }
  func callAsFunction(_ pixels: Tensor) -> Tensor {
    let c = config
    let view = pixels.reshape(-1, c.inChannels, c.temporalPatchSize, c.patchSize, c.patchSize)
    return F.conv3d(view, proj.weight.value, stride: [c.temporalPatchSize, c.patchSize, c.patchSize]).reshape(-1, c.embedDim)
  }
}

final class Conv3dNoBias: Module, @unchecked Sendable {
  let weight: Parameter
  init(config c: VisionConfig, dtype: DType, device: Device) {
    weight = Parameter(Initializer.normal([c.embedDim, c.inChannels, c.temporalPatchSize, c.patchSize, c.patchSize],
                                          dtype: dtype, device: device))
  }
  override var parameterSlots: [(String, Parameter)] { [("weight", weight)] }
}

/// RMSNorm for Qwen2.5-VL, LayerNorm (weight and bias) for Qwen2-VL; eps 1e-6 hard-coded as in HF.
final class VisionNorm: Module, @unchecked Sendable {
  let rms: RMSNorm?
  let layer: LayerNorm?
  init(_ dimension: Int, family: QwenVLFamily, dtype: DType, device: Device) {
    rms = family == .qwen25VL ? RMSNorm(dimension, eps: 1e-6, dtype: dtype, device: device) : nil
    layer = family == .qwen2VL ? LayerNorm(dimension, eps: 1e-6, dtype: dtype, device: device) : nil
  }
  override var parameterSlots: [(String, Parameter)] { (rms ?? layer!).parameterSlots }
  func callAsFunction(_ x: Tensor) -> Tensor { rms.map { $0(x) } ?? layer!(x) }
}

final class VisionBlock: Module, @unchecked Sendable {
  let norm1: VisionNorm
  let norm2: VisionNorm
  let attn: VisionAttention
  let mlp: VisionMLP
  init(_ config: VisionConfig, family: QwenVLFamily, dtype: DType, device: Device) {
    norm1 = VisionNorm(config.embedDim, family: family, dtype: dtype, device: device)
    norm2 = VisionNorm(config.embedDim, family: family, dtype: dtype, device: device)
    attn = VisionAttention(config, dtype: dtype, device: device)
    mlp = VisionMLP(config, family: family, dtype: dtype, device: device)
  }
  override var children: [(String, Module)] { [("norm1", norm1), ("norm2", norm2), ("attn", attn), ("mlp", mlp)] }
  func callAsFunction(_ x: Tensor, segments: [Int], rotary: (cos: Tensor, sin: Tensor), aligned: AlignedVisionMLP? = nil) -> Tensor {
    let h = x + attn(norm1(x), segments: segments, rotary: rotary)
    return h + mlp(norm2(h), aligned: aligned)
  }
}

/// A Qwen2.5-VL vision MLP's weights with the intermediate width padded with zeros to a multiple of
/// 8 (3420 -> 3424): cuBLAS runs the three GEMMs with 16-byte-aligned kernels instead of the
/// 2-element-aligned ones it must pick for width 3420 (about 2.5x slower on the H200:
/// docs/benchmarks.md). The padded units compute silu(0) * 0 = 0 and meet zero columns of the
/// down projection, so the result is the same sum; only the GEMMs' accumulation order differs, so
/// the output is not bit-identical to transformers'. The rollout engine uses these for its prefill
/// (sampling needs no bit-exactness; training's forward keeps the exact path).
public struct AlignedVisionMLP {
  let gate: Tensor, gateBias: Tensor?, up: Tensor, upBias: Tensor?, down: Tensor, downBias: Tensor?, activation: String
}

extension VisionTower {
  /// Padded MLP weights for every block (with enabled LoRA adapters merged), or nil where nothing
  /// is misaligned (Qwen2-VL, or an intermediate width already a multiple of 8). Made per use: the
  /// weights change as training goes on.
  public func alignedMLPs() -> [AlignedVisionMLP]? {
    let first = blocks.items.first?.mlp
    guard let gate = first?.gate, gate.weight.value.size(0) % 8 != 0 else { return nil }
    return blocks.items.map { block in
      let m = block.mlp
      let width = m.gate!.weight.value.size(0), pad = (8 - width % 8) % 8
      func rows(_ t: Tensor) -> Tensor {  // [width, ...] -> [width + pad, ...]
        Tensor.cat([t, Tensor.zeros([pad] + Array(t.shape.dropFirst()), dtype: t.dtype, device: t.device)], dim: 0)
      }
      let down = FusedDecoder.effectiveWeight(m.down!)
      return AlignedVisionMLP(
        gate: rows(FusedDecoder.effectiveWeight(m.gate!)), gateBias: m.gate!.bias.map { rows($0.value) },
        up: rows(FusedDecoder.effectiveWeight(m.up!)), upBias: m.up!.bias.map { rows($0.value) },
        down: Tensor.cat([down, Tensor.zeros([down.size(0), pad], dtype: down.dtype, device: down.device)], dim: 1),
        downBias: m.down!.bias?.value, activation: m.activation)
    }
  }
}

/// How the vision tower attends inside its windows and frames on CUDA in half precision.
/// `KernelSwitches.visionAttention` picks it, `sdpaPerWindow` by default (exactness first); the CPU
/// and float32 always run per-window SDPA.
public enum VisionAttentionKernel: String, Sendable {
  /// One SDPA call per window or frame, as transformers' `sdpa` implementation does: its exact op sequence.
  case sdpaPerWindow = "sdpa"
  /// One variable-length flash-attention call per block over all windows (fewer launches). The same
  /// attention, but whether it gives SDPA's bits depends on the kernels' tiling; the GPU bench measures it.
  case varlenFlash = "varlen"

}

/// Bidirectional attention inside each segment (window or frame), vision RoPE applied in float32.
final class VisionAttention: Module, @unchecked Sendable {
  let qkv: Linear
  let proj: Linear
  let heads: Int
  let headDim: Int
  /// `head_dim ** -0.5`, the value transformers passes to SDPA.
  let scale: Double
  var switches = KernelSwitches()
  init(_ config: VisionConfig, dtype: DType, device: Device) {
    qkv = Linear(config.embedDim, 3 * config.embedDim, bias: true, dtype: dtype, device: device)
    proj = Linear(config.embedDim, config.embedDim, bias: true, dtype: dtype, device: device)
    heads = config.numHeads
    headDim = config.headDim
    scale = Foundation.pow(Double(config.headDim), -0.5)
  }
  override var children: [(String, Module)] { [("qkv", qkv), ("proj", proj)] }

  func callAsFunction(_ x: Tensor, segments: [Int], rotary: (cos: Tensor, sin: Tensor)) -> Tensor {
    let length = x.size(0)
    let projected = qkv(x)
    let parts = projected.reshape(length, 3, heads, headDim).permute(1, 0, 2, 3)
    let dtype = x.dtype
    let q: Tensor, k: Tensor, v = parts[2]
    if switches.visionFusedRotary && Self.fusedRotary(projected) {
      // One kernel for both, the same bits as the float32 ops below (no autograd: inference only).
      (q, k) = CUDA.FusedKernels.visionRotary(qkv: projected, cos: rotary.cos, sin: rotary.sin, heads: heads, headDim: headDim)
    } else {
      let cos = rotary.cos.unsqueeze(1), sin = rotary.sin.unsqueeze(1)
      func rotate(_ t: Tensor) -> Tensor {
        let f = t.to(.float32)
        return (f * cos + rotateHalf(f) * sin).to(dtype)
      }
      (q, k) = (rotate(parts[0]), rotate(parts[1]))
    }
    let out: Tensor
    if x.device.isCUDA && dtype != .float32 && switches.visionAttention == .varlenFlash {
      let cu = Tensor([0] + segments.reduce(into: [Int32]()) { $0.append(($0.last ?? 0) + Int32($1)) }).to(x.device)
      out = F.flashAttentionVarlen(q, k, v, cuSeqlensQ: cu, cuSeqlensK: cu, maxSeqlenQ: segments.max() ?? 0,
                                   maxSeqlenK: segments.max() ?? 0, isCausal: false, scale: scale)
    } else {
      out = perSegmentSDPA(q, k, v, segments: segments)
    }
    return proj(out.reshape(length, -1))
  }
}

extension VisionAttention {
  /// Whether the rotary embedding of this projection can run as the fused CUDA kernel
  /// (`CUDA.FusedKernels.visionRotary`): bf16 on CUDA, no gradient needed, kernels loaded.
  static func fusedRotary(_ projected: Tensor) -> Bool {
    guard case .cuda(let index) = projected.device, projected.dtype == .bfloat16,
      !projected.requiresGrad, projected.isContiguous else { return false }
    return CUDA.FusedKernels.unavailableReason(device: index) == nil
  }

  /// Segments of at most this many tokens are one key block of the flash kernel, which then computes
  /// each (batch, head) alone with no split of the keys: a batch of such windows gives the bits of
  /// separate calls. Longer segments (whole frames) keep one call each, because the kernel's key
  /// split heuristic depends on the batch size.
  static let batchableSegment = 64

  /// Attention inside each segment as transformers 5.17's sdpa path computes it (one SDPA call per
  /// segment on `[1, heads, n, d]` views), with runs of equal short windows stacked into one batched
  /// call (same kernel, same per-window result, far fewer launches: a 448x448 image has 16 windows).
  func perSegmentSDPA(_ q: Tensor, _ k: Tensor, _ v: Tensor, segments: [Int]) -> Tensor {
    let (qh, kh, vh) = (q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1))  // [heads, L, d]
    var outs: [Tensor] = []
    var start = 0, index = 0
    while index < segments.count {
      let length = segments[index]
      var run = 1
      while index + run < segments.count && segments[index + run] == length { run += 1 }
      if run > 1 && length <= Self.batchableSegment && (q.device.isCUDA ? switches.visionWindowBatchCUDA : switches.visionWindowBatchCPU) {
        func windows(_ t: Tensor) -> Tensor {
          t.narrow(1, start: start, length: run * length).view(heads, run, length, headDim).transpose(0, 1)
        }
        let batched = F.scaledDotProductAttention(windows(qh), windows(kh), windows(vh), scale: scale)  // [run, heads, n, d]
        outs.append(batched.transpose(0, 1).reshape(heads, run * length, headDim))
        start += run * length
        index += run
      } else {
        func segment(_ t: Tensor) -> Tensor { t.narrow(1, start: start, length: length).unsqueeze(0) }
        outs.append(F.scaledDotProductAttention(segment(qh), segment(kh), segment(vh), scale: scale)[0])
        start += length
        index += 1
      }
    }
    return Tensor.cat(outs, dim: 1).transpose(0, 1)
  }
}

/// concat(-x[half:], x[:half]) along the last dimension.
func rotateHalf(_ x: Tensor) -> Tensor {
  let half = x.size(-1) / 2
  let parts = x.split(sizes: [half, half], dim: -1)
  return Tensor.cat([parts[1].neg(), parts[0]], dim: -1)
}

/// SwiGLU with biases (Qwen2.5-VL) or fc1 -> QuickGELU -> fc2 (Qwen2-VL).
final class VisionMLP: Module, @unchecked Sendable {
  let gate: Linear?, up: Linear?, down: Linear?
  let fc1: Linear?, fc2: Linear?
  let activation: String
  init(_ config: VisionConfig, family: QwenVLFamily, dtype: DType, device: Device) {
    let d = config.embedDim, i = config.intermediateSize
    activation = config.hiddenAct
    if family == .qwen25VL {
      gate = Linear(d, i, bias: true, dtype: dtype, device: device)
      up = Linear(d, i, bias: true, dtype: dtype, device: device)
      down = Linear(i, d, bias: true, dtype: dtype, device: device)
      fc1 = nil; fc2 = nil
    } else {
      fc1 = Linear(d, i, bias: true, dtype: dtype, device: device)
      fc2 = Linear(i, d, bias: true, dtype: dtype, device: device)
      gate = nil; up = nil; down = nil
    }
  }
  override var children: [(String, Module)] {
    if let gate, let up, let down { return [("gate_proj", gate), ("up_proj", up), ("down_proj", down)] }
    return [("fc1", fc1!), ("fc2", fc2!)]
  }
  func callAsFunction(_ x: Tensor, aligned: AlignedVisionMLP? = nil) -> Tensor {
    if let a = aligned {
      return F.linear(applyActivation(a.activation, F.linear(x, a.gate, a.gateBias)) * F.linear(x, a.up, a.upBias), a.down, a.downBias)
    }
    if let gate, let up, let down { return down(applyActivation(activation, gate(x)) * up(x)) }
    return fc2!(applyActivation(activation, fc1!(x)))
  }
}

/// The activations named in Qwen configs (`hidden_act`).
func applyActivation(_ name: String, _ x: Tensor) -> Tensor {
  switch name {
  case "silu", "swish": return x.silu()
  case "quick_gelu": return x.quickGelu()
  case "gelu_pytorch_tanh", "gelu_new": return x.geluTanh()
  case "gelu": return x.gelu()
  default: fatalError("unsupported activation '\(name)' (config hidden_act)")
  }
}

/// ln_q, then 2x2 patches concatenated, Linear -> GELU(erf) -> Linear.
final class PatchMerger: Module, @unchecked Sendable {
  let norm: VisionNorm
  let fc0: Linear
  let fc2: Linear
  let groupWidth: Int
  init(_ config: VisionConfig, family: QwenVLFamily, dtype: DType, device: Device) {
    groupWidth = config.embedDim * config.spatialMergeSize * config.spatialMergeSize
    norm = VisionNorm(config.embedDim, family: family, dtype: dtype, device: device)
    fc0 = Linear(groupWidth, groupWidth, bias: true, dtype: dtype, device: device)
    fc2 = Linear(groupWidth, config.outHiddenSize, bias: true, dtype: dtype, device: device)
  }
  override var children: [(String, Module)] { [("ln_q", norm), ("mlp", MergerMLPKeys(fc0: fc0, fc2: fc2))] }
  func callAsFunction(_ x: Tensor) -> Tensor { fc2(fc0(norm(x).reshape(-1, groupWidth)).gelu()) }
}

/// Key holder for `merger.mlp.0` / `merger.mlp.2` (an `nn.Sequential` in HF).
final class MergerMLPKeys: Module, @unchecked Sendable {
  let fc0: Linear, fc2: Linear
  init(fc0: Linear, fc2: Linear) { self.fc0 = fc0; self.fc2 = fc2 }
  override var children: [(String, Module)] { [("0", fc0), ("2", fc2)] }
}
