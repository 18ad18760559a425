import Foundation

/// Stage-by-stage progress of the rollout engine on standard error when `VLMRL_TRACE=1` (for
/// locating a failure on a remote GPU machine), and environment switches of its fast paths:
/// `VLMRL_PACKED_PREFILL=0` prefills prompt by prompt, `VLMRL_FUSED_SAMPLER=0` keeps the libtorch
/// sampler on the fused decode path, `VLMRL_DECODE_ATTENTION=flash` keeps flash attention instead of
/// the decode-attention kernel (`CUDA.FusedKernels.decodeAttention`), `VLMRL_VISION_ALIGNED=0` keeps
/// the vision MLPs' own weights in the packed prefill (`AlignedVisionMLP`).
public enum EngineEnvironment {
  static let environment = ProcessInfo.processInfo.environment
  static let trace = environment["VLMRL_TRACE"] == "1"
  static let packedPrefill: Bool? = environment["VLMRL_PACKED_PREFILL"].map { $0 != "0" }
  static let fusedSampler = environment["VLMRL_FUSED_SAMPLER"] != "0"
  static let decodeAttentionKernel = environment["VLMRL_DECODE_ATTENTION"] != "flash"
  static let alignedVision = environment["VLMRL_VISION_ALIGNED"] != "0"
  public static let slotBuckets = environment["VLMRL_SLOT_BUCKETS"] != "0"

  static func log(_ message: @autoclosure () -> String) {
    guard trace else { return }
    FileHandle.standardError.write(Data("[engine] \(message())\n".utf8))
  }

}
