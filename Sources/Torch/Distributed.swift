import CTorch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Launch environment

/// Where this process stands in a multi-process run, as torchrun (or Slurm) describes it.
public struct DistributedEnvironment: Equatable, Sendable {
  public var rank: Int
  public var worldSize: Int
  public var localRank: Int
  public var masterAddress: String
  public var masterPort: Int

  public init(rank: Int, worldSize: Int, localRank: Int, masterAddress: String, masterPort: Int) {
    (self.rank, self.worldSize, self.localRank) = (rank, worldSize, localRank)
    (self.masterAddress, self.masterPort) = (masterAddress, masterPort)
  }

  /// Reads torchrun's `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`; where
  /// `RANK`/`WORLD_SIZE`/`LOCAL_RANK` are absent, Slurm's `SLURM_PROCID`/`SLURM_NTASKS`/
  /// `SLURM_LOCALID` stand in (the master's address and port still come from `MASTER_ADDR` /
  /// `MASTER_PORT`). Nil for a single process: no world size, or a world size of 1. Errors name the
  /// variable at fault.
  public static func parse(_ environment: [String: String]) throws -> DistributedEnvironment? {
    func value(_ name: String, _ fallback: String) -> (name: String, text: String)? {
      if let text = environment[name], !text.isEmpty { return (name, text) }
      if let text = environment[fallback], !text.isEmpty { return (fallback, text) }
      return nil
    }
    func integer(_ entry: (name: String, text: String), minimum: Int) throws -> Int {
      guard let number = Int(entry.text.trimmingCharacters(in: .whitespaces)), number >= minimum else {
        throw TorchError("\(entry.name) is '\(entry.text)', not an integer >= \(minimum)")
      }
      return number
    }
    guard let worldEntry = value("WORLD_SIZE", "SLURM_NTASKS") else { return nil }
    let worldSize = try integer(worldEntry, minimum: 1)
    if worldSize == 1 { return nil }
    guard let rankEntry = value("RANK", "SLURM_PROCID") else {
      throw TorchError("\(worldEntry.name) is \(worldSize) but RANK (or SLURM_PROCID) is not set")
    }
    let rank = try integer(rankEntry, minimum: 0)
    guard rank < worldSize else {
      throw TorchError("\(rankEntry.name) is \(rank), not below \(worldEntry.name) \(worldSize)")
    }
    let localRank = try value("LOCAL_RANK", "SLURM_LOCALID").map { try integer($0, minimum: 0) } ?? rank
    guard let address = environment["MASTER_ADDR"], !address.isEmpty else {
      throw TorchError("MASTER_ADDR is not set: rank \(rank) of \(worldSize) needs the address of rank 0 "
        + "(torchrun sets it; under Slurm export it in the job script)")
    }
    guard let portText = environment["MASTER_PORT"] else {
      throw TorchError("MASTER_PORT is not set: rank \(rank) of \(worldSize) needs the port of rank 0's store")
    }
    guard let port = Int(portText), (1...65535).contains(port) else {
      throw TorchError("MASTER_PORT is '\(portText)', not a port number (1-65535)")
    }
    return DistributedEnvironment(rank: rank, worldSize: worldSize, localRank: localRank,
                                  masterAddress: address, masterPort: port)
  }
}

// MARK: - Process group

/// A group of processes that run collectives together through libtorch's c10d: a TCPStore
/// rendezvous served by rank 0 and the Gloo backend (CPU tensors). Every rank must call the same
/// collectives in the same order. A collective whose peer is gone fails with a `TorchError` after
/// the group's timeout instead of waiting forever.
public final class ProcessGroup: @unchecked Sendable {
  let handle: OpaquePointer
  public let rank: Int
  public let worldSize: Int
  public let localRank: Int

  /// The timeout used when the environment gives none: torch.distributed's default for Gloo.
  public static let defaultTimeout: Double = 1800

