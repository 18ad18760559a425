import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// A tensor to be written: its description and a producer of its bytes.
///
/// `produceBytes` is called once, when the writer reaches the tensor, with a `sink` that it calls
/// with the tensor's little-endian bytes, in one or several pieces. This lets a caller stream a
/// large tensor from its own storage without building a second copy; the writer checks that the
/// pieces add up to `byteCount`.
public struct TensorToWrite {
  public var name: String
  public var dtype: TensorDType
  public var shape: [Int]
  public var byteCount: Int
  public var produceBytes: (_ sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Void

  public init(
    name: String, dtype: TensorDType, shape: [Int], byteCount: Int,
    produceBytes: @escaping (_ sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Void
  ) {
    self.name = name
    self.dtype = dtype
    self.shape = shape
    self.byteCount = byteCount
    self.produceBytes = produceBytes
  }

  /// A tensor whose bytes are already in memory.
  public init(name: String, dtype: TensorDType, shape: [Int], bytes: [UInt8]) {
    self.init(name: name, dtype: dtype, shape: shape, byteCount: bytes.count) { sink in
      try bytes.withUnsafeBytes { try sink($0) }
    }
  }
}

/// Writes safetensors files laid out as the reference library lays them out.
public enum SafeTensorsWriter {
  /// The metadata transformers writes into every checkpoint shard.
  public static let defaultMetadata = ["format": "pt"]

  /// Writes `tensors` to `url` (through a temporary file renamed into place when complete).
  ///
  /// Layout (matching the reference serializer): tensors ordered by dtype, widest alignment first,
  /// then by name (byte order); header keys `__metadata__` first then tensors in that order, each as
  /// `{"dtype","shape","data_offsets"}`; the JSON padded with spaces to a multiple of 8 bytes.
  /// Metadata keys are written sorted (the reference uses hash order, so only single-key metadata is
  /// byte-comparable).
  public static func write(
    _ tensors: [TensorToWrite], metadata: [String: String]? = defaultMetadata, to url: URL
  ) throws(SafeTensorsError) {
    let path = url.path
    let ordered = try validateAndOrder(tensors, path: path)
    let header = headerBytes(for: ordered, metadata: metadata)
    try writeAtomically(to: path) { output throws(SafeTensorsError) in
      var prefix = [UInt8](repeating: 0, count: 8)
      for index in 0..<8 { prefix[index] = UInt8(truncatingIfNeeded: UInt64(header.count) >> (8 * UInt64(index))) }
      try output.append(contentsOf: prefix)
      try output.append(contentsOf: header)
      for tensor in ordered {
        let before = output.written
        do {
          try tensor.produceBytes { piece in try output.append(piece) }
        } catch let error as SafeTensorsError {
          throw error
        } catch {
          throw .invalidWrite(path: path, tensor: tensor.name, reason: "byte producer failed: \(error)")
        }
        let produced = output.written - before
        guard produced == tensor.byteCount else {
          throw .invalidWrite(path: path, tensor: tensor.name, reason: "producer gave \(produced) bytes, expected \(tensor.byteCount)")
        }
      }
    }
  }

  /// Checks names and sizes, and returns the tensors in the reference's data order.
  static func validateAndOrder(_ tensors: [TensorToWrite], path: String) throws(SafeTensorsError) -> [TensorToWrite] {
    var seen = Set<String>()
    for tensor in tensors {
      guard !tensor.name.isEmpty, tensor.name != "__metadata__" else {
        throw .invalidWrite(path: path, tensor: tensor.name, reason: "reserved or empty name")
      }
      guard seen.insert(tensor.name).inserted else {
        throw .invalidWrite(path: path, tensor: tensor.name, reason: "duplicate name")
      }
      guard tensor.shape.allSatisfy({ $0 >= 0 }) else {
        throw .invalidWrite(path: path, tensor: tensor.name, reason: "negative dimension in \(tensor.shape)")
      }
      var expected = tensor.dtype.byteSize
      for dimension in tensor.shape {
        let (product, overflow) = expected.multipliedReportingOverflow(by: dimension)
        guard !overflow else { throw .overflow(path: path, tensor: tensor.name) }
        expected = product
      }
      guard expected == tensor.byteCount else {
        throw .invalidWrite(
          path: path, tensor: tensor.name,
          reason: "\(tensor.dtype.rawValue) \(tensor.shape) needs \(expected) bytes, byteCount is \(tensor.byteCount)")
      }
    }
    return tensors.sorted { left, right in
      if left.dtype != right.dtype { return left.dtype.sortRank > right.dtype.sortRank }
      return left.name.utf8.lexicographicallyPrecedes(right.name.utf8)
    }
  }

  /// The padded JSON header for tensors already in data order.
  static func headerBytes(for ordered: [TensorToWrite], metadata: [String: String]?) -> [UInt8] {
    var members: [(key: String, value: HeaderJSON)] = []
    if let metadata {
      let sortedKeys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
      members.append(("__metadata__", .object(sortedKeys.map { ($0, .string(metadata[$0] ?? "")) })))
    }
    var offset = 0
    for tensor in ordered {
      let entry: HeaderJSON = .object([
        ("dtype", .string(tensor.dtype.rawValue)),
        ("shape", .array(tensor.shape.map { HeaderJSON.integer($0) })),
        ("data_offsets", .array([.integer(offset), .integer(offset + tensor.byteCount)])),
      ])
      members.append((tensor.name, entry))
      offset += tensor.byteCount
    }
    var bytes = Array(HeaderJSON.object(members).serialized.utf8)
    bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - bytes.count % 8) % 8))
    return bytes
  }
}

