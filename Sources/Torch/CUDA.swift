import CTorch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// CUDA-only services from `libvlmrl_cuda.so` (device properties, synchronisation, allocator
/// statistics, streams, CUDA graphs). The library is `dlopen`-ed on first use, from
/// `$VLMRL_CUDA_SHIM` or next to the executable, so CPU-only machines never load CUDA libraries.
public enum CUDA {
  public struct MemoryStats: Sendable {
    public var allocated: Int
    public var reserved: Int
    public var peakAllocated: Int
    public var peakReserved: Int
  }

  struct Shim: @unchecked Sendable {
    // The function types come from vlmrl_cuda.h, which the library's C++ is compiled against.
    let lastError: vtc_last_error_fn
    let synchronize: vtc_synchronize_fn
    let deviceName: vtc_device_name_fn
    let capability: vtc_device_capability_fn
    let memInfo: vtc_mem_info_fn
    let memoryStats: vtc_memory_stats_fn
    let resetPeak: vtc_reset_peak_memory_fn
    let emptyCache: vtc_empty_cache_fn
    let streamNew: vtc_stream_new_fn
    let streamCurrent: vtc_stream_current_fn
    let streamFree: vtc_stream_free_fn
    let streamSetCurrent: vtc_stream_set_current_fn
    let streamSynchronize: vtc_stream_synchronize_fn
    let graphBegin: vtc_graph_capture_begin_fn
    let graphEnd: vtc_graph_capture_end_fn
    let graphReplay: vtc_graph_replay_fn
    let graphFree: vtc_graph_free_fn
    /// The fused decode kernels (`csrc/fused_kernels.cpp`); nil when the library predates them.
    var kernels: FusedKernelSymbols? = nil
    /// The NCCL process-group factory (`vtc_nccl_backend`); nil when the library predates it.
    var ncclBackend: vtc_nccl_backend_fn? = nil

