import CTorch
import Foundation

// MARK: - DType and Device

/// Element types the shim supports (codes match `VT_DTYPE_*` in ctorch.h).
public enum DType: Int32, Sendable, CaseIterable, CustomStringConvertible {
  case float32 = 0, float64 = 1, float16 = 2, bfloat16 = 3
  case int64 = 4, int32 = 5, int16 = 6, int8 = 7, uint8 = 8, bool = 9

  public var isFloatingPoint: Bool { rawValue <= 3 }
  public var byteSize: Int {
    switch self {
    case .float64, .int64: return 8
    case .float32, .int32: return 4
    case .float16, .bfloat16, .int16: return 2
    case .int8, .uint8, .bool: return 1
    }
  }
  public var description: String {
    switch self {
    case .float32: return "float32"
    case .float64: return "float64"
    case .float16: return "float16"
    case .bfloat16: return "bfloat16"
    case .int64: return "int64"
    case .int32: return "int32"
    case .int16: return "int16"
    case .int8: return "int8"
    case .uint8: return "uint8"
    case .bool: return "bool"
    }
  }
  /// Parses "float32", "bf16", "bfloat16", "fp16", ...
  public init?(name: String) {
    switch name.lowercased() {
    case "float32", "fp32", "float": self = .float32
    case "float64", "fp64", "double": self = .float64
    case "float16", "fp16", "half": self = .float16
    case "bfloat16", "bf16": self = .bfloat16
    case "int64", "long": self = .int64
    case "int32", "int": self = .int32
    case "uint8": self = .uint8
    case "bool": self = .bool
    default: return nil
    }
  }
}

/// Where a tensor lives.
public enum Device: Sendable, Hashable, CustomStringConvertible {
  case cpu
  case cuda(Int)

  public static let cuda = Device.cuda(0)

  /// Shim codes; naming a CUDA device loads the CUDA backend first (once), so every factory and
  /// conversion works without an explicit `Torch.loadCUDA()`.
  var code: (Int32, Int32) {
    switch self {
    case .cpu: return (0, 0)
    case .cuda(let index):
      Torch.loadCUDA()
      return (1, Int32(index))
    }
  }
  public var isCUDA: Bool { if case .cuda = self { return true } else { return false } }
  public var description: String {
    switch self {
    case .cpu: return "cpu"
    case .cuda(let index): return "cuda:\(index)"
    }
  }
  /// Parses "cpu", "cuda", "cuda:1".
  public init?(name: String) {
    let lower = name.lowercased()
    if lower == "cpu" { self = .cpu; return }
    if lower == "cuda" || lower == "gpu" { self = .cuda(0); return }
    if lower.hasPrefix("cuda:"), let index = Int(lower.dropFirst(5)), index >= 0 { self = .cuda(index); return }
    return nil
  }
}

// MARK: - Errors

/// The message libtorch left for the last failed call on this thread.
func lastTorchError() -> String {
  guard let message = vt_last_error() else { return "unknown libtorch error" }
  let text = String(cString: message)
  vt_clear_error()
  return text
}

/// A failed tensor op is a bug in the caller: stop with libtorch's own message. (On Linux the Swift
/// runtime prints a backtrace that shows the call site.) Running out of memory is not a bug but a
/// workload too large for the machine, which a user causes: that ends the process with one clear
/// line and exit status 1 instead (`OutOfMemory`).
@usableFromInline
func torchFailure(_ op: String) -> Never {
  let message = lastTorchError()
  if OutOfMemory.matches(message) { OutOfMemory.stop(op: op, message: message) }
  fatalError("libtorch \(op) failed: \(message)")
}

/// Out-of-memory failures of libtorch (CUDA's caching allocator, the CPU allocator), told apart from
/// bugs by their messages.
public enum OutOfMemory {
  static let markers = ["CUDA out of memory", "OutOfMemoryError", "out of memory", "can't allocate memory",
                        "DefaultCPUAllocator: not enough memory"]

  public static func matches(_ message: String) -> Bool {
    markers.contains { message.localizedCaseInsensitiveContains($0) }
  }

  /// The line printed: what ran out, libtorch's own first line (with the sizes), and what to lower.
  public static func line(op: String, message: String) -> String {
    let first = message.split(separator: "\n").first.map(String.init) ?? message
    let device = message.localizedCaseInsensitiveContains("CUDA") ? "GPU" : "host"
    return "Error: out of \(device) memory in \(op): \(first.prefix(400)). The workload does not fit: lower "
      + "per_device_train_batch_size, num_generations or max_completion_length / max_prompt_length (or "
      + "max_pixels), or turn on gradient_checkpointing or use_peft; a training run continues from its last "
      + "complete checkpoint with --resume." + (plan.map { " " + $0 } ?? "")
  }