// MARK: - Atomic file output

/// A buffered POSIX file writer.
final class FileOutput {
  let path: String
  private let descriptor: Int32
  private var buffer: [UInt8] = []
  private static let bufferLimit = 1 << 20
  private(set) var written = 0

  init(path: String) throws(SafeTensorsError) {
    self.path = path
    descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw .io(path: path, operation: "create", errno: errno) }
    buffer.reserveCapacity(Self.bufferLimit)
  }

  func append(_ bytes: UnsafeRawBufferPointer) throws(SafeTensorsError) {
    written += bytes.count
    if buffer.count + bytes.count <= Self.bufferLimit {
      buffer.append(contentsOf: bytes)
      return
    }
    try flush()
    if bytes.count >= Self.bufferLimit {
      try writeAll(bytes)
    } else {
      buffer.append(contentsOf: bytes)
    }
  }

  func append(contentsOf bytes: [UInt8]) throws(SafeTensorsError) {
    if buffer.count + bytes.count > Self.bufferLimit { try flush() }
    written += bytes.count
    buffer.append(contentsOf: bytes)
  }

  func flush() throws(SafeTensorsError) {
    guard !buffer.isEmpty else { return }
    let pending = buffer
    buffer.removeAll(keepingCapacity: true)
    let result: Result<Void, SafeTensorsError> = pending.withUnsafeBytes { raw in
      do throws(SafeTensorsError) { try writeAll(raw); return .success(()) } catch { return .failure(error) }
    }
    try result.get()
  }

  private func writeAll(_ bytes: UnsafeRawBufferPointer) throws(SafeTensorsError) {
    var offset = 0
    while offset < bytes.count {
      guard let base = bytes.baseAddress else { return }
      let count = write(descriptor, base + offset, bytes.count - offset)
      if count < 0 {
        if errno == EINTR { continue }
        throw .io(path: path, operation: "write", errno: errno)
      }
      offset += count
    }
  }

  func finish() throws(SafeTensorsError) {
    try flush()
    guard fsync(descriptor) == 0 else { throw .io(path: path, operation: "fsync", errno: errno) }
  }

  deinit { close(descriptor) }
}

/// Runs `body` on a temporary file next to `path`, then renames it to `path`; removes the
/// temporary file when anything fails, so a reader never sees a half-written file.
func writeAtomically(
  to path: String, _ body: (FileOutput) throws(SafeTensorsError) -> Void
) throws(SafeTensorsError) {
  let url = URL(fileURLWithPath: path)
  let temporary = url.deletingLastPathComponent()
    .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
  do {
    let output = try FileOutput(path: temporary)
    try body(output)
    try output.finish()
  } catch {
    unlink(temporary)
    throw error
  }
  guard rename(temporary, path) == 0 else {
    let code = errno
    unlink(temporary)
    throw .io(path: path, operation: "rename", errno: code)
  }
}
