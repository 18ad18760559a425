import Common
import Foundation

extension QwenVLConfig {
  /// The config as a transformers 4.x `config.json` object, laid out like the Hub files (text
  /// fields at the top level, `vision_config` in the family's own naming, `rope_scaling` with
  /// `type: "mrope"`), which both transformers 4.49+ and 5.x load.
  public func huggingFaceJSON(transformersVersion: String = "4.49.0") -> JSONValue {
    var object: [String: JSONValue] = [
      "architectures": .array([.string(family.architecture)]),
      "model_type": .string(family.rawValue),
      "attention_dropout": .double(text.attentionDropout),
      "hidden_act": .string(text.hiddenAct),
      "hidden_size": .int(text.hiddenSize),
      "initializer_range": .double(0.02),
      "intermediate_size": .int(text.intermediateSize),
      "max_position_embeddings": .int(text.maxPositionEmbeddings),
      "num_attention_heads": .int(text.numAttentionHeads),
      "num_hidden_layers": .int(text.numHiddenLayers),
      "num_key_value_heads": .int(text.numKeyValueHeads),
      "rms_norm_eps": .double(text.rmsNormEps),
      "rope_theta": .double(text.ropeTheta),
      "rope_scaling": .object(["type": .string("mrope"), "mrope_section": .array(text.mropeSection.map { .int($0) })]),
      "tie_word_embeddings": .bool(tieWordEmbeddings),
      "use_cache": .bool(true),
      "use_sliding_window": .bool(text.useSlidingWindow),
      "vocab_size": .int(text.vocabSize),
      "image_token_id": .int(imageTokenId),
      "video_token_id": .int(videoTokenId),
      "vision_start_token_id": .int(visionStartTokenId),
      "vision_end_token_id": .int(visionEndTokenId),
      "transformers_version": .string(transformersVersion),
      "vision_config": visionJSON(),
    ]
    if text.headDim != text.hiddenSize / text.numAttentionHeads { object["head_dim"] = .int(text.headDim) }
    if let slidingWindow = text.slidingWindow { object["sliding_window"] = .int(slidingWindow) }
    if let maxWindowLayers = text.maxWindowLayers { object["max_window_layers"] = .int(maxWindowLayers) }
    if let visionTokenId { object["vision_token_id"] = .int(visionTokenId) }
    if let bosTokenId { object["bos_token_id"] = .int(bosTokenId) }
    if eosTokenIds.count == 1 { object["eos_token_id"] = .int(eosTokenIds[0]) }
    if eosTokenIds.count > 1 { object["eos_token_id"] = .array(eosTokenIds.map { .int($0) }) }
    if let torchDtype { object["torch_dtype"] = .string(torchDtype) }
    return .object(object)
  }

  private func visionJSON() -> JSONValue {
    var object: [String: JSONValue] = [
      "depth": .int(vision.depth),
      "num_heads": .int(vision.numHeads),
      "in_chans": .int(vision.inChannels),
      "patch_size": .int(vision.patchSize),
      "spatial_patch_size": .int(vision.patchSize),
      "spatial_merge_size": .int(vision.spatialMergeSize),
      "temporal_patch_size": .int(vision.temporalPatchSize),
    ]
    switch family {
    case .qwen2VL:
      object["embed_dim"] = .int(vision.embedDim)
      object["hidden_size"] = .int(vision.outHiddenSize)
      let ratio = vision.mlpRatio ?? Double(vision.intermediateSize) / Double(vision.embedDim)
      object["mlp_ratio"] = ratio.rounded() == ratio ? .int(Int(ratio)) : .double(ratio)
      if vision.hiddenAct != "quick_gelu" { object["hidden_act"] = .string(vision.hiddenAct) }
    case .qwen25VL:
      object["hidden_size"] = .int(vision.embedDim)
      object["out_hidden_size"] = .int(vision.outHiddenSize)
      object["intermediate_size"] = .int(vision.intermediateSize)
      object["hidden_act"] = .string(vision.hiddenAct)
      if let windowSize = vision.windowSize { object["window_size"] = .int(windowSize) }
      if let indexes = vision.fullAttentionBlockIndexes { object["fullatt_block_indexes"] = .array(indexes.map { .int($0) }) }
      if let tokensPerSecond = vision.tokensPerSecond { object["tokens_per_second"] = .int(tokensPerSecond) }
    }
    return .object(object)
  }

  /// `config.json` text: sorted keys, two-space indent, trailing newline (as transformers writes).
  public func configJSONText(transformersVersion: String = "4.49.0") -> String {
    prettyJSON(huggingFaceJSON(transformersVersion: transformersVersion)) + "\n"
  }

  /// Writes `config.json` into `directory` (through a temporary file and a rename).
  public func write(to directory: URL) throws {
    let url = directory.appendingPathComponent("config.json")
    do {
      try Data(configJSONText().utf8).write(to: url, options: .atomic)
    } catch {
      let nsError = error as NSError
      let posix = (nsError.userInfo[NSUnderlyingErrorKey] as? NSError).flatMap { $0.domain == NSPOSIXErrorDomain ? $0.code : nil }
      let reason = posix.map { String(cString: strerror(Int32($0))).lowercased() } ?? "write failed"
      throw ModelConfigError.unreadable(path: url.path, reason: "cannot write: \(reason)")
    }
  }
}

/// Pretty JSON in the style of Python's `json.dumps(value, indent=2, sort_keys=True)`.
public func prettyJSON(_ value: JSONValue, indent: Int = 0) -> String {
  let pad = String(repeating: " ", count: indent + 2)
  let closing = String(repeating: " ", count: indent)
  switch value {
  case .array(let items) where !items.isEmpty:
    return "[\n" + items.map { pad + prettyJSON($0, indent: indent + 2) }.joined(separator: ",\n") + "\n\(closing)]"
  case .object(let members) where !members.isEmpty:
    let keys = members.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
    let lines = keys.map { key in
      pad + JSONValue.string(key).jsonString + ": " + prettyJSON(members[key] ?? .null, indent: indent + 2)
    }
    return "{\n" + lines.joined(separator: ",\n") + "\n\(closing)}"
  case .double(let number) where number.isFinite:
    // Python prints floats with a fractional part or an exponent ("1e-06", "1000000.0").
    return "\(number)"
  default:
    return value.jsonString
  }
}