  /// The collectives' engine: Gloo (CPU tensors; CUDA tensors staged through the host) or NCCL
  /// (CUDA tensors, GPU to GPU; one GPU per rank, `cuda:localRank`).
  public enum Backend: String, Sendable, CaseIterable {
    case gloo, nccl
  }

  /// The backend of this group.
  public let backend: Backend

  /// Joins (rank 0: serves) the rendezvous at `masterAddress:port` and connects the group.
  /// Blocks until all `worldSize` ranks have joined; after `timeout` seconds it throws an error
  /// naming this rank and the address. NCCL needs the CUDA shim (a GPU machine) and binds the
  /// group to `cuda:localRank`.
  public init(rank: Int, worldSize: Int, localRank: Int? = nil, masterAddress: String, port: Int,
              timeout: Double = ProcessGroup.defaultTimeout, backend: Backend = .gloo) throws {
    guard worldSize >= 1, (0..<worldSize).contains(rank) else {
      throw TorchError("rank \(rank) is not in 0..<\(worldSize)")
    }
    let milliseconds = Int64((timeout * 1000).rounded())
    let made: OpaquePointer?
    switch backend {
    case .gloo:
      made = vt_pg_gloo_create(Int32(rank), Int32(worldSize), masterAddress, Int32(port), milliseconds)
    case .nccl:
      let factory: vtc_nccl_backend_fn
      switch CUDA.loaded {
      case .failure(let error): throw TorchError("the NCCL backend needs CUDA: \(error.message)")
      case .success(let shim):
        guard let nccl = shim.ncclBackend else {
          throw TorchError("the NCCL backend needs a libvlmrl_cuda.so built with it (vtc_nccl_backend); rebuild with make dist")
        }
        factory = nccl
      }
      made = vt_pg_create_with(Int32(rank), Int32(worldSize), masterAddress, Int32(port), milliseconds,
                               unsafeBitCast(factory, to: vt_backend_factory.self), Int32(localRank ?? rank), "NCCL")
    }
    guard let handle = made else { throw TorchError(lastTorchError()) }
    (self.handle, self.rank, self.worldSize, self.localRank) = (handle, rank, worldSize, localRank ?? rank)
    self.backend = backend
  }

  deinit { vt_pg_free(handle) }

