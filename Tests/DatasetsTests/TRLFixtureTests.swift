import Common
import Foundation
import Testing

@testable import Datasets

/// Loads the fixtures the `datasets` library wrote (tools/golden/trl_datasets_fixtures.py): a TRL
/// conversational Parquet, a `save_to_disk` folder with an `image` column and an EasyR1 Parquet, and
/// compares kinds, system turns, prompts, image sizes and reward fields with trl_expected.json.
@Suite struct TRLFixtureTests {
  private func check(_ folder: String, expectedKey: String) throws -> LoadedDataset {
    let loaded = try DatasetLoader.load(path: fixtures.appendingPathComponent(folder).path)
    let expected = try JSONValue.parse(Data(contentsOf: fixtures.appendingPathComponent("trl_expected.json")))
    let rows = try #require(expected[expectedKey]?.arrayValue)
    #expect(loaded.summary.skipped == 0)
    #expect(loaded.examples.count == rows.count)
    for (example, row) in zip(loaded.examples, rows) {
      #expect(example.kind.rawValue == row["kind"]?.stringValue)
      #expect(example.system == row["system"]?.stringValue)
      #expect(example.renderedPrompt == row["prompt"]?.stringValue)
      let sizes = example.images.map { JSONValue.array([.int($0.width ?? -1), .int($0.height ?? -1)]) }
      #expect(JSONValue.array(sizes) == row["images"])
      #expect(example.images.allSatisfy { if case .bytes = $0.source { true } else { false } })
      #expect(JSONValue.object(example.rewardFields) == row["fields"])
    }
    return loaded
  }

  @Test func conversationalParquetWithImageFeature() throws {
    let loaded = try check("trl_chat/train.parquet", expectedKey: "trl_chat")
    #expect(loaded.examples.first?.prompt.first.map { if case .image = $0 { true } else { false } } == true)
    #expect(loaded.summary.sources.first?.columns == ["chat: prompt=prompt (chat messages), images=image, ground truth=solution": 3])
  }

  @Test func saveToDiskFolderWithImageColumn() throws {
    let loaded = try check("trl_saved", expectedKey: "trl_saved")
    #expect(loaded.summary.kinds == [.textPrompt: 2])
  }

  @Test func easyR1ParquetWithImageLists() throws {
    let loaded = try check("easyr1/train.parquet", expectedKey: "easyr1")
    #expect(loaded.summary.sources.first?.columns == ["prompt: prompt=problem (text), images=images, ground truth=answer": 2])
  }
}
