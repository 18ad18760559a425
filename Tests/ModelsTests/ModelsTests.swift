import Foundation
import ModelConfig
import NN
import Testing
@testable import Models
@testable import Torch

/// A tiny Qwen2.5-VL configuration (4.x layout) for tests that need no reference output.
func tinyConfig(tied: Bool = true, family: QwenVLFamily = .qwen25VL) throws -> QwenVLConfig {
  let vision = family == .qwen25VL
    ? #"{"depth": 2, "fullatt_block_indexes": [1], "hidden_act": "silu", "hidden_size": 32, "in_chans": 3, "intermediate_size": 48, "num_heads": 2, "out_hidden_size": 64, "patch_size": 14, "spatial_merge_size": 2, "spatial_patch_size": 14, "temporal_patch_size": 2, "tokens_per_second": 2, "window_size": 112}"#
    : #"{"depth": 2, "embed_dim": 32, "hidden_size": 64, "hidden_act": "quick_gelu", "in_chans": 3, "mlp_ratio": 2, "num_heads": 2, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}"#
  let json = """
  {"architectures": ["\(family == .qwen25VL ? "Qwen2_5_VLForConditionalGeneration" : "Qwen2VLForConditionalGeneration")"],
   "model_type": "\(family == .qwen25VL ? "qwen2_5_vl" : "qwen2_vl")", "attention_dropout": 0.0,
   "bos_token_id": 90, "eos_token_id": 91, "hidden_act": "silu", "hidden_size": 64, "image_token_id": 95,
   "intermediate_size": 96, "max_position_embeddings": 4096, "max_window_layers": 2, "num_attention_heads": 4,
   "num_hidden_layers": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
   "rope_scaling": {"mrope_section": [2, 3, 3], "type": "mrope"}, "rope_theta": 1000000.0, "sliding_window": 4096,
   "tie_word_embeddings": \(tied), "torch_dtype": "float32", "use_sliding_window": false, "video_token_id": 96,
   "vision_config": \(vision), "vision_end_token_id": 94, "vision_start_token_id": 93, "vision_token_id": 92,
   "vocab_size": 100}
  """
  return try QwenVLConfig(jsonText: json)
}

/// Random weights with a larger scale than the default init, so that logits are not all near zero.
func tinyModel(tied: Bool = true, family: QwenVLFamily = .qwen25VL, seed: UInt64 = 3) throws -> QwenVLModel {
  let model = QwenVLModel(config: try tinyConfig(tied: tied, family: family), dtype: .float64)
  let generator = Generator(seed: seed)
  for (_, parameter) in model.namedParameters() {
    parameter.assign(Tensor.randn(parameter.value.shape, dtype: .float64, generator: generator) * 0.2)
  }
  return model
}

@Suite struct RopeIndexTests {
  let tokens = RopeIndex.Tokens(image: 95, video: 96, visionStart: 93)

  /// Spec 4.4 worked example: 15 text tokens, a 448x448 image (grid 1x32x32 -> 16x16 merged tokens),
  /// then k text tokens: delta = (31 + k) - L = -240.
  @Test func workedExampleFromTheSpec() {
    let k = 7
    let ids = Array(repeating: 1, count: 14) + [93] + Array(repeating: 95, count: 256) + Array(repeating: 2, count: k)
    let positions = RopeIndex.compute(ids: ids, imageGrids: [[1, 32, 32]], tokens: tokens, mergeSize: 2, family: .qwen25VL)
    #expect(positions.delta == -240)
    #expect(Array(positions.channels[0].prefix(15)) == Array(0..<15))
    #expect(positions.channels[0][15] == 15 && positions.channels[0][15 + 255] == 15)  // temporal: all 15
    #expect(positions.channels[1][15 + 17] == 16 && positions.channels[2][15 + 17] == 16)  // row 1, column 1
    #expect(positions.channels[1][15 + 255] == 30 && positions.channels[2][15 + 255] == 30)
    #expect(positions.channels.allSatisfy { $0[271] == 31 })  // first text token after the image
    #expect(positions.extended(by: 2).channels[0].suffix(2) == [31 + k, 32 + k])
  }

  @Test func textOnlyIsOneDimensional() {
    let positions = RopeIndex.compute(ids: [5, 6, 7], imageGrids: [], tokens: tokens, mergeSize: 2, family: .qwen2VL)
    #expect(positions.channels == [[0, 1, 2], [0, 1, 2], [0, 1, 2]] && positions.delta == 0)
  }

  @Test func completionVisionTokensStayText() {
    let prompt = [1, 93] + Array(repeating: 95, count: 4) + [94]
    let positions = RopeIndex.compute(ids: prompt, imageGrids: [[1, 4, 4]], tokens: tokens, mergeSize: 2, family: .qwen25VL)
    // A completion [93, 95, 95] (vision tokens from an early policy) continues as text.
    let extended = positions.extended(by: 3)
    #expect(extended.channels[0].suffix(3) == [5, 6, 7])
    #expect(extended.channels[1].suffix(3) == [5, 6, 7])
  }
}

