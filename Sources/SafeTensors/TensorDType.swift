/// An element type of the safetensors format, spelled as in the file header.
///
/// The declaration order matches the reference library's `Dtype` ordering (increasing alignment);
/// the writer sorts tensors by this order, descending, then by name, as the reference does, so
/// files written here are byte-identical to the reference's for the same tensors and metadata.
public enum TensorDType: String, CaseIterable, Sendable, Hashable, Codable {
  case bool = "BOOL"
  case uint8 = "U8"
  case int8 = "I8"
  case float8E5M2 = "F8_E5M2"
  case float8E4M3 = "F8_E4M3"
  case float8E8M0 = "F8_E8M0"
  case int16 = "I16"
  case uint16 = "U16"
  case float16 = "F16"
  case bfloat16 = "BF16"
  case int32 = "I32"
  case uint32 = "U32"
  case float32 = "F32"
  case complex64 = "C64"
  case float64 = "F64"
  case int64 = "I64"
  case uint64 = "U64"

  /// Bytes per element.
  public var byteSize: Int {
    switch self {
    case .bool, .uint8, .int8, .float8E5M2, .float8E4M3, .float8E8M0: return 1
    case .int16, .uint16, .float16, .bfloat16: return 2
    case .int32, .uint32, .float32: return 4
    case .complex64, .float64, .int64, .uint64: return 8
    }
  }

  /// Position in the reference ordering (used to order tensors when writing).
  var sortRank: Int { Self.allCases.firstIndex(of: self) ?? 0 }
}
