import Foundation
import Torch

/// Settings of single-prompt generation (the batched engine for GRPO is separate).
public struct GenerationOptions: Sendable {
  public var maxNewTokens: Int = 64
  /// 0 = greedy (argmax of float32 logits; the first index wins ties, as torch.argmax).
  public var temperature: Double = 0
  public var topP: Double = 1
  public var topK: Int = 0
  public var seed: UInt64 = 0
  public var eosTokenIds: Set<Int> = []
  /// Tokens never sampled (vision special tokens by default in callers).
  public var suppressedTokenIds: [Int] = []
  public init() {}
}

public struct GenerationResult: Sendable {
  public var tokens: [Int]
  public var finished: Bool
  public var prefillSeconds: Double
  public var decodeSeconds: Double
}

extension QwenVLModel {
  /// Generates a completion for one prompt with a KV cache (docs/qwen-vl.md 4.5: decode positions are
  /// `cached + delta` on all three M-RoPE channels).
  public func generate(promptIDs: [Int], pixelValues: Tensor? = nil, grids: [[Int]] = [],
                       options: GenerationOptions) throws -> GenerationResult {
    try withNoGrad {
      let generator = Generator(seed: options.seed, device: device)
      let start = DispatchTime.now().uptimeNanoseconds
      let cache = KVCache(layers: config.text.numHiddenLayers)
      let positions = ropePositions(promptIDs: promptIDs, imageGrids: grids)
      let embeddings = try embed(ids: promptIDs, pixelValues: pixelValues, grids: grids)
      var hidden = language(embeddings: embeddings, positions: positionTensor(positions), cache: cache)
      var next = pick(hidden: hidden[0, -1], options: options, generator: generator)
      let prefillEnd = DispatchTime.now().uptimeNanoseconds
      var tokens: [Int] = []
      var finished = false
      while true {
        tokens.append(next)
        if options.eosTokenIds.contains(next) { finished = true; break }
        if tokens.count >= options.maxNewTokens { break }
        let position = cache.length + positions.delta
        let positionTensor = Tensor.full([3, 1, 1], Double(position), dtype: .int64, device: device)
        let tokenEmbedding = language.embed(Tensor([next]).to(device).unsqueeze(0))
        hidden = language(embeddings: tokenEmbedding, positions: positionTensor, cache: cache)
        next = pick(hidden: hidden[0, -1], options: options, generator: generator)
      }
      let end = DispatchTime.now().uptimeNanoseconds
      return GenerationResult(tokens: tokens, finished: finished, prefillSeconds: Double(prefillEnd - start) / 1e9,
                              decodeSeconds: Double(end - prefillEnd) / 1e9)
    }
  }

  /// Chooses the next token from the last hidden state `[D]`.
  func pick(hidden: Tensor, options: GenerationOptions, generator: Generator) -> Int {
    var logits = F.linear(hidden.unsqueeze(0), headWeight).to(.float32)[0]
    if !options.suppressedTokenIds.isEmpty {
      let suppressed = Tensor(options.suppressedTokenIds.filter { $0 < logits.size(0) }).to(device)
      logits = logits.indexPutting(suppressed, value: -Double.infinity)
    }
    if options.temperature <= 0 { return logits.argmax(dim: 0).itemInt() }
    return Sampling.sample(logits: logits, temperature: options.temperature, topK: options.topK, topP: options.topP,
                           generator: generator)
  }
}

extension Tensor {
  /// A copy with `self[indices] = value` (1-D).
  func indexPutting(_ indices: Tensor, value: Double) -> Tensor {
    let copy = clone()
    copy.indexPut_([(0, indices)], Tensor.full([indices.count], value, dtype: dtype, device: device))
    return copy
  }
}

/// Token sampling with temperature, top-k and top-p, as transformers' logits warpers (temperature,
/// then top-k, then top-p keeping at least one token).
public enum Sampling {
  public static func filteredLogits(_ logits: Tensor, temperature: Double, topK: Int, topP: Double) -> Tensor {
    var scores = logits / temperature
    let vocab = scores.size(-1)
    if topK > 0 && topK < vocab {
      let threshold = scores.topk(topK, dim: -1).values.narrow(-1, start: topK - 1, length: 1)
      scores = scores.maskedFill(scores.lt(threshold), -Double.infinity)
    }
    if topP < 1 {
      let (sorted, order) = scores.sort(dim: -1, descending: false)
      let cumulative = sorted.softmax(dim: -1).cumsum(dim: -1)
      var remove = cumulative.le(1 - topP)
      // Keep at least the most likely token (the last in ascending order).
      let last = remove.size(-1) - 1
      remove = remove.logicalAnd(Tensor.arange(remove.size(-1), device: remove.device).ne(Double(last)))
      let removeInOriginalOrder = remove.scatter(-1, order, remove)
      scores = scores.maskedFill(removeInOriginalOrder, -Double.infinity)
    }
    return scores
  }

  public static func sample(logits: Tensor, temperature: Double, topK: Int, topP: Double, generator: Generator) -> Int {
    let scores = filteredLogits(logits, temperature: temperature, topK: topK, topP: topP)
    return scores.softmax(dim: -1).multinomial(1, generator: generator).itemInt()
  }
}