    static func load() -> Result<Shim, TorchError> {
      guard Torch.loadCUDA() else { return .failure(TorchError(Torch.loadCUDAError() ?? "CUDA backend not loadable")) }
      var candidates: [String] = []
      if let path = ProcessInfo.processInfo.environment["VLMRL_CUDA_SHIM"] { candidates.append(path) }
      if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("libvlmrl_cuda.so").path)
      }
      candidates.append("libvlmrl_cuda.so")
      var errors: [String] = []
      for path in candidates {
        guard let library = dlopen(path, RTLD_NOW | RTLD_GLOBAL) else {
          errors.append(String(cString: dlerror()))
          continue
        }
        func symbol<T>(_ name: String, _: T.Type) -> T? {
          guard let pointer = dlsym(library, name) else { return nil }
          return unsafeBitCast(pointer, to: T.self)
        }
        guard let lastError = symbol("vtc_last_error", vtc_last_error_fn.self),
          let synchronize = symbol("vtc_synchronize", vtc_synchronize_fn.self),
          let deviceName = symbol("vtc_device_name", vtc_device_name_fn.self),
          let capability = symbol("vtc_device_capability", vtc_device_capability_fn.self),
          let memInfo = symbol("vtc_mem_info", vtc_mem_info_fn.self),
          let memoryStats = symbol("vtc_memory_stats", vtc_memory_stats_fn.self),
          let resetPeak = symbol("vtc_reset_peak_memory", vtc_reset_peak_memory_fn.self),
          let emptyCache = symbol("vtc_empty_cache", vtc_empty_cache_fn.self),
          let streamNew = symbol("vtc_stream_new", vtc_stream_new_fn.self),
          let streamCurrent = symbol("vtc_stream_current", vtc_stream_current_fn.self),
          let streamFree = symbol("vtc_stream_free", vtc_stream_free_fn.self),
          let streamSetCurrent = symbol("vtc_stream_set_current", vtc_stream_set_current_fn.self),
          let streamSynchronize = symbol("vtc_stream_synchronize", vtc_stream_synchronize_fn.self),
          let graphBegin = symbol("vtc_graph_capture_begin", vtc_graph_capture_begin_fn.self),
          let graphEnd = symbol("vtc_graph_capture_end", vtc_graph_capture_end_fn.self),
          let graphReplay = symbol("vtc_graph_replay", vtc_graph_replay_fn.self),
          let graphFree = symbol("vtc_graph_free", vtc_graph_free_fn.self)
        else {
          errors.append("\(path): missing symbols")
          continue
        }
        var shim = Shim(lastError: lastError, synchronize: synchronize, deviceName: deviceName, capability: capability,
                        memInfo: memInfo, memoryStats: memoryStats, resetPeak: resetPeak, emptyCache: emptyCache,
                        streamNew: streamNew, streamCurrent: streamCurrent, streamFree: streamFree,
                        streamSetCurrent: streamSetCurrent, streamSynchronize: streamSynchronize,
                        graphBegin: graphBegin, graphEnd: graphEnd, graphReplay: graphReplay, graphFree: graphFree)
        shim.kernels = FusedKernelSymbols(library: library)
        shim.ncclBackend = symbol("vtc_nccl_backend", vtc_nccl_backend_fn.self)
        return .success(shim)
      }
      return .failure(TorchError("libvlmrl_cuda.so not found or not loadable: " + errors.joined(separator: "; ")))
    }

    func check(_ status: Int32, _ op: String) {
      if status != 0 { fatalError("CUDA \(op) failed: \(lastError().map { String(cString: $0) } ?? "unknown error")") }
    }
  }

  static let loaded: Result<Shim, TorchError> = Shim.load()

  /// The shim, trapping with the reason when CUDA is not usable (a caller asked for a GPU it checked).
  static var shim: Shim {
    switch loaded {
    case .success(let shim): return shim
    case .failure(let error): fatalError(error.message)
    }
  }

  /// nil when the CUDA shim is usable, else why not.
  public static var unavailableReason: String? {
    if case .failure(let error) = loaded { return error.message }
    return nil
  }

  public static func synchronize(_ device: Int = 0) { shim.check(shim.synchronize(Int32(device)), "synchronize") }

  public static func deviceName(_ device: Int = 0) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    shim.check(shim.deviceName(Int32(device), &buffer, 256), "device name")
    return String(cString: buffer)
  }

  public static func capability(_ device: Int = 0) -> (major: Int, minor: Int) {
    var major: Int32 = 0, minor: Int32 = 0
    shim.check(shim.capability(Int32(device), &major, &minor), "device capability")
    return (Int(major), Int(minor))
  }

  /// Free and total device memory in bytes (cudaMemGetInfo).
  public static func memoryInfo(_ device: Int = 0) -> (free: Int, total: Int) {
    var free = 0, total = 0
    shim.check(shim.memInfo(Int32(device), &free, &total), "mem info")
    return (free, total)
  }

  public static func memoryStats(_ device: Int = 0) -> MemoryStats {
    var values = [Int64](repeating: 0, count: 4)
    shim.check(shim.memoryStats(Int32(device), &values), "memory stats")
    return MemoryStats(allocated: Int(values[0]), reserved: Int(values[1]), peakAllocated: Int(values[2]),
                       peakReserved: Int(values[3]))
  }

  public static func resetPeakMemory(_ device: Int = 0) { shim.check(shim.resetPeak(Int32(device)), "reset peak") }
  public static func emptyCache() { shim.check(shim.emptyCache(), "empty cache") }

  /// A CUDA stream from libtorch's pool.
  public final class Stream: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    init(handle: UnsafeMutableRawPointer) { self.handle = handle }
    public convenience init(device: Int = 0, highPriority: Bool = false) {
      guard let handle = CUDA.shim.streamNew(Int32(device), highPriority ? 1 : 0) else { CUDA.shim.check(-1, "stream") ; fatalError() }
      self.init(handle: handle)
    }
    public static func current(device: Int = 0) -> Stream {
      guard let handle = CUDA.shim.streamCurrent(Int32(device)) else { CUDA.shim.check(-1, "current stream"); fatalError() }
      return Stream(handle: handle)
    }
    deinit { CUDA.shim.streamFree(handle) }
    public func makeCurrent() { CUDA.shim.check(CUDA.shim.streamSetCurrent(handle), "set stream") }
    public func synchronize() { CUDA.shim.check(CUDA.shim.streamSynchronize(handle), "stream synchronize") }
  }

  /// A captured CUDA graph: run `body` once under capture, then `replay()` re-launches its kernels
  /// on the same memory (inputs are updated in place with `copy_` before each replay).
  public final class Graph: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    public init(device: Int = 0, capturing body: () -> Void) {
      guard let handle = CUDA.shim.graphBegin(Int32(device)) else { CUDA.shim.check(-1, "graph capture begin"); fatalError() }
      self.handle = handle
      body()
      CUDA.shim.check(CUDA.shim.graphEnd(handle), "graph capture end")
    }
    deinit { CUDA.shim.graphFree(handle) }
    public func replay() { CUDA.shim.check(CUDA.shim.graphReplay(handle), "graph replay") }
  }
}
