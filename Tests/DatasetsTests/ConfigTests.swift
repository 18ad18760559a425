import Common
import Foundation
import Testing

@testable import Datasets

@Suite struct ConfigTests {
  @Test func parsesEntriesAndSeed() throws {
    let config = try DatasetConfig.parse("""
      data_seed: 7
      datasets:
        - json_path: "data/multi_box_grounding_RL_sample.json"
          sampling_strategy: "all" # or "first:100", "random:50%", "end:10"
        - json_path: data/rec.jsonl
          sampling_strategy: random:12.5%
          image_root: data/coco
          kind: rec
        - json_path: data/train-*.parquet
      """)
    #expect(config.dataSeed == 7)
    #expect(config.entries == [
      DatasetEntry(path: "data/multi_box_grounding_RL_sample.json", sampling: .all),
      DatasetEntry(path: "data/rec.jsonl", sampling: .random(.percent(12.5)), imageRoot: "data/coco", kind: .rec),
      DatasetEntry(path: "data/train-*.parquet"),
    ])
  }

  @Test func unknownKeysAndBadValuesAreErrors() {
    func message(_ yaml: String) -> String {
      do {
        _ = try DatasetConfig.parse(yaml, name: "d.yaml")
        return ""
      } catch { return "\(error)" }
    }
    #expect(message("datasets:\n  - json_path: a.json\n    sample: all\n").contains("unknown key(s) sample; known: json_path"))
    #expect(message("datasets:\n  - json_path: a.json\n    kind: boxes\n").contains("kind is not one of"))
    #expect(message("datasets:\n  - json_path: a.json\n    sampling_strategy: some:3\n").contains("datasets[0].sampling_strategy"))
    #expect(message("datasets: []\n").contains("non-empty list"))
    #expect(message("dataset:\n  - json_path: a.json\n").contains("unknown key(s) dataset"))
  }

  @Test func loadsYAMLRelativeToItsFolderWithPerEntrySeeds() throws {
    let folder = try makeTempFolder()
    try writePNG(folder, "data/i.png", width: 8, height: 8)
    let records = (0..<10).map { #"{"image_path": "i.png", "width": 8, "height": 8, "instruction": "i\#($0)", "bbox": [0, 0, 4, 4]}"# }
    try writeText(folder, "data/a.json", "[" + records.joined(separator: ",") + "]")
    try writeText(folder, "data/b.json", "[" + records.joined(separator: ",") + "]")
    let yaml = try writeText(folder, "data.yaml", """
      datasets:
        - json_path: data/a.json
          sampling_strategy: random:3
        - json_path: data/b.json
          sampling_strategy: random:3
      """)
    let loaded = try DatasetLoader.load(try DatasetConfig.load(yaml))
    #expect(loaded.examples.count == 6)
    let first = loaded.examples.prefix(3).map(\.source.index)
    let second = loaded.examples.suffix(3).map(\.source.index)
    #expect(first == SamplingStrategy.random(.count(3)).select(available: 10, seed: 42).indices)
    #expect(second == SamplingStrategy.random(.count(3)).select(available: 10, seed: 43).indices)
    #expect(loaded.summary.sources.map(\.available) == [10, 10])
  }

  @Test func globPatternsConcatenateFilesInOrder() throws {
    let folder = try makeTempFolder()
    try writePNG(folder, "i.png", width: 8, height: 8)
    for shard in 0..<3 {
      let lines = (0..<2).map { #"{"image": "i.png", "problem": "s\#(shard)r\#($0)", "solution": "x"}"# }
      try writeText(folder, "train-0000\(shard)-of-00003.jsonl", lines.joined(separator: "\n"))
    }
    try writeText(folder, "test-00000-of-00001.jsonl", #"{"image": "i.png", "problem": "t", "solution": "x"}"#)
    let loaded = try DatasetLoader.load(path: folder.path + "/train-*.jsonl", sampling: .end(.count(3)))
    #expect(loaded.examples.map { $0.source.file.hasSuffix("train-00001-of-00003.jsonl") } == [true, false, false])
    #expect(loaded.examples.map(\.source.index) == [1, 0, 1])
    #expect(loaded.summary.sources.first?.available == 6)
  }
}
