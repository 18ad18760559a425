import Foundation

/// `model.safetensors.index.json`: which shard holds each tensor.
public struct SafeTensorsIndex: Sendable, Equatable {
  /// The conventional file name.
  public static let fileName = "model.safetensors.index.json"

  /// Tensor name -> shard file name (relative to the index's folder).
  public var weightMap: [String: String]
  /// `metadata.total_size`: the sum of tensor byte counts, when present.
  public var totalSize: UInt64?

  public init(weightMap: [String: String], totalSize: UInt64?) {
    self.weightMap = weightMap
    self.totalSize = totalSize
  }

  /// Shard file names, sorted, each once.
  public var shardFiles: [String] { Array(Set(weightMap.values)).sorted() }

  /// Reads and validates an index file. Shard names must be plain file names in the same folder.
  public init(url: URL) throws(SafeTensorsError) {
    let path = url.path
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw .io(path: path, operation: "read", errno: Int32((error as NSError).code))
    }
    let bytes = [UInt8](data)
    let valid = bytes.withUnsafeBytes { isValidUTF8($0) }
    guard valid else { throw .invalidIndex(path: path, reason: "not UTF-8") }
    let json: HeaderJSON
    do { json = try HeaderJSON.parse(bytes) } catch {
      throw .invalidIndex(path: path, reason: "\(error.message) at byte \(error.offset)")
    }
    guard case .object(let members) = json else { throw .invalidIndex(path: path, reason: "expected a JSON object") }
    guard let mapValue = members.first(where: { $0.key == "weight_map" })?.value,
      case .object(let entries) = mapValue
    else { throw .invalidIndex(path: path, reason: "missing 'weight_map' object") }
    var weightMap: [String: String] = [:]
    for entry in entries {
      guard case .string(let file) = entry.value else {
        throw .invalidIndex(path: path, reason: "weight_map['\(entry.key)'] must be a string")
      }
      guard !file.isEmpty, !file.contains("/"), file != ".", file != ".." else {
        throw .invalidIndex(path: path, reason: "weight_map['\(entry.key)'] = '\(file)' is not a file name in the same folder")
      }
      weightMap[entry.key] = file
    }
    var totalSize: UInt64?
    if let metadataValue = members.first(where: { $0.key == "metadata" })?.value,
      case .object(let metadata) = metadataValue,
      let sizeValue = metadata.first(where: { $0.key == "total_size" })?.value
    {
      guard case .number(_, let size) = sizeValue, let size else {
        throw .invalidIndex(path: path, reason: "metadata.total_size must be a non-negative integer")
      }
      totalSize = size
    }
    self.init(weightMap: weightMap, totalSize: totalSize)
  }

  /// The index as transformers writes it: `json.dumps(index, indent=2, sort_keys=True)` plus a newline.
  public var jsonText: String {
    var lines = ["{", "  \"metadata\": {"]
    if let totalSize { lines.append("    \"total_size\": \(totalSize)") }
    lines.append("  },")
    lines.append("  \"weight_map\": {")
    let names = weightMap.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
    for (position, name) in names.enumerated() {
      var line = "    " + Self.pythonJSONString(name) + ": " + Self.pythonJSONString(weightMap[name] ?? "")
      if position < names.count - 1 { line += "," }
      lines.append(line)
    }
    lines.append("  }")
    lines.append("}")
    return lines.joined(separator: "\n") + "\n"
  }

  /// A JSON string escaped as Python's `json.dumps` does by default (`ensure_ascii=True`).
  static func pythonJSONString(_ value: String) -> String {
    var out = "\""
    for unit in value.utf16 {
      switch unit {
      case 0x22: out += "\\\""
      case 0x5C: out += "\\\\"
      case 0x0A: out += "\\n"
      case 0x0D: out += "\\r"
      case 0x09: out += "\\t"
      case 0x08: out += "\\b"
      case 0x0C: out += "\\f"
      case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(UInt8(unit)))
      default:
        let hex = String(unit, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      }
    }
    return out + "\""
  }
}

/// A checkpoint folder's weights: a single `model.safetensors`, or shards listed by an index.
///
/// Shards are opened (mapped) the first time one of their tensors is asked for, and kept open
/// for the life of this object. Safe to use from several threads.
public final class ShardedSafeTensors: @unchecked Sendable {
  /// The folder holding the files.
  public let directory: URL
  /// The index, or nil for a single-file checkpoint.
  public let index: SafeTensorsIndex?
  private let single: SafeTensorsFile?
  private let lock = NSLock()
  private var openShards: [String: SafeTensorsFile] = [:]

  /// Opens the weights in `directory`: `model.safetensors` when present, otherwise the shards
  /// listed by `model.safetensors.index.json` (the order in which transformers looks).
  public init(directory: URL) throws(SafeTensorsError) {
    self.directory = directory
    let indexURL = directory.appendingPathComponent(SafeTensorsIndex.fileName)
    let singleURL = directory.appendingPathComponent("model.safetensors")
    // transformers looks for model.safetensors before the index; so does this.
    if FileManager.default.fileExists(atPath: singleURL.path) {
      index = nil
      single = try SafeTensorsFile(url: singleURL)
    } else if FileManager.default.fileExists(atPath: indexURL.path) {
      index = try SafeTensorsIndex(url: indexURL)
      single = nil
    } else {
      throw .io(path: "\(indexURL.path) or \(singleURL.path)", operation: "open (neither exists)", errno: ENOENT)
    }
  }

  /// All tensor names, sorted.
  public var names: [String] {
    if let single { return single.names.sorted() }
    return (index?.weightMap.keys).map { Array($0).sorted() } ?? []
  }

  /// Whether some shard holds `name` (by the index; the shard is not opened).
  public func contains(_ name: String) -> Bool {
    if let single { return single.contains(name) }
    return index?.weightMap[name] != nil
  }

  /// The opened file that holds `name`.
  public func file(containing name: String) throws(SafeTensorsError) -> SafeTensorsFile {
    if let single {
      guard single.contains(name) else { throw .tensorNotFound(path: single.url.path, tensor: name) }
      return single
    }
    let indexPath = directory.appendingPathComponent(SafeTensorsIndex.fileName).path
    guard let shardName = index?.weightMap[name] else { throw .tensorNotFound(path: indexPath, tensor: name) }
    let shard = try shard(named: shardName)
    guard shard.contains(name) else { throw .tensorNotFound(path: shard.url.path, tensor: name) }
    return shard
  }

  /// Opens (once) the shard file `shardName`.
  public func shard(named shardName: String) throws(SafeTensorsError) -> SafeTensorsFile {
    lock.lock()
    defer { lock.unlock() }
    if let open = openShards[shardName] { return open }
    let file = try SafeTensorsFile(url: directory.appendingPathComponent(shardName))
    openShards[shardName] = file
    return file
  }

  /// Dtype, shape and byte range of `name` within its shard.
  public func info(_ name: String) throws(SafeTensorsError) -> TensorInfo {
    try file(containing: name).info(name)
  }

  /// The bytes of `name`, valid while this object (or the shard file) lives.
  public func bytes(_ name: String) throws(SafeTensorsError) -> UnsafeRawBufferPointer {
    try file(containing: name).bytes(name)
  }
}