  /// The group torchrun or Slurm describes (`DistributedEnvironment.parse`), or nil for a single
  /// process. `VLMRL_DIST_TIMEOUT` (seconds) overrides the rendezvous and collective timeout.
  public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment,
                                     backend: Backend = .gloo) throws -> ProcessGroup?
  {
    guard let launch = try DistributedEnvironment.parse(environment) else { return nil }
    var timeout = defaultTimeout
    if let text = environment["VLMRL_DIST_TIMEOUT"] {
      guard let seconds = Double(text), seconds > 0 else {
        throw TorchError("VLMRL_DIST_TIMEOUT is '\(text)', not a positive number of seconds")
      }
      timeout = seconds
    }
    return try ProcessGroup(rank: launch.rank, worldSize: launch.worldSize, localRank: launch.localRank,
                            masterAddress: launch.masterAddress, port: launch.masterPort, timeout: timeout,
                            backend: backend)
  }

  public var isMain: Bool { rank == 0 }

  /// A TCP port on 127.0.0.1 that nothing listens on now (bound to port 0, read back, released):
  /// for groups whose ranks all run on this machine.
  public static func freeLoopbackPort() -> Int {
    let socketHandle = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(socketHandle) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(socketHandle, $0, length) == 0 && getsockname(socketHandle, $0, &length) == 0
      }
    }
    return bound ? Int(UInt16(bigEndian: address.sin_port)) : 29500
  }

  private func run(_ body: ([OpaquePointer?]) -> Int32, _ tensors: [Tensor]) throws {
    let handles: [OpaquePointer?] = tensors.map { $0.handle }
    let status = withExtendedLifetime(tensors) { body(handles) }
    if status != 0 { throw TorchError(lastTorchError()) }
  }

  /// NCCL takes CUDA tensors only: CPU tensors (metrics, flags, counts) travel through a copy on
  /// this rank's GPU, and `body` runs on the tensors it may use; the results are copied back.
  private func staged(_ tensors: [Tensor], _ body: ([Tensor]) throws -> Void) throws {
    guard backend == .nccl, tensors.contains(where: { !$0.device.isCUDA }) else { return try body(tensors) }
    let device = Device.cuda(localRank)
    let moved = tensors.map { $0.device.isCUDA ? $0 : $0.to(device: device) }
    try body(moved)
    for (original, copy) in zip(tensors, moved) where !original.device.isCUDA { original.copy_(copy) }
  }

  /// Sums each tensor over all ranks, in place (one flat buffer per dtype and device).
  public func allReduceSum(_ tensors: [Tensor]) throws {
    if tensors.isEmpty { return }
    try staged(tensors) { ready in try run({ vt_pg_allreduce_sum(handle, $0, Int32($0.count)) }, ready) }
  }

  /// Replaces each tensor with its mean over all ranks, in place.
  public func allReduceMean(_ tensors: [Tensor]) throws {
    try allReduceSum(tensors)
    for tensor in tensors { tensor.div_(Double(worldSize)) }
  }

  /// Overwrites each tensor with rank `root`'s values.
  public func broadcast(_ tensors: [Tensor], from root: Int = 0) throws {
    if tensors.isEmpty { return }
    try staged(tensors) { ready in try run({ vt_pg_broadcast(handle, $0, Int32($0.count), Int32(root)) }, ready) }
  }

  /// Every rank's values, indexed by rank. Ranks may pass different counts.
  public func allGather(_ values: [Double]) throws -> [[Double]] {
    let counts = try gatherEqualSized([Double(values.count)]).map { Int($0[0]) }
    let width = counts.max() ?? 0
    if width == 0 { return counts.map { _ in [] } }
    let padded = values + [Double](repeating: 0, count: width - values.count)
    let rows = try gatherEqualSized(padded)
    return zip(rows, counts).map { Array($0.prefix($1)) }
  }

  private func gatherEqualSized(_ values: [Double]) throws -> [[Double]] {
    let input = backend == .nccl
      ? Tensor(values, shape: [values.count]).to(device: .cuda(localRank)) : Tensor(values, shape: [values.count])
    guard let output = vt_pg_allgather(handle, input.handle) else { throw TorchError(lastTorchError()) }
    let flat = withExtendedLifetime(input) { Tensor(handle: output).to(device: .cpu).doubles() }
    return (0..<worldSize).map { Array(flat[($0 * values.count)..<(($0 + 1) * values.count)]) }
  }

  /// Sums `input` (worldSize x n contiguous elements) over the ranks into `output` (n elements), which
  /// receives block `rank` of the sum: c10d's reduce_scatter_tensor.
  public func reduceScatterSum(_ input: Tensor, into output: Tensor) throws {
    try staged([input, output]) { ready in
      let status = withExtendedLifetime(ready) { vt_pg_reduce_scatter_sum(handle, ready[0].handle, ready[1].handle) }
      if status != 0 { throw TorchError(lastTorchError()) }
    }
  }

  /// Fills `output` (worldSize x n contiguous elements) with every rank's `input` (n elements) in rank
  /// order: c10d's all_gather_into_tensor.
  public func allGather(_ input: Tensor, into output: Tensor) throws {
    try staged([input, output]) { ready in
      let status = withExtendedLifetime(ready) { vt_pg_allgather_into(handle, ready[0].handle, ready[1].handle) }
      if status != 0 { throw TorchError(lastTorchError()) }
    }
  }

  /// Returns when every rank has reached it.
  public func barrier() throws {
    if vt_pg_barrier(handle) != 0 { throw TorchError(lastTorchError()) }
  }
}
