import Common
import Foundation

/// `generation_config.json`: stop tokens and the sampling settings a checkpoint ships with.
public struct GenerationConfig: Sendable, Codable, Equatable {
  /// `eos_token_id`, an integer or a list in the file; always a list here.
  public var eosTokenIds: [Int]
  public var bosTokenId: Int?
  public var padTokenId: Int?
  public var doSample: Bool?
  public var temperature: Double?
  public var topP: Double?
  public var topK: Int?
  public var repetitionPenalty: Double?
  public var maxNewTokens: Int?

  public init(
    eosTokenIds: [Int] = [], bosTokenId: Int? = nil, padTokenId: Int? = nil, doSample: Bool? = nil,
    temperature: Double? = nil, topP: Double? = nil, topK: Int? = nil, repetitionPenalty: Double? = nil,
    maxNewTokens: Int? = nil
  ) {
    self.eosTokenIds = eosTokenIds
    self.bosTokenId = bosTokenId
    self.padTokenId = padTokenId
    self.doSample = doSample
    self.temperature = temperature
    self.topP = topP
    self.topK = topK
    self.repetitionPenalty = repetitionPenalty
    self.maxNewTokens = maxNewTokens
  }

  /// Reads `generation_config.json`.
  public init(contentsOf url: URL) throws {
    let fields = try JSONFields.load(url)
    self.init(
      eosTokenIds: try fields.intOrInts("eos_token_id") ?? [], bosTokenId: try fields.int("bos_token_id"),
      padTokenId: try fields.int("pad_token_id"), doSample: try fields.bool("do_sample"),
      temperature: try fields.double("temperature"), topP: try fields.double("top_p"),
      topK: try fields.int("top_k"), repetitionPenalty: try fields.double("repetition_penalty"),
      maxNewTokens: try fields.int("max_new_tokens"))
    try check(fields)
  }

  /// Sampling values the sampler cannot use are refused naming the field (a checkpoint's file may
  /// be hand-edited); values transformers accepts pass.
  private func check(_ fields: JSONFields) throws {
    if let temperature, !(temperature.isFinite && temperature >= 0) {
      throw fields.invalid("temperature", "\(temperature) must be a finite number >= 0")
    }
    if let topP, !(topP.isFinite && topP >= 0 && topP <= 1) {
      throw fields.invalid("top_p", "\(topP) must be in [0, 1]")
    }
    if let topK, topK < 0 { throw fields.invalid("top_k", "\(topK) must not be negative") }
    if let repetitionPenalty, !(repetitionPenalty.isFinite && repetitionPenalty > 0) {
      throw fields.invalid("repetition_penalty", "\(repetitionPenalty) must be a positive finite number")
    }
    if let maxNewTokens, maxNewTokens < 0 { throw fields.invalid("max_new_tokens", "\(maxNewTokens) must not be negative") }
    if let bad = eosTokenIds.first(where: { $0 < 0 }) { throw fields.invalid("eos_token_id", "token id \(bad) is negative") }
  }

  // transformers' GenerationConfig defaults, used when the file leaves a field out.
  public var effectiveDoSample: Bool { doSample ?? false }
  public var effectiveTemperature: Double { temperature ?? 1.0 }
  public var effectiveTopP: Double { topP ?? 1.0 }
  public var effectiveTopK: Int { topK ?? 50 }
  public var effectiveRepetitionPenalty: Double { repetitionPenalty ?? 1.0 }
}
