import Foundation
import Torch

/// One prompt of a rollout batch and how many completions to draw from it.
public struct RolloutRequest: Sendable {
  /// Prompt token ids with the `<|image_pad|>` runs already expanded by the processor.
  public var promptIDs: [Int]
  /// Preprocessed patches `[patches, channels * temporal * patch * patch]` of this prompt's images.
  public var pixelValues: Tensor?
  /// (t, h, w) grid of each image, in order of appearance.
  public var grids: [[Int]]
  /// Completions to draw (GRPO's G).
  public var samples: Int
  /// Seed of this prompt; sample `i` draws from a stream derived from (seed, i) only.
  public var seed: UInt64

  public init(promptIDs: [Int], pixelValues: Tensor? = nil, grids: [[Int]] = [], samples: Int = 1, seed: UInt64 = 0) {
    self.promptIDs = promptIDs
    self.pixelValues = pixelValues
    self.grids = grids
    self.samples = samples
    self.seed = seed
  }
}

/// How tokens are chosen and when a completion stops. The processors run in transformers' order:
/// repetition penalty, token suppression, then temperature, top-k, top-p and min-p.
public struct SamplingSettings: Sendable {
  public var maxNewTokens: Int = 256
  /// 0 = greedy (argmax after the repetition penalty and suppression).
  public var temperature: Double = 1
  /// 1 = off.
  public var topP: Double = 1
  /// 0 = off.
  public var topK: Int = 0
  /// 0 = off; otherwise tokens with probability below `minP * max probability` are removed.
  public var minP: Double = 0
  /// 1 = off; otherwise logits of tokens already in the prompt or completion are divided (positive)
  /// or multiplied (negative) by it, as transformers' RepetitionPenaltyLogitsProcessor.
  public var repetitionPenalty: Double = 1
  /// A completion ends after emitting any of these (the id is kept in `tokens`).
  public var eosTokenIds: Set<Int> = []
  /// Never sampled. nil = the model's vision special tokens (vision start/end, image/video pad).
  public var suppressedTokenIds: [Int]? = nil
  /// Decoder layers whose attention mass on prompt text and image tokens is recorded (empty = none).
  public var recordAttentionLayers: [Int] = []

  public init(maxNewTokens: Int = 256, temperature: Double = 1, topP: Double = 1, topK: Int = 0, minP: Double = 0,
              repetitionPenalty: Double = 1, eosTokenIds: Set<Int> = [], suppressedTokenIds: [Int]? = nil,
              recordAttentionLayers: [Int] = []) {
    self.maxNewTokens = maxNewTokens
    self.temperature = temperature
    self.topP = topP
    self.topK = topK
    self.minP = minP
    self.repetitionPenalty = repetitionPenalty
    self.eosTokenIds = eosTokenIds
    self.suppressedTokenIds = suppressedTokenIds
    self.recordAttentionLayers = recordAttentionLayers
  }

  /// Greedy decoding.
  public static func greedy(maxNewTokens: Int, eosTokenIds: Set<Int> = []) -> SamplingSettings {
    SamplingSettings(maxNewTokens: maxNewTokens, temperature: 0, eosTokenIds: eosTokenIds)
  }
}
