import Foundation
import Generation
import ModelConfig
import Testing
@testable import Models
@testable import Torch

/// A tiny random Qwen2.5-VL in float64 (vocabulary 100; image pad 95, vision start/end 93/94).
func tinyRandomModel(seed: UInt64 = 3) throws -> QwenVLModel {
  let json = """
  {"architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl", "attention_dropout": 0.0,
   "bos_token_id": 90, "eos_token_id": 91, "hidden_act": "silu", "hidden_size": 64, "image_token_id": 95,
   "intermediate_size": 96, "max_position_embeddings": 4096, "max_window_layers": 2, "num_attention_heads": 4,
   "num_hidden_layers": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
   "rope_scaling": {"mrope_section": [2, 3, 3], "type": "mrope"}, "rope_theta": 1000000.0, "sliding_window": 4096,
   "tie_word_embeddings": true, "torch_dtype": "float32", "use_sliding_window": false, "video_token_id": 96,
   "vision_config": {"depth": 2, "fullatt_block_indexes": [1], "hidden_act": "silu", "hidden_size": 32, "in_chans": 3,
     "intermediate_size": 48, "num_heads": 2, "out_hidden_size": 64, "patch_size": 14, "spatial_merge_size": 2,
     "spatial_patch_size": 14, "temporal_patch_size": 2, "tokens_per_second": 2, "window_size": 112},
   "vision_end_token_id": 94, "vision_start_token_id": 93, "vision_token_id": 92, "vocab_size": 100}
  """
  let model = QwenVLModel(config: try QwenVLConfig(jsonText: json), dtype: .float64)
  let generator = Generator(seed: seed)
  for (_, parameter) in model.namedParameters() {
    parameter.assign(Tensor.randn(parameter.value.shape, dtype: .float64, generator: generator) * 0.2)
  }
  return model
}

/// An image prompt (grid 1x4x6 -> 6 pad tokens) and two text prompts of other lengths.
func tinyRequests(seeds: [UInt64], samples: Int) -> [RolloutRequest] {
  let pixels = Tensor.randn([24, 1176], dtype: .float64, generator: Generator(seed: 9))
  let image = [1, 2, 93] + Array(repeating: 95, count: 6) + [94, 3, 4]
  let prompts: [(ids: [Int], pixels: Tensor?, grids: [[Int]])] = [
    (image, pixels, [[1, 4, 6]]), ([5, 6, 7, 8, 9], nil, []), ([10, 11, 12, 13, 14, 15, 16, 17, 18], nil, []),
  ]
  return zip(prompts, seeds).map { prompt, seed in
    RolloutRequest(promptIDs: prompt.ids, pixelValues: prompt.pixels, grids: prompt.grids, samples: samples, seed: seed)
  }
}

/// 99.9% quantiles of the chi-square distribution for 1...20 degrees of freedom.
let chiSquare999: [Double] = [10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88, 29.59,
                              31.26, 32.91, 34.53, 36.12, 37.70, 39.25, 40.79, 42.31, 43.82, 45.31]

/// softmax(logits / T) restricted to the top-k, then to the smallest top-p set (as transformers:
/// tokens whose ascending cumulative probability is <= 1 - p are removed), written plainly.
func filteredDistribution(_ logits: [Double], temperature: Double, topK: Int, topP: Double) -> [Double] {
  let scaled = logits.map { $0 / temperature }
  var keep = Array(repeating: true, count: scaled.count)
  if topK > 0 {
    let threshold = scaled.sorted(by: >)[topK - 1]
    for i in scaled.indices where scaled[i] < threshold { keep[i] = false }
  }
  func normalized() -> [Double] {
    let top = scaled.indices.filter { keep[$0] }.map { scaled[$0] }.max()!
    let weights = scaled.indices.map { keep[$0] ? exp(scaled[$0] - top) : 0 }
    let total = weights.reduce(0, +)
    return weights.map { $0 / total }
  }
  if topP < 1 {
    let probabilities = normalized()
    var cumulative = 0.0
    let ascending = probabilities.indices.filter { keep[$0] }.sorted { probabilities[$0] < probabilities[$1] }
    for i in ascending.dropLast() {
      cumulative += probabilities[i]
      if cumulative <= 1 - topP { keep[i] = false }
    }
  }
  return normalized()
}

@Suite struct SamplingTests {
  let settings = SamplingSettings(maxNewTokens: 12, temperature: 0.9, topP: 0.95, topK: 40, eosTokenIds: [7, 21])

