import Foundation
import Torch

/// The uniform numbers a sequence consumes, one per generated token, from a SplitMix64 stream keyed
/// by (request seed, sample index) only: a sequence's samples never depend on which other sequences
/// share the batch, the slot it lands in, or the device.
public enum NoiseStream {
  /// SplitMix64 finaliser (Steele, Lea, Flood 2014).
  static func mix(_ value: UInt64) -> UInt64 {
    var z = value &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// `count` uniforms in [0, 1) with 24 random bits each (exact in float32).
  public static func uniforms(seed: UInt64, sample: Int, count: Int) -> [Float] {
    var state = mix(mix(seed) ^ UInt64(truncatingIfNeeded: sample) &* 0xD6E8_FEB8_6659_FD93)
    return (0..<count).map { _ in
      state = state &+ 0x9E37_79B9_7F4A_7C15
      return Float(mix(state) >> 40) * 0x1p-24
    }
  }
}

/// Token choice for a batch of rows, all on the logits' device with no host synchronisation (so a
/// decode step can be captured in a CUDA graph). Each row uses only its own logits, history mask and
/// uniform number, so rows are independent of each other.
public struct TokenSampler: Sendable {
  public var temperature: Double
  public var topK: Int
  public var topP: Double
  public var minP: Double
  public var repetitionPenalty: Double
  /// `[vocab]` float32: -inf at suppressed ids, 0 elsewhere (nil = nothing suppressed).
  public var suppressionBias: Tensor?

  public init(settings: SamplingSettings, suppressed: [Int], vocabSize: Int, device: Device) {
    temperature = settings.temperature
    topK = settings.topK
    topP = settings.topP
    minP = settings.minP
    repetitionPenalty = settings.repetitionPenalty
    let valid = suppressed.filter { $0 >= 0 && $0 < vocabSize }
    if valid.isEmpty {
      suppressionBias = nil
    } else {
      var bias = [Float](repeating: 0, count: vocabSize)
      for id in valid { bias[id] = -.infinity }
      suppressionBias = Tensor(bias).to(device)
    }
  }

  public var isGreedy: Bool { temperature <= 0 }
  /// Settings the fused CUDA sampler covers (`CUDA.FusedKernels.sample`): suppression and
  /// temperature only, which is what GRPO rollouts use by default.
  public var fusable: Bool { topK == 0 && topP >= 1 && minP == 0 && repetitionPenalty == 1 }
  public var usesHistory: Bool { repetitionPenalty != 1 }

  /// transformers' logits processors: repetition penalty over `seen` (bool `[rows, vocab]`), then
  /// suppression.
  public func processed(_ logits: Tensor, seen: Tensor?) -> Tensor {
    var scores = logits
    if usesHistory, let seen {
      let penalized = Tensor.where(scores.lt(0), scores * repetitionPenalty, scores / repetitionPenalty)
      scores = Tensor.where(seen, penalized, scores)
    }
    if let suppressionBias { scores = scores + suppressionBias }
    return scores
  }

  /// transformers' warpers in order: temperature, top-k, top-p (at least one token kept), min-p.
  public func warped(_ processed: Tensor) -> Tensor {
    var scores = temperature == 1 ? processed : processed / temperature
    let vocab = scores.size(-1)
    if topK > 0 && topK < vocab {
      let threshold = scores.topk(topK, dim: -1).values.narrow(-1, start: topK - 1, length: 1)
      scores = scores.maskedFill(scores.lt(threshold), -Double.infinity)
    }
    if topP < 1 {
      let (sorted, order) = scores.sort(dim: -1, descending: false)
      var remove = sorted.softmax(dim: -1).cumsum(dim: -1).le(1 - topP)
      // The most likely token (last in ascending order) always stays.
      remove = remove.logicalAnd(Tensor.arange(vocab, device: scores.device).ne(Double(vocab - 1)))
      scores = scores.maskedFill(remove.scatter(-1, order, remove), -Double.infinity)
    }
    if minP > 0 {
      let probabilities = scores.softmax(dim: -1)
      let floor = probabilities.max([-1], keepDim: true) * minP
      scores = scores.maskedFill(probabilities.lt(floor), -Double.infinity)
    }
    return scores
  }

  /// The distribution tokens are drawn from, as log-probabilities `[rows, vocab]`.
  public func logDistribution(_ logits: Tensor, seen: Tensor?) -> Tensor {
    let scores = processed(logits.to(.float32), seen: seen)
    return (isGreedy ? scores : warped(scores)).logSoftmax(dim: -1)
  }

  /// Chooses one token per row of `logits` `[rows, vocab]` with `uniforms` `[rows]` (float32 in
  /// [0, 1)): greedy argmax at temperature 0, else inverse-CDF sampling, which needs one uniform per
  /// token instead of one per vocabulary entry. Returns int64 tokens and float32 log-probs `[rows]`.
  public func choose(_ logits: Tensor, seen: Tensor?, uniforms: Tensor) -> (tokens: Tensor, logProbs: Tensor) {
    let logDistribution = logDistribution(logits, seen: seen)
    let tokens: Tensor
    if isGreedy {
      tokens = logDistribution.argmax(dim: -1)
    } else {
      let probabilities = logDistribution.exp()
      let cumulative = probabilities.cumsum(dim: -1)
      let target = uniforms.unsqueeze(1) * cumulative.narrow(-1, start: cumulative.size(-1) - 1, length: 1)
      // The token k with cdf[k-1] <= target < cdf[k]; zero-probability tokens have cdf[k] = cdf[k-1]
      // and can never satisfy this. The clamp to the last token with probability > 0 covers a target
      // that rounds up to the total (probability about 2^-24).
      let count = cumulative.le(target).sum(dim: -1, dtype: .int64)
      let vocab = probabilities.size(-1)
      let indices = Tensor.arange(vocab, device: probabilities.device).unsqueeze(0)
      let lastPositive = (probabilities.gt(0).to(.int64) * indices).max([-1])
      tokens = count.minimum(lastPositive)
    }
    let logProbs = logDistribution.gather(1, tokens.unsqueeze(1)).squeeze(1)
    return (tokens, logProbs)
  }
}
