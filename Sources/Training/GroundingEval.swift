import Datasets
import Foundation
import ModelConfig
import Models
import Rewards
import Torch

/// Greedy decoding on held-out examples scored with reward functions (the `grounding` task of
/// `vlmrl eval`; the demo's before/after numbers).
public enum GroundingEval {
  public struct Result: Sendable {
    public var means: [(name: String, mean: Double)]
    public var samples: [(prompt: String, completion: String, scores: [Double?])]
  }

  public static func run(modelDirectory: URL, examples: [Example], rewardNames: [String], maxNewTokens: Int = 32,
                         device: Device = .cpu, dtype: DType = .float32) async throws -> Result {
    let folder = try ModelFolder(directory: modelDirectory)
    let builder = try PromptBuilder(folder: folder)
    let model = try QwenVLModel.load(directory: modelDirectory, dtype: dtype, device: device)
    let functions = try RewardRegistry.make(rewardNames, parameters: [:])
    let runner = RewardRunner(functions: functions, weights: nil)
    var options = GenerationOptions()
    options.maxNewTokens = maxNewTokens
    options.eosTokenIds = Set(model.config.eosTokenIds + [builder.tokenizer.tokenToId("<|im_end|>")].compactMap { $0 })
    options.suppressedTokenIds = [model.config.imageTokenId, model.config.videoTokenId, model.config.visionStartTokenId,
                                  model.config.visionEndTokenId]
    var rewardSamples: [RewardSample] = []
    var texts: [(String, String)] = []
    for example in examples {
      let prompt = try builder.prepare(example)
      let result = try model.generate(promptIDs: prompt.ids, pixelValues: prompt.pixelValues?.to(device), grids: prompt.grids,
                                      options: options)
      let completion = builder.tokenizer.decode(result.tokens, skipSpecialTokens: true)
      rewardSamples.append(RewardSample(prompt: prompt.text, completion: completion, images: prompt.images,
                                        fields: example.rewardFields, attention: nil))
      texts.append((example.promptText, completion))
    }
    let scores = await runner.score(rewardSamples)
    let names = functions.map(\.name)
    let means = names.map { name -> (String, Double) in
      let values = (scores.perFunction[name] ?? []).compactMap { $0 }
      return (name, values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count))
    }
    let samples = texts.enumerated().map { index, pair in
      (pair.0, pair.1, names.map { scores.perFunction[$0]?[index] ?? nil })
    }
    return Result(means: means, samples: samples)
  }
}
