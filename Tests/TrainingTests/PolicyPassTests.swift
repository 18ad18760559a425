import Datasets
import Foundation
import Prompting
import ModelConfig
import Testing
@testable import Models
@testable import NN
@testable import Torch
@testable import Training

/// Shared pieces of the model-level training tests: the tiny transformers-made Qwen2.5-VL
/// checkpoint, prompts with and without images, and completions of mixed lengths.
/// Every suite that trains the tiny model nests here and runs one test at a time: the gradient
/// checkpoint closures live in one process-wide registry that each backward clears.
@Suite(.serialized) struct TinyModelTests {}

enum TinySetup {
  static let modelFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../ModelsTests/Fixtures/qwen25vl_tied").standardizedFileURL

  static func temporaryFolder(_ name: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-\(name)-\(UUID().uuidString)")
  }

  static func examples(_ folder: URL, count: Int = 6) throws -> [Example] {
    let file = try SyntheticTasks.write(task: .singleBox, count: count, seed: 3, imageSize: 56, to: folder)
    return try DatasetLoader.load(path: file.path).examples
  }

  /// Two prompts with an image and one text-only prompt.
  static func prompts(_ folder: URL) throws -> [PreparedPrompt] {
    let builder = try PromptBuilder(folder: try ModelFolder(directory: modelFolder), minPixels: 3136, maxPixels: 56 * 56)
    let examples = try Self.examples(folder)
    var prompts = try examples.prefix(2).map { try builder.prepare($0) }
    var textOnly = prompts[0]
    textOnly.ids = builder.tokenizer.encode("<|im_start|>user\nname a box<|im_end|>\n<|im_start|>assistant\n")
    textOnly.pixelValues = nil
    textOnly.grids = []
    prompts.append(textOnly)
    return prompts
  }

  /// Completions of lengths 4, 1, 0, 6, 3, 2 spread over the three prompts.
  static let completions: [RolloutRecord] = [
    RolloutRecord(promptIndex: 0, tokens: [17, 250, 901, 33], truncated: false),
    RolloutRecord(promptIndex: 0, tokens: [5], truncated: false),
    RolloutRecord(promptIndex: 1, tokens: [], truncated: false),
    RolloutRecord(promptIndex: 1, tokens: [40, 41, 42, 43, 44, 45], truncated: true),
    RolloutRecord(promptIndex: 2, tokens: [7, 1000, 12], truncated: false),
    RolloutRecord(promptIndex: 2, tokens: [2999, 3], truncated: false),
  ]
}

extension TinyModelTests {
@Suite(.serialized) struct PolicyPassTests {
  /// One forward per completion through the per-sequence path (`hiddenStates`, causal SDPA, its own
  /// vision pass), the reference the packed pass must equal.
  func perSequenceLogProbs(_ model: QwenVLModel, _ prompts: [PreparedPrompt], temperature: Double) throws -> [Tensor] {
    try TinySetup.completions.map { completion in
      let prompt = prompts[completion.promptIndex]
      guard !completion.tokens.isEmpty else { return Tensor.zeros([0]) }
      let hidden = try model.hiddenStates(ids: prompt.ids + completion.tokens, promptLength: prompt.ids.count,
                                          pixelValues: prompt.pixelValues, grids: prompt.grids)[0]
      return model.tokenLogProbs(hidden: hidden.narrow(0, start: prompt.ids.count - 1, length: completion.tokens.count),
                                 targets: Tensor(completion.tokens), temperature: temperature)
    }
  }

  func weights(_ completions: [RolloutRecord]) -> [[Double]] {
    completions.enumerated().map { row, completion in completion.tokens.indices.map { Double(row * 7 + $0 % 5) / 10 - 0.9 } }
  }

  @Test(arguments: [PolicyPass.defaultTokenBudget, 40])
  func packedLogProbsAndGradientsEqualPerSequenceOnes(tokenBudget: Int) throws {
    let root = TinySetup.temporaryFolder("packed")
    defer { try? FileManager.default.removeItem(at: root) }
    let prompts = try TinySetup.prompts(root)
    let model = try QwenVLModel.load(directory: TinySetup.modelFolder)
    let completions = TinySetup.completions
    let weights = weights(completions)

    let expected = try perSequenceLogProbs(model, prompts, temperature: 0.7)
    var expectedLoss = Tensor.zeros([])
    for (row, logp) in expected.enumerated() where logp.size(0) > 0 {
      expectedLoss = expectedLoss + (logp * Tensor(weights[row].map(Float.init))).sum()
    }
    expectedLoss.backward()
    let expectedGrads = model.namedParameters().map { ($0.0, $0.1.grad?.clone()) }
    for parameter in model.parameters { parameter.grad = nil }

    for checkpointLayers in [false, true] {
      let out = try PolicyPass.logProbs(model: model, prompts: prompts, completions: completions, temperature: 0.7,
                                        checkpointLayers: checkpointLayers, tokenBudget: tokenBudget)
      #expect(out.logp.shape == [6, 6] && out.mask.shape == [6, 6])
      #expect(out.mask.sum().item() == 16)
      for (row, logp) in expected.enumerated() {
        let got = out.logp[row].narrow(0, start: 0, length: logp.size(0))
        if logp.size(0) > 0 { #expect(got.maxAbsDifference(logp) < 2e-5, "row \(row)") }
      }
      var padded: [Float] = []
      for row in weights { padded += row.map(Float.init) + Array(repeating: 0, count: 6 - row.count) }
      (out.logp * Tensor(padded, shape: [6, 6]) * out.mask).sum().backward()
      RecomputeRegistry.shared.releaseAll()
      for ((name, want), (_, parameter)) in zip(expectedGrads, model.namedParameters()) {
        guard let want, let got = parameter.grad else { Issue.record("\(name): no gradient"); continue }
        let scale = Swift.max(1e-6, want.abs().max().item())
        #expect(got.maxAbsDifference(want) / scale < 1e-4, "\(name) (checkpoint \(checkpointLayers))")
        parameter.grad = nil
      }
    }
  }

  /// Entropy of a row by hand from the full logits of the per-sequence path.
  @Test func entropiesMatchTheFullDistribution() throws {
    let root = TinySetup.temporaryFolder("entropy")
    defer { try? FileManager.default.removeItem(at: root) }
    let prompts = try TinySetup.prompts(root)
    let model = try QwenVLModel.load(directory: TinySetup.modelFolder)
    let completion = TinySetup.completions[4]
    let out = try withNoGrad {
      try PolicyPass.logProbs(model: model, prompts: prompts, completions: [completion], temperature: 0.5)
    }
    let prompt = prompts[completion.promptIndex]
    let logits = try withNoGrad { try model.logits(ids: prompt.ids + completion.tokens)[0] }
    for position in 0..<completion.tokens.count {
      let row = (logits[prompt.ids.count - 1 + position].to(.float64) / 0.5).softmax(dim: -1).doubles()
      let entropy = -row.reduce(0) { $0 + ($1 > 0 ? $1 * Foundation.log($1) : 0) }
      #expect(Swift.abs(out.entropies[0, position].item() - entropy) < 1e-4)
    }
  }

  @Test func packsRespectTheTokenBudget() {
    #expect(PolicyPass.packs([10, 20, 30, 50, 5], budget: 60) == [[0, 1, 2], [3, 4]])
    #expect(PolicyPass.packs([70, 5], budget: 60) == [[0], [1]])
    #expect(PolicyPass.packs([], budget: 60).isEmpty)
  }
}
}