  @Test func reproducibleAndIndependentOfBatchComposition() throws {
    let model = try tinyRandomModel()
    let requests = tinyRequests(seeds: [11, 12, 13], samples: 3)
    let full = try RolloutEngine(model: model).generate(requests, settings: settings).completions
    let again = try RolloutEngine(model: model).generate(requests, settings: settings).completions
    #expect(full.map(\.tokens) == again.map(\.tokens))
    // The image request alone, in two slots, after another request: the same completions.
    let alone = try RolloutEngine(model: model, maxSlots: 2).generate([requests[2], requests[0]], settings: settings).completions
    let imageSamples = full.filter { $0.requestIndex == 0 }
    let aloneSamples = alone.filter { $0.requestIndex == 1 }
    #expect(imageSamples.map(\.tokens) == aloneSamples.map(\.tokens))
    for (a, b) in zip(imageSamples, aloneSamples) {
      #expect(zip(a.logProbs, b.logProbs).allSatisfy { Swift.abs($0 - $1) < 1e-5 })
    }
    // The samples of one request differ from each other, and a new seed changes them.
    #expect(Set(imageSamples.map(\.tokens)).count > 1)
    let reseeded = try RolloutEngine(model: model).generate(tinyRequests(seeds: [99, 12, 13], samples: 3), settings: settings).completions
    #expect(reseeded.filter { $0.requestIndex == 0 }.map(\.tokens) != imageSamples.map(\.tokens))
    // Some completions stop at EOS, others run to the limit; vision tokens never appear.
    #expect(full.contains { $0.finished } && full.contains { !$0.finished && $0.tokens.count == 12 })
    for completion in full {
      #expect(completion.tokens.allSatisfy { ![92, 93, 94, 95, 96].contains($0) })
      #expect(completion.finished == settings.eosTokenIds.contains(completion.tokens.last ?? -1))
      #expect(completion.tokens.dropLast().allSatisfy { !settings.eosTokenIds.contains($0) })
    }
  }

  /// 4000 samples of the first token: the counts follow softmax(logits / T) restricted by top-k and
  /// top-p (chi-square at the 99.9% quantile, fixed seed), nothing outside the kept set is drawn,
  /// and each log-prob is the log of the kept token's probability.
  @Test func firstTokenFollowsTheFilteredDistribution() throws {
    let model = try tinyRandomModel(seed: 5)
    let prompt = [5, 6, 7, 8, 9]
    let logits = try withNoGrad { try model.logits(ids: prompt) }[0, -1].doubles()
    let (temperature, topK, topP) = (1.6, 12, 0.9)
    let expected = filteredDistribution(logits, temperature: temperature, topK: topK, topP: topP)
    let support = expected.indices.filter { expected[$0] > 0 }
    #expect(support.count >= 4 && support.count < topK)
    let draws = 4000
    let settings = SamplingSettings(maxNewTokens: 1, temperature: temperature, topP: topP, topK: topK, suppressedTokenIds: [])
    let completions = try RolloutEngine(model: model)
      .generate([RolloutRequest(promptIDs: prompt, samples: draws, seed: 2024)], settings: settings).completions
    var counts = Array(repeating: 0, count: expected.count)
    var logProbError = 0.0
    for completion in completions {
      let token = try #require(completion.tokens.first)
      counts[token] += 1
      logProbError = Swift.max(logProbError, Swift.abs(Double(completion.logProbs[0]) - log(expected[token])))
    }
    #expect(logProbError < 1e-4)
    #expect(support.reduce(0) { $0 + counts[$1] } == draws)
    let statistic = support.reduce(0.0) { total, token in
      let mean = expected[token] * Double(draws)
      return total + (Double(counts[token]) - mean) * (Double(counts[token]) - mean) / mean
    }
    #expect(statistic < chiSquare999[support.count - 2], "chi-square \(statistic) with \(support.count - 1) degrees of freedom")
  }

  @Test func minPAgainstHandComputedDistribution() {
    var settings = SamplingSettings(minP: 0.3)
    settings.temperature = 1
    let sampler = TokenSampler(settings: settings, suppressed: [], vocabSize: 5, device: .cpu)
    let logits = Tensor([2.0, 1.0, 0.5, -1.0, -3.0] as [Float], shape: [1, 5])
    let got = sampler.logDistribution(logits, seen: nil).exp()[0].doubles()
    // Relative to the top token: e^-1 = 0.368 >= 0.3 stays, e^-1.5 = 0.223 and below go.
    let kept = [1.0, exp(-1.0)]
    let want = kept.map { $0 / kept.reduce(0, +) } + [0, 0, 0]
    #expect(zip(got, want).allSatisfy { Swift.abs($0 - $1) < 1e-6 }, "\(got)")
  }