  private static let planLock = NSLock()
  nonisolated(unsafe) private static var planText: String?
  /// The running job's memory plan (what it holds, and what would lower it), printed after the line.
  public static var plan: String? { planLock.withLock { planText } }
  public static func setPlan(_ text: String?) { planLock.withLock { planText = text } }

  /// Prints `line` on standard error and exits with status 1 (checkpoints are written whole or not
  /// at all, so nothing on disk is half-written by stopping here).
  public static func stop(op: String, message: String) -> Never {
    fflush(nil)
    FileHandle.standardError.write(Data((line(op: op, message: message) + "\n").utf8))
    exit(1)
  }
}

/// Errors thrown (not trapped) by operations whose failure depends on input data.
public struct TorchError: Error, CustomStringConvertible, Sendable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

@inline(__always)
func check(_ status: Int32, _ op: String) {
  if status != 0 { torchFailure(op) }
}

// MARK: - Tensor

/// An n-dimensional array owned by libtorch. Values are immutable by convention except through the
/// explicit in-place methods (suffix `_`), as in PyTorch.
public final class Tensor: @unchecked Sendable {
  let handle: OpaquePointer

  init(handle: OpaquePointer) { self.handle = handle }

  /// Wraps a handle returned by the shim, trapping with libtorch's message on failure.
  @inline(__always)
  static func make(_ handle: OpaquePointer?, _ op: @autoclosure () -> String) -> Tensor {
    guard let handle else { torchFailure(op()) }
    return Tensor(handle: handle)
  }

  deinit { vt_free(handle) }

  public var rank: Int { Int(vt_dim(handle)) }
  public var shape: [Int] {
    let n = rank
    var out = [Int64](repeating: 0, count: n)
    if n > 0 { vt_shape(handle, &out) }
    return out.map(Int.init)
  }
  public var strides: [Int] {
    let n = rank
    var out = [Int64](repeating: 0, count: n)
    if n > 0 { vt_strides(handle, &out) }
    return out.map(Int.init)
  }
  public func size(_ dim: Int) -> Int {
    let s = shape
    return s[dim < 0 ? dim + s.count : dim]
  }
  public var dtype: DType {
    let code = vt_dtype(handle)
    guard let dtype = DType(rawValue: code) else { torchFailure("dtype") }
    return dtype
  }
  public var device: Device {
    var type: Int32 = 0
    var index: Int32 = 0
    vt_device(handle, &type, &index)
    return type == 1 ? .cuda(Int(index)) : .cpu
  }
  public var count: Int { Int(vt_numel(handle)) }
  public var isContiguous: Bool { vt_is_contiguous(handle) != 0 }
  public var elementSize: Int { Int(vt_element_size(handle)) }
  public var byteCount: Int { count * elementSize }
  /// Raw pointer to the first element (valid while `self` lives; CPU tensors only for host access).
  public var dataPointer: UnsafeMutableRawPointer? { vt_data_ptr(handle) }
}

extension Tensor: CustomStringConvertible {
  public var description: String {
    guard let text = vt_to_string(handle) else { return "Tensor(\(shape), \(dtype))" }
    defer { vt_free_string(text) }
    return String(cString: text)
  }
}

// MARK: - Library

/// Process-wide libtorch facts and settings.
public enum Torch {
  public static var version: String { String(cString: vt_version()) }

  /// Loads the CUDA backend once; true when libtorch_cuda could be loaded.
  @discardableResult
  public static func loadCUDA() -> Bool {
    let ok = vt_load_cuda() == 1
    if !ok { vt_clear_error() }
    return ok
  }

  /// The reason `loadCUDA` failed, if it did.
  public static func loadCUDAError() -> String? {
    if vt_load_cuda() == 1 { return nil }
    return lastTorchError()
  }

  public static var cudaAvailable: Bool {
    guard loadCUDA() else { return false }
    return vt_cuda_is_available() == 1
  }

  public static var cudaDeviceCount: Int { cudaAvailable ? Int(vt_cuda_device_count()) : 0 }

  /// Seeds every default generator (CPU and CUDA).
  public static func manualSeed(_ seed: UInt64) {
    vt_manual_seed(seed)
    if vt_last_error() != nil { torchFailure("manual_seed") }
  }

  public static var threads: Int {
    get { Int(vt_get_num_threads()) }
    set { vt_set_num_threads(Int32(newValue)) }
  }
}
