import Common
import Foundation
import Testing
@testable import Rewards

@Suite struct CommandTests {
  func write(_ text: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("rewards-\(UUID().uuidString).jsonl")
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url
  }

  @Test func scoresRecordsAsTextAndJSON() async throws {
    let file = try write("""
      {"completion": "<answer>[0, 0, 10, 5]</answer>", "bbox": [0, 0, 10, 10]}
      {"completion": "[50, 25, 100, 75]", "bbox": [100, 50, 200, 150], "image_size": [200, 150]}

      {"completion": "nothing", "bbox": [0, 0, 10, 10]}
      """)
    defer { try? FileManager.default.removeItem(at: file) }
    let text = try await RewardCommand.run(funcs: ["iou", "format"], weights: [2, 1], parameters: [:], dataFile: file, json: false)
    #expect(text.count == 4)
    #expect(text[0] == "#0  iou=0.5000  format=1.0000  total=2.0000")
    #expect(text[1] == "#1  iou=0.0000  format=1.0000  total=1.0000")
    #expect(text[3].hasPrefix("mean over 3 records: iou=0.1667  format=0.6667"))
    // A per-function parameter block: `iou` reads 0..1000 normalized coordinates.
    let lines = try await RewardCommand.run(
      funcs: ["iou"], weights: nil,
      parameters: ["iou": .object(["box_frame": .string("norm1000")])], dataFile: file, json: true)
    let second = try JSONValue.parse(lines[1])
    // [50,25,100,75] in 0..1000 of a 200x150 image is [10, 3.75, 20, 11.25]: no overlap.
    #expect(second["rewards"]?["iou"]?.doubleValue == 0)
    #expect(second["index"] == .int(1))
    #expect(try JSONValue.parse(lines[2])["total"]?.doubleValue == 0)
  }

  @Test func columnsFollowMetricKeys() async throws {
    let file = try write(#"{"completion": "[0, 0, 10, 10]", "bbox": [0, 0, 10, 10]}"# + "\n")
    defer { try? FileManager.default.removeItem(at: file) }
    // A repeated plain name, a labelled name and a renamed one: one column each.
    let lines = try await RewardRunnerColumns.run(file: file)
    #expect(lines[0] == "#0  command=1.0000  command#2=1.0000  command:b=3.0000  mine=4.0000  total=9.0000")
  }

  @Test func badRecordsNameFileAndLine() async throws {
    let file = try write("{\"completion\": \"x\"}\n{\"prompt\": \"no completion\"}\n")
    defer { try? FileManager.default.removeItem(at: file) }
    do {
      _ = try await RewardCommand.run(funcs: ["format"], weights: nil, parameters: [:], dataFile: file, json: false)
      Issue.record("expected an error")
    } catch {
      #expect(String(describing: error).contains(":2: missing string field 'completion'"))
    }
    await #expect(throws: RewardError.self) {
      _ = try await RewardCommand.run(funcs: ["format"], weights: [1, 2], parameters: [:], dataFile: file, json: false)
    }
  }
}

enum RewardRunnerColumns {
  static func run(file: URL) async throws -> [String] {
    try await RewardCommand.run(
      funcs: ["command", "command", "command:b", "command:c"], weights: nil,
      parameters: [
        "command": .string("cat > /dev/null; echo 1"),
        "command:b": .object(["command": .string("cat > /dev/null; echo 3")]),
        "command:c": .object(["command": .string("cat > /dev/null; echo 4"), "name": .string("mine")]),
      ], dataFile: file, json: false)
  }
}
