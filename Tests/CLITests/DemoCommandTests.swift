import Foundation
import Imaging
import Testing

/// `vlmrl demo baseline` finds the best constant box by exhaustive search; `vlmrl demo samples`
/// draws ground truth and both predictions where they belong.
@Suite struct DemoCommandTests {
  static func workFolder() throws -> URL {
    let work = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-demo-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: work.appendingPathComponent("images"), withIntermediateDirectories: true)
    return work
  }

  /// Single-box records of 40x40 images with the given boxes (images named but not needed by baseline).
  static func writeRecords(_ boxes: [[Int]], to work: URL) throws {
    let records = boxes.enumerated().map { index, box in
      "{\"width\": 40, \"height\": 40, \"instruction\": \"Locate the red square.\", \"bbox\": \(box), "
        + "\"image_path\": \"images/\(index).png\"}"
    }
    try Data(("[" + records.joined(separator: ",\n") + "]").utf8).write(to: work.appendingPathComponent("data.json"))
  }

  @Test func baselineFindsTheBoxMostRecordsShare() throws {
    let executable = try #require(
      Harness.executable(), "no vlmrl binary next to the test bundle: build it (swift build --build-tests) or set VLMRL=path")
    let work = try Self.workFolder()
    defer { try? FileManager.default.removeItem(at: work) }
    // Two records at A, one at B, disjoint: the best mean IoU is A's box with 2/3; the mean box
    // (or any box between them) scores less.
    try Self.writeRecords([[4, 6, 20, 22], [4, 6, 20, 22], [24, 26, 36, 38]], to: work)
    let run = try Harness.run(executable, ["demo", "baseline", "--data", "data.json"], in: work, timeout: 120)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("best for iou            [4, 6, 20, 22]  iou 0.6667"), "\(run.stdout)")
    #expect(run.stdout.contains("constant box: iou 0.6667,"), "\(run.stdout)")

    let bad = try Harness.run(executable, ["demo", "baseline", "--data", "data.json", "--step", "0"], in: work)
    #expect(bad.status != 0 && bad.stderr.contains("--step 0"), "\(bad.stderr)")
  }

  @Test func samplesDrawTruthBeforeAndAfterBoxes() throws {
    let executable = try #require(
      Harness.executable(), "no vlmrl binary next to the test bundle: build it (swift build --build-tests) or set VLMRL=path")
    let work = try Self.workFolder()
    defer { try? FileManager.default.removeItem(at: work) }
    try Self.writeRecords([[8, 8, 32, 32], [0, 0, 20, 20]], to: work)
    let grey = RGBImage(width: 40, height: 40, pixels: [UInt8](repeating: 200, count: 40 * 40 * 3))
    for index in 0..<2 { try encodePNG(grey).write(to: work.appendingPathComponent("images/\(index).png")) }
    func samples(_ name: String, _ outputs: [String]) throws {
      let lines = outputs.enumerated().map { index, output in
        "{\"source\": \"\(work.path)/data.json #\(index)\", \"output\": \"\(output)\"}"
      }
      try Data(lines.joined(separator: "\n").utf8).write(to: work.appendingPathComponent(name))
    }
    try samples("before.jsonl", ["[2, 2, 12, 12]", "no box"])
    try samples("after.jsonl", ["[20, 20, 38, 38]", "[0, 0, 20, 20]"])
    let run = try Harness.run(executable, ["demo", "samples", "--data", "data.json", "--before", "before.jsonl", "--after",
                                           "after.jsonl", "--out", "samples.png", "--count", "2", "--scale", "2"], in: work)
    #expect(run.status == 0, "\(run.stderr)")
    let sheet = try decodeImage(contentsOf: work.appendingPathComponent("samples.png"))
    // Two 80x80 tiles side by side with 4-pixel gaps.
    #expect(sheet.width == 2 * 80 + 3 * 4 && sheet.height == 80 + 2 * 4)
    func pixel(_ tile: Int, _ x: Int, _ y: Int) -> [UInt8] {
      let offset = ((4 + y) * sheet.width + 4 + tile * 84 + x) * 3
      return Array(sheet.pixels[offset..<offset + 3])
    }
    #expect(pixel(0, 16, 40) == [0, 0, 0])  // truth's left edge, x1 8 at scale 2
    #expect(pixel(0, 6, 10) == [30, 90, 255])  // before: [2, 2, 12, 12], inset 2
    #expect(pixel(0, 44, 60) == [230, 20, 20])  // after: [20, 20, 38, 38], inset 4
    #expect(pixel(0, 40, 40) == [200, 200, 200])  // inside every box: the image
    #expect(pixel(1, 20, 20) == [200, 200, 200])  // second image: no before box, after inside
    #expect(pixel(1, 4, 20) == [230, 20, 20])
  }
}
