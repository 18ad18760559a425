import Foundation
import NN
import SafeTensors
import Torch

/// ZeRO stages 1 and 2 (docs/distributed.md, "Sharding") on one flat vector per (device, dtype) of
/// the trainable parameters: the parameters are laid end to end in the optimizer's order and padded
/// with zeros to a multiple of the world size N; rank r owns the contiguous block `r*S ..< (r+1)*S`
/// (S = padded / N) of each vector. AdamW (`inner`, with the run's `optim` precision) sees one
/// parameter per vector: this rank's block of the weights, so its moments, float32 masters and Kahan
/// compensation exist for 1/N of the elements only. AdamW is element-wise, so a block's update is the
/// update the whole parameters would get.
///
/// A step: each rank's gradients are copied into the flat vector; stage 1 all-reduces it (every rank
/// then holds the whole averaged gradient until the step ends), stage 2 reduce-scatters it (each rank
/// receives only its block's averaged gradient; the whole vector is released before the update).
/// Clipping uses the global norm (the squared norms of the blocks summed over the ranks), the blocks
/// are updated, and the updated blocks are all-gathered into every rank's whole weights, which the
/// rollout engine reads.
public final class ShardedOptimizer: @unchecked Sendable {
  /// One (device, dtype) vector: its members (indices into `parameters`) and where each starts.
  struct Bucket {
    var members: [Int]
    var offsets: [Int]
    /// Elements without the padding.
    var total: Int
    /// Elements of one rank's block.
    var shardSize: Int
    /// This rank's block of the weights, the parameter `inner` updates.
    var shard: Parameter
  }

  /// 1 or 2.
  public let stage: Int
  public let group: ProcessGroup
  /// The trainable parameters whose state is sharded, in the optimizer's order.
  public let parameters: [Parameter]
  let buckets: [Bucket]
  /// AdamW over the blocks (one parameter per bucket).
  public let inner: AdamW

  /// Shards the state `optimizer` would keep (its trainable parameters, hyperparameters, precision
  /// and rounding seed) over `group`'s ranks; `optimizer` itself never allocates state then.
  public init(wrapping optimizer: AdamW, stage: Int, group: ProcessGroup) {
    precondition(stage == 1 || stage == 2, "ShardedOptimizer: stage \(stage)")
    self.stage = stage
    self.group = group
    let trainable = optimizer.parameters.filter(\.trainable)
    parameters = trainable
    var order: [String] = [], members: [String: [Int]] = [:]
    for (index, parameter) in trainable.enumerated() {
      let key = "\(parameter.value.device)/\(parameter.value.dtype)"
      if members[key] == nil { order.append(key) }
      members[key, default: []].append(index)
    }
    let worldSize = group.worldSize
    buckets = order.map { key in
      let indices = members[key]!
      var offsets: [Int] = [], total = 0
      for index in indices {
        offsets.append(total)
        total += trainable[index].value.count
      }
      let shardSize = (total + worldSize - 1) / worldSize
      let like = trainable[indices[0]].value
      return Bucket(members: indices, offsets: offsets, total: total, shardSize: shardSize,
                    shard: Parameter(Tensor.zeros([shardSize], dtype: like.dtype, device: like.device)))
    }
    inner = AdamW(buckets.map(\.shard), optimizer.hyper, precision: optimizer.precision)
    inner.roundingSeed = optimizer.roundingSeed
    inner.chunkElements = optimizer.chunkElements
    refreshShards()
  }

  /// The overlap of this rank's block of `bucket` with each member: (member position, offset in the
  /// member's flat elements, offset in the block, length).
  func pieces(_ bucket: Bucket) -> [(member: Int, inParameter: Int, inShard: Int, length: Int)] {
    let start = group.rank * bucket.shardSize, end = start + bucket.shardSize
    return bucket.members.indices.compactMap { position in
      let offset = bucket.offsets[position], count = parameters[bucket.members[position]].value.count
      let from = max(offset, start), to = min(offset + count, end)
      guard from < to else { return nil }
      return (position, from - offset, from - start, to - from)
    }
  }

