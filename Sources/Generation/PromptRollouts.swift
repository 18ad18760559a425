import Foundation
import Prompting
import Rewards
import Torch

extension RolloutEngine {
  /// `samples` completions of each prepared prompt, wrapped once into rollout records (prompt text,
  /// completion ids and text, the truncation rule, sampling log-probs, attention diagnostics when
  /// `settings.recordAttentionLayers` is set, the record's fields). `seeds[i]` keys prompt `i`'s
  /// randomness. Records come back prompt after prompt, samples in order. The stop tokens are the
  /// builder's unless `settings.eosTokenIds` names others.
  /// With `attentionGroups`, each record also carries the diagnostics of every group.
  public func rollouts(_ prompts: [PreparedPrompt], builder: PromptBuilder, samples: Int, settings: SamplingSettings,
                       seeds: [UInt64], attentionGroups: AttentionLayerGroups? = nil)
    throws -> (records: [RolloutRecord], timings: RolloutTimings) {
    guard seeds.count == prompts.count else {
      throw RolloutError.invalidSettings("\(seeds.count) seeds for \(prompts.count) prompts")
    }
    var settings = settings
    if settings.eosTokenIds.isEmpty { settings.eosTokenIds = builder.stopTokenIds }
    let requests = zip(prompts, seeds).map { prompt, seed in
      RolloutRequest(promptIDs: prompt.ids, pixelValues: prompt.pixelValues?.to(model.device), grids: prompt.grids,
                     samples: samples, seed: seed)
    }
    let (completions, timings) = try withNoGrad { try generate(requests, settings: settings) }
    let ordered = completions.sorted { ($0.requestIndex, $0.sampleIndex) < ($1.requestIndex, $1.sampleIndex) }
    let records = ordered.map { completion in
      let prompt = prompts[completion.requestIndex]
      var record = RolloutRecord(prompt: prompt, promptIndex: completion.requestIndex, sampleIndex: completion.sampleIndex,
                                 tokens: completion.tokens, text: builder.completionText(completion.tokens),
                                 truncated: !completion.finished, samplingLogProbs: completion.logProbs)
      if let mass = completion.attention {
        record.attention = Self.diagnostics(text: mass.textMass, vision: mass.visionMass, prompt: prompt)
        for group in attentionGroups?.groups ?? [] {
          record.attentionGroups.append((group.name, Self.diagnostics(text: mass.textMass(layers: group.layers),
                                                                      vision: mass.visionMass(layers: group.layers), prompt: prompt)))
        }
      }
      return record
    }
    return (records, timings)
  }

  /// The completion's attention shares: the per-token masses on prompt text and on image tokens
  /// averaged over its generated tokens, normalised so that text + image = 1 (mass on generated
  /// tokens is left out of both).
  static func diagnostics(text textMass: [Float], vision visionMass: [Float], prompt: PreparedPrompt) -> AttentionDiagnostics {
    let count = Double(max(1, textMass.count))
    let text = textMass.reduce(0) { $0 + Double($1) } / count
    let vision = visionMass.reduce(0) { $0 + Double($1) } / count
    let total = text + vision
    return AttentionDiagnostics(textMass: total > 0 ? text / total : 0, visionMass: total > 0 ? vision / total : 0,
                                textTokens: prompt.textTokenCount, visionTokens: prompt.imageTokenCount)
  }
}
