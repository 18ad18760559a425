import Common
import Foundation
@testable import Rewards

enum Fixtures {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

  static func json(_ name: String) throws -> JSONValue {
    try JSONValue.parse(Data(contentsOf: directory.appendingPathComponent(name)))
  }
}

/// Scores one sample with a registry reward.
func score(
  _ name: String, _ completion: String, fields: [String: JSONValue] = [:],
  images: [ImageGeometry] = [], parameters: [String: JSONValue] = [:],
  attention: AttentionDiagnostics? = nil
) async throws -> Double? {
  let function = try RewardRegistry.make(name, parameters: parameters)
  let sample = RewardSample(completion: completion, images: images, fields: fields, attention: attention)
  let values = try await function.score([sample])
  return values.first ?? nil
}

func boxJSON(_ numbers: [Double]) -> JSONValue { .array(numbers.map(JSONValue.double)) }

func near(_ a: Double?, _ b: Double, tolerance: Double = 1e-9) -> Bool {
  guard let a else { return false }
  return abs(a - b) <= tolerance * max(1, abs(b))
}