  @Test func repetitionPenaltySuppressionAndTemperatureAgainstHandComputedDistribution() {
    let settings = SamplingSettings(temperature: 0.7, repetitionPenalty: 1.5)
    let sampler = TokenSampler(settings: settings, suppressed: [1], vocabSize: 5, device: .cpu)
    let logits = Tensor([2.0, 1.0, 0.5, -1.0, -3.0] as [Float], shape: [1, 5])
    let seen = Tensor([true, false, false, true, false], shape: [1, 5])
    let got = sampler.logDistribution(logits, seen: seen).exp()[0].doubles()
    // Seen tokens: 2 / 1.5 and -1 * 1.5; token 1 suppressed; then / 0.7.
    let scores = [2.0 / 1.5, -.infinity, 0.5, -1.5, -3.0].map { $0 / 0.7 }
    let weights = scores.map { exp($0) }
    let want = weights.map { $0 / weights.reduce(0, +) }
    #expect(zip(got, want).allSatisfy { Swift.abs($0 - $1) < 1e-6 }, "\(got)")
    // Greedy takes the argmax after the penalty: the seen token 0 drops to 2 / 3, below token 1.
    let greedy = TokenSampler(settings: SamplingSettings(temperature: 0, repetitionPenalty: 3), suppressed: [], vocabSize: 5, device: .cpu)
    let pick = greedy.choose(logits, seen: seen, uniforms: Tensor([0.5] as [Float])).tokens.ints()
    #expect(pick == [1])
  }

  @Test func noiseStreamsDependOnlyOnSeedAndSample() {
    let a = NoiseStream.uniforms(seed: 7, sample: 3, count: 50)
    #expect(a == NoiseStream.uniforms(seed: 7, sample: 3, count: 50))
    #expect(a != NoiseStream.uniforms(seed: 7, sample: 4, count: 50))
    #expect(Array(NoiseStream.uniforms(seed: 7, sample: 3, count: 80).prefix(50)) == a)
    #expect(a.allSatisfy { $0 >= 0 && $0 < 1 })
    let many = NoiseStream.uniforms(seed: 1, sample: 0, count: 20000)
    let mean = many.reduce(0, +) / Float(many.count)
    #expect(Swift.abs(mean - 0.5) < 0.01)
  }

  @Test func badSettingsAndRequestsAreErrors() throws {
    let model = try tinyRandomModel()
    let engine = RolloutEngine(model: model)
    #expect(throws: RolloutError.self) { try engine.generate([RolloutRequest(promptIDs: [1, 2])], settings: SamplingSettings(topP: 0)) }
    #expect(throws: RolloutError.self) { try engine.generate([RolloutRequest(promptIDs: [1, 500])], settings: SamplingSettings()) }
    #expect(throws: RolloutError.self) {
      try engine.generate([RolloutRequest(promptIDs: [1, 2])], settings: SamplingSettings(recordAttentionLayers: [2]))
    }
  }
}

@Suite struct RepetitionPenaltyDecodeTests {
  /// Greedy decoding with a repetition penalty, against a plain loop: full forward over the prompt
  /// and tokens so far, penalty applied by hand to every id seen (prompt and completion), vision
  /// tokens removed, argmax. Two requests in one slot so the second reuses the first's slot.
  @Test func penalizedGreedyMatchesAPlainLoop() throws {
    let model = try tinyRandomModel()
    let requests = tinyRequests(seeds: [1, 2, 3], samples: 1)
    let penalty = 1.8
    let settings = SamplingSettings(maxNewTokens: 8, temperature: 0, repetitionPenalty: penalty)
    let completions = try RolloutEngine(model: model, maxSlots: 1).generate(requests, settings: settings).completions
    for (request, completion) in zip(requests, completions) {
      var tokens: [Int] = []
      for _ in 0..<8 {
        let logits = try withNoGrad {
          try model.hiddenStates(ids: request.promptIDs + tokens, promptLength: request.promptIDs.count,
                                 pixelValues: request.pixelValues, grids: request.grids)
        }
        var scores = F.linear(logits[0, -1].unsqueeze(0), model.headWeight)[0].doubles()
        for id in Set(request.promptIDs + tokens) { scores[id] = scores[id] < 0 ? scores[id] * penalty : scores[id] / penalty }
        for id in [92, 93, 94, 95, 96] { scores[id] = -.infinity }
        tokens.append(scores.indices.max { scores[$0] < scores[$1] }!)
      }
      #expect(completion.tokens == tokens)
    }
  }
}

/// Settings that cannot fit are refused by the memory plan before anything is allocated: a clear
/// error naming the plan, never a failed allocation (or an overflow) inside the engine.
@Test func absurdLengthsAreRefusedByTheMemoryPlan() throws {
  let model = try tinyRandomModel()
  let requests = tinyRequests(seeds: [1], samples: 2)
  do {
    _ = try RolloutEngine(model: model).generate(requests, settings: SamplingSettings(maxNewTokens: 4_000_000_000, temperature: 1))
    Issue.record("four billion new tokens were accepted")
  } catch let error as RolloutError {
    guard case .insufficientMemory(let message) = error else { Issue.record("\(error)"); return }
    #expect(message.contains("max_completion_length") && message.contains("MiB"))
  }
  #expect(throws: RolloutError.self) {
    _ = try RolloutEngine(model: model).generate(requests, settings: SamplingSettings(maxNewTokens: Int.max, temperature: 1))
  }
  // A normal request still runs.
  #expect(try RolloutEngine(model: model).generate(requests, settings: SamplingSettings(maxNewTokens: 3, temperature: 1))
    .completions.count == 2)
}
