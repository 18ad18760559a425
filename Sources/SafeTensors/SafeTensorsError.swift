/// Everything that can go wrong reading or writing safetensors files and indexes.
///
/// Each case names the file and, where one is involved, the tensor, so that a message is
/// actionable without a debugger.
public enum SafeTensorsError: Error, Sendable, CustomStringConvertible, Equatable {
  /// The file could not be opened, stat'ed, mapped, written or renamed.
  case io(path: String, operation: String, errno: Int32)
  /// The file is shorter than its 8-byte header-length prefix.
  case truncatedFile(path: String, size: Int)
  /// The header length prefix is larger than the limit (100 MB, as the reference library).
  case headerTooLarge(path: String, length: UInt64)
  /// The header length prefix points past the end of the file.
  case headerBeyondFile(path: String, headerLength: UInt64, fileSize: Int)
  /// The header bytes are not UTF-8.
  case headerNotUTF8(path: String)
  /// The header is not valid JSON, or not the expected JSON shape.
  case invalidHeader(path: String, reason: String)
  /// A tensor entry in the header lacks a field or has one of the wrong type.
  case invalidTensorEntry(path: String, tensor: String, reason: String)
  /// A tensor names a dtype this library does not know.
  case unknownDType(path: String, tensor: String, dtype: String)
  /// A tensor's byte size from dtype and shape differs from its data offsets.
  case sizeMismatch(path: String, tensor: String, expected: UInt64, actual: UInt64)
  /// Data offsets out of order, overlapping, leaving a gap, or past the end of the file.
  case invalidOffsets(path: String, tensor: String, reason: String)
  /// The tensors do not cover the data buffer exactly.
  case incompleteBuffer(path: String, covered: UInt64, dataSize: UInt64)
  /// Shape times element size overflows 64 bits.
  case overflow(path: String, tensor: String)
  /// A lookup of a tensor that is not in the file or index.
  case tensorNotFound(path: String, tensor: String)
  /// A problem with `model.safetensors.index.json`.
  case invalidIndex(path: String, reason: String)
  /// A problem with tensors given to the writer.
  case invalidWrite(path: String, tensor: String, reason: String)

  public var description: String {
    switch self {
    case .io(let path, let operation, let code):
      return "\(path): \(operation) failed (errno \(code))"
    case .truncatedFile(let path, let size):
      return "\(path): truncated safetensors file (\(size) bytes, need at least 8)"
    case .headerTooLarge(let path, let length):
      return "\(path): header length \(length) exceeds the 100000000-byte limit"
    case .headerBeyondFile(let path, let length, let size):
      return "\(path): header length \(length) runs past the end of the \(size)-byte file"
    case .headerNotUTF8(let path):
      return "\(path): header is not valid UTF-8"
    case .invalidHeader(let path, let reason):
      return "\(path): invalid header: \(reason)"
    case .invalidTensorEntry(let path, let tensor, let reason):
      return "\(path): tensor '\(tensor)': \(reason)"
    case .unknownDType(let path, let tensor, let dtype):
      return "\(path): tensor '\(tensor)': unknown dtype '\(dtype)'"
    case .sizeMismatch(let path, let tensor, let expected, let actual):
      return "\(path): tensor '\(tensor)': dtype and shape need \(expected) bytes but offsets span \(actual)"
    case .invalidOffsets(let path, let tensor, let reason):
      return "\(path): tensor '\(tensor)': invalid data_offsets: \(reason)"
    case .incompleteBuffer(let path, let covered, let dataSize):
      return "\(path): tensors cover \(covered) bytes but the data section has \(dataSize)"
    case .overflow(let path, let tensor):
      return "\(path): tensor '\(tensor)': shape size overflows"
    case .tensorNotFound(let path, let tensor):
      return "\(path): no tensor named '\(tensor)'"
    case .invalidIndex(let path, let reason):
      return "\(path): invalid index: \(reason)"
    case .invalidWrite(let path, let tensor, let reason):
      return "\(path): cannot write tensor '\(tensor)': \(reason)"
    }
  }
}
