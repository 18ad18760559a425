/// Where one tensor lives in a safetensors file.
public struct TensorInfo: Sendable, Hashable {
  /// The tensor's name in the header.
  public var name: String
  /// Element type.
  public var dtype: TensorDType
  /// Dimensions, outermost first (row-major). Empty for a scalar.
  public var shape: [Int]
  /// Byte range of the data within the whole file (header included), ready for slicing a mapping.
  public var byteRange: Range<Int>

  public init(name: String, dtype: TensorDType, shape: [Int], byteRange: Range<Int>) {
    self.name = name
    self.dtype = dtype
    self.shape = shape
    self.byteRange = byteRange
  }

  /// Number of elements (1 for a scalar, 0 when a dimension is 0).
  public var elementCount: Int { shape.reduce(1, *) }
  /// Number of data bytes.
  public var byteCount: Int { byteRange.count }
}

/// The parsed and validated header of a safetensors file.
///
/// Validation follows the reference library: an 8-byte little-endian length, at most 100 MB of
/// UTF-8 JSON, tensors whose `data_offsets` tile the data section exactly (sorted by offset, no
/// gap, no overlap, the last one ending at the end of the file), and each tensor's byte count equal
/// to the product of its shape times its element size.
public struct SafeTensorsHeader: Sendable {
  /// Largest accepted header, as in the reference library.
  public static let maxHeaderLength: UInt64 = 100_000_000

  /// Byte length of the JSON header (without the 8-byte prefix).
  public var headerLength: Int
  /// The `__metadata__` map (empty when absent).
  public var metadata: [String: String]
  /// Tensors in file order (ascending data offset).
  public var tensors: [TensorInfo]
  /// Position of each tensor in `tensors`, by name.
  public var indexByName: [String: Int]

  /// First byte of the data section.
  public var dataStart: Int { 8 + headerLength }

