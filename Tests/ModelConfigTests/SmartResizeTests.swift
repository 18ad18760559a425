import Common
import Foundation
import Testing

@testable import ModelConfig

@Suite struct SmartResizeTests {
  /// Several hundred sizes and limits, against transformers' own smart_resize.
  @Test func matchesTransformers() throws {
    let root = try Fixtures.json("smart_resize.json")
    let cases = try #require(root["cases"] as? [[String: Any]])
    #expect(cases.count > 400)
    var errors = 0
    for item in cases {
      let height = try #require(item["height"] as? Int)
      let width = try #require(item["width"] as? Int)
      let minPixels = try #require(item["min_pixels"] as? Int)
      let maxPixels = try #require(item["max_pixels"] as? Int)
      if let result = item["result"] as? [Int] {
        let got = try smartResize(height: height, width: width, factor: 28, minPixels: minPixels, maxPixels: maxPixels)
        #expect([got.height, got.width] == result, "\(height)x\(width) min \(minPixels) max \(maxPixels)")
      } else {
        errors += 1
        #expect(throws: ModelConfigError.self, "\(height)x\(width)") {
          _ = try smartResize(height: height, width: width, factor: 28, minPixels: minPixels, maxPixels: maxPixels)
        }
      }
    }
    #expect(errors > 0)
  }

  /// Worked examples from docs/qwen-vl.md (section 2.3), computed by hand.
  @Test func specExamples() throws {
    #expect(try smartResize(height: 448, width: 448, minPixels: 3136, maxPixels: 12_845_056) == (448, 448))
    #expect(try smartResize(height: 1080, width: 1920, minPixels: 3136, maxPixels: 12_845_056) == (1092, 1932))
    #expect(try smartResize(height: 1080, width: 1920, minPixels: 3136, maxPixels: 1_003_520) == (728, 1316))
    // Banker's rounding: 70 / 28 = 2.5 rounds to 2, not 3.
    #expect(try smartResize(height: 70, width: 70 * 3, minPixels: 56 * 56, maxPixels: 12_845_056).height == 56)
    #expect(try imageTokenCount(height: 1080, width: 1920, maxPixels: 12_845_056) == 2691)
    #expect(try imageTokenCount(height: 1080, width: 1920, maxPixels: 1_003_520) == 1222)
    #expect(try imageTokenCount(height: 448, width: 448) == 256)
    #expect(throws: ModelConfigError.self) { _ = try smartResize(height: 1, width: 201) }
    #expect(throws: ModelConfigError.self) { _ = try smartResize(height: 0, width: 10) }
  }
}

@Suite struct ImageProcessorTests {
  @Test(arguments: ["preprocessor_hub.json", "preprocessor_size_only.json", "preprocessor_both_spellings.json",
                    "processor_config_v5.json", "preprocessor_empty.json"])
  func matchesTransformers(file: String) throws {
    let config = try ImageProcessorConfig(contentsOf: Fixtures.url("processors/\(file)"))
    let expected = try #require(try Fixtures.json("processors/expected.json")[file] as? [String: Any])
    #expect(config.minPixels == expected["min_pixels"] as? Int)
    #expect(config.maxPixels == expected["max_pixels"] as? Int)
    #expect(config.patchSize == expected["patch_size"] as? Int)
    #expect(config.temporalPatchSize == expected["temporal_patch_size"] as? Int)
    #expect(config.mergeSize == expected["merge_size"] as? Int)
    #expect(config.imageMean == expected["image_mean"] as? [Double])
    #expect(config.imageStd == expected["image_std"] as? [Double])
    // JSONSerialization on Linux reads 0.00392156862745098 one ulp off; JSONDecoder reads it exactly.
    let exact = try JSONValue.parse(Data(contentsOf: Fixtures.url("processors/expected.json")))
    #expect(config.rescaleFactor == exact[file]?["rescale_factor"]?.doubleValue)
    #expect(config.resample == expected["resample"] as? Int)
    #expect(config.doResize == expected["do_resize"] as? Bool)
  }

  @Test func gridAndTokens() throws {
    let config = try ImageProcessorConfig(contentsOf: Fixtures.url("processors/preprocessor_hub.json"))
    let grid = try config.gridTHW(height: 1080, width: 1920)
    #expect(grid == (1, 78, 138))
    #expect(try config.imageTokenCount(height: 1080, width: 1920) == 2691)
    #expect(config.factor == 28)
  }

  @Test func rejectsBadSettings() throws {
    let folder = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let url = folder.appendingPathComponent("preprocessor_config.json")
    for bad in [#"{"min_pixels": 100, "max_pixels": 50}"#, #"{"patch_size": 0}"#, #"{"image_std": [1, 0, 1]}"#, #"{"min_pixels": "x"}"#] {
      try Data(bad.utf8).write(to: url)
      #expect(throws: ModelConfigError.self, "\(bad)") { _ = try ImageProcessorConfig(contentsOf: url) }
    }
  }
}
