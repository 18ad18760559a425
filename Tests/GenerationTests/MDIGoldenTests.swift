import Foundation
import Generation
import Testing
@testable import Models
@testable import Torch

/// The attention diagnostics the engine records during decoding, against transformers' eager
/// attention weights (tools/golden/mdi_attention.py, float32 CPU) on the tiny Qwen2.5-VL fixture:
/// per layer and per generated token the mass on prompt text and on image tokens (heads averaged),
/// and the MDI / AEI of the layer groups built from them. Every `VLMRL_ATTENTION_MASS` way is
/// accepted and gives these masses on the CPU (the kernels apply on CUDA bf16 only; elsewhere the
/// ops run).
@Suite struct MDIGoldenTests {
  static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/mdi_attention.json")

  @Test(arguments: AttentionMassPath.allCases)
  func engineMassesMatchTransformersEagerAttention(path: AttentionMassPath) throws {
    let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Self.golden)) as? [String: Any])
    let entries = try #require(json["entries"] as? Int)
    let completion = try #require(json["completion_ids"] as? [Int])
    let text = try #require(json["layer_text_mass"] as? [[Double]])
    let vision = try #require(json["layer_vision_mass"] as? [[Double]])
    let groups = try #require(json["groups"] as? [String: [String: Any]])
    let textTokens = try #require(json["text_tokens"] as? Int), visionTokens = try #require(json["vision_tokens"] as? Int)

    let model = try FixturePrompt.model()
    let prompt = try FixturePrompt("qwen25vl_tied")
    #expect(prompt.ids.count == json["prompt_length"] as? Int)
    let layers = Array(0..<model.config.text.numHiddenLayers)
    #expect(text.count == layers.count && vision.count == layers.count)
    let settings = SamplingSettings(maxNewTokens: completion.count, temperature: 0, suppressedTokenIds: [],
                                    recordAttentionLayers: layers)
    var switches = model.switches
    switches.attentionMass = path
    let result = try #require(try RolloutEngine(model: model, switches: switches)
      .generate([prompt.request(samples: 1)], settings: settings).completions.first)
    // Greedy agrees with transformers over the compared tokens, so the queries are the same.
    #expect(Array(result.tokens.prefix(entries + 1)) == Array(completion.prefix(entries + 1)))
    let mass = try #require(result.attention)
    #expect(mass.layers == layers)
    var worst = 0.0
    for layer in layers {
      for entry in 0..<entries {
        worst = max(worst, abs(Double(mass.layerTextMass[layer][entry]) - text[layer][entry]),
                    abs(Double(mass.layerVisionMass[layer][entry]) - vision[layer][entry]))
      }
    }
    if worst >= 1e-4 {
      for layer in layers {
        print("layer \(layer) engine text", mass.layerTextMass[layer].prefix(entries).map { String(format: "%.4f", $0) })
        print("layer \(layer) golden text", text[layer].map { String(format: "%.4f", $0) })
        print("layer \(layer) engine vis ", mass.layerVisionMass[layer].prefix(entries).map { String(format: "%.4f", $0) })
        print("layer \(layer) golden vis ", vision[layer].map { String(format: "%.4f", $0) })
      }
    }
    #expect(worst < 1e-4, "largest difference \(worst)")

    // The group summaries from the engine's masses, as the script computes them.
    for (name, summary) in groups {
      let members = try #require(summary["layers"] as? [Int])
      func mean(_ values: [[Float]]) -> Double {
        members.reduce(0.0) { sum, layer in sum + values[layer].prefix(entries).reduce(0.0) { $0 + Double($1) } }
          / Double(members.count * entries)
      }
      let t = mean(mass.layerTextMass), v = mean(mass.layerVisionMass)
      let mdi = (t / (t + v) / Double(textTokens)) / (v / (t + v) / Double(visionTokens))
      let expected = try #require(summary["mdi"] as? Double)
      #expect(abs(mdi - expected) / expected < 1e-3, "\(name): mdi \(mdi) vs \(expected)")
    }
  }
}
