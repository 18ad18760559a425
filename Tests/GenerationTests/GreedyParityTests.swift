import Foundation
import Generation
import Testing
@testable import Models
@testable import Torch

/// A prompt recorded by tools/golden/qwen_vl_golden.py (the Models fixtures): ids, images and
/// transformers' greedy `generated_ids` (fp32, eager, 20 new tokens, no EOS).
struct FixturePrompt {
  static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("ModelsTests/Fixtures")

  let ids: [Int]
  let pixels: Tensor?
  let grids: [[Int]]
  let transformersGreedy: [Int]

  init(_ caseName: String, reference: String = "reference") throws {
    let folder = Self.fixtures.appendingPathComponent(caseName)
    let file = try ReferenceTensors(url: folder.appendingPathComponent("\(reference).safetensors"))
    func tensor(_ name: String) throws -> Tensor { try file.tensor(name) }
    let names = Set(file.names)
    ids = try tensor("input_ids").ints()
    transformersGreedy = try tensor("generated_ids").ints()
    if names.contains("pixel_codes") {
      // value[n, c*392 + t*196 + k] = table[c, codes[n, c*196 + k]] (both temporal frames equal).
      let codes = try tensor("pixel_codes").to(.int64).reshape(-1, 3, 196)
      let values = try tensor("pixel_table").unsqueeze(0).expand(codes.size(0), 3, 256).gather(2, codes)
      pixels = Tensor.stack([values, values], dim: 2).reshape(codes.size(0), 1176)
      let flat = try tensor("image_grid_thw").ints()
      grids = stride(from: 0, to: flat.count, by: 3).map { Array(flat[$0..<$0 + 3]) }
    } else {
      pixels = nil
      grids = []
    }
  }

  func request(samples: Int, seed: UInt64 = 0) -> RolloutRequest {
    RolloutRequest(promptIDs: ids, pixelValues: pixels, grids: grids, samples: samples, seed: seed)
  }

  static func model() throws -> QwenVLModel {
    try QwenVLModel.load(directory: fixtures.appendingPathComponent("qwen25vl_tied"))
  }
}

@Suite(.serialized) struct GreedyParityTests {
  /// Three prompts of different lengths (75 and 88 tokens with one and two images, 50 text-only) on
  /// the tied Qwen2.5-VL checkpoint, two samples each, three slots for six sequences.
  static func prompts() throws -> (image: FixturePrompt, text: FixturePrompt, twoImages: FixturePrompt) {
    (try FixturePrompt("qwen25vl_tied"), try FixturePrompt("qwen25vl_tied", reference: "reference_text_only"),
     try FixturePrompt("qwen25vl_untied_two_images"))
  }

  func singlePrompt(_ model: QwenVLModel, _ prompt: FixturePrompt, eos: Set<Int>) throws -> GenerationResult {
    var options = GenerationOptions()
    options.maxNewTokens = 20
    options.eosTokenIds = eos
    return try model.generate(promptIDs: prompt.ids, pixelValues: prompt.pixels, grids: prompt.grids, options: options)
  }

