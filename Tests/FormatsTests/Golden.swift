import Foundation
import Testing

@testable import Formats

/// The fixtures written by tools/golden/formats_fixtures.py and the rows pyarrow reads from them.
enum Golden {
  static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

  struct ParquetCase: Sendable, CustomStringConvertible {
    var file: String
    var rowGroups: Int
    var rowGroupRows: [Int]
    var columns: [String]
    var rows: [[String: FormatValue]]
    var description: String { file }
  }

  struct ArrowCase: Sendable, CustomStringConvertible {
    var file: String
    var batches: Int
    var batchRows: [Int]
    var columns: [String]
    var rows: [[String: FormatValue]]
    var description: String { file }
  }

  static func url(_ name: String) -> URL { fixtures.appendingPathComponent(name) }

  static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: url(name))) }

  private static func expected() -> [String: Any] {
    guard let data = try? Data(contentsOf: fixtures.appendingPathComponent("expected.json")),
      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    else { return [:] }
    return object
  }

  static let parquetCases: [ParquetCase] = (expected()["parquet"] as? [[String: Any]] ?? []).map { entry in
    ParquetCase(file: entry["file"] as? String ?? "", rowGroups: entry["rowGroups"] as? Int ?? -1,
                rowGroupRows: entry["rowGroupRows"] as? [Int] ?? [], columns: entry["columns"] as? [String] ?? [],
                rows: rows(entry["rows"]))
  }

  static let arrowCases: [ArrowCase] = (expected()["arrow"] as? [[String: Any]] ?? []).map { entry in
    ArrowCase(file: entry["file"] as? String ?? "", batches: entry["batches"] as? Int ?? -1,
              batchRows: entry["batchRows"] as? [Int] ?? [], columns: entry["columns"] as? [String] ?? [],
              rows: rows(entry["rows"]))
  }

  private static func rows(_ json: Any?) -> [[String: FormatValue]] {
    (json as? [[String: Any]] ?? []).map { row in row.mapValues(value) }
  }

  /// Parses the tagged form the script writes (see its docstring).
  static func value(_ json: Any) -> FormatValue {
    guard let pair = json as? [Any], pair.count == 2, let tag = pair[0] as? String else { return .null }
    switch tag {
    case "bool": return .bool(pair[1] as? Bool ?? false)
    case "int": return .int(Int64(pair[1] as? String ?? "") ?? .min)
    case "double": return .double(Double(pair[1] as? String ?? "") ?? .nan)
    case "string": return .string(pair[1] as? String ?? "")
    case "bytes": return .bytes([UInt8](Data(base64Encoded: pair[1] as? String ?? "") ?? Data()))
    case "list": return .list((pair[1] as? [Any] ?? []).map(value))
    case "record":
      return .record((pair[1] as? [[Any]] ?? []).map { field in (field.first as? String ?? "", value(field.last ?? 0)) })
    default: return .null
    }
  }
}
