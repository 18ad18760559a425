import Common
import Foundation
import Testing

@testable import ModelConfig

enum Fixtures {
  static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
  static func url(_ path: String) -> URL { folder.appendingPathComponent(path) }

  static func json(_ path: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url(path))) as? [String: Any])
  }

  static let configNames = [
    "qwen2_vl_2b_instruct", "qwen2_vl_7b_instruct", "qwen2_5_vl_3b_instruct", "qwen2_5_vl_7b_instruct",
  ].flatMap { ["\($0).hub4.json", "\($0).tf5.json"] }
}

func temporaryDirectory() throws -> URL {
  let url = FileManager.default.temporaryDirectory.appendingPathComponent("modelconfig-tests-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}

@Suite struct QwenVLConfigGoldenTests {
  /// Every config file decodes to the values transformers itself reads from it.
  @Test(arguments: Fixtures.configNames)
  func matchesTransformersView(file: String) throws {
    let config = try QwenVLConfig(contentsOf: Fixtures.url("configs/\(file)"))
    let expected = try #require(try Fixtures.json("configs/expected.json")[file] as? [String: Any])
    let text = try #require(expected["text"] as? [String: Any])
    let vision = try #require(expected["vision"] as? [String: Any])
    #expect(config.family.rawValue == expected["family"] as? String)
    #expect(config.sourceLayout == (file.hasSuffix("tf5.json") ? .transformers5 : .transformers4))
    #expect(config.text.hiddenSize == text["hidden_size"] as? Int)
    #expect(config.text.intermediateSize == text["intermediate_size"] as? Int)
    #expect(config.text.numHiddenLayers == text["num_hidden_layers"] as? Int)
    #expect(config.text.numAttentionHeads == text["num_attention_heads"] as? Int)
    #expect(config.text.numKeyValueHeads == text["num_key_value_heads"] as? Int)
    #expect(config.text.vocabSize == text["vocab_size"] as? Int)
    #expect(config.text.rmsNormEps == text["rms_norm_eps"] as? Double)
    #expect(config.text.ropeTheta == text["rope_theta"] as? Double)
    #expect(config.text.mropeSection == text["mrope_section"] as? [Int])
    #expect(config.text.maxPositionEmbeddings == text["max_position_embeddings"] as? Int)
    #expect(config.text.hiddenAct == text["hidden_act"] as? String)
    #expect(config.vision.depth == vision["depth"] as? Int)
    #expect(config.vision.embedDim == vision["embed_dim"] as? Int)
    #expect(config.vision.numHeads == vision["num_heads"] as? Int)
    #expect(config.vision.intermediateSize == vision["intermediate_size"] as? Int)
    #expect(config.vision.outHiddenSize == vision["out_hidden_size"] as? Int)
    #expect(config.vision.hiddenAct == vision["hidden_act"] as? String)
    #expect(config.vision.patchSize == vision["patch_size"] as? Int)
    #expect(config.vision.temporalPatchSize == vision["temporal_patch_size"] as? Int)
    #expect(config.vision.spatialMergeSize == vision["spatial_merge_size"] as? Int)
    #expect(config.vision.windowSize == vision["window_size"] as? Int)
    #expect(config.vision.fullAttentionBlockIndexes == vision["fullatt_block_indexes"] as? [Int])
    #expect(config.vision.tokensPerSecond == vision["tokens_per_second"] as? Int)
    #expect(config.tieWordEmbeddings == expected["tie_word_embeddings"] as? Bool)
    #expect(config.imageTokenId == expected["image_token_id"] as? Int)
    #expect(config.videoTokenId == expected["video_token_id"] as? Int)
    #expect(config.visionStartTokenId == expected["vision_start_token_id"] as? Int)
    #expect(config.visionEndTokenId == expected["vision_end_token_id"] as? Int)
  }

  /// The table of docs/qwen-vl.md (section 1) for the values that are easy to get wrong.
  @Test func specTableValues() throws {
    let qwen25 = try QwenVLConfig(contentsOf: Fixtures.url("configs/qwen2_5_vl_3b_instruct.tf5.json"))
    #expect(qwen25.family == .qwen25VL)
    #expect(qwen25.text.headDim == 128)
    #expect(qwen25.text.queriesPerKeyValueHead == 8)
    #expect(qwen25.tieWordEmbeddings)
    #expect(qwen25.vision.embedDim == 1280 && qwen25.vision.outHiddenSize == 2048 && qwen25.vision.headDim == 80)
    #expect(qwen25.vision.tokensPerSecond == 2)
    #expect(qwen25.imageFactor == 28)
    #expect(qwen25.torchDtype == "bfloat16")
    let qwen2 = try QwenVLConfig(contentsOf: Fixtures.url("configs/qwen2_vl_2b_instruct.hub4.json"))
    #expect(qwen2.vision.embedDim == 1280 && qwen2.vision.outHiddenSize == 1536)
    #expect(qwen2.vision.intermediateSize == 5120)
    #expect(qwen2.vision.hiddenAct == "quick_gelu")
    #expect(qwen2.text.queriesPerKeyValueHead == 6)
    #expect(qwen2.eosTokenIds == [151645])
    #expect(qwen2.visionTokenId == 151654)
  }

  /// Both layouts of one checkpoint decode to the same configuration.
  @Test(arguments: ["qwen2_vl_2b_instruct", "qwen2_vl_7b_instruct", "qwen2_5_vl_3b_instruct", "qwen2_5_vl_7b_instruct"])
  func layoutsAgree(model: String) throws {
    var v4 = try QwenVLConfig(contentsOf: Fixtures.url("configs/\(model).hub4.json"))
    var v5 = try QwenVLConfig(contentsOf: Fixtures.url("configs/\(model).tf5.json"))
    #expect(v4.sourceLayout == .transformers4 && v5.sourceLayout == .transformers5)
    v4.sourceLayout = .transformers5
    // The 5.x file drops max_window_layers' neighbour sliding_window (null there).
    v4.text.slidingWindow = nil
    v5.text.slidingWindow = nil
    #expect(v4 == v5)
  }

  /// Writing back in the 4.x layout reproduces the Hub file (every key and value).
  @Test(arguments: ["qwen2_vl_2b_instruct", "qwen2_vl_7b_instruct", "qwen2_5_vl_3b_instruct", "qwen2_5_vl_7b_instruct"])
  func writesHubLayout(model: String) throws {
    let hubURL = Fixtures.url("configs/\(model).hub4.json")
    let hub = try JSONValue.parse(Data(contentsOf: hubURL))
    for source in ["hub4", "tf5"] {
      let config = try QwenVLConfig(contentsOf: Fixtures.url("configs/\(model).\(source).json"))
      let written = try JSONValue.parse(config.configJSONText(transformersVersion: "4.41.2"))
      guard case .object(var writtenMembers) = written, case .object(var hubMembers) = hub else {
        Issue.record("not objects")
        return
      }
      if source == "tf5" {
        // Absent from 5.x files: transformers leaves sliding_window null there.
        hubMembers["sliding_window"] = nil
        writtenMembers["sliding_window"] = nil
      }
      #expect(Set(writtenMembers.keys) == Set(hubMembers.keys), "\(source)")
      for (key, value) in hubMembers {
        #expect(sameJSON(writtenMembers[key], value), "\(source) \(key): \(String(describing: writtenMembers[key])) vs \(value)")
      }
      // And it decodes back to the same configuration.
      var reread = try QwenVLConfig(jsonText: config.configJSONText())
      reread.sourceLayout = config.sourceLayout
      #expect(reread == config)
    }
  }

  @Test func prettyJSONMatchesPythonStyle() {
    let value = JSONValue.object(["b": .array([.int(1), .double(1e-06)]), "a": .object([:]), "c": .double(1_000_000)])
    #expect(prettyJSON(value) == "{\n  \"a\": {},\n  \"b\": [\n    1,\n    1e-06\n  ],\n  \"c\": 1000000.0\n}")
  }
}

/// Numeric JSON equality that treats 1000000 and 1000000.0 alike (Foundation may read either way).
func sameJSON(_ left: JSONValue?, _ right: JSONValue?) -> Bool {
  switch (left, right) {
  case (.some(.array(let a)), .some(.array(let b))): return a.count == b.count && zip(a, b).allSatisfy { sameJSON($0, $1) }
  case (.some(.object(let a)), .some(.object(let b))):
    return Set(a.keys) == Set(b.keys) && a.keys.allSatisfy { sameJSON(a[$0], b[$0]) }
  case (.some(let a), .some(let b)):
    if let x = a.doubleValue, let y = b.doubleValue { return x == y }
    return a == b
  default: return left == nil && right == nil
  }
}
