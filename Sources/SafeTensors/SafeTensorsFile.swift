import Foundation

/// One memory-mapped `.safetensors` file.
///
/// The header is parsed and validated when the file is opened; tensor bytes stay in the page cache
/// until touched. Buffers returned by `bytes(_:)` point into the mapping and stay valid while this
/// object is alive: a zero-copy consumer (the Torch layer) keeps a strong reference to the file
/// until it releases the buffer.
public final class SafeTensorsFile: @unchecked Sendable {
  /// The file's location.
  public let url: URL
  /// The mapping that owns the bytes.
  public let mapping: MappedFile
  /// The parsed header.
  public let header: SafeTensorsHeader

  /// Opens, maps and validates `url`.
  public init(url: URL) throws(SafeTensorsError) {
    self.url = url
    mapping = try MappedFile(path: url.path)
    header = try SafeTensorsHeader.parse(fileBytes: mapping.bytes, path: url.path)
  }

  /// The `__metadata__` map (`{"format": "pt"}` for files saved by transformers).
  public var metadata: [String: String] { header.metadata }
  /// Tensor names in file order (ascending data offset).
  public var names: [String] { header.tensors.map(\.name) }
  /// All tensors in file order.
  public var tensors: [TensorInfo] { header.tensors }

  /// Whether the file holds a tensor called `name`.
  public func contains(_ name: String) -> Bool { header.indexByName[name] != nil }

  /// Dtype, shape and byte range of tensor `name`.
  public func info(_ name: String) throws(SafeTensorsError) -> TensorInfo {
    guard let index = header.indexByName[name] else { throw .tensorNotFound(path: url.path, tensor: name) }
    return header.tensors[index]
  }

  /// The raw little-endian bytes of tensor `name`, valid while this object lives.
  public func bytes(_ name: String) throws(SafeTensorsError) -> UnsafeRawBufferPointer {
    let range = try info(name).byteRange
    return UnsafeRawBufferPointer(rebasing: mapping.bytes[range])
  }

  /// Copies tensor `name` into an array of `T`, which must have the dtype's element size.
  /// Meant for small tensors and tests; large tensors should use `bytes(_:)`.
  public func elements<T: BitwiseCopyable>(_ name: String, as type: T.Type) throws(SafeTensorsError) -> [T] {
    let tensor = try info(name)
    guard MemoryLayout<T>.size == tensor.dtype.byteSize else {
      throw .invalidTensorEntry(
        path: url.path, tensor: name,
        reason: "cannot read \(tensor.dtype.rawValue) elements as \(T.self) (\(MemoryLayout<T>.size) bytes)")
    }
    let raw = UnsafeRawBufferPointer(rebasing: mapping.bytes[tensor.byteRange])
    // The data section need not be aligned for T (headers are padded to 8, but not every writer does).
    return (0..<tensor.elementCount).map { raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self) }
  }
}
