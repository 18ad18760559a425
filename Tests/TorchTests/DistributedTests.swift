import Foundation
import Testing
import Torch

/// Runs `body(rank)` on one thread per rank and returns each rank's result (or its error).
func onRanks<T: Sendable>(_ worldSize: Int, _ body: @escaping @Sendable (Int) throws -> T) -> [Result<T, Error>] {
  let box = RankResults<T>(worldSize)
  let lock = NSLock()
  let group = DispatchGroup()
  for rank in 0..<worldSize {
    group.enter()
    let thread = Thread {
      let result = Result { try body(rank) }
      lock.lock(); box.results[rank] = result; lock.unlock()
      group.leave()
    }
    thread.stackSize = 8 << 20
    thread.start()
  }
  group.wait()
  return box.results.map { $0! }
}

final class RankResults<T>: @unchecked Sendable {
  var results: [Result<T, Error>?]
  init(_ count: Int) { results = Array(repeating: nil, count: count) }
}

@Suite(.serialized) struct DistributedTests {
  @Test func environmentOfTorchrunAndSlurm() throws {
    #expect(try DistributedEnvironment.parse([:]) == nil)
    #expect(try DistributedEnvironment.parse(["WORLD_SIZE": "1", "RANK": "0"]) == nil)
    let torchrun = try DistributedEnvironment.parse(["WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1",
                                                     "MASTER_ADDR": "node0", "MASTER_PORT": "29500"])
    #expect(torchrun == DistributedEnvironment(rank: 3, worldSize: 4, localRank: 1, masterAddress: "node0", masterPort: 29500))
    let slurm = try DistributedEnvironment.parse(["SLURM_NTASKS": "8", "SLURM_PROCID": "5", "SLURM_LOCALID": "1",
                                                  "MASTER_ADDR": "n1", "MASTER_PORT": "1234"])
    #expect(slurm == DistributedEnvironment(rank: 5, worldSize: 8, localRank: 1, masterAddress: "n1", masterPort: 1234))
    let both = try DistributedEnvironment.parse(["WORLD_SIZE": "2", "RANK": "1", "SLURM_NTASKS": "8", "SLURM_PROCID": "5",
                                                 "MASTER_ADDR": "a", "MASTER_PORT": "1"])
    #expect(both?.rank == 1 && both?.worldSize == 2 && both?.localRank == 1, "torchrun's variables win over Slurm's")
  }