  /// Prompts admitted together go through one packed vision + prefill pass (block-causal SDPA on the
  /// CPU, varlen flash on CUDA); the result must be what per-prompt prefill gives.
  @Test func packedPrefillEqualsPerPromptPrefill() throws {
    let model = try FixturePrompt.model()
    let (image, text, twoImages) = try Self.prompts()
    let settings = SamplingSettings(maxNewTokens: 12, temperature: 0, suppressedTokenIds: [])
    let requests = [image.request(samples: 2), text.request(samples: 1), twoImages.request(samples: 2)]
    let (packed, _) = try RolloutEngine(model: model, packedPrefill: true).generate(requests, settings: settings)
    let (single, _) = try RolloutEngine(model: model, packedPrefill: false).generate(requests, settings: settings)
    #expect(packed.count == 5)
    for (a, b) in zip(packed, single) {
      #expect(a.tokens == b.tokens, "request \(a.requestIndex) sample \(a.sampleIndex)")
      for (x, y) in zip(a.logProbs, b.logProbs) { #expect(abs(x - y) < 1e-4) }
    }
    // Sampling too: the first tokens of all samples are drawn in one batch with the same uniforms.
    var sampling = SamplingSettings(maxNewTokens: 6, temperature: 1, suppressedTokenIds: [])
    sampling.eosTokenIds = []
    let seeded = requests.enumerated().map { var r = $0.element; r.seed = UInt64(40 + $0.offset); return r }
    let (packedSampled, _) = try RolloutEngine(model: model, packedPrefill: true).generate(seeded, settings: sampling)
    let (singleSampled, _) = try RolloutEngine(model: model, packedPrefill: false).generate(seeded, settings: sampling)
    #expect(packedSampled.map(\.tokens) == singleSampled.map(\.tokens))
  }

  @Test func greedyBatchEqualsTransformersAndSinglePromptGenerate() throws {
    let model = try FixturePrompt.model()
    let (image, text, twoImages) = try Self.prompts()
    // Transformers' reference runs with nothing suppressed (it emits <|image_pad|> at step 15).
    let settings = SamplingSettings(maxNewTokens: 20, temperature: 0, suppressedTokenIds: [])
    let engine = RolloutEngine(model: model, maxSlots: 3)
    let (completions, timings) = try engine.generate(
      [image.request(samples: 2), text.request(samples: 2), twoImages.request(samples: 2)], settings: settings)
    let expected = [image.transformersGreedy, text.transformersGreedy, try singlePrompt(model, twoImages, eos: []).tokens]
    #expect(completions.count == 6)
    for completion in completions {
      #expect(completion.tokens == expected[completion.requestIndex], "request \(completion.requestIndex)")
      #expect(!completion.finished && completion.logProbs.count == 20)
    }
    #expect(timings.slots == 3 && timings.generatedTokens == 120)

    // Greedy log-probs are log-softmax of the logits, checked against a full forward pass.
    let first = try #require(completions.first)
    let hidden = try withNoGrad {
      try model.hiddenStates(ids: image.ids + first.tokens, promptLength: image.ids.count, pixelValues: image.pixels, grids: image.grids)[0]
    }
    let reference = model.tokenLogProbs(hidden: hidden.narrow(0, start: image.ids.count - 1, length: 20), targets: Tensor(first.tokens))
    #expect(Tensor(first.logProbs).maxAbsDifference(reference) < 1e-4)
  }

  /// EOS 832 stops the image prompt after 2 tokens and the text prompt after 3, while the
  /// two-image prompt runs to the limit; two slots serve seven sequences, so finished slots refill.
  @Test func sequencesStopAtDifferentTimesAndSlotsRefill() throws {
    let model = try FixturePrompt.model()
    let (image, text, twoImages) = try Self.prompts()
    let eos: Set<Int> = [832]
    let settings = SamplingSettings(maxNewTokens: 20, temperature: 0, eosTokenIds: eos, suppressedTokenIds: [])
    let engine = RolloutEngine(model: model, maxSlots: 2)
    let requests = [twoImages.request(samples: 1), image.request(samples: 3), text.request(samples: 2), twoImages.request(samples: 1)]
    let (completions, timings) = try engine.generate(requests, settings: settings)
    let longRun = try singlePrompt(model, twoImages, eos: eos)
    #expect(!longRun.finished && longRun.tokens.count == 20)
    let expected: [(tokens: [Int], finished: Bool)] = [
      (longRun.tokens, false), ([156, 832], true), ([2902, 3031, 832], true), (longRun.tokens, false),
    ]
    #expect(Array(image.transformersGreedy.prefix(2)) == expected[1].tokens)
    #expect(Array(text.transformersGreedy.prefix(3)) == expected[2].tokens)
    #expect(completions.map(\.requestIndex) == [0, 1, 1, 1, 2, 2, 3])
    for completion in completions {
      let want = expected[completion.requestIndex]
      #expect(completion.tokens == want.tokens && completion.finished == want.finished, "request \(completion.requestIndex)")
      #expect(completion.logProbs.count == completion.tokens.count)
    }
    #expect(timings.generatedTokens == 20 + 3 * 2 + 2 * 3 + 20)
  }

  /// Once the queue is empty, the running sequences are moved into the first slots and the step runs
  /// over a smaller batch bucket: 7 sequences in 4 slots, the short ones stop at tokens 2 and 3, and
  /// the last two long ones finish in a bucket of 2. Greedy and sampled completions must be those of
  /// the same run without buckets, and the greedy ones those of the single-prompt path.
  @Test func compactionIntoSmallerBucketsChangesNoCompletion() throws {
    let model = try FixturePrompt.model()
    let (image, text, twoImages) = try Self.prompts()
    let eos: Set<Int> = [832]
    let requests = [twoImages.request(samples: 1, seed: 3), image.request(samples: 3, seed: 4), text.request(samples: 2, seed: 5),
                    twoImages.request(samples: 1, seed: 6)]
    let longRun = try singlePrompt(model, twoImages, eos: eos)
    for temperature in [0.0, 1.0] {
      let settings = SamplingSettings(maxNewTokens: 20, temperature: temperature, eosTokenIds: eos, suppressedTokenIds: [])
      let (bucketed, bucketedTimings) = try RolloutEngine(model: model, maxSlots: 4, useBuckets: true).generate(requests, settings: settings)
      let (plain, plainTimings) = try RolloutEngine(model: model, maxSlots: 4, useBuckets: false).generate(requests, settings: settings)
      #expect(bucketedTimings.bucketSteps > 0 && plainTimings.bucketSteps == 0, "T=\(temperature): \(bucketedTimings.bucketSteps)")
      #expect(bucketed.count == 7 && plain.count == 7)
      for (a, b) in zip(bucketed, plain) {
        #expect(a.requestIndex == b.requestIndex && a.sampleIndex == b.sampleIndex)
        #expect(a.tokens == b.tokens && a.finished == b.finished, "T=\(temperature) request \(a.requestIndex) sample \(a.sampleIndex)")
        #expect(zip(a.logProbs, b.logProbs).allSatisfy { abs($0 - $1) <= 1e-4 })
      }
      if temperature == 0 {
        for completion in bucketed where completion.requestIndex == 0 || completion.requestIndex == 3 {
          #expect(completion.tokens == longRun.tokens)
        }
      }
    }
  }
}

/// The few safetensors entries the fixtures hold (little-endian header length, JSON header, raw
/// data), read here because this test target does not depend on the SafeTensors module.
struct ReferenceTensors {
  let entries: [String: (dtype: DType, shape: [Int], range: Range<Int>)]
  let data: Data
  var names: [String] { Array(entries.keys) }

