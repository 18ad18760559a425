import Common
import Foundation
import Testing
@testable import Rewards

@Suite struct GroundingTests {
  /// Golden values from tools/golden/rewards_grounding.py (numpy + scipy).
  @Test func singleBoxRewardsMatchGolden() async throws {
    let golden = try Fixtures.json("grounding_golden.json")
    let cases = try #require(golden["single"]?.arrayValue)
    #expect(cases.count == 40)
    for item in cases {
      let pred = try #require(item["pred"]?.arrayValue?.compactMap { $0.doubleValue })
      let completion = "<answer>[\(pred.map { String($0) }.joined(separator: ", "))]</answer>"
      let truth = try #require(item["gt"])
      let fields: [String: JSONValue] = ["bbox": truth]
      for name in ["gaussian_point", "gaussian_plane", "iou"] {
        let expected = try #require(item[name]?.doubleValue)
        let value = try await score(name, completion, fields: fields)
        #expect(near(value, expected, tolerance: 1e-9), "\(name) \(pred): \(String(describing: value)) vs \(expected)")
      }
      let inclusive = try await score("iou", completion, fields: fields, parameters: ["pixel_inclusive": .bool(true)])
      let expectedInclusive = try #require(item["iou_inclusive"]?.doubleValue)
      #expect(near(inclusive, expectedInclusive))
    }
  }

  @Test func multiBoxRewardsMatchGolden() async throws {
    let golden = try Fixtures.json("grounding_golden.json")
    let cases = try #require(golden["multi"]?.arrayValue)
    #expect(cases.count == 25)
    for item in cases {
      let pred = try #require(item["pred"])
      let truth = try #require(item["gt"])
      let fields: [String: JSONValue] = ["abs_box": truth]
      // Python-literal style with int keys, as the mmkd model writes it.
      let literal = pred.jsonString.replacingOccurrences(of: "\"", with: "")
      for name in ["multi_gaussian_point", "multi_gaussian_plane"] {
        let expected = try #require(item[name]?.doubleValue)
        let json = try await score(name, pred.jsonString, fields: fields)
        let python = try await score(name, "<answer>\(literal)</answer>", fields: fields)
        #expect(near(json, expected), "\(name): \(String(describing: json)) vs \(expected)")
        #expect(near(python, expected))
      }
      #expect(try await score("multi_gaussian_plane_reward", pred.jsonString, fields: fields)
        == (try await score("multi_gaussian_plane", pred.jsonString, fields: fields)))
    }
  }

  @Test func handComputedGaussians() {
    // Identical boxes: both Gaussians are 1.
    let box = Box(10, 10, 30, 50)
    #expect(BoxMath.gaussianPoint(predicted: box, truth: box) == 1)
    #expect(abs(BoxMath.gaussianPlane(predicted: box, truth: box) - 1) < 1e-12)
    // Centre shifted by one sigma in x (sigma_x = 0.5 * 20 = 10): exp(-0.5).
    #expect(abs(BoxMath.gaussianPoint(predicted: Box(20, 10, 40, 50), truth: box) - exp(-0.5)) < 1e-12)
    // Same centre, predicted twice as wide: sx_p = 20, sx_g = 10, S_x = 250;
    // D = 0.5 ln(250 / sqrt(400 * 100)) = 0.5 ln(1.25).
    let wide = Box(0, 10, 40, 50)
    #expect(abs(BoxMath.gaussianPlane(predicted: wide, truth: box) - exp(-0.5 * log(1.25))) < 1e-12)
    // Zero-size ground truth: sigma floored at 0.5 -> finite; 1 pixel off in x gives exp(-2).
    let point = Box(5, 5, 5, 5)
    #expect(abs(BoxMath.gaussianPoint(predicted: Box(6, 5, 6, 5), truth: point) - exp(-2)) < 1e-12)
    #expect(BoxMath.gaussianPlane(predicted: point, truth: point) == 1)
  }

  @Test func iouEdgeCases() {
    #expect(BoxMath.iou(Box(0, 0, 10, 10), Box(5, 0, 15, 10)) == 50.0 / 150.0)
    #expect(BoxMath.iou(Box(0, 0, 10, 10), Box(20, 20, 30, 30)) == 0)
    #expect(BoxMath.iou(Box(3, 3, 3, 3), Box(3, 3, 3, 3)) == 1)
    #expect(BoxMath.iou(Box(3, 3, 3, 3), Box(4, 4, 4, 4)) == 0)
    // Pixel-inclusive: [0,0,0,0] is one pixel, [0,0,1,1] four pixels.
    #expect(BoxMath.iou(Box(0, 0, 0, 0), Box(0, 0, 1, 1), pixelInclusive: true) == 0.25)
  }

  @Test func singleBoxFormatAndMissingData() async throws {
    #expect(try await score("format", "[1, 2, 3, 4]") == 1)
    #expect(try await score("format", "<answer> [1,2,3,4] </answer>") == 1)
    #expect(try await score("format", "[1.0, 2, 3, 4]") == 0)
    #expect(try await score("format", "[1.0, 2, 3, 4]", parameters: ["allow_decimals": .bool(true)]) == 1)
    #expect(try await score("format", "garbage") == 0)
    let fields: [String: JSONValue] = ["bbox": boxJSON([0, 0, 10, 10])]
    #expect(try await score("gaussian_point", "no box here", fields: fields) == 0)
    #expect(try await score("gaussian_point", "[0,0,10,10]") == nil)
    // Ground truth from a solution string, as R1 records carry it.
    #expect(try await score("iou", "[0,0,10,10]", fields: ["solution": .string("<answer>[0, 0, 10, 5]</answer>")]) == 0.5)
  }

  @Test func frameParameterConvertsPredictions() async throws {
    let image = ImageGeometry(originalWidth: 2000, originalHeight: 1000, resizedWidth: 1000, resizedHeight: 500)
    let fields: [String: JSONValue] = ["bbox": boxJSON([200, 100, 400, 300])]
    #expect(try await score("iou", "[100, 50, 200, 150]", fields: fields, images: [image],
                            parameters: ["box_frame": .string("resized")]) == 1)
    #expect(try await score("iou", "[100, 100, 200, 300]", fields: fields, images: [image],
                            parameters: ["box_frame": .string("norm1000")]) == 1)
    #expect(throws: RewardError.self) {
      _ = try RewardRegistry.make("iou", parameters: ["box_frame": .string("pixels")])
    }
  }

  @Test func multiBoxDegenerateCases() async throws {
    let truth: [String: JSONValue] = ["abs_box": .object(["0": .array([boxJSON([0, 0, 10, 10])]), "2": .array([])])]
    // Label 2 empty on both sides scores 1; label 0 matched exactly scores 1.
    #expect(try await score("multi_gaussian_point", "{0: [[0, 0, 10, 10]], 2: []}", fields: truth) == 1)
    // Missing label 2 in the prediction: still empty on both sides.
    #expect(try await score("multi_gaussian_point", "{0: [[0, 0, 10, 10]]}", fields: truth) == 1)
    // An extra predicted box halves label 0: 2 * 1 / (1 + 2) = 2/3, label 2 -> 1; mean 5/6.
    let extra = try await score("multi_gaussian_point", "{'0': [[0,0,10,10], [50,50,60,60]]}", fields: truth)
    #expect(near(extra, 5.0 / 6.0))
    // A match below IoU 0.5 scores nothing for that label.
    #expect(try await score("multi_gaussian_point", "{0: [[6, 0, 16, 10]]}", fields: truth) == 0.5)
    #expect(try await score("multi_gaussian_point", "garbage", fields: truth) == 0)
    #expect(try await score("multi_gaussian_point", "{0: [[0,0,10,10]]}") == nil)
    // Both sides empty mappings: perfect.
    #expect(try await score("multi_gaussian_plane", "{}", fields: ["abs_box": .object([:])]) == 1)
  }

  @Test func multiBoxFormat() async throws {
    let single: [String: JSONValue] = ["abs_box": .object(["0": .array([boxJSON([0, 0, 10, 10])])])]
    let two: [String: JSONValue] = ["abs_box": .object(["0": .array([]), "1": .array([])])]
    #expect(try await score("multi_box_format_reward", "{0: [[1,2,3,4]], 1: []}") == 1)
    #expect(try await score("multi_box_format_reward", #"{"0": [[1,2,3,4]],}"#) == 1)
    #expect(try await score("multi_box_format_reward", "{0: [1,2,3,4]}") == 0)
    #expect(try await score("multi_box_format_reward", "{0: [[1,2,3]]}") == 0)
    #expect(try await score("multi_box_format_reward", "[[1,2,3,4]]", fields: single) == 1)
    #expect(try await score("multi_box_format_reward", "[[1,2,3,4]]", fields: two) == 0)
    #expect(try await score("multi_box_format_reward", "[[1,2,3,4]]") == 0)
    #expect(try await score("multi_gaussian_point", "[[0,0,10,10]]", fields: single) == 1)
  }
}