  /// Parses and validates the header of a complete file image. `path` is used in error messages.
  public static func parse(
    fileBytes bytes: UnsafeRawBufferPointer, path: String
  ) throws(SafeTensorsError) -> SafeTensorsHeader {
    guard bytes.count >= 8 else { throw .truncatedFile(path: path, size: bytes.count) }
    var length: UInt64 = 0
    for index in 0..<8 { length |= UInt64(bytes[index]) << (8 * UInt64(index)) }
    guard length <= maxHeaderLength else { throw .headerTooLarge(path: path, length: length) }
    guard length <= UInt64(bytes.count - 8) else {
      throw .headerBeyondFile(path: path, headerLength: length, fileSize: bytes.count)
    }
    let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + Int(length))])
    guard isValidUTF8(headerBytes) else { throw .headerNotUTF8(path: path) }
    let json: HeaderJSON
    do {
      json = try HeaderJSON.parse(headerBytes)
    } catch {
      throw .invalidHeader(path: path, reason: "\(error.message) at byte \(error.offset)")
    }
    guard case .object(let members) = json else {
      throw .invalidHeader(path: path, reason: "expected a JSON object, found \(json.kindName)")
    }
    let dataStart = 8 + Int(length)
    var metadata: [String: String] = [:]
    var entries: [(info: TensorInfo, begin: UInt64, end: UInt64)] = []
    for member in members {
      if member.key == "__metadata__" {
        metadata = try parseMetadata(member.value, path: path)
        continue
      }
      entries.append(try parseEntry(name: member.key, member.value, path: path, dataStart: dataStart))
    }
    // Files may list tensors in any key order; the data order is what must tile the buffer.
    let ordered = entries.enumerated().sorted {
      ($0.element.begin, $0.element.end, $0.offset) < ($1.element.begin, $1.element.end, $1.offset)
    }.map(\.element)
    let dataSize = UInt64(bytes.count - dataStart)
    var covered: UInt64 = 0
    for entry in ordered {
      let name = entry.info.name
      if entry.begin < covered {
        throw .invalidOffsets(path: path, tensor: name, reason: "[\(entry.begin), \(entry.end)) overlaps bytes before \(covered)")
      }
      if entry.begin > covered {
        throw .invalidOffsets(path: path, tensor: name, reason: "[\(entry.begin), \(entry.end)) leaves a gap after \(covered)")
      }
      if entry.end > dataSize {
        throw .invalidOffsets(path: path, tensor: name, reason: "end \(entry.end) is past the \(dataSize)-byte data section")
      }
      covered = entry.end
    }
    guard covered == dataSize else { throw .incompleteBuffer(path: path, covered: covered, dataSize: dataSize) }
    let tensors = ordered.map(\.info)
    var indexByName: [String: Int] = [:]
    for (index, tensor) in tensors.enumerated() { indexByName[tensor.name] = index }
    return SafeTensorsHeader(headerLength: Int(length), metadata: metadata, tensors: tensors, indexByName: indexByName)
  }

  /// Parses a header from an in-memory file image.
  public static func parse(fileBytes bytes: [UInt8], path: String) throws(SafeTensorsError) -> SafeTensorsHeader {
    let result: Result<SafeTensorsHeader, SafeTensorsError> = bytes.withUnsafeBytes { buffer in
      do throws(SafeTensorsError) { return .success(try parse(fileBytes: buffer, path: path)) } catch { return .failure(error) }
    }
    return try result.get()
  }

  private static func parseMetadata(_ value: HeaderJSON, path: String) throws(SafeTensorsError) -> [String: String] {
    guard case .object(let members) = value else {
      throw .invalidHeader(path: path, reason: "__metadata__ must be an object, found \(value.kindName)")
    }
    var metadata: [String: String] = [:]
    for member in members {
      guard case .string(let text) = member.value else {
        throw .invalidHeader(path: path, reason: "__metadata__.\(member.key) must be a string, found \(member.value.kindName)")
      }
      metadata[member.key] = text
    }
    return metadata
  }

  private static func parseEntry(
    name: String, _ value: HeaderJSON, path: String, dataStart: Int
  ) throws(SafeTensorsError) -> (info: TensorInfo, begin: UInt64, end: UInt64) {
    guard case .object(let fields) = value else {
      throw .invalidTensorEntry(path: path, tensor: name, reason: "expected an object, found \(value.kindName)")
    }
    func field(_ key: String) throws(SafeTensorsError) -> HeaderJSON {
      guard let found = fields.first(where: { $0.key == key }) else {
        throw .invalidTensorEntry(path: path, tensor: name, reason: "missing '\(key)'")
      }
      return found.value
    }
    guard case .string(let dtypeName) = try field("dtype") else {
      throw .invalidTensorEntry(path: path, tensor: name, reason: "'dtype' must be a string")
    }
    guard let dtype = TensorDType(rawValue: dtypeName) else {
      throw .unknownDType(path: path, tensor: name, dtype: dtypeName)
    }
    let shapeValues = try integers(try field("shape"), key: "shape", tensor: name, path: path)
    let offsets = try integers(try field("data_offsets"), key: "data_offsets", tensor: name, path: path)
    guard offsets.count == 2 else {
      throw .invalidTensorEntry(path: path, tensor: name, reason: "'data_offsets' must have 2 entries, found \(offsets.count)")
    }
    let (begin, end) = (offsets[0], offsets[1])
    guard end >= begin else {
      throw .invalidOffsets(path: path, tensor: name, reason: "end \(end) is before begin \(begin)")
    }
    var expected = UInt64(dtype.byteSize)
    for dimension in shapeValues {
      let (product, overflow) = expected.multipliedReportingOverflow(by: dimension)
      guard !overflow else { throw .overflow(path: path, tensor: name) }
      expected = product
    }
    // Every dimension is at most the byte count once the sizes agree, so the Int casts below are safe.
    guard expected == end - begin else {
      throw .sizeMismatch(path: path, tensor: name, expected: expected, actual: end - begin)
    }
    guard end <= UInt64(Int.max - dataStart), shapeValues.allSatisfy({ $0 <= UInt64(Int.max) }) else {
      throw .overflow(path: path, tensor: name)
    }
    let range = (dataStart + Int(begin))..<(dataStart + Int(end))
    let info = TensorInfo(name: name, dtype: dtype, shape: shapeValues.map { Int($0) }, byteRange: range)
    return (info, begin, end)
  }

  private static func integers(
    _ value: HeaderJSON, key: String, tensor: String, path: String
  ) throws(SafeTensorsError) -> [UInt64] {
    guard case .array(let elements) = value else {
      throw .invalidTensorEntry(path: path, tensor: tensor, reason: "'\(key)' must be an array, found \(value.kindName)")
    }
    var result: [UInt64] = []
    result.reserveCapacity(elements.count)
    for element in elements {
      guard case .number(let text, let integer) = element, let integer else {
        throw .invalidTensorEntry(path: path, tensor: tensor, reason: "'\(key)' must hold non-negative integers, found \(element.serialized)")
      }
      _ = text
      result.append(integer)
    }
    return result
  }
}

/// Whether `bytes` is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
  var iterator = bytes.makeIterator()
  var decoder = UTF8()
  while true {
    switch decoder.decode(&iterator) {
    case .scalarValue: continue
    case .emptyInput: return true
    case .error: return false
    }
  }
}