  @Test func environmentErrorsNameTheVariable() {
    func message(_ environment: [String: String]) -> String {
      do { _ = try DistributedEnvironment.parse(environment); return "" } catch { return "\(error)" }
    }
    #expect(message(["WORLD_SIZE": "two"]).contains("WORLD_SIZE is 'two'"))
    #expect(message(["WORLD_SIZE": "2"]).contains("RANK"))
    #expect(message(["WORLD_SIZE": "2", "RANK": "2"]).contains("RANK is 2, not below WORLD_SIZE 2"))
    #expect(message(["WORLD_SIZE": "2", "RANK": "1"]).contains("MASTER_ADDR is not set"))
    #expect(message(["WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "h"]).contains("MASTER_PORT is not set"))
    #expect(message(["WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "http"]).contains("MASTER_PORT is 'http'"))
    #expect(message(["WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "1", "VLMRL_DIST_TIMEOUT": "-1"]) == "",
            "the timeout is read by fromEnvironment, not parse")
  }

  /// Two ranks in one process, each its own Gloo group over loopback: sums, means, broadcast,
  /// gathers of unequal lengths, barrier.
  @Test func collectivesOnTwoRanks() throws {
    let port = ProcessGroup.freeLoopbackPort()
    let results = onRanks(2) { rank -> [[Double]] in
      let group = try ProcessGroup(rank: rank, worldSize: 2, masterAddress: "127.0.0.1", port: port, timeout: 60)
      let r = Float(rank)
      let a = Tensor([1 + r, 2 + r, 3 + r], shape: [3])
      let b = Tensor([10 * Double(r), -Double(r)], shape: [2])
      let c = Tensor([r, 0, 1, r], shape: [2, 2]).transpose(0, 1)
      try group.allReduceSum([a, b, c])
      let mean = Tensor([2 * r, 4 * r], shape: [2])
      try group.allReduceMean([mean])
      let weights = Tensor([r + 5, r + 6], shape: [2])
      try group.broadcast([weights])
      let gathered = try group.allGather(rank == 0 ? [0.5] : [1.5, 2.5])
      let empty = try group.allGather([])
      try group.barrier()
      return [a.doubles(), b.doubles(), c.contiguous().doubles(), mean.doubles(), weights.doubles(),
              gathered.joined().map { $0 }, [Double(empty.count), Double(empty.joined().count)]]
    }
    for (rank, result) in results.enumerated() {
      let values = try result.get()
      #expect(values[0] == [3, 5, 7], "rank \(rank)")
      #expect(values[1] == [10, -1])
      #expect(values[2] == [1, 2, 0, 1], "a non-contiguous tensor is reduced and written back in its own layout")
      #expect(values[3] == [1, 2])
      #expect(values[4] == [5, 6], "rank 0's values")
      #expect(values[5] == [0.5, 1.5, 2.5])
      #expect(values[6] == [2, 0])
    }
  }

  /// The flat collectives ZeRO uses: reduce-scatter (sum) hands rank r the sum of block r, and
  /// all-gather into one tensor lays the ranks' blocks out in rank order.
  @Test func reduceScatterAndGatherIntoOneTensor() throws {
    let port = ProcessGroup.freeLoopbackPort()
    let results = onRanks(2) { rank -> [[Double]] in
      let group = try ProcessGroup(rank: rank, worldSize: 2, masterAddress: "127.0.0.1", port: port, timeout: 60)
      let r = Double(rank)
      let input = Tensor([1 + r, 2, 3 * r, 4 + 10 * r, 5, 6 * r], shape: [6])
      let block = Tensor.zeros([3], dtype: .float64)
      try group.reduceScatterSum(input, into: block)
      let gathered = Tensor.zeros([6], dtype: .float64)
      try group.allGather(Tensor([r, r + 0.5, -r], shape: [3]), into: gathered)
      return [block.doubles(), gathered.doubles()]
    }
    let sums = [[3.0, 4, 3], [18, 10, 6]]
    for (rank, result) in results.enumerated() {
      let values = try result.get()
      #expect(values[0] == sums[rank], "rank \(rank)")
      #expect(values[1] == [0, 0.5, 0, 1, 1.5, -1], "rank \(rank)")
    }
  }

  /// A rank whose peer never comes fails within the timeout, naming itself and the address.
  /// NCCL needs the CUDA shim: where CUDA cannot load (CI), making an NCCL group is one clear error
  /// naming the cause; on a GPU machine a one-rank NCCL group all-reduces a CUDA tensor and a host
  /// tensor (staged through the GPU).
  @Test func ncclGroupNeedsCUDAOrWorks() throws {
    let port = ProcessGroup.freeLoopbackPort()
    if let reason = CUDA.unavailableReason {
      var message = ""
      do {
        _ = try ProcessGroup(rank: 0, worldSize: 1, masterAddress: "127.0.0.1", port: port, timeout: 20, backend: .nccl)
      } catch { message = "\(error)" }
      #expect(message.hasPrefix("the NCCL backend needs CUDA: ") && message.contains(reason), "\(message)")
    } else {
      let group = try ProcessGroup(rank: 0, worldSize: 1, masterAddress: "127.0.0.1", port: port, timeout: 60, backend: .nccl)
      let device = Tensor.full([4], 3, device: .cuda(0)), host = Tensor.full([2], 5)
      try group.allReduceSum([device, host])
      #expect(device.to(device: .cpu).floats() == [3, 3, 3, 3] && host.floats() == [5, 5])
      #expect(try group.allGather([1.5]) == [[1.5]])
    }
  }

  @Test func aMissingPeerIsAnErrorWithinTheTimeout() {
    let port = ProcessGroup.freeLoopbackPort()
    let start = Date()
    let results = onRanks(1) { _ in
      try ProcessGroup(rank: 1, worldSize: 2, masterAddress: "127.0.0.1", port: port, timeout: 2)
    }
    let elapsed = Date().timeIntervalSince(start)
    guard case .failure(let error) = results[0] else { Issue.record("joined a group without its master"); return }
    #expect("\(error)".contains("rank 1 of 2"), "\(error)")
    #expect("\(error)".contains("127.0.0.1:\(port)"), "\(error)")
    #expect(elapsed < 30, "gave up after \(elapsed) s")
  }
}