  /// Copies this rank's block of the current weights into the blocks AdamW updates (the weights
  /// change outside the optimizer too: a resume, rank 0's broadcast at the start).
  func refreshShards() {
    withNoGrad {
      for bucket in buckets {
        for piece in pieces(bucket) {
          let flat = parameters[bucket.members[piece.member]].value.detach().reshape([-1])
          bucket.shard.value.narrow(0, start: piece.inShard, length: piece.length)
            .copy_(flat.narrow(0, start: piece.inParameter, length: piece.length))
        }
      }
    }
  }

  /// Allocates the blocks' AdamW state now (see `AdamW.allocateState`).
  public func allocateState() {
    refreshShards()
    inner.allocateState()
  }

  /// Each bucket's averaged gradient block (zeros for a parameter without a gradient on this rank);
  /// the parameters' own gradients are released.
  func averagedGradientBlocks() throws -> [Tensor] {
    let worldSize = group.worldSize
    return try buckets.map { bucket in
      let like = bucket.shard.value
      var parts = bucket.members.map { index -> Tensor in
        let parameter = parameters[index]
        return parameter.grad?.detach().reshape([-1]) ?? Tensor.zeros([parameter.value.count], dtype: like.dtype, device: like.device)
      }
      let padding = bucket.shardSize * worldSize - bucket.total
      if padding > 0 { parts.append(Tensor.zeros([padding], dtype: like.dtype, device: like.device)) }
      let flat = withNoGrad { Tensor.cat(parts) }
      for index in bucket.members { parameters[index].grad = nil }
      let block: Tensor
      if stage == 2 {
        block = Tensor.zeros([bucket.shardSize], dtype: like.dtype, device: like.device)
        try group.reduceScatterSum(flat, into: block)
      } else {
        try group.allReduceSum([flat])
        block = flat.narrow(0, start: group.rank * bucket.shardSize, length: bucket.shardSize)
      }
      block.div_(Double(worldSize))
      return block
    }
  }

  /// The L2 norm of the whole averaged gradient: the blocks' squared norms summed over the ranks.
  func globalNorm(_ blocks: [Tensor]) throws -> Double {
    let local = blocks.isEmpty ? 0 : pow(Tensor.globalNorm(blocks).to(.float64, device: .cpu).item(), 2)
    let total = Tensor([local], shape: [1])
    try group.allReduceSum([total])
    return total.doubles()[0].squareRoot()
  }

  /// One step on every rank: gradients averaged into the blocks, clipped to `maxGradNorm` by the
  /// global norm, AdamW on the blocks, the blocks gathered into every rank's weights. Skipped (the
  /// weights unchanged) on every rank when any rank's loss was not finite or the norm is not; returns
  /// the norm (NaN when a loss was not finite) and whether the step was applied.
  public func step(_ index: Int, learningRate: Double, maxGradNorm: Double, lossFinite: Bool) throws
    -> (gradNorm: Double, applied: Bool) {
    let flag = Tensor([lossFinite ? Float(0) : 1], shape: [1])
    try group.allReduceSum([flag])
    guard flag.floats()[0] == 0 else {
      for parameter in parameters { parameter.grad = nil }
      return (.nan, false)
    }
    let blocks = try averagedGradientBlocks()
    let norm = try globalNorm(blocks)
    guard norm.isFinite else { return (norm, false) }
    if maxGradNorm > 0, norm > 0 {
      let scale = min(1.0, maxGradNorm / (norm + 1e-6))
      if scale < 1 { Tensor.foreachMul_(blocks, by: Tensor.full([], scale, dtype: .float64, device: blocks[0].device)) }
    }
    refreshShards()
    for (bucket, block) in zip(buckets, blocks) { bucket.shard.grad = block }
    inner.step(learningRate: learningRate, index: index)
    inner.zeroGrad()
    try gatherWeights()
    return (norm, true)
  }

  /// Every rank's updated blocks laid into every rank's whole weights.
  func gatherWeights() throws {
    for bucket in buckets {
      let like = bucket.shard.value
      let whole = Tensor.empty([bucket.shardSize * group.worldSize], dtype: like.dtype, device: like.device)
      try group.allGather(like.detach(), into: whole)
      withNoGrad {
        for (position, index) in bucket.members.enumerated() {
          let value = parameters[index].value
          value.copy_(whole.narrow(0, start: bucket.offsets[position], length: value.count).view(value.shape))
        }
      }
    }
  }

