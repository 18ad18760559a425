import Common
import Foundation
import Testing

@testable import Datasets

@Suite struct ToolsTests {
  @Test func inspectReportsKindsFieldsPromptsAndBadRecords() throws {
    let folder = try makeTempFolder()
    try writePNG(folder, "i.png", width: 30, height: 20)
    try writeText(folder, "s.json", """
      [{"image_path": "i.png", "height": 20, "width": 30, "instruction": "Find it.", "bbox": [1, 2, 3, 4]},
       {"image_path": "i.png", "height": 20, "width": 30, "instruction": "Find it.", "bbox": [1, 2, 300, 4]}]
      """)
    let lines = try DataTools.inspect(path: folder.appendingPathComponent("s.json").path)
    #expect(lines.contains("records: 2"))
    #expect(lines.contains("  bbox: 2"))
    #expect(lines.contains("kinds: single_box 1"))
    #expect(lines.contains("prompt: <image>Find it."))
    #expect(lines.contains("bbox: [1,2,3,4]"))
    #expect(lines.contains("  box outside image: 1"))
    #expect(lines.contains { $0.hasPrefix("loaded 1 examples") && $0.hasSuffix("skipped 1") })
  }

  @Test func inspectParquetFixture() throws {
    let lines = try DataTools.inspect(path: fixtures.appendingPathComponent("hf_clevr").path)
    #expect(lines.contains("records: 5"))
    #expect(lines.contains("kinds: r1v_qa 5"))
    #expect(lines.contains("  image: 5"))
    #expect(lines.contains("image: clevr_0_0.png (8x6)"))
  }

  @Test func convertExtractsEmbeddedImagesAndKeepsExamples() throws {
    let folder = try makeTempFolder()
    let output = folder.appendingPathComponent("clevr.jsonl")
    let source = fixtures.appendingPathComponent("hf_clevr").path
    let result = try DataTools.convert(input: source, output: output)
    #expect(result.records == 5 && result.imagesExtracted == 5)
    let before = try DatasetLoader.load(path: source).examples
    let after = try DatasetLoader.load(path: output.path).examples
    #expect(after.map(\.rewardFields) == before.map(\.rewardFields))
    #expect(after.map(\.images.first?.width) == before.map(\.images.first?.width))
    guard case .file(let url)? = after.first?.images.first?.source else {
      Issue.record("converted image should be a file")
      return
    }
    #expect(url.path.contains("clevr_images/0_image_0.png"))
    let jpeg = try #require(after.dropFirst().first?.images.first?.source)
    #expect(jpeg.name.hasSuffix(".jpg"))  // the fixture's second image is a JPEG (magic bytes decide)
  }

  @Test func prepareAOKVQASubsetsAndWritesLabels() throws {
    let folder = try makeTempFolder()
    let ids = try writeText(folder, "ids.txt", "q3\nq1\n# comment\n")
    let lines = try DataTools.prepareAOKVQA(
      inputs: [fixtures.appendingPathComponent("aokvqa").path], outDirectory: folder.appendingPathComponent("out"),
      questionIDs: ids, subsetSize: 1)
    #expect(lines.contains { $0.hasPrefix("validation: 1 records") })
    let prepared = try DatasetLoader.load(path: folder.appendingPathComponent("out/validation.jsonl").path)
    let example = try #require(prepared.examples.first)
    #expect(prepared.examples.count == 1)
    #expect(example.kind == .aokvqa)
    #expect(example.rewardFields["label_idx"] == .int(0))
    #expect(example.rewardFields["direct_answers"] == .array(["bat", "bat", "baseball bat", "it's a bat"].map { .string($0) }))
    #expect(example.images.first?.width == 12)
    #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/test.jsonl").path))
  }
}
