import Foundation

/// The switches of the model's and the rollout engine's fast paths, as one value: read once by the
/// CLI (from `VLMRL_*` environment variables, for GPU experiments) and passed down to the model
/// (`QwenVLModel.switches`) and the engine. Library code never reads the environment itself; the
/// defaults are the tested fast paths.
public struct KernelSwitches: Sendable, Equatable {
  /// Vision attention inside windows on CUDA in half precision (`VLMRL_VISION_ATTENTION=sdpa|varlen`).
  public var visionAttention: VisionAttentionKernel = .sdpaPerWindow
  /// The fused float32 vision rotary kernel on CUDA (`VLMRL_VISION_FUSED_ROTARY=0` keeps the ops).
  public var visionFusedRotary = true
  /// Runs of equal short vision windows stacked into one SDPA call on CUDA (`VLMRL_VISION_WINDOW_BATCH=0`).
  public var visionWindowBatchCUDA = true
  /// The same on the CPU (off by default; tests of the reshaping turn it on).
  public var visionWindowBatchCPU = false
  /// Prompts admitted together prefilled in one packed pass; nil = where it runs on varlen flash
  /// attention (`VLMRL_PACKED_PREFILL=0|1`).
  public var packedPrefill: Bool? = nil
  /// The fused sampler kernel on the fused decode path (`VLMRL_FUSED_SAMPLER=0` keeps libtorch's).
  public var fusedSampler = true
  /// The decode-attention kernel over the slot cache (`VLMRL_DECODE_ATTENTION=flash` keeps flash).
  public var decodeAttentionKernel = true
  /// How the fused decode path records attention diagnostics (`VLMRL_ATTENTION_MASS=fused|separate|ops`).
  public var attentionMass: AttentionMassPath = .fused
  /// Padded vision MLP weights in the packed prefill (`VLMRL_VISION_ALIGNED=0` keeps the own weights).
  public var alignedVision = true
  /// Compaction of running sequences into smaller decode buckets (`VLMRL_SLOT_BUCKETS=0`).
  public var slotBuckets = true
  /// Stage-by-stage engine progress on standard error (`VLMRL_TRACE=1`).
  public var trace = false

  public init() {}

  /// The switches the environment sets (unset variables keep the defaults).
  public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> KernelSwitches {
    var switches = KernelSwitches()
    if let kernel = environment["VLMRL_VISION_ATTENTION"].flatMap(VisionAttentionKernel.init(rawValue:)) {
      switches.visionAttention = kernel
    }
    switches.visionFusedRotary = environment["VLMRL_VISION_FUSED_ROTARY"] != "0"
    switches.visionWindowBatchCUDA = environment["VLMRL_VISION_WINDOW_BATCH"] != "0"
    switches.packedPrefill = environment["VLMRL_PACKED_PREFILL"].map { $0 != "0" }
    switches.fusedSampler = environment["VLMRL_FUSED_SAMPLER"] != "0"
    switches.decodeAttentionKernel = environment["VLMRL_DECODE_ATTENTION"] != "flash"
    if let path = environment["VLMRL_ATTENTION_MASS"].flatMap(AttentionMassPath.init(rawValue:)) {
      switches.attentionMass = path
    }
    switches.alignedVision = environment["VLMRL_VISION_ALIGNED"] != "0"
    switches.slotBuckets = environment["VLMRL_SLOT_BUCKETS"] != "0"
    switches.trace = environment["VLMRL_TRACE"] == "1"
    return switches
  }
}

/// Where the fused decode step computes the attention diagnostics of its recorded layers (the
/// heads-averaged attention mass of each slot's new token on prompt text and on image keys).
public enum AttentionMassPath: String, Sendable, CaseIterable {
  /// Inside the decode-attention kernel of the recorded layer, from the probabilities it already
  /// forms (`vlmrl_decode_attention8_mass`): no extra launch, no separate rotary kernel.
  case fused
  /// A kernel of its own per recorded layer after the rotary kernel (`vlmrl_attention_mass`), which
  /// forms the scores and the softmax again; kept to compare with.
  case separate
  /// The libtorch ops (one batched product per key/value head, a float32 softmax, the masked sums):
  /// the reference both kernels are checked against.
  case ops
}