@Suite struct WindowLayoutTests {
  /// Spec 3.3: 448x448 -> grid (1,32,32), 16 merged rows/cols, pad 4 -> 5x5 windows, 16 non-empty of 64 patches.
  @Test func fullWindowsWhenDivisible() {
    let (index, segments) = VisionLayout.windows(grids: [[1, 32, 32]], mergeSize: 2, windowTokens: 4)
    #expect(segments == Array(repeating: 64, count: 16))
    #expect(index.count == 256 && Set(index).count == 256)
    #expect(Array(index.prefix(5)) == [0, 1, 2, 3, 16])  // window (0,0): rows 0..3 of 4 columns
  }

  /// Grid (1,78,138): mh 39, mw 69 -> 10 x 18 windows; last row has 3 real rows, last column 1.
  @Test func partialWindows() {
    let (index, segments) = VisionLayout.windows(grids: [[1, 78, 138]], mergeSize: 2, windowTokens: 4)
    #expect(segments.count == 180)
    #expect(segments[0] == 64 && segments[17] == 4 * 4 * 1 && segments[170] == 4 * 3 * 4 && segments[179] == 4 * 3)
    #expect(segments.reduce(0, +) == 78 * 138)
    #expect(index.sorted() == Array(0..<(39 * 69)))
  }

  @Test func framesAreSegments() {
    #expect(VisionLayout.frameSegments(grids: [[2, 4, 6], [1, 2, 2]]) == [24, 24, 4])
  }
}

@Suite struct ModelConsistencyTests {
  /// Greedy decoding with the KV cache must pick, at every step, the argmax of a full forward pass
  /// over the prompt and the tokens so far (cache positions = cached + delta, docs/qwen-vl.md 4.5).
  @Test func cachedDecodingMatchesFullForward() throws {
    let model = try tinyModel()
    let grids = [[1, 4, 6]]
    let pixels = Tensor.randn([24, 3 * 2 * 14 * 14], dtype: .float64, generator: Generator(seed: 9))
    let prompt = [1, 2, 93] + Array(repeating: 95, count: 6) + [94, 3, 4]
    var options = GenerationOptions()
    options.maxNewTokens = 8
    let result = try model.generate(promptIDs: prompt, pixelValues: pixels, grids: grids, options: options)
    #expect(result.tokens.count == 8)
    let all = prompt + result.tokens
    let logits = try withNoGrad { try model.logits(ids: Array(all.dropLast()), pixelValues: pixels, grids: grids) }
    let argmax = logits[0].argmax(dim: -1).ints()
    #expect(Array(argmax.suffix(8)) == result.tokens)
  }

  @Test func chunkedLogProbsEqualFullLogSoftmaxWithGradients() throws {
    let model = try tinyModel(tied: false)
    let hidden = Tensor.randn([13, 64], dtype: .float64, generator: Generator(seed: 4)).requiresGrad_()
    let targets = Tensor.randint(0, 100, [13], generator: Generator(seed: 5))
    let chunked = model.tokenLogProbs(hidden: hidden, targets: targets, temperature: 0.7, chunkRows: 5)
    let full = (F.linear(hidden, model.headWeight) / 0.7).logSoftmax(dim: -1).gather(1, targets.unsqueeze(1)).squeeze(1)
    #expect(chunked.maxAbsDifference(full) < 1e-12)
    chunked.sum().backward()
    RecomputeRegistry.shared.releaseAll()
    let chunkedGrad = hidden.grad!.detach().clone(), headGrad = model.lmHead!.weight.grad!.detach().clone()
    hidden.grad = nil
    model.lmHead!.weight.grad = nil
    full.sum().backward()
    #expect(chunkedGrad.maxAbsDifference(hidden.grad!) < 1e-12)
    #expect(headGrad.maxAbsDifference(model.lmHead!.weight.grad!) < 1e-12)
  }

  @Test func imageTokenCountMismatchIsAnError() throws {
    let model = try tinyModel()
    let pixels = Tensor.randn([24, 1176], dtype: .float64)
    #expect(throws: ModelError.self) {
      _ = try model.embed(ids: [93, 95, 95, 94], pixelValues: pixels, grids: [[1, 4, 6]])
    }
  }

  @Test func saveAndLoadRoundTrip() throws {
    let model = try tinyModel(tied: false, family: .qwen2VL)
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-roundtrip-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    try model.save(to: folder)
    let loaded = try QwenVLModel.load(directory: folder, dtype: .float64)
    for ((name, a), (_, b)) in zip(model.namedParameters(), loaded.namedParameters()) {
      #expect(a.value.maxAbsDifference(b.value) == 0, "\(name)")
    }
    #expect(loaded.config.family == .qwen2VL)
  }
}
