import Foundation

/// What `SafeTensorsWriter.writeCheckpoint` produced.
public struct CheckpointWriteResult: Sendable, Equatable {
  /// The weight files written, in shard order (`model.safetensors` alone when one shard sufficed).
  public var files: [String]
  /// The index written, or nil for a single file.
  public var index: SafeTensorsIndex?
}

extension SafeTensorsWriter {
  /// Hugging Face's default `max_shard_size` ("5GB", decimal).
  public static let defaultMaxShardSize = 5_000_000_000

  /// Splits tensors into shards as huggingface_hub's `split_state_dict_into_shards` does:
  /// in the given order, a tensor larger than the limit gets a shard of its own; otherwise a new
  /// shard starts when adding the tensor would exceed the limit.
  public static func planShards(_ tensors: [TensorToWrite], maxShardSize: Int) -> [[TensorToWrite]] {
    var shards: [[TensorToWrite]] = []
    var current: [TensorToWrite] = []
    var currentSize = 0
    for tensor in tensors {
      if tensor.byteCount > maxShardSize {
        shards.append([tensor])
        continue
      }
      if currentSize + tensor.byteCount > maxShardSize, !current.isEmpty {
        shards.append(current)
        current = []
        currentSize = 0
      }
      current.append(tensor)
      currentSize += tensor.byteCount
    }
    if !current.isEmpty { shards.append(current) }
    return shards
  }

  /// The shard file name for shard `number` (1-based) of `count`: `model-00001-of-00003.safetensors`.
  public static func shardFileName(_ number: Int, of count: Int, prefix: String = "model") -> String {
    func padded(_ value: Int) -> String {
      let text = String(value)
      return String(repeating: "0", count: max(0, 5 - text.count)) + text
    }
    return "\(prefix)-\(padded(number))-of-\(padded(count)).safetensors"
  }

  /// Writes a checkpoint's weights into `directory` in Hugging Face layout: `model.safetensors`
  /// when everything fits in one shard, else `model-0000k-of-0000n.safetensors` plus
  /// `model.safetensors.index.json` (`metadata.total_size` = sum of tensor bytes). Every file is
  /// written to a temporary name and renamed; weight files of an earlier save that are not part of
  /// this one are removed afterwards, so loaders never mix two saves.
  @discardableResult
  public static func writeCheckpoint(
    _ tensors: [TensorToWrite], to directory: URL, maxShardSize: Int = defaultMaxShardSize,
    metadata: [String: String]? = defaultMetadata
  ) throws(SafeTensorsError) -> CheckpointWriteResult {
    guard maxShardSize > 0 else {
      throw .invalidWrite(path: directory.path, tensor: "", reason: "maxShardSize must be positive")
    }
    // Validate names and sizes across all shards before writing anything.
    _ = try validateAndOrder(tensors, path: directory.path)
    do {
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    } catch {
      throw .io(path: directory.path, operation: "create directory", errno: Int32((error as NSError).code))
    }
    let shards = planShards(tensors, maxShardSize: maxShardSize)
    var result = CheckpointWriteResult(files: [], index: nil)
    if shards.count <= 1 {
      try write(shards.first ?? [], metadata: metadata, to: directory.appendingPathComponent("model.safetensors"))
      result.files = ["model.safetensors"]
    } else {
      var weightMap: [String: String] = [:]
      var totalSize: UInt64 = 0
      for (position, shard) in shards.enumerated() {
        let fileName = shardFileName(position + 1, of: shards.count)
        try write(shard, metadata: metadata, to: directory.appendingPathComponent(fileName))
        for tensor in shard {
          weightMap[tensor.name] = fileName
          totalSize += UInt64(tensor.byteCount)
        }
        result.files.append(fileName)
      }
      let index = SafeTensorsIndex(weightMap: weightMap, totalSize: totalSize)
      let indexPath = directory.appendingPathComponent(SafeTensorsIndex.fileName).path
      try writeAtomically(to: indexPath) { output throws(SafeTensorsError) in
        try output.append(contentsOf: Array(index.jsonText.utf8))
      }
      result.index = index
    }
    removeStaleWeightFiles(in: directory, keeping: Set(result.files + (result.index == nil ? [] : [SafeTensorsIndex.fileName])))
    return result
  }

  /// Removes `model.safetensors`, the index and `model-NNNNN-of-NNNNN.safetensors` files not in `keep`.
  static func removeStaleWeightFiles(in directory: URL, keeping keep: Set<String>) {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return }
    for entry in entries where !keep.contains(entry) && isWeightFileName(entry) {
      try? FileManager.default.removeItem(at: directory.appendingPathComponent(entry))
    }
  }

  static func isWeightFileName(_ name: String) -> Bool {
    if name == "model.safetensors" || name == SafeTensorsIndex.fileName { return true }
    let parts = Array(name.utf8)
    // model-DDDDD-of-DDDDD.safetensors
    let pattern = Array("model-#####-of-#####.safetensors".utf8)
    guard parts.count == pattern.count else { return false }
    for (byte, expected) in zip(parts, pattern) {
      if expected == UInt8(ascii: "#") {
        guard byte >= 0x30, byte <= 0x39 else { return false }
      } else if byte != expected {
        return false
      }
    }
    return true
  }
}
