import Common
import Foundation
import Testing

@testable import ModelConfig

@Suite struct ConfigErrorTests {
  func hubObject(_ model: String = "qwen2_5_vl_3b_instruct") throws -> [String: JSONValue] {
    try #require(try JSONValue.parse(Data(contentsOf: Fixtures.url("configs/\(model).hub4.json"))).objectValue)
  }

  func decode(_ object: [String: JSONValue]) throws -> QwenVLConfig {
    try QwenVLConfig(jsonText: JSONValue.object(object).jsonString)
  }

  func expectError(_ expected: ModelConfigError, _ body: () throws -> Void) {
    do {
      try body()
      Issue.record("no error; expected \(expected)")
    } catch let error as ModelConfigError {
      #expect(error == expected)
    } catch {
      Issue.record("unexpected \(error)")
    }
  }

  /// Trap fields (docs/qwen-vl.md 1.2): their absence must not fall back to a class default.
  @Test(arguments: ["rms_norm_eps", "vocab_size", "hidden_size", "tie_word_embeddings", "rope_theta", "num_key_value_heads"])
  func missingTextTrapField(field: String) throws {
    var object = try hubObject()
    object[field] = nil
    expectError(.missingField(file: "config.json", field: field)) { _ = try decode(object) }
  }

  @Test(arguments: ["hidden_size", "tokens_per_second", "out_hidden_size", "fullatt_block_indexes", "window_size"])
  func missingVisionTrapField(field: String) throws {
    var object = try hubObject()
    var vision = try #require(object["vision_config"]?.objectValue)
    vision[field] = nil
    object["vision_config"] = .object(vision)
    expectError(.missingField(file: "config.json", field: "vision_config.\(field)")) { _ = try decode(object) }
  }

  @Test func missingFieldInTextConfigNamesNestedPath() throws {
    var object = try #require(try JSONValue.parse(Data(contentsOf: Fixtures.url("configs/qwen2_5_vl_3b_instruct.tf5.json"))).objectValue)
    var text = try #require(object["text_config"]?.objectValue)
    text["rms_norm_eps"] = nil
    object["text_config"] = .object(text)
    expectError(.missingField(file: "config.json", field: "text_config.rms_norm_eps")) { _ = try decode(object) }
  }

  @Test func qwen2VisionNeedsEmbedDimAndMlpRatio() throws {
    var object = try hubObject("qwen2_vl_2b_instruct")
    var vision = try #require(object["vision_config"]?.objectValue)
    vision["mlp_ratio"] = nil
    object["vision_config"] = .object(vision)
    expectError(.missingField(file: "config.json", field: "vision_config.mlp_ratio")) { _ = try decode(object) }
  }

  @Test func wrongTypesAndValues() throws {
    var object = try hubObject()
    object["num_hidden_layers"] = .string("36")
    expectError(.wrongType(file: "config.json", field: "num_hidden_layers", expected: "an integer", found: "\"36\"")) { _ = try decode(object) }

    object = try hubObject()
    object["rope_scaling"] = .object(["type": .string("mrope"), "mrope_section": .array([.int(16), .int(24), .int(16)])])
    #expect(throws: ModelConfigError.self) { _ = try decode(object) }

    object = try hubObject()
    object["rope_scaling"] = .object(["type": .string("yarn"), "mrope_section": .array([.int(16), .int(24), .int(24)])])
    #expect(throws: ModelConfigError.self) { _ = try decode(object) }

    object = try hubObject()
    object["model_type"] = .string("llava")
    expectError(.unsupportedModel(file: "config.json", modelType: "llava")) { _ = try decode(object) }

    object = try hubObject()
    var vision = try #require(object["vision_config"]?.objectValue)
    vision["out_hidden_size"] = .int(3584)
    object["vision_config"] = .object(vision)
    expectError(.invalidValue(file: "config.json", field: "vision_config.out_hidden_size", reason: "merger output 3584 differs from the text hidden_size 2048")) { _ = try decode(object) }

    #expect(throws: ModelConfigError.self) { _ = try QwenVLConfig(jsonText: "[1]") }
    #expect(throws: ModelConfigError.self) { _ = try QwenVLConfig(jsonText: "{") }
  }

  @Test func missingAndBrokenFiles() throws {
    let folder = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let url = folder.appendingPathComponent("config.json")
    expectError(.fileMissing(path: url.path)) { _ = try QwenVLConfig(contentsOf: url) }
    try Data("{not json".utf8).write(to: url)
    #expect(throws: ModelConfigError.self) { _ = try QwenVLConfig(contentsOf: url) }
    do { _ = try QwenVLConfig(contentsOf: url) } catch let error as ModelConfigError {
      #expect(error.description.contains(url.path))
    }
  }
}
