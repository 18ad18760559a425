import Foundation
import ModelConfig
import NN
import SafeTensors
import Testing
@testable import Models
@testable import Torch

/// What tools/golden/bf16_stages.py recorded with transformers 5.17 on torch 2.11 (CPU, bf16, SDPA).
struct Bf16StagesFixture {
  let folder: URL
  let stages: SafeTensorsFile
  let meta: [String: Any]

  init(_ family: String) throws {
    folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/bf16_stages_\(family)")
    stages = try SafeTensorsFile(url: folder.appendingPathComponent("stages.safetensors"))
    let metaData = try Data(contentsOf: folder.appendingPathComponent("stages.json"))
    meta = try #require(try JSONSerialization.jsonObject(with: metaData) as? [String: Any])
  }

  func tensor(_ name: String) throws -> Tensor {
    let info = try stages.info(name)
    return Tensor(bytes: try stages.bytes(name), shape: info.shape, dtype: try #require(DType(safeTensors: info.dtype)))
  }

  func int(_ key: String) throws -> Int { try #require(meta[key] as? Int) }

  /// The model with every weight rebuilt from weights.json (a strict load: no name missing or left
  /// over), in bf16, or in float32 holding the same bf16-rounded values (the accuracy anchor).
  func model(dtype: DType = .bfloat16) throws -> QwenVLModel {
    let config = try QwenVLConfig(contentsOf: folder.appendingPathComponent("config.json"))
    let model = Initializer.$skipRandomInit.withValue(true) { QwenVLModel(config: config, dtype: dtype) }
    let specData = try Data(contentsOf: folder.appendingPathComponent("weights.json"))
    let specs = try #require(try JSONSerialization.jsonObject(with: specData) as? [[String: Any]])
    var tensors: [String: Tensor] = [:]
    for spec in specs {
      let name = try #require(spec["name"] as? String), shape = try #require(spec["shape"] as? [Int])
      let seed = try #require(spec["seed"] as? Int)
      let mean = try #require(spec["mean"] as? Double), std = try #require(spec["std"] as? Double)
      let values = hashedUniform(seed: seed, count: shape.reduce(1, *), mean: mean, std: std)
      tensors[QwenVLModel.canonicalKey(name)] = Tensor(values, shape: shape).to(.bfloat16).to(dtype)
    }
    try model.load(tensors, dtype: dtype, device: .cpu)
    return model
  }

  func pixelValues() throws -> Tensor {
    let shape = try #require(meta["pixel_shape"] as? [Int])
    return Tensor(hashedUniform(seed: try int("pixel_seed"), count: shape.reduce(1, *), mean: 0, std: 1), shape: shape)
  }
}

/// The golden script's `hashed_uniform`: splitmix64 of (seed, index), top 24 bits as u in [0, 1), then
/// `mean + (2u - 1) * sqrt(3) * std` in Double, rounded once to Float.
func hashedUniform(seed: Int, count: Int, mean: Double, std: Double) -> [Float] {
  let base = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 &+ 0x94D0_49BB_1331_11EB
  let scale = 3.0.squareRoot() * std
  return (0..<count).map { index in
    var x = base &+ UInt64(index) &* 0xBF58_476D_1CE4_E5B9
    x ^= x >> 30
    x = x &* 0xBF58_476D_1CE4_E5B9
    x ^= x >> 27
    x = x &* 0x94D0_49BB_1331_11EB
    x ^= x >> 31
    let u = Double(x >> 40) / Double(1 << 24)
    return Float(mean + (2.0 * u - 1.0) * scale)
  }
}

/// Every stage of vlmrl's bf16 forward on the CPU against transformers' own (the fixture, made by
/// tools/golden/bf16_stages.py). The same libtorch ops in the same order and dtypes give identical
/// bits on the same kernels, and the test reports bit-identity where it holds. But CPU kernels round
/// bf16 differently across machines (AVX2-only vs AVX-512 builds of the same libtorch), so the
/// assertion is an accuracy band measured on this machine: the same model in float32 (holding the
/// same bf16-rounded weights and pixels) is the anchor, and at every stage vlmrl's bf16 output must
/// be no farther from it than transformers' bf16 output is: RMS error within 1.08x (2x for stages of
/// under 1000 values, whose RMS is noisy). Other kernels move the error by about 1% (measured on an
/// AVX2-only CPU against an AVX-512 fixture: ratios 0.99-1.01); an RMSNorm computed in bf16 instead
/// of float32 moves it by 14-21% at every stage and fails. Bit-identity itself is checked on the GPU by
/// bench/models_parity.py (full-size models, the same kernels as transformers).
@Suite(.serialized) struct Bf16ParityTests {
  static let families = ["qwen2_5_vl", "qwen2_vl"]

  @Test func hashedUniformMatchesTheGoldenScript() {
    // numpy: hashed_uniform(1, 4, 0.0, 1.0) and hashed_uniform(7, 2, 1.0, 0.1)
    #expect(hashedUniform(seed: 1, count: 4, mean: 0, std: 1) == [0.8000497, -1.0938292, -1.5003488, 0.6517118])
    #expect(hashedUniform(seed: 7, count: 2, mean: 1, std: 0.1) == [0.90772307, 0.9168628])
  }

  /// The named stage outputs of `model`'s forward on the fixture's inputs, in the fixture's order.
  static func stages(_ model: QwenVLModel, _ fixture: Bf16StagesFixture) throws -> [(String, Tensor)] {
    let ids = try fixture.tensor("input_ids").ints()
    let promptLength = try fixture.int("prompt_length")
    let grids = [try #require(fixture.meta["grid"] as? [Int])]
    let pixels = try fixture.pixelValues().to(.bfloat16).to(model.dtype)
    var outputs: [(String, Tensor)] = []
    withNoGrad {
      let vision = model.visual(pixels, grids: grids) { name, tensor in outputs.append(("vision.\(name)", tensor)) }
      outputs.append(("vision.output", vision))
    }
    try withNoGrad {
      let embeddings = try model.embed(ids: ids, promptLength: promptLength, pixelValues: pixels, grids: grids)
      outputs.append(("text.input", embeddings[0]))
      let positions = model.ropePositions(promptIDs: Array(ids.prefix(promptLength)), imageGrids: grids)
        .extended(by: ids.count - promptLength)
      let rotary = model.language.rotary(positions: model.positionTensor(positions), dtype: embeddings.dtype)
      var hidden = embeddings
      for (index, layer) in model.language.layers.items.enumerated() {
        hidden = layer(hidden, rotary: rotary, layerIndex: index, cache: nil, mask: nil)
        outputs.append(("text.layer\(index)", hidden[0]))
      }
      outputs.append(("text.norm", model.language.norm(hidden)[0]))
      // The public entry points, end to end: the same bits as the stages above.
      let final = try model.hiddenStates(ids: ids, promptLength: promptLength, pixelValues: pixels, grids: grids)[0]
      outputs.append(("logits", try model.logits(ids: ids, pixelValues: pixels, grids: grids)[0]))
      let targets = Tensor(Array(ids[promptLength...]))
      outputs.append(("logprobs", model.tokenLogProbs(hidden: final.narrow(0, start: promptLength - 1, length: targets.size(0)),
                                                      targets: targets)))
    }
    return outputs
  }

  static func rms(_ t: Tensor) -> Double { t.to(.float64).square().mean().sqrt().item() }

  @Test(arguments: families) func everyStageIsAsAccurateAsTransformersBf16(_ family: String) throws {
    let threads = Torch.threads
    Torch.threads = 1
    defer { Torch.threads = threads }
    let fixture = try Bf16StagesFixture(family)
    let outputs = try Self.stages(try fixture.model(), fixture)
    let anchors = Dictionary(uniqueKeysWithValues: try Self.stages(try fixture.model(dtype: .float32), fixture))
    let expectedNames = try #require(fixture.meta["stages"] as? [String])
    #expect(outputs.map(\.0) == expectedNames)
    var report: [String] = []
    var identical = 0
    for (name, output) in outputs {
      let expected = try fixture.tensor(name)
      #expect(output.shape == expected.shape, "\(family) \(name)")
      #expect(output.dtype == expected.dtype, "\(family) \(name)")
      guard output.shape == expected.shape, let anchor = anchors[name]?.to(.float64) else { continue }
      let ours = output.to(.float64), theirs = expected.to(.float64)
      let difference = ours.maxAbsDifference(theirs)
      if difference == 0 { identical += 1 }
      let ourError = Self.rms(ours - anchor), theirError = Self.rms(theirs - anchor)
      // A rounding-level floor, for stages whose error is zero or near it.
      let slack = Self.rms(anchor) * 0x1p-14
      report.append(String(format: "%@: %@, RMS error vs float32: vlmrl %.3g, transformers %.3g", name,
                           difference == 0 ? "bit-identical" : String(format: "max |diff| %.3g", difference), ourError, theirError))
      // Stages of a few hundred values (the log-probs of 20 tokens) have noisier RMS errors.
      let factor = anchor.count >= 1000 ? 1.08 : 2.0
      #expect(ourError <= factor * theirError + slack,
              "\(family) \(name): vlmrl's bf16 is \(ourError) from float32, transformers' \(theirError)")
    }
    print("bf16 stages \(family) (\(identical) of \(outputs.count) bit-identical to the fixture on this CPU):\n  "
      + report.joined(separator: "\n  "))
  }
}
