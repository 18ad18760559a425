import Common
import Foundation
import Testing

@testable import Datasets

@Suite struct BadRecordTests {
  /// One good record and one of each failure, with the reason each must be counted under.
  func writeMixed(_ folder: URL) throws -> String {
    try writePNG(folder, "ok.png", width: 50, height: 40)
    try writeText(folder, "broken.png", "not an image")
    let records = [
      #"{"image_path": "ok.png", "width": 50, "height": 40, "instruction": "i", "bbox": [1, 1, 10, 10]}"#,
      #"{"image_path": "ok.png", "width": 50, "height": 40, "instruction": "i", "bbox": [1, 1, 60, 10]}"#,
      #"{"image_path": "ok.png", "width": 50, "height": 40, "instruction": "i", "bbox": [10, 1, 5, 10]}"#,
      #"{"image_path": "ok.png", "width": 50, "height": 40, "bbox": [1, 1, 5, 10]}"#,
      #"{"image_path": "missing.png", "width": 50, "height": 40, "instruction": "i", "bbox": [1, 1, 5, 10]}"#,
      #"{"image": "broken.png", "problem": "p", "solution": "s"}"#,
      #"{"something": "else"}"#,
      #"{"image_path": "ok.png", "width": 50, "height": 40, "instruction": "i", "bbox": [1, 1, 5]"#,
      #"[1, 2]"#,
    ]
    return try writeText(folder, "mixed.jsonl", records.joined(separator: "\n")).path
  }

  @Test func everyBadRecordIsNamedAndCounted() throws {
    let folder = try makeTempFolder()
    let loaded = try DatasetLoader.load(path: try writeMixed(folder))
    #expect(loaded.examples.count == 1)
    #expect(loaded.summary.skippedByReason == [
      .boxOutsideImage: 1, .invalidBox: 1, .missingField: 1, .imageNotFound: 1, .unreadableImage: 1,
      .unknownKind: 1, .malformedJSON: 1, .notAnObject: 1,
    ])
    #expect(loaded.summary.skipped == 8)
    let outside = try #require(loaded.summary.badRecords.first { $0.reason == .boxOutsideImage })
    #expect(outside.location.index == 1 && outside.field == "bbox")
    #expect(outside.location.file.hasSuffix("mixed.jsonl"))
    #expect(loaded.summary.badRecords.first { $0.reason == .missingField }?.field == "instruction")
    #expect(loaded.summary.lines.contains("  box outside image: 1"))
  }

  @Test func errorPolicyStopsAtFirstBadRecord() throws {
    let folder = try makeTempFolder()
    var options = LoadOptions()
    options.onBadRecord = .error
    do {
      _ = try DatasetLoader.load(path: try writeMixed(folder), options: options)
      Issue.record("expected a bad-record error")
    } catch DatasetError.badRecord(let bad) {
      #expect(bad.location.index == 1)
      #expect(bad.reason == .boxOutsideImage)
    }
  }

  @Test func nonFiniteBoxNumbers() {
    #expect(throws: RecordProblem.self) { try Box.parse(.array([.double(.nan), .int(0), .int(2), .int(2)]), field: "bbox") }
    do {
      _ = try Box.parse(.array([.int(0), .int(0), .double(.infinity), .int(2)]), field: "bbox")
    } catch let problem as RecordProblem {
      #expect(problem.reason == .nonFiniteNumber)
    } catch {
      Issue.record("unexpected \(error)")
    }
  }

  @Test func bigImageAndPromptLengthFilters() throws {
    let folder = try makeTempFolder()
    try writePNG(folder, "small.png", width: 20, height: 10)
    try writePNG(folder, "wide.png", width: 1100, height: 4)
    let records = [
      #"{"image": "small.png", "problem": "short", "solution": "1"}"#,
      #"{"image": "wide.png", "problem": "short", "solution": "1"}"#,
      #"{"image": "small.png", "problem": "\#(String(repeating: "word ", count: 30))", "solution": "1"}"#,
    ]
    let path = try writeText(folder, "f.jsonl", records.joined(separator: "\n")).path
    var options = LoadOptions()
    options.maxImageSide = LoadOptions.bigImageSide
    let bySize = try DatasetLoader.load(path: path, options: options)
    #expect(bySize.examples.map(\.source.index) == [0, 2])
    #expect(bySize.summary.skippedByReason == [.imageTooBig: 1])

    // Text: one token per word; image: one token per 10x10 patch. Record 0 has 16 text tokens
    // (template) + 2 image tokens; record 2 has 30 more words.
    options.maxImageSide = nil
    options.maxImagePixels = 1000
    options.promptLimit = PromptLimit(
      maxTokens: 40, textTokens: { $0.split(separator: " ").count },
      imageTokens: { width, height in (width / 10) * (height / 10) })
    let byLength = try DatasetLoader.load(path: path, options: options)
    #expect(byLength.examples.map(\.source.index) == [0])
    #expect(byLength.summary.skippedByReason == [.imageTooBig: 1, .promptTooLong: 1])
    let limit = try #require(options.promptLimit)
    #expect(limit.tokens(of: byLength.examples[0]) == 16 + 2)
  }
}