@Suite struct HungarianTests {
  /// Brute force over all injective assignments of the smaller side.
  static func bruteForce(_ cost: [[Double]]) -> Double {
    let rows = cost.count, columns = cost[0].count
    var best = Double.infinity
    func search(_ row: Int, _ used: Set<Int>, _ total: Double, transpose: Bool) {
      let n = transpose ? columns : rows, m = transpose ? rows : columns
      if row == n { best = min(best, total); return }
      for column in 0..<m where !used.contains(column) {
        let c = transpose ? cost[column][row] : cost[row][column]
        search(row + 1, used.union([column]), total + c, transpose: transpose)
      }
    }
    search(0, [], 0, transpose: rows > columns)
    return best
  }

  @Test func matchesBruteForceOnRandomMatrices() {
    var generator = SeededGenerator(seed: 42)
    for trial in 0..<400 {
      let rows = Int.random(in: 1...6, using: &generator)
      let columns = Int.random(in: 1...6, using: &generator)
      let integer = trial % 2 == 0  // integer costs produce ties
      let cost = (0..<rows).map { _ in
        (0..<columns).map { _ in integer ? Double(Int.random(in: 0...3, using: &generator)) : Double.random(in: -1...1, using: &generator) }
      }
      let pairs = Hungarian.assign(cost)
      #expect(pairs.count == min(rows, columns))
      #expect(Set(pairs.map(\.row)).count == pairs.count && Set(pairs.map(\.column)).count == pairs.count)
      let total = pairs.reduce(0.0) { $0 + cost[$1.row][$1.column] }
      #expect(abs(total - Self.bruteForce(cost)) < 1e-9, "trial \(trial): \(cost)")
    }
  }

  @Test func emptyAndRaggedInput() {
    #expect(Hungarian.assign([]).isEmpty)
    #expect(Hungarian.assign([[1, 2], [3]]).isEmpty)
    #expect(Hungarian.assign([[.nan, 1], [1, .infinity]]).count == 2)
  }
}

/// SplitMix64: a small deterministic generator for seeded tests.
struct SeededGenerator: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
