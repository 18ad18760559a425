import Common
import Foundation
import Testing

@testable import ModelConfig

/// Values a user can write in config.json that would crash or hang the model later must be
/// refused at load, naming the file and the field (docs/reliability.md).
@Suite struct ValueLimitTests {
  func hubObject(_ model: String = "qwen2_5_vl_3b_instruct") throws -> [String: JSONValue] {
    try #require(try JSONValue.parse(Data(contentsOf: Fixtures.url("configs/\(model).hub4.json"))).objectValue)
  }

  /// The error message of decoding `object`, or nil when it decodes.
  func message(_ object: [String: JSONValue]) -> String? {
    do {
      _ = try QwenVLConfig(jsonText: JSONValue.object(object).jsonString)
      return nil
    } catch {
      return "\(error)"
    }
  }

  static let textCases: [(String, JSONValue, String)] = [
    ("hidden_act", .string("relu6"), "not supported; supported: silu"),
    ("num_hidden_layers", .int(-1), "outside the supported range 1...1024"),
    ("num_hidden_layers", .int(1_000_000_000), "outside the supported range"),
    ("num_attention_heads", .int(0), "num_attention_heads"),
    ("hidden_size", .int(2049), "not divisible by num_attention_heads"),
    ("rms_norm_eps", .double(-1e-6), "must be a finite number in [0, 1)"),
    ("rope_theta", .int(0), "must be a positive finite number"),
    ("rope_theta", .double(-5), "must be a positive finite number"),
    ("vocab_size", .int(0), "outside the supported range"),
    ("intermediate_size", .int(-3), "outside the supported range"),
    ("max_position_embeddings", .int(Int.max), "outside the supported range"),
    ("image_token_id", .int(999_999_999), "outside the vocabulary"),
    ("eos_token_id", .int(-1), "outside the vocabulary"),
    ("attention_dropout", .double(1.5), "must be in [0, 1)"),
  ]

  @Test(arguments: 0..<textCases.count)
  func textValueIsRefusedNamingTheField(index: Int) throws {
    let (field, value, expected) = Self.textCases[index]
    var object = try hubObject()
    object[field] = value
    let text = try #require(message(object), "\(field) = \(value) was accepted")
    #expect(text.hasPrefix("config.json: field '\(field)'"), "\(text)")
    #expect(text.contains(expected), "\(text)")
  }

  static let visionCases: [(String, JSONValue, String)] = [
    ("depth", .int(0), "must be positive"),
    ("depth", .int(100_000), "outside the supported range"),
    ("hidden_act", .string("mish"), "not supported"),
    ("num_heads", .int(0), "must be positive"),
    ("in_chans", .int(4), "outside the supported range 3...3"),
    ("window_size", .int(100), "not a multiple of patch_size x spatial_merge_size"),
    ("fullatt_block_indexes", .array([.int(7), .int(40)]), "block 40 is not one of the 32 blocks"),
    ("tokens_per_second", .int(0), "must be positive"),
  ]

  @Test(arguments: 0..<visionCases.count)
  func visionValueIsRefusedNamingTheField(index: Int) throws {
    let (field, value, expected) = Self.visionCases[index]
    var object = try hubObject()
    var vision = try #require(object["vision_config"]?.objectValue)
    vision[field] = value
    object["vision_config"] = .object(vision)
    let text = try #require(message(object), "vision_config.\(field) = \(value) was accepted")
    #expect(text.hasPrefix("config.json: field 'vision_config.\(field)'"), "\(text)")
    #expect(text.contains(expected), "\(text)")
  }

  @Test func hugeMlpRatioIsRefusedNotTrapped() throws {
    var object = try hubObject("qwen2_vl_2b_instruct")
    var vision = try #require(object["vision_config"]?.objectValue)
    vision["mlp_ratio"] = .double(1e300)
    object["vision_config"] = .object(vision)
    #expect(message(object)?.contains("vision_config.mlp_ratio") == true)
    vision["mlp_ratio"] = .int(Int.max)
    object["vision_config"] = .object(vision)
    #expect(message(object)?.contains("vision_config.mlp_ratio") == true)
  }

  @Test func mropeSectionOverflowIsRefused() throws {
    var object = try hubObject()
    object["rope_scaling"] = .object(["type": .string("mrope"), "mrope_section": .array([.int(Int.max), .int(Int.max), .int(2)])])
    #expect(message(object)?.contains("mrope_section") == true)
  }

  @Test func releasedConfigsStillLoad() throws {
    for name in ["qwen2_5_vl_3b_instruct", "qwen2_vl_2b_instruct"] {
      #expect(message(try hubObject(name)) == nil, "\(name)")
    }
  }

  @Test func generationConfigValuesAreChecked() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mc-gen-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let file = folder.appendingPathComponent("generation_config.json")
    try Data(#"{"eos_token_id": [1, 2], "temperature": 0.7, "top_p": 0.8, "top_k": 0, "do_sample": true}"#.utf8).write(to: file)
    #expect(try GenerationConfig(contentsOf: file).eosTokenIds == [1, 2])
    for (text, field) in [(#"{"temperature": -1}"#, "temperature"), (#"{"top_p": 1.5}"#, "top_p"), (#"{"top_k": -2}"#, "top_k"),
                          (#"{"repetition_penalty": 0}"#, "repetition_penalty"), (#"{"max_new_tokens": -1}"#, "max_new_tokens"),
                          (#"{"eos_token_id": [-3]}"#, "eos_token_id")] {
      try Data(text.utf8).write(to: file)
      #expect {
        try GenerationConfig(contentsOf: file)
      } throws: { error in "\(error)".hasPrefix("generation_config.json: field '\(field)'") }
    }
  }

  @Test func malformedJSONGivesLineAndColumn() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mc-json-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let file = folder.appendingPathComponent("config.json")
    try Data("{\n  \"model_type\": \"qwen2_5_vl\",\n  \"hidden_size\": 12 34\n}\n".utf8).write(to: file)
    #expect {
      try QwenVLConfig(contentsOf: file)
    } throws: { error in
      "\(error)" == "\(file.path): invalid JSON: line 3, column 21: unexpected '3'; expected ',' or '}'"
    }
    try Data("{\"rope_theta\": NaN}".utf8).write(to: file)
    #expect(throws: ModelConfigError.self) { try QwenVLConfig(contentsOf: file) }
    try Data("{\"rope_theta\": 1e999}".utf8).write(to: file)
    #expect {
      try QwenVLConfig(contentsOf: file)
    } throws: { error in !"\(error)".contains("NSCocoaErrorDomain") && "\(error)".contains("config.json") }
    try Data("{\"a\": \"unterminated".utf8).write(to: file)
    #expect {
      try QwenVLConfig(contentsOf: file)
    } throws: { error in "\(error)".contains("line 1, column 20: unexpected end of file inside a string") }
    #expect {
      try QwenVLConfig(contentsOf: folder)
    } throws: { error in "\(error)" == "\(folder.path): cannot read: is a directory" }
  }
}