  /// Bytes of AdamW state this rank holds (its blocks') and of the blocks themselves.
  public var stateBytesPerRank: Int {
    AdamW.stateBytes(buckets.map(\.shard), precision: inner.precision)
      + buckets.reduce(0) { $0 + $1.shardSize * $1.shard.value.dtype.byteSize }
  }
}

// MARK: - Checkpoints

/// A ZeRO checkpoint's optimizer state: `optimizer-shards.json` (the world size and each bucket's
/// members, by name and shape, in order) and one `optimizer-rank<r>-of-<N>.safetensors` per rank
/// holding its blocks (`bucket<b>.exp_avg`, `.exp_avg_sq`, `.step`, and `.master` / `.compensation`
/// as the precision keeps them), float32. Merged, the blocks give back every parameter's state, so
/// a resume on any world size (one process included) re-slices it exactly.
extension ShardedOptimizer {
  public static let shardLayoutFile = "optimizer-shards.json"

  public static func shardFileName(rank: Int, worldSize: Int) -> String { "optimizer-rank\(rank)-of-\(worldSize).safetensors" }

  struct Layout: Codable {
    struct Member: Codable {
      var name: String
      var shape: [Int]
    }
    struct Bucket: Codable {
      var shardSize: Int
      var members: [Member]
    }
    var worldSize: Int
    var buckets: [Bucket]
  }

  /// Writes this rank's blocks into the checkpoint being staged in `folder` (rank 0 also the layout);
  /// `names` gives each parameter's checkpoint name.
  public func saveShard(to folder: URL, names: [ObjectIdentifier: String]) throws {
    if group.isMain {
      let layout = Layout(worldSize: group.worldSize, buckets: buckets.map { bucket in
        Layout.Bucket(shardSize: bucket.shardSize, members: bucket.members.map { index in
          let parameter = parameters[index]
          return Layout.Member(name: names[ObjectIdentifier(parameter)] ?? "parameter\(index)", shape: parameter.value.shape)
        })
      })
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      try encoder.encode(layout).write(to: folder.appendingPathComponent(Self.shardLayoutFile), options: .atomic)
    }
    var tensors: [TensorToWrite] = []
    for (index, state) in inner.states.enumerated() {
      guard let state else { continue }
      let fields = [("exp_avg", state.expAvg), ("exp_avg_sq", state.expAvgSq), ("step", state.step)]
        + (state.master.map { [("master", $0)] } ?? []) + (state.compensation.map { [("compensation", $0)] } ?? [])
      for (suffix, tensor) in fields {
        let cpu = tensor.detach().to(.float32, device: .cpu).contiguous()
        tensors.append(TensorToWrite(name: "bucket\(index).\(suffix)", dtype: .float32, shape: cpu.shape, byteCount: cpu.byteCount) {
          sink in try sink(UnsafeRawBufferPointer(start: cpu.dataPointer, count: cpu.byteCount))
        })
      }
    }
    try SafeTensorsWriter.write(tensors, to: folder.appendingPathComponent(Self.shardFileName(rank: group.rank, worldSize: group.worldSize)))
  }

