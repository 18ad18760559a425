import Common
import Foundation
import Rewards

/// One completion of one prompt, made once from the rollout engine's output (or, in SFT, from a
/// reference answer) and read by everything after it: rewards, rollout logs, loss masks and the
/// policy pass, in training and in evaluation.
public struct RolloutRecord: Sendable {
  /// Index of the prompt in its batch.
  public var promptIndex: Int
  /// Index of the completion among its prompt's samples (0..<G).
  public var sampleIndex: Int
  /// The rendered prompt (`PreparedPrompt.text`): the same text for the same record in training and
  /// evaluation.
  public var prompt: String
  /// The user's question as the record states it (`<image>` where an image sits), for logs.
  public var question: String
  public var images: [ImageGeometry]
  /// The source record's fields (ground truths and side columns the rewards read).
  public var fields: [String: JSONValue]
  /// Where the record came from.
  public var source: String
  /// Completion token ids, the stop token included when there is one.
  public var tokens: [Int]
  /// The completion's text, special tokens dropped.
  public var text: String
  /// The one truncation rule: true when the completion reached the token limit without a stop
  /// token (TRL's `is_truncated`; `completions/clipped_ratio`, `mask_truncated_completions`).
  public var truncated: Bool
  /// Log-probability of each token under the distribution it was sampled from (empty when the
  /// completion was not sampled, e.g. an SFT answer).
  public var samplingLogProbs: [Float]
  /// Attention diagnostics of the completion when the engine recorded them (all recorded layers).
  public var attention: AttentionDiagnostics?
  /// The same per layer group (`early`, `middle`, `late`), in group order.
  public var attentionGroups: [(name: String, value: AttentionDiagnostics)] = []

  public init(promptIndex: Int, sampleIndex: Int = 0, prompt: String = "", question: String = "", images: [ImageGeometry] = [],
              fields: [String: JSONValue] = [:], source: String = "", tokens: [Int], text: String = "", truncated: Bool,
              samplingLogProbs: [Float] = [], attention: AttentionDiagnostics? = nil) {
    self.promptIndex = promptIndex
    self.sampleIndex = sampleIndex
    self.prompt = prompt
    self.question = question
    self.images = images
    self.fields = fields
    self.source = source
    self.tokens = tokens
    self.text = text
    self.truncated = truncated
    self.samplingLogProbs = samplingLogProbs
    self.attention = attention
  }

  /// A record for `tokens` of `prompt` (its text, images and fields filled in from the prompt).
  public init(prompt: PreparedPrompt, promptIndex: Int, sampleIndex: Int = 0, tokens: [Int], text: String, truncated: Bool,
              samplingLogProbs: [Float] = [], attention: AttentionDiagnostics? = nil) {
    self.init(promptIndex: promptIndex, sampleIndex: sampleIndex, prompt: prompt.text, question: prompt.example.renderedPrompt,
              images: prompt.images, fields: prompt.example.rewardFields, source: prompt.example.source.description,
              tokens: tokens, text: text, truncated: truncated, samplingLogProbs: samplingLogProbs, attention: attention)
  }

  /// true when the completion ended with a stop token.
  public var finished: Bool { !truncated }

  /// What a reward function receives for this completion.
  public var rewardSample: RewardSample {
    RewardSample(prompt: prompt, completion: text, images: images, fields: fields, attention: attention)
  }
}

extension AttentionDiagnostics {
  /// Attention per token on text over attention per token on the image (MDI); nil when either side
  /// has no tokens or no mass.
  public var mdi: Double? {
    guard textTokens > 0, visionTokens > 0, textMass > 0, visionMass > 0 else { return nil }
    return (textMass / Double(textTokens)) / (visionMass / Double(visionTokens))
  }

  /// The text tokens' share of the attention over their share of the tokens (AEI_T); the image's (AEI_O).
  public var aeiText: Double? { efficiency(textMass, textTokens) }
  public var aeiVision: Double? { efficiency(visionMass, visionTokens) }

  func efficiency(_ mass: Double, _ tokens: Int) -> Double? {
    let totalMass = textMass + visionMass, totalTokens = textTokens + visionTokens
    guard totalMass > 0, totalTokens > 0, tokens > 0 else { return nil }
    return (mass / totalMass) / (Double(tokens) / Double(totalTokens))
  }
}
