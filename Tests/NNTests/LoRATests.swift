import Foundation
import Testing
@testable import NN
@testable import Torch

final class TinyAttention: Module, @unchecked Sendable {
  let qProj = Linear(3, 2, bias: true)
  let vProj = Linear(3, 2, bias: false)
  override var children: [(String, Module)] { [("q_proj", qProj), ("v_proj", vProj)] }
}

final class TinyStack: Module, @unchecked Sendable {
  let layers = ModuleList([TinyAttention(), TinyAttention()])
  let head = Linear(2, 4, bias: false)
  override var children: [(String, Module)] { [("layers", layers), ("lm_head", head)] }
}

@Suite struct LoRATests {
  /// peft's target_modules: list entries match a whole name or a dotted suffix; a string is a
  /// whole-name regex; all-linear leaves the output head alone.
  @Test func targetMatchingFollowsPeft() {
    let names = LoRATargets.names(["q_proj", "layers.1.v_proj"])
    #expect(names.matches("model.layers.0.q_proj"))
    #expect(names.matches("q_proj"))
    #expect(!names.matches("model.layers.0.xq_proj"))
    #expect(names.matches("model.layers.1.v_proj") && !names.matches("model.layers.0.v_proj"))
    let pattern = LoRATargets(string: #".*layers\.0\..*_proj"#)
    #expect(pattern.matches("model.layers.0.v_proj") && !pattern.matches("model.layers.1.v_proj"))
    #expect(!pattern.matches("x.model.layers.0.v_proj.y"))
    let all = LoRATargets(string: "all-linear")
    #expect(all == .allLinear && all.matches("layers.0.q_proj") && !all.matches("lm_head"))
  }

  /// y = W x + b + (alpha / r) * B A x, by hand: W = 0, b = (1, -1), A = [[1, 2, 3]], B = [[1], [2]],
  /// alpha / r = 4 / 1, x = (1, 0, -1): A x = -2, so y = (1 - 8, -1 - 16).
  @Test func adapterOutputMatchesHandComputation() throws {
    let model = TinyStack()
    let config = LoRAConfig(rank: 1, alpha: 4, dropout: 0, targets: .names(["q_proj"]))
    let added = try LoRA.apply(to: model, config: config)
    #expect(added.map(\.0) == ["layers.0.q_proj", "layers.1.q_proj"])
    let layer = model.layers[0].qProj
    layer.weight.assign(Tensor.zeros([2, 3]))
    layer.bias!.assign(Tensor([1, -1] as [Float]))
    let x = Tensor([1, 0, -1] as [Float], shape: [1, 3])
    #expect(layer(x).floats() == [1, -1])  // B starts at zero: the adapted layer equals the base
    layer.adapter!.down.weight.assign(Tensor([1, 2, 3] as [Float], shape: [1, 3]))
    layer.adapter!.up.weight.assign(Tensor([1, 2] as [Float], shape: [2, 1]))
    #expect(layer(x).floats() == [-7, -17])
    LoRA.withAdaptersDisabled(model) { #expect(layer(x).floats() == [1, -1]) }
    #expect(layer(x).floats() == [-7, -17])
    // Only adapters train; the base stays frozen and out of the Hugging Face names.
    #expect(model.trainableParameters.isEmpty)
    #expect(LoRA.namedParameters(in: model).map(\.0) == [
      "base_model.model.layers.0.q_proj.lora_A.weight", "base_model.model.layers.0.q_proj.lora_B.weight",
      "base_model.model.layers.1.q_proj.lora_A.weight", "base_model.model.layers.1.q_proj.lora_B.weight",
    ])
    #expect(LoRA.namedParameters(in: model).allSatisfy { $0.1.trainable })
    #expect(!model.namedParameters().contains { $0.0.contains("lora") })
  }

  @Test func kaimingBoundAndDropoutScaling() throws {
    let adapter = LoRAAdapter(inFeatures: 16, outFeatures: 3, config: LoRAConfig(rank: 8, alpha: 8, dropout: 0.5, targets: .allLinear),
                              device: .cpu, generator: Generator(seed: 1))
    #expect(adapter.down.weight.value.abs().max().item() <= 0.25)
    #expect(adapter.down.weight.value.abs().max().item() > 0.15)
    adapter.up.weight.assign(Tensor.ones([3, 8]))
    adapter.down.weight.assign(Tensor.ones([8, 16]))
    let x = Tensor.ones([1, 16])
    #expect(adapter.delta(x, training: false).floats() == [128, 128, 128])
    adapter.dropoutGenerator = Generator(seed: 3)
    let dropped = adapter.delta(x, training: true).floats()[0]
    // Kept inputs are scaled by 1 / (1 - p) = 2, so the sum is 8 * 2 * (kept count): even, at most 512.
    #expect(dropped.truncatingRemainder(dividingBy: 16) == 0 && dropped <= 512 && dropped != 128)
  }

  @Test func saveAndLoadRoundTripInPeftLayout() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-lora-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let source = TinyStack()
    let config = LoRAConfig(rank: 2, alpha: 3, dropout: 0.1, targets: .names(["v_proj"]))
    try LoRA.apply(to: source, config: config, hubName: { "model." + $0 }, seed: 5)
    for (_, parameter) in LoRA.namedParameters(in: source) { parameter.assign(Tensor.randn(parameter.value.shape)) }
    try LoRA.save(model: source, config: config, baseModel: "base", hubName: { "model." + $0 }, to: folder)
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("adapter_config.json"))) as? [String: Any]
    #expect(json?["r"] as? Int == 2 && json?["peft_type"] as? String == "LORA" && json?["target_modules"] as? [String] == ["v_proj"])
    let target = TinyStack()
    let loaded = try LoRA.load(directory: folder, into: target, hubName: { "model." + $0 },
                               canonicalName: { String($0.dropFirst("model.".count)) })
    #expect(loaded == config)
    for ((name, a), (_, b)) in zip(LoRA.namedParameters(in: source), LoRA.namedParameters(in: target)) {
      #expect(a.value.maxAbsDifference(b.value) == 0, "\(name)")
    }
    // A model whose adapters do not fit the file is refused with the key named.
    let other = TinyStack()
    try LoRA.apply(to: other, config: LoRAConfig(rank: 2, alpha: 3, targets: .names(["q_proj"])))
    #expect(throws: LoRAError.self) { try LoRA.load(directory: folder, into: other) }
  }

  @Test func unmatchedTargetsAreAnError() {
    #expect(throws: LoRAError.self) { try LoRA.apply(to: TinyStack(), config: LoRAConfig(targets: .names(["k_proj"]))) }
  }
}
