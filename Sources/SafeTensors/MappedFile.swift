#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// A read-only memory mapping of a whole file, unmapped when the object is released.
///
/// Pages are loaded by the kernel on first touch, so opening a 7 GB shard costs nothing until its
/// tensors are read, and tensors handed out as pointers into the mapping are never copied.
/// Immutable after creation, hence safe to share across threads.
public final class MappedFile: @unchecked Sendable {
  /// The path that was mapped.
  public let path: String
  /// The mapped bytes (empty for an empty file).
  public let bytes: UnsafeRawBufferPointer
  private let base: UnsafeMutableRawPointer?

  /// Maps `path` read-only. Throws `SafeTensorsError.io` naming the file and the failing call.
  public init(path: String) throws(SafeTensorsError) {
    self.path = path
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw .io(path: path, operation: "open", errno: errno) }
    defer { close(descriptor) }
    var info = stat()
    guard fstat(descriptor, &info) == 0 else { throw .io(path: path, operation: "stat", errno: errno) }
    guard (info.st_mode & S_IFMT) == S_IFREG else { throw .io(path: path, operation: "open (not a regular file)", errno: EISDIR) }
    let size = Int(info.st_size)
    guard size > 0 else {
      base = nil
      bytes = UnsafeRawBufferPointer(start: nil, count: 0)
      return
    }
    let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0)
    guard let mapped, mapped != MAP_FAILED else { throw .io(path: path, operation: "mmap", errno: errno) }
    base = mapped
    bytes = UnsafeRawBufferPointer(start: mapped, count: size)
  }

  /// The file size in bytes.
  public var count: Int { bytes.count }

  deinit {
    if let base { munmap(base, bytes.count) }
  }
}
