import Foundation
import Synchronization
import Torch

/// Stage-by-stage progress of the rollout engine on standard error when `VLMRL_TRACE=1` (for
/// locating a failure on a remote GPU machine), and environment switches of its fast paths:
/// `VLMRL_PACKED_PREFILL=0` prefills prompt by prompt, `VLMRL_FUSED_SAMPLER=0` keeps the libtorch
/// sampler on the fused decode path, `VLMRL_DECODE_ATTENTION=flash` keeps flash attention instead of
/// the decode-attention kernel (`CUDA.FusedKernels.decodeAttention`).
enum EngineEnvironment {
  static let environment = ProcessInfo.processInfo.environment
  static let trace = environment["VLMRL_TRACE"] == "1"
  static let packedPrefill: Bool? = environment["VLMRL_PACKED_PREFILL"].map { $0 != "0" }
  static let fusedSampler = environment["VLMRL_FUSED_SAMPLER"] != "0"
  static let decodeAttentionKernel = environment["VLMRL_DECODE_ATTENTION"] != "flash"

  static func log(_ message: @autoclosure () -> String) {
    guard trace else { return }
    FileHandle.standardError.write(Data("[engine] \(message())\n".utf8))
  }

  /// With tracing on: waits for the GPU and logs the milliseconds since the previous mark (a
  /// stage-by-stage time profile of admission; the waits themselves cost a little).
  static func mark(_ label: @autoclosure () -> String, device: Device) {
    guard trace else { return }
    if device.isCUDA { CUDA.synchronize() }
    let now = DispatchTime.now().uptimeNanoseconds
    let elapsed = lastMark.withLock { last in
      defer { last = now }
      return last == 0 ? 0 : Double(now - last) / 1e6
    }
    log(String(format: "%@: %.1f ms", label(), elapsed))
  }
  private static let lastMark = Mutex<UInt64>(0)
}
