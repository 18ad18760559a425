import Foundation
import Synchronization

/// Stage timings for locating time on a GPU machine: with `VLMRL_TRACE=1`, `mark` waits for the
/// device and writes the milliseconds since the previous mark to standard error. Off (the
/// default), it costs one flag check. The waits change the overlap of host and device work, so the
/// marks show where device time goes, not the untraced wall time.
public enum StageTrace {
  public static let enabled = ProcessInfo.processInfo.environment["VLMRL_TRACE"] == "1"
  private static let lastMark = Mutex<UInt64>(0)

  public static func mark(_ label: @autoclosure () -> String, device: Device) {
    guard enabled else { return }
    if case .cuda(let index) = device { CUDA.synchronize(index) }
    let now = DispatchTime.now().uptimeNanoseconds
    let elapsed = lastMark.withLock { last in
      defer { last = now }
      return last == 0 ? 0 : Double(now - last) / 1e6
    }
    FileHandle.standardError.write(Data(String(format: "[stage] %@: %.1f ms\n", label(), elapsed).utf8))
  }
}
