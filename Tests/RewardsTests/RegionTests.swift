import Common
import Foundation
import Testing
@testable import Rewards

/// Against pycocotools (tools/golden/rewards_rle.py -> Fixtures/rle_golden.json).
@Suite struct RegionTests {
  @Test func encodeDecodeMatchPycocotools() throws {
    let golden = try Fixtures.json("rle_golden.json")
    for item in try #require(golden["masks"]?.arrayValue) {
      let size = try #require(item["size"]?.arrayValue?.compactMap { $0.intValue })
      let pixelText = try #require(item["pixels"]?.stringValue)
      let pixels = pixelText.map { $0 == "1" }
      let mask = RLEMask(height: size[0], width: size[1], pixels: pixels)
      #expect(mask.counts == item["counts_list"]?.arrayValue?.compactMap { $0.intValue })
      #expect(mask.compressed == item["compressed"]?.stringValue)
      #expect(mask.area == item["area"]?.intValue)
      let compressed = try #require(item["compressed"]?.stringValue)
      let decoded = try #require(RLEMask(height: size[0], width: size[1], compressed: compressed))
      #expect(decoded.decode() == pixels)
      let countsList = try #require(item["counts_list"])
      let fromList = RLEMask(json: .object(["size": .array(size.map(JSONValue.int)), "counts": countsList]))
      #expect(fromList == mask)
    }
  }

  @Test func iouAndUnionOnRunsMatchPycocotools() throws {
    let golden = try Fixtures.json("rle_golden.json")
    for item in try #require(golden["pairs"]?.arrayValue) {
      let size = try #require(item["size"]?.arrayValue?.compactMap { $0.intValue })
      let textA = try #require(item["a"]?.stringValue), textB = try #require(item["b"]?.stringValue)
      let a = try #require(RLEMask(height: size[0], width: size[1], compressed: textA))
      let b = try #require(RLEMask(height: size[0], width: size[1], compressed: textB))
      let expected = try #require(item["iou"]?.doubleValue)
      #expect(near(RLEMask.iou(a, b), expected, tolerance: 1e-12))
      #expect(RLEMask.union(a, b).compressed == item["union"]?.stringValue)
    }
  }

  @Test func polygonsMatchPycocotools() throws {
    let golden = try Fixtures.json("rle_golden.json")
    for item in try #require(golden["polygons"]?.arrayValue) {
      let size = try #require(item["size"]?.arrayValue?.compactMap { $0.intValue })
      let polygons = try #require(item["polygons"]?.arrayValue).map { $0.arrayValue?.compactMap { $0.doubleValue } ?? [] }
      let mask = RLEMask(height: size[0], width: size[1], polygons: polygons)
      #expect(mask.compressed == item["compressed"]?.stringValue)
      #expect(mask.area == item["area"]?.intValue)
    }
  }

  @Test func maskIoURewardAndDegenerateCases() async throws {
    // 4x4 image, truth = left two columns (8 pixels), prediction = first column (4 pixels): IoU 0.5.
    let truth = RLEMask(height: 4, width: 4, counts: [0, 8, 8])
    let predicted = RLEMask(height: 4, width: 4, counts: [0, 4, 12])
    let fields: [String: JSONValue] = ["mask_rle": truth.json]
    #expect(try await score("mask_iou", "<answer>\(predicted.json.jsonString)</answer>", fields: fields) == 0.5)
    #expect(try await score("mask_iou", #"{"size": [4, 4], "counts": [0, 4, 12]}"#, fields: fields) == 0.5)
    #expect(try await score("mask_iou", "not a mask", fields: fields) == 0)
    #expect(try await score("mask_iou", #"{"size": [4, 4], "counts": [0, 4, 11]}"#, fields: fields) == 0)
    #expect(try await score("mask_iou", #"{"size": [4, 4], "counts": [0, 4, 12]}"#) == nil)
    let empty = RLEMask(height: 3, width: 3, counts: [9])
    #expect(RLEMask.iou(empty, empty) == 1)
    #expect(RLEMask.iou(empty, RLEMask(height: 4, width: 4, counts: [16])) == 0)
    #expect(RLEMask(height: 2, width: 2, compressed: "\u{7F}") == nil)
    #expect(try await score("box_iou", "[0, 0, 10, 5]", fields: ["bbox": boxJSON([0, 0, 10, 10])]) == 0.5)
  }
}