  /// Every parameter's saved state, by "<name>.<field>" (float32, CPU), from the shards in `directory`.
  static func mergedState(_ directory: URL) throws -> [String: Tensor] {
    let layoutURL = directory.appendingPathComponent(shardLayoutFile)
    let layout: Layout
    do {
      layout = try JSONDecoder().decode(Layout.self, from: Data(contentsOf: layoutURL))
    } catch {
      throw TrainingError.io(path: layoutURL.path, reason: "not a readable ZeRO shard layout (worldSize, buckets): \(error)")
    }
    let files = try (0..<layout.worldSize).map { rank -> SafeTensorsFile in
      let url = directory.appendingPathComponent(shardFileName(rank: rank, worldSize: layout.worldSize))
      do { return try SafeTensorsFile(url: url) } catch {
        throw TrainingError.io(path: url.path, reason: "the optimizer shard of rank \(rank) of \(layout.worldSize) is missing or unreadable: \(error)")
      }
    }
    var merged: [String: Tensor] = [:]
    for (index, bucket) in layout.buckets.enumerated() {
      for field in ["exp_avg", "exp_avg_sq", "step", "master", "compensation"] {
        let key = "bucket\(index).\(field)"
        guard files[0].contains(key) else { continue }
        let blocks = try files.enumerated().map { rank, file -> Tensor in
          guard file.contains(key) else {
            throw TrainingError.io(path: directory.path, reason: "\(shardFileName(rank: rank, worldSize: layout.worldSize)) has no \(key)")
          }
          let info = try file.info(key)
          return Tensor(bytes: try file.bytes(key), shape: info.shape, dtype: .float32)
        }
        if field == "step" {
          for member in bucket.members { merged["\(member.name).step"] = blocks[0] }
          continue
        }
        let whole = Tensor.cat(blocks)
        var offset = 0
        for member in bucket.members {
          let count = member.shape.reduce(1, *)
          guard offset + count <= whole.count else {
            throw TrainingError.io(path: directory.path, reason: "\(key) holds \(whole.count) elements, fewer than its parameters")
          }
          merged["\(member.name).\(field)"] = whole.narrow(0, start: offset, length: count).reshape(member.shape)
          offset += count
        }
      }
    }
    return merged
  }

  /// Restores this rank's blocks of the saved state: each member's saved state (or, for one with
  /// none while others have, the state before any step) laid end to end and sliced as this run shards.
  func restore(names: [ObjectIdentifier: String], saved: Checkpoint.SavedOptimizerState) throws {
    var states: [AdamW.State?] = []
    for bucket in buckets {
      let restored = try bucket.members.map { index -> AdamW.State? in
        let parameter = parameters[index]
        guard let name = names[ObjectIdentifier(parameter)] else { return nil }
        return try Checkpoint.restoredState(name: name, value: parameter.value.detach().to(device: .cpu), precision: inner.precision,
                                            saved: saved)
      }
      guard let anyState = restored.compactMap({ $0 }).first else { states.append(nil); continue }
      let members = try zip(bucket.members, restored).map { index, state -> AdamW.State in
        if let state { return state }
        let parameter = parameters[index]
        return try Checkpoint.restoredState(name: "", value: parameter.value.detach().to(device: .cpu), precision: inner.precision,
                                            saved: { _ in nil }, orFresh: true)!
      }
      let device = bucket.shard.value.device
      func block(_ field: (AdamW.State) -> Tensor?) -> Tensor? {
        let parts = members.compactMap { field($0)?.reshape([-1]) }
        guard parts.count == members.count else { return nil }
        let padding = bucket.shardSize * group.worldSize - bucket.total
        let whole = Tensor.cat(parts + (padding > 0 ? [Tensor.zeros([padding], dtype: parts[0].dtype)] : []))
        return whole.narrow(0, start: group.rank * bucket.shardSize, length: bucket.shardSize).to(device: device, copy: true)
      }
      states.append(AdamW.makeState(expAvg: block({ $0.expAvg })!, expAvgSq: block({ $0.expAvgSq })!,
                                    step: anyState.step.to(.float32, device: device, copy: true),
                                    master: block({ $0.master }), compensation: block({ $0.compensation })))
    }
    inner.restore(states: states)
  }
}

extension TrainingConfig {
  /// The ZeRO stage a run on `worldSize` ranks uses (`training.zero_stage`, which `deepspeed` files
  /// fill): on one process every stage keeps everything (0); on several, 1 and 2 shard, and 3
  /// (parameters sharded too) is refused rather than run as another stage.
  public func zeroStage(worldSize: Int) throws -> Int {
    let stage = training.zeroStage ?? 0
    guard worldSize > 1 else { return 0 }
    if stage >= 3 {
      throw TrainingError.invalidArgument("training.zero_stage \(stage) (parameters sharded across the \(worldSize) ranks) is not "
        + "supported: use zero_stage 2 (optimizer state and gradients sharded) or 1 (optimizer state sharded); "
        + "docs/distributed.md, \"Sharding\"")
    }
    return stage
  }
}
