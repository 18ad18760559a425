import Common
import Foundation
import Testing
@testable import Rewards

/// Unknown parameter keys are errors; shared blocks reach only the functions that read each key.
@Suite struct ParameterTests {
  /// A valid value for every declared key (so each entry's key list can be built as declared).
  static let sampleValues: [String: JSONValue] = [
    "allow_decimals": .bool(true), "box_frame": .string("norm1000"), "alpha": .double(0.5),
    "match_iou": .double(0.4), "pixel_inclusive": .bool(true), "iou_threshold": .double(0.7),
    "mdi_balance_ratio": .double(3), "command": .string("true"), "timeout": .double(5), "name": .string("mine"),
    "url": .string("http://127.0.0.1:9/v1"), "retries": .int(1), "model": .string("m"), "api_key": .string("k"),
    "api_key_env": .string("NO_SUCH_VARIABLE"), "backoff": .double(0.1), "max_concurrency": .int(2),
    "generate_questions": .bool(true), "num_questions": .int(3), "question_cache_size": .int(10), "verdict_cache_size": .int(16),
    "generation_max_tokens": .int(256), "beta": .double(3), "gamma": .double(0.5), "wordnet": .bool(false),
    "meteor_weight": .double(0.5), "judge_weight": .double(0.5), "judge_fallback": .string("meteor"),
    "mode": .string("persistent"),
  ]

  @Test func everyRewardBuildsWithAllItsDeclaredKeys() throws {
    for name in RewardRegistry.names {
      let keys = try RewardRegistry.parameterKeys(for: name)
      var values: [String: JSONValue] = [:]
      for key in keys {
        let value: JSONValue = try #require(Self.sampleValues[key], "no sample value for \(key) of \(name)")
        values[key] = value
      }
      _ = try RewardRegistry.make(name, parameters: values)
    }
    #expect(try RewardRegistry.parameterKeys(for: "rec_accuracy") == ["box_frame", "iou_threshold", "pixel_inclusive"])
    #expect(try RewardRegistry.parameterKeys(for: "multi_gaussian_plane_reward") == ["alpha", "box_frame", "match_iou"])
    #expect(try RewardRegistry.parameterKeys(for: "think_format").isEmpty)
    #expect(throws: RewardError.self) { _ = try RewardRegistry.parameterKeys(for: "iouu") }
  }

  @Test func unknownKeyOfOneFunctionIsAnErrorListingItsKeys() throws {
    #expect(throws: RewardError.unknownParameter(
      parameter: "box_fram", rewards: ["iou"], known: ["box_frame", "pixel_inclusive"])
    ) { _ = try RewardRegistry.make("iou", parameters: ["box_fram": .string("resized")]) }
    do {
      _ = try RewardRegistry.make("think_format", parameters: ["allow_decimals": .bool(true)])
      Issue.record("expected an error")
    } catch {
      #expect(String(describing: error) == "unknown parameter 'allow_decimals' for reward 'think_format'; known: none")
    }
    // `wordnet` belongs to meteor and caption, not to the judge alone.
    #expect(throws: RewardError.self) {
      _ = try RewardRegistry.make("llm_judge", parameters: ["url": .string("http://127.0.0.1:9"), "wordnet": .bool(false)])
    }
  }

  @Test func sharedKeysGoOnlyWhereRead() async throws {
    // `box_frame` is read by `iou` and not by `format`; `allow_decimals` the other way round.
    let functions = try RewardRegistry.make(
      ["iou", "format"], shared: ["box_frame": .string("norm1000"), "allow_decimals": .bool(true)])
    let sample = RewardSample(
      completion: "[50.0, 0, 100, 100]", images: [ImageGeometry(width: 200, height: 100)],
      fields: ["bbox": boxJSON([10, 0, 20, 10])])
    // norm1000 on a 200x100 image: [50, 0, 100, 100] -> [10, 0, 20, 10], exactly the truth.
    #expect(try await functions[0].score([sample]) == [1])
    // Decimals allowed, so the bare box with `50.0` is well formed.
    #expect(try await functions[1].score([sample]) == [1])
  }

  @Test func sharedTypoListsTheUnionOfKnownKeys() throws {
    #expect(throws: RewardError.unknownParameter(
      parameter: "box_fram", rewards: ["iou", "format"], known: ["allow_decimals", "box_frame", "pixel_inclusive"])
    ) { _ = try RewardRegistry.make(["iou", "format"], shared: ["box_fram": .string("original")]) }
    // A key another registry function reads is still unknown to the selected ones.
    #expect(throws: RewardError.self) {
      _ = try RewardRegistry.make(["think_format"], shared: ["mdi_balance_ratio": .double(3)])
    }
  }

  @Test func perFunctionBlocksOverrideAndAreCheckedAlone() async throws {
    let sample = RewardSample(
      completion: "[50, 0, 100, 100]", images: [ImageGeometry(width: 200, height: 100)],
      fields: ["bbox": boxJSON([10, 0, 20, 10])])
    // Shared `original` (no overlap: IoU 0), overridden by `norm1000` for `iou` only.
    let functions = try RewardRegistry.make(
      ["iou", "box_iou"],
      parameters: ["box_frame": .string("original"), "iou": .object(["box_frame": .string("norm1000")])])
    #expect(try await functions[0].score([sample]) == [1])
    #expect(try await functions[1].score([sample]) == [0])
    // A block key the function does not read names that function.
    #expect(throws: RewardError.unknownParameter(parameter: "alpha", rewards: ["iou"], known: ["box_frame", "pixel_inclusive"])) {
      _ = try RewardRegistry.make(["iou", "gaussian_point"], parameters: ["iou": .object(["alpha": .double(0.3)])])
    }
    // A block for a reward that is not selected is an error, not silently dropped.
    #expect(throws: RewardError.self) {
      _ = try RewardRegistry.make(["iou"], parameters: ["format": .object(["allow_decimals": .bool(true)])])
    }
  }

  @Test func commandLineStringStaysASharedParameter() async throws {
    // `command` is both a registry name and the command reward's own key: a string is the key.
    let functions = try RewardRegistry.make(["command"], parameters: ["command": .string("cat > /dev/null; echo 0.25")])
    #expect(try await functions[0].score([RewardSample(completion: "x")]) == [0.25])
  }

  @Test func rewardCommandRejectsATypo() async throws {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("rewards-\(UUID().uuidString).jsonl")
    try #"{"completion": "[1, 2, 3, 4]", "bbox": [1, 2, 3, 4]}"#.write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    do {
      _ = try await RewardCommand.run(
        funcs: ["iou", "format"], weights: nil, parameters: ["pixel_inclusiv": .bool(true)], dataFile: file, json: false)
      Issue.record("expected an error")
    } catch {
      #expect(String(describing: error).contains("unknown parameter 'pixel_inclusiv'"))
      #expect(String(describing: error).contains("known: allow_decimals, box_frame, pixel_inclusive"))
    }
    let lines = try await RewardCommand.run(
      funcs: ["iou", "format"], weights: nil, parameters: ["pixel_inclusive": .bool(true)], dataFile: file, json: false)
    #expect(lines.first == "#0  iou=1.0000  format=1.0000  total=2.0000")
  }
}
