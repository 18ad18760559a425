import ArgumentParser
import Foundation
import Torch

extension Bench {
  /// `vlmrl bench collectives`: the c10d collectives the data-parallel trainer uses, on the group
  /// torchrun describes (or a one-rank group on a loopback port), each checked for the right values
  /// and timed: all-reduce over sizes like a model's gradients (with nccl-tests' bus bandwidth),
  /// broadcast, all-gather of host values (the metrics' path) and barrier.
  struct Collectives: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Check and time the c10d collectives (NCCL or Gloo) under torchrun or as one rank.")
    @Option(help: "nccl or gloo.") var backend = "nccl"
    @Option(help: "cpu or cuda (each rank uses cuda:LOCAL_RANK).") var device = "cuda"
    @Option(parsing: .upToNextOption, help: "All-reduce sizes in MiB.") var sizes: [Double] = [1, 64, 512]
    @Option(help: "Timed repetitions per size.") var repeats = 5

    func run() throws {
      guard let kind = ProcessGroup.Backend(rawValue: backend) else { throw ValidationError("--backend: nccl or gloo") }
      let environment = ProcessInfo.processInfo.environment
      let group = try ProcessGroup.fromEnvironment(environment, backend: kind)
        ?? ProcessGroup(rank: 0, worldSize: 1, masterAddress: "127.0.0.1", port: ProcessGroup.freeLoopbackPort(), backend: kind)
      let target: Device = device.lowercased().hasPrefix("cuda") ? .cuda(group.localRank) : .cpu
      if target.isCUDA, let reason = CUDA.unavailableReason { throw ValidationError("--device cuda: \(reason)") }
      let ranks = Double(group.worldSize)
      func say(_ line: String) { if group.isMain { print(line) } }
      func synchronize() { if case .cuda(let index) = target { CUDA.synchronize(index) } }
      say("collectives: \(kind.rawValue), \(group.worldSize) rank(s), tensors on \(target)"
        + (target.isCUDA ? " (\(CUDA.deviceName(group.localRank)))" : ""))
      var failures = 0
      for mib in sizes {
        let count = Int(mib * 1_048_576 / 4)
        let tensor = Tensor.full([count], Double(group.rank + 1), dtype: .float32, device: target)
        try group.allReduceSum([tensor])
        synchronize()
        let expected = ranks * (ranks + 1) / 2
        let (low, high) = (tensor.min().item(), tensor.max().item())
        let correct = low == expected && high == expected
        if !correct { failures += 1 }
        try group.barrier()
        let started = Date()
        for _ in 0..<repeats { try group.allReduceSum([tensor]) }
        synchronize()
        let seconds = Date().timeIntervalSince(started) / Double(max(1, repeats))
        let algorithm = Double(count * 4) / seconds / 1e9
        let bus = algorithm * 2 * (ranks - 1) / ranks
        say(String(format: "all-reduce %7.1f MiB: %@, %8.3f ms, algbw %7.2f GB/s, busbw %7.2f GB/s", mib,
                   correct ? "ok" : "WRONG (\(low)...\(high), want \(expected))", seconds * 1000, algorithm, bus))
      }
      let broadcast = Tensor.full([1024], Double(group.rank), dtype: .float32, device: target)
      try group.broadcast([broadcast], from: 0)
      let broadcastOK = broadcast.abs().max().item() == 0
      let gathered = try group.allGather([Double(group.rank), 0.5])
      let gatherOK = gathered.enumerated().allSatisfy { $0.element == [Double($0.offset), 0.5] }
      let hostValues = Tensor([Double(group.rank + 1)], shape: [1])
      try group.allReduceSum([hostValues])  // a CPU tensor: staged through the GPU with NCCL
      let hostOK = hostValues.item() == ranks * (ranks + 1) / 2
      let started = Date()
      try group.barrier()
      failures += [broadcastOK, gatherOK, hostOK].filter { !$0 }.count
      say("broadcast: \(broadcastOK ? "ok" : "WRONG"); all-gather of host values: \(gatherOK ? "ok" : "WRONG \(gathered)"); "
        + "all-reduce of a host tensor: \(hostOK ? "ok" : "WRONG \(hostValues.item())"); barrier "
        + String(format: "%.3f ms", Date().timeIntervalSince(started) * 1000))
      if failures > 0 { throw ValidationError("\(failures) collective(s) gave wrong values") }
    }
  }
}
