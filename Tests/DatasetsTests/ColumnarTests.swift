import Common
import Foundation
import Testing

@testable import Datasets

/// Loads the pyarrow-made fixtures of tools/golden/datasets_fixtures.py and compares with the
/// values that script recorded in columnar_expected.json.
@Suite struct ColumnarTests {
  func expected(_ key: String) throws -> [JSONValue] {
    let value = try JSONValue.parse(Data(contentsOf: fixtures.appendingPathComponent("columnar_expected.json")))
    return try #require(value[key]?.arrayValue)
  }

  @Test func huggingFaceParquetShardsWithImageStructs() throws {
    let loaded = try DatasetLoader.load(path: fixtures.appendingPathComponent("hf_clevr").path)
    let truth = try expected("clevr")
    #expect(loaded.examples.count == truth.count)
    for (example, row) in zip(loaded.examples, truth) {
      #expect(example.kind == .r1vQA)
      #expect(example.rewardFields["solution"] == row["solution"])
      #expect(textPart(example) == Prompts.r1v(question: row["problem"]?.stringValue ?? ""))
      #expect(example.images.first?.width == row["width"]?.intValue)
      #expect(example.images.first?.height == row["height"]?.intValue)
      guard case .bytes(_, let name)? = example.images.first?.source else {
        Issue.record("expected embedded bytes")
        continue
      }
      #expect(name.hasPrefix("clevr_"))
    }
    #expect(loaded.examples.map { $0.source.file.hasSuffix("train-00001-of-00002.parquet") } == [false, false, false, true, true])
  }

  @Test func globAndSamplingOverParquetShards() throws {
    let pattern = fixtures.appendingPathComponent("hf_clevr").path + "/data/train-*.parquet"
    let loaded = try DatasetLoader.load(path: pattern, sampling: .end(.count(3)))
    let solutions = try expected("clevr").suffix(3).map { $0["solution"] }
    #expect(loaded.examples.map { $0.rewardFields["solution"] } == Array(solutions))
  }

  @Test func aokvqaParquetWithStringifiedAnswersAndNullTestLabels() throws {
    let loaded = try DatasetLoader.load(path: fixtures.appendingPathComponent("aokvqa").path)
    let truth = try expected("aokvqa")
    // Files load in sorted order: test-* before validation-*.
    #expect(loaded.examples.count == 1 + truth.count)
    #expect(loaded.examples.first?.rewardFields["label_idx"] == .null)
    for (example, row) in zip(loaded.examples.dropFirst(), truth) {
      #expect(example.kind == .aokvqa)
      #expect(example.rewardFields["choices"] == row["choices"])
      #expect(example.rewardFields["label_idx"] == row["label_idx"])
      #expect(example.rewardFields["direct_answers"] == row["direct_answers"])
      #expect(example.images.first?.width == 12)
    }
  }

  @Test func saveToDiskArrowFolderOfRegionCaptions() throws {
    let loaded = try DatasetLoader.load(path: fixtures.appendingPathComponent("arrow_saved").path)
    let truth = try expected("arrow")
    #expect(loaded.examples.count == truth.count)
    for (example, row) in zip(loaded.examples, truth) {
      #expect(example.kind == .regionCaption)
      #expect(example.rewardFields["captions"] == .array([row["caption"] ?? .null]))
      #expect(example.rewardFields["mask_rle"]?["counts"] == row["counts"])
      #expect(example.rewardFields["mask_rle"]?["size"] == .array([row["height"] ?? .null, row["width"] ?? .null]))
      #expect(example.images.first?.width == row["width"]?.intValue)
      #expect(example.conversation.first?.role == "user")
    }
    let sampled = try DatasetLoader.load(
      path: fixtures.appendingPathComponent("arrow_saved").path, sampling: .random(.count(2)))
    #expect(sampled.examples.map(\.source.index) == SamplingStrategy.random(.count(2)).select(available: 3, seed: 42).indices)
  }
}
