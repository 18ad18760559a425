import Common
import Foundation
import Imaging
import Testing

@testable import Datasets

/// Bad input that must be skipped and counted (or refused) with the file, record and field named,
/// and outputs that must never overwrite inputs or be left half-written (docs/reliability.md).
@Suite struct ReliabilityTests {
  func grounding(_ image: String, width: Int = 50, height: Int = 40, instruction: String = "find it") -> String {
    let value = JSONValue.object([
      "image_path": .string(image), "width": .int(width), "height": .int(height),
      "instruction": .string(instruction), "bbox": .array([1, 1, 10, 10].map { .int($0) }),
    ])
    return value.jsonString
  }

  @Test func visionTokensInTextAreBadRecords() throws {
    let folder = try makeTempFolder()
    try writePNG(folder, "a.png", width: 50, height: 40)
    let lines = [
      grounding("a.png"),
      grounding("a.png", instruction: "look <|image_pad|> here"),
      #"{"image": "a.png", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "<|vision_start|>x"}]}"#,
      #"{"image": "a.png", "problem": "count <|video_pad|>", "solution": "3"}"#,
    ]
    let file = try writeText(folder, "d.jsonl", lines.joined(separator: "\n"))
    let loaded = try DatasetLoader.load(path: file.path)
    #expect(loaded.examples.count == 1)
    #expect(loaded.summary.skippedByReason == [.visionTokenInText: 3])
    let fields = loaded.summary.badRecords.map { "\($0.location.index):\($0.field ?? "-")" }
    #expect(fields == ["1:instruction", "2:conversations", "3:problem"])
    #expect(loaded.summary.badRecords[0].detail.contains("<|image_pad|>"))
    var strict = LoadOptions()
    strict.onBadRecord = .error
    #expect {
      try DatasetLoader.load(path: file.path, options: strict)
    } throws: { error in
      "\(error)".contains("d.jsonl #1") && "\(error)".contains("instruction")
    }
  }

  @Test func emptyImageListAndContradictingSizeAreReported() throws {
    let folder = try makeTempFolder()
    try writePNG(folder, "a.png", width: 50, height: 40)
    let empty = #"{"image_path": [], "width": 50, "height": 40, "instruction": "i", "bbox": [1, 1, 10, 10]}"#
    let lines = [grounding("a.png"), empty, grounding("a.png", width: 64, height: 40), grounding("a.png", width: 40, height: 50)]
    let file = try writeText(folder, "d.jsonl", lines.joined(separator: "\n"))
    let loaded = try DatasetLoader.load(path: file.path)
    // The swapped size (EXIF-rotated annotation) is accepted; the 64x40 claim is not.
    #expect(loaded.examples.map(\.source.index) == [0, 3])
    #expect(loaded.summary.skippedByReason == [.missingField: 1, .imageSizeMismatch: 1])
    let mismatch = try #require(loaded.summary.badRecords.first { $0.reason == .imageSizeMismatch })
    #expect(mismatch.location.index == 2 && mismatch.detail.contains("64x40") && mismatch.detail.contains("50x40"))
    let emptyRecord = try #require(loaded.summary.badRecords.first { $0.reason == .missingField })
    #expect(emptyRecord.field == "image_path" && emptyRecord.detail.contains("empty image list"))
    // inspect reports both by record.
    let report = try DataTools.inspect(path: file.path).joined(separator: "\n")
    #expect(report.contains("d.jsonl #1 field 'image_path'") && report.contains("d.jsonl #2 field 'width'"))
  }

  @Test func decodeImagesNamesTheRecordOfATruncatedImage() throws {
    let folder = try makeTempFolder()
    let png = try writePNG(folder, "a.png", width: 64, height: 64)
    let bytes = try Data(contentsOf: png)
    try bytes.prefix(bytes.count / 2).write(to: folder.appendingPathComponent("half.png"))
    let file = try writeText(folder, "d.jsonl", [grounding("a.png", width: 64, height: 64), grounding("half.png", width: 64, height: 64)].joined(separator: "\n"))
    // The header survives truncation, so the load keeps both; the full decode catches the second.
    let loaded = try DatasetLoader.load(path: file.path)
    #expect(loaded.examples.count == 2)
    try loaded.examples[0].validateImages()
    #expect(try loaded.examples[0].decodeImages().first?.width == 64)
    #expect {
      try loaded.examples[1].validateImages()
    } throws: { error in
      guard case DatasetError.badRecord(let bad) = error else { return false }
      return bad.location.index == 1 && bad.reason == .unreadableImage && bad.detail.contains("half.png")
    }
    try FileManager.default.removeItem(at: png)
    #expect {
      try loaded.examples[0].validateImages()
    } throws: { error in
      guard case DatasetError.badRecord(let bad) = error else { return false }
      return bad.reason == .imageNotFound && !"\(error)".contains("NSCocoaErrorDomain")
    }
    #expect(throws: DatasetError.self) { try ImageLoader.probe(.bytes(Data([0xFF, 0xD8, 0xFF]), name: "x")) }
  }

  @Test func duplicateYAMLKeysNameTheKeyAndLine() throws {
    let text = "datasets:\n  - json_path: a.json\n    kind: rec\n    json_path: b.json\n"
    #expect {
      try DatasetConfig.parse(text, name: "d.yaml")
    } throws: { error in
      "\(error)".contains("d.yaml") && "\(error)".contains("duplicate key 'json_path' at line 4")
        && "\(error)".contains("first at line 2")
    }
    #expect(throws: DatasetError.self) { try DatasetConfig.parse("data_seed: 1\ndata_seed: 2\ndatasets: [{json_path: a}]\n") }
  }

  @Test func fileErrorsArePlainWords() throws {
    let folder = try makeTempFolder()
    let broken = try writeText(folder, "broken.json", "[\n  {\"a\": 1},\n  {\"a\" 2}\n]\n")
    #expect {
      try DatasetLoader.load(path: broken.path)
    } throws: { error in
      let text = "\(error)"
      return text.contains("broken.json") && text.contains("line 3, column 8") && !text.contains("NSCocoaErrorDomain")
    }
    #expect {
      try DatasetLoader.load(path: folder.appendingPathComponent("nope.jsonl").path)
    } throws: { error in "\(error)" == "data file not found: \(folder.path)/nope.jsonl" }
    #expect {
      try DatasetConfig.load(folder)
    } throws: { error in "\(error)" == "cannot read \(folder.path): is a directory" }
    let config = try writeText(folder, "d.yaml", "datasets:\n  - json_path: missing.jsonl\n")
    #expect {
      try DataTools.inspect(path: config.path)
    } throws: { error in "\(error)".contains("missing.jsonl") && !"\(error)".contains("Cocoa") }
  }

  @Test func zeroRowParquetIsAnEmptySource() throws {
    let folder = try makeTempFolder()
    try Self.zeroRowParquet().write(to: folder.appendingPathComponent("empty.parquet"))
    let loaded = try DatasetLoader.load(path: folder.appendingPathComponent("empty.parquet").path)
    #expect(loaded.examples.isEmpty && loaded.summary.skipped == 0)
    let report = try DataTools.inspect(path: folder.path)
    #expect(report.contains("no records: the dataset is empty"))
    // Next to a file with records, the empty file is simply empty.
    try writePNG(folder, "a.png", width: 50, height: 40)
    let yaml = try writeText(folder, "d.yaml", "datasets:\n  - json_path: empty.parquet\n  - json_path: d.jsonl\n")
    try writeText(folder, "d.jsonl", grounding("a.png"))
    let both = try DatasetLoader.load(try DatasetConfig.load(yaml))
    #expect(both.examples.count == 1)
    #expect(try !DataTools.inspect(path: yaml.path).contains("no records: the dataset is empty"))
  }

  /// A Parquet file with one optional string column and no row groups, encoded by hand
  /// (Thrift compact FileMetaData: version, schema, num_rows 0, empty row_groups).
  static func zeroRowParquet() -> Data {
    var meta: [UInt8] = [0x15, 0x02, 0x19, 0x2C]
    meta += [0x48, 6] + Array("schema".utf8) + [0x15, 0x02, 0x00]
    meta += [0x15, 0x0C, 0x25, 0x02, 0x18, 4] + Array("text".utf8) + [0x25, 0x00, 0x00]
    meta += [0x16, 0x00, 0x19, 0x0C, 0x00]
    let length = UInt32(meta.count)
    let footer = [UInt8(length & 0xFF), UInt8((length >> 8) & 0xFF), UInt8((length >> 16) & 0xFF), UInt8(length >> 24)]
    return Data(Array("PAR1".utf8) + meta + footer + Array("PAR1".utf8))
  }

  // MARK: Outputs

  @Test func convertRefusesToOverwriteItsInput() throws {
    let folder = try makeTempFolder()
    try writePNG(folder, "a.png", width: 50, height: 40)
    let input = try writeText(folder, "d.jsonl", grounding("a.png") + "\n")
    let before = try Data(contentsOf: input)
    #expect {
      try DataTools.convert(input: input.path, output: input, overwrite: true)
    } throws: { error in "\(error)".contains("is the input file") }
    let link = folder.appendingPathComponent("link.jsonl")
    try FileManager.default.createSymbolicLink(at: link, withDestinationURL: input)
    #expect(throws: DatasetError.self) { try DataTools.convert(input: input.path, output: link, overwrite: true) }
    let dotted = URL(fileURLWithPath: folder.path + "/sub/../d.jsonl")
    #expect(throws: DatasetError.self) { try DataTools.convert(input: folder.path, output: dotted, overwrite: true) }
    #expect(try Data(contentsOf: input) == before)
    // An output folder that holds an input would delete it when replaced.
    let nested = try writeText(try makeTempFolder(), "d.jsonl", grounding("a.png") + "\n")
    #expect {
      try SafeOutput.refuseInputs(nested.deletingLastPathComponent(), inputs: [nested])
    } throws: { error in "\(error)".contains("holds the input file") }
    let parent = try makeTempFolder()
    try FileManager.default.createDirectory(at: parent.appendingPathComponent("out_images"), withIntermediateDirectories: true)
    let inside = try writeText(parent.appendingPathComponent("out_images"), "d.jsonl", "{}\n")
    #expect {
      try DataTools.convert(input: inside.path, output: parent.appendingPathComponent("out.jsonl"), overwrite: true)
    } throws: { error in "\(error)".contains("out_images: holds the input file") }
    #expect(FileManager.default.fileExists(atPath: inside.path))
  }

  @Test func convertWritesAtomicallyAndAsksBeforeReplacing() throws {
    let folder = try makeTempFolder()
    try writePNG(folder, "a.png", width: 50, height: 40)
    let input = try writeText(folder, "d.jsonl", grounding("a.png") + "\n")
    let output = folder.appendingPathComponent("out/c.jsonl")
    let result = try DataTools.convert(input: input.path, output: output)
    #expect(result.records == 1)
    #expect {
      try DataTools.convert(input: input.path, output: output)
    } throws: { error in "\(error)".contains("already exists; pass --overwrite") }
    #expect(try DataTools.convert(input: input.path, output: output, overwrite: true).records == 1)
    // A failing conversion leaves neither a partial output nor temporary files.
    let bad = try writeText(folder, "bad.jsonl", grounding("a.png") + "\n{not json\n")
    let target = folder.appendingPathComponent("out/bad.jsonl")
    #expect(throws: DatasetError.self) { try DataTools.convert(input: bad.path, output: target) }
    let left = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("out").path)
    #expect(left == ["c.jsonl"])
  }

  @Test func safeFolderWritesReplaceOnlyWhenAsked() throws {
    let parent = try makeTempFolder()
    let target = parent.appendingPathComponent("data")
    try SafeOutput.writeFolder(target, overwrite: false) { try writeText($0, "one.txt", "1") }
    #expect {
      try SafeOutput.writeFolder(target, overwrite: false) { try writeText($0, "two.txt", "2") }
    } throws: { error in "\(error)".contains("non-empty folder; pass --overwrite") }
    struct Stop: Error {}
    #expect(throws: Stop.self) {
      try SafeOutput.writeFolder(target, overwrite: true) { folder in
        try writeText(folder, "two.txt", "2")
        throw Stop()
      }
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: target.path) == ["one.txt"])
    try SafeOutput.writeFolder(target, overwrite: true) { try writeText($0, "two.txt", "2") }
    #expect(try FileManager.default.contentsOfDirectory(atPath: target.path) == ["two.txt"])
    #expect(try FileManager.default.contentsOfDirectory(atPath: parent.path) == ["data"])
  }
}