  init(url: URL) throws {
    let bytes = try Data(contentsOf: url)
    let headerLength = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    let json = try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + headerLength)))
    let header = try #require(json as? [String: Any])
    let dtypes: [String: DType] = ["I64": .int64, "F32": .float32, "U8": .uint8, "I32": .int32, "F64": .float64]
    var entries: [String: (DType, [Int], Range<Int>)] = [:]
    for (name, value) in header where name != "__metadata__" {
      let info = try #require(value as? [String: Any])
      let offsets = try #require(info["data_offsets"] as? [Int])
      let dtypeName = try #require(info["dtype"] as? String)
      let dtype = try #require(dtypes[dtypeName])
      let shape = try #require(info["shape"] as? [Int])
      entries[name] = (dtype, shape, (8 + headerLength + offsets[0])..<(8 + headerLength + offsets[1]))
    }
    self.entries = entries
    data = bytes
  }

  func tensor(_ name: String) throws -> Tensor {
    let entry = try #require(entries[name], "\(name) missing")
    return data.subdata(in: entry.range).withUnsafeBytes { Tensor(bytes: $0, shape: entry.shape, dtype: entry.dtype) }
  }
}

@Suite struct RolloutBenchTests {
  /// The benchmark's synthetic workload on the tiny checkpoint (CPU): 2 prompts of 40 tokens with a
  /// 56x56 image (4 image tokens) x 2 samples, 4 new tokens = the first from prefill + 3 decode steps.
  @Test func benchReportsTheWorkload() throws {
    let report = try RolloutBench.run(modelDirectory: FixturePrompt.fixtures.appendingPathComponent("qwen25vl_tied"), prompts: 2,
                                      samples: 2, promptTokens: 40, imageSide: 56, newTokens: 4, dtype: .float32, device: .cpu)
    #expect(report.contains("2 prompts x 2 samples = 4 sequences"))
    #expect(report.contains("slots 4, decode steps 3 (0 graph replays, 0 over fewer slots)"), "\(report)")
  }
}
