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

/// Attention mass (heads averaged) of the decode queries on the prompt's text tokens and on its
/// image tokens, per recorded layer; the rest went to completion tokens. Entry `i` belongs to the
/// decode query that produced token `i + 1` (token 0 comes from the prefill, which does not record),
/// so each array has `tokens.count - 1` entries.
public struct AttentionMass: Sendable, Equatable {
  /// The recorded layers, ascending.
  public var layers: [Int]
  /// `layerTextMass[l][i]`: layer `layers[l]`'s mass on prompt text for entry `i`.
  public var layerTextMass: [[Float]]
  public var layerVisionMass: [[Float]]

  public init(layers: [Int], layerTextMass: [[Float]], layerVisionMass: [[Float]]) {
    self.layers = layers
    self.layerTextMass = layerTextMass
    self.layerVisionMass = layerVisionMass
  }

  /// From host copies of `[rows, columns, layers]` buffers: the entries `steps` (flat row-major
  /// `row * columns + column` positions) of each layer.
  init(layers: [Int], text: [Float], vision: [Float], steps: Range<Int>) {
    let count = layers.count
    self.layers = layers
    layerTextMass = (0..<count).map { layer in steps.map { text[$0 * count + layer] } }
    layerVisionMass = (0..<count).map { layer in steps.map { vision[$0 * count + layer] } }
  }

  /// Per entry, averaged over the recorded layers.
  public var textMass: [Float] { Self.layerMean(layerTextMass) }
  public var visionMass: [Float] { Self.layerMean(layerVisionMass) }

  /// The mass of the layers `subset` (those recorded), per entry, averaged over them.
  public func textMass(layers subset: [Int]) -> [Float] { Self.layerMean(rows(layerTextMass, subset)) }
  public func visionMass(layers subset: [Int]) -> [Float] { Self.layerMean(rows(layerVisionMass, subset)) }

  func rows(_ values: [[Float]], _ subset: [Int]) -> [[Float]] {
    subset.compactMap { layers.firstIndex(of: $0).map { values[$0] } }
  }

  static func layerMean(_ values: [[Float]]) -> [Float] {
    guard let first = values.first else { return [] }
    return first.indices.map { entry in values.reduce(Float(0)) { $0 + $1[entry] } / Float(values.count) }
  }
}

/// One generated completion.
public struct Completion: Sendable {
  public var requestIndex: Int
  public var sampleIndex: Int
  public var tokens: [Int]
  /// true when it ended with an EOS id, false when truncated at `maxNewTokens`.
  public var finished: Bool
  /// log-probability of each token under the distribution it was sampled from (after every filter
  /// and the temperature); at temperature 0, under softmax of the processed logits.
  public var logProbs: [Float]
  public var attention: AttentionMass?
}

/// Where a rollout's time went.
public struct RolloutTimings: Sendable {
  /// Vision tower, prompt prefill and first-token sampling, all prompts.
  public var prefillSeconds: Double = 0
  /// Batched decode steps, including admissions of waiting sequences and stop checks.
  public var decodeSeconds: Double = 0
  public var decodeSteps: Int = 0
  public var generatedTokens: Int = 0
  public var slots: Int = 0
  /// Decode steps replayed from a captured CUDA graph.
  public var graphReplays: Int = 0
  /// Decode steps run over fewer slots than allocated (after compaction into a smaller bucket).
  public var bucketSteps: Int = 0
  /// Whether the decode step ran the fused bf16 CUDA kernels, and if not (on CUDA), why not.
  public var fusedKernels = false
  public var fusedUnavailableReason: String? = nil
  public var totalSeconds: Double { prefillSeconds + decodeSeconds }
  public var tokensPerSecond: Double { totalSeconds > 0 ? Double(generatedTokens) / totalSeconds : 0 }
  public var millisecondsPerStep: Double { decodeSteps > 0 ? decodeSeconds * 1000 / Double(decodeSteps) : 0 }
}

/// Rollout inputs or resources that cannot work; the message says which request or setting.
public enum RolloutError: Error, CustomStringConvertible, Sendable {
  case invalidRequest(index: Int, reason: String)
  case invalidSettings(String)
  case insufficientMemory(String)

  public var description: String {
    switch self {
    case .invalidRequest(let index, let reason): return "rollout request \(index): \(reason)"
    case .invalidSettings(let message): return "sampling settings: \(message)"
    case .insufficientMemory(let message): return "rollout memory: \(message)"
    }
  }
}
