import Common
import Foundation

/// Which Qwen vision-language architecture a checkpoint is.
public enum QwenVLFamily: String, Sendable, Codable, CaseIterable {
  case qwen2VL = "qwen2_vl"
  case qwen25VL = "qwen2_5_vl"

  /// The class name transformers records in `architectures`.
  public var architecture: String {
    switch self {
    case .qwen2VL: return "Qwen2VLForConditionalGeneration"
    case .qwen25VL: return "Qwen2_5_VLForConditionalGeneration"
    }
  }
}

/// Which `config.json` layout a config was read from.
public enum ConfigLayout: String, Sendable, Codable {
  /// transformers 4.x: text fields at the top level, `rope_scaling` with `mrope_section`.
  case transformers4
  /// transformers 5.x: text fields under `text_config`, `rope_parameters`.
  case transformers5
}

/// The language model (Qwen2 decoder with M-RoPE).
public struct TextConfig: Sendable, Codable, Equatable {
  public var hiddenSize: Int
  public var intermediateSize: Int
  public var numHiddenLayers: Int
  public var numAttentionHeads: Int
  public var numKeyValueHeads: Int
  /// Per-head width; `head_dim` when the file has it, else hidden_size / num_attention_heads.
  public var headDim: Int
  /// Embedding / lm_head rows (larger than the tokenizer's vocabulary).
  public var vocabSize: Int
  public var rmsNormEps: Double
  public var ropeTheta: Double
  /// M-RoPE split of the rotary half-dimension into (temporal, height, width); sums to headDim / 2.
  public var mropeSection: [Int]
  public var maxPositionEmbeddings: Int
  public var hiddenAct: String
  public var attentionDropout: Double
  public var useSlidingWindow: Bool
  public var slidingWindow: Int?
  public var maxWindowLayers: Int?

  /// Query heads sharing one key/value head.
  public var queriesPerKeyValueHead: Int { numAttentionHeads / numKeyValueHeads }
}

/// The vision tower. Field names here are unambiguous; see `init` for the per-family mapping of
/// the file's `hidden_size`, which means different things in the two families.
public struct VisionConfig: Sendable, Codable, Equatable {
  public var depth: Int
  /// ViT width (Qwen2-VL `embed_dim`, Qwen2.5-VL `hidden_size`); 1280 in all released checkpoints.
  public var embedDim: Int
  public var numHeads: Int
  /// MLP hidden width (Qwen2-VL `embed_dim * mlp_ratio`, Qwen2.5-VL `intermediate_size`).
  public var intermediateSize: Int
  /// Merger output width = LLM width (Qwen2-VL `hidden_size`, Qwen2.5-VL `out_hidden_size`).
  public var outHiddenSize: Int
  public var hiddenAct: String
  public var inChannels: Int
  public var patchSize: Int
  public var temporalPatchSize: Int
  public var spatialMergeSize: Int
  /// Qwen2-VL only: MLP ratio as written in the file.
  public var mlpRatio: Double?
  /// Qwen2.5-VL only: window attention size in pixels (112).
  public var windowSize: Int?
  /// Qwen2.5-VL only: blocks with full attention (0-based).
  public var fullAttentionBlockIndexes: [Int]?
  /// Qwen2.5-VL only: temporal M-RoPE scale for video (2 in the checkpoints; the class default 4 is wrong).
  public var tokensPerSecond: Int?

  public var headDim: Int { embedDim / numHeads }
}

/// A Qwen2-VL or Qwen2.5-VL `config.json`, decoded from either transformers layout.
public struct QwenVLConfig: Sendable, Codable, Equatable {
  public var family: QwenVLFamily
  public var text: TextConfig
  public var vision: VisionConfig
  public var tieWordEmbeddings: Bool
  public var imageTokenId: Int
  public var videoTokenId: Int
  public var visionStartTokenId: Int
  public var visionEndTokenId: Int
  /// `<|vision_pad|>`; absent from 5.x files.
  public var visionTokenId: Int?
  public var bosTokenId: Int?
  /// `eos_token_id` (a single id in the checkpoints; generation_config lists more).
  public var eosTokenIds: [Int]
  /// `torch_dtype` (4.x) or `dtype` (5.x), e.g. "bfloat16".
  public var torchDtype: String?
  /// The layout the config was read from.
  public var sourceLayout: ConfigLayout

  public var mropeSection: [Int] { text.mropeSection }
  public var ropeTheta: Double { text.ropeTheta }
  /// Pixels per LLM token side: patch size times merge size (28).
  public var imageFactor: Int { vision.patchSize * vision.spatialMergeSize }
}

// MARK: - Decoding

extension QwenVLConfig {
  /// Reads `config.json` at `url`.
  public init(contentsOf url: URL) throws {
    try self.init(fields: try JSONFields.load(url))
  }

  /// Decodes a config from JSON text (`file` names it in errors).
  public init(jsonText: String, file: String = "config.json") throws {
    let value: JSONValue
    do { value = try JSONValue.parse(jsonText) } catch { throw ModelConfigError.invalidJSON(path: file, reason: "\(error)") }
    guard case .object(let members) = value else { throw ModelConfigError.invalidJSON(path: file, reason: "expected an object") }
    try self.init(fields: JSONFields(members, file: file))
  }

  init(fields top: JSONFields) throws {
    let modelType = try top.required("model_type", top.string)
    guard let family = QwenVLFamily(rawValue: modelType) else {
      throw ModelConfigError.unsupportedModel(file: top.file, modelType: modelType)
    }
    let nested = try top.object("text_config")
    // Text fields: 5.x puts them under text_config; some files carry both, so fall back to the top.
    let textSources = [nested, top].compactMap { $0 }
    self.family = family
    sourceLayout = nested == nil ? .transformers4 : .transformers5
    text = try Self.decodeText(textSources, top: top)
    let visionFields = try top.required("vision_config", top.object)
    vision = try Self.decodeVision(visionFields, family: family)
    tieWordEmbeddings = try Self.first(textSources.reversed(), "tie_word_embeddings") { (f, k) in try f.bool(k) }
    imageTokenId = try Self.first(textSources.reversed(), "image_token_id") { (f, k) in try f.int(k) }
    videoTokenId = try Self.first(textSources.reversed(), "video_token_id") { (f, k) in try f.int(k) }
    visionStartTokenId = try Self.first(textSources.reversed(), "vision_start_token_id") { (f, k) in try f.int(k) }
    visionEndTokenId = try Self.first(textSources.reversed(), "vision_end_token_id") { (f, k) in try f.int(k) }
    visionTokenId = try Self.optionalFirst(textSources.reversed(), "vision_token_id") { (f, k) in try f.int(k) }
    bosTokenId = try Self.optionalFirst(textSources, "bos_token_id") { (f, k) in try f.int(k) }
    eosTokenIds = try Self.optionalFirst(textSources, "eos_token_id") { (f, k) in try f.intOrInts(k) } ?? []
    torchDtype = try Self.optionalFirst([top] + textSources, "torch_dtype") { (f, k) in try f.string(k) }
      ?? Self.optionalFirst([top] + textSources, "dtype") { (f, k) in try f.string(k) }
    guard vision.outHiddenSize == text.hiddenSize else {
      throw ModelConfigError.invalidValue(
        file: top.file, field: family == .qwen2VL ? "vision_config.hidden_size" : "vision_config.out_hidden_size",
        reason: "merger output \(vision.outHiddenSize) differs from the text hidden_size \(text.hiddenSize)")
    }
  }

  /// The value of `key` in the first object that has it; an error naming the first object's path if none.
  static func first<T>(
    _ sources: [JSONFields], _ key: String, _ read: (JSONFields, String) throws -> T?
  ) throws -> T {
    if let value = try optionalFirst(sources, key, read) { return value }
    let primary = sources.first ?? JSONFields([:], file: "config.json")
    throw ModelConfigError.missingField(file: primary.file, field: primary.fieldPath(key))
  }

  static func optionalFirst<T>(
    _ sources: [JSONFields], _ key: String, _ read: (JSONFields, String) throws -> T?
  ) throws -> T? {
    for source in sources where source.has(key) { return try read(source, key) }
    return nil
  }

  static func decodeText(_ sources: [JSONFields], top: JSONFields) throws -> TextConfig {
    func int(_ key: String) throws -> Int {
      try first(sources, key) { (f, k) in try f.int(k) }
    }
    func double(_ key: String) throws -> Double {
      try first(sources, key) { (f, k) in try f.double(k) }
    }
    let hiddenSize = try int("hidden_size")
    let heads = try int("num_attention_heads")
    let kvHeads = try int("num_key_value_heads")
    let primary = sources.first ?? top
    guard heads > 0, kvHeads > 0, heads % kvHeads == 0, hiddenSize % heads == 0 else {
      throw ModelConfigError.invalidValue(
        file: primary.file, field: primary.fieldPath("num_key_value_heads"),
        reason: "hidden_size \(hiddenSize), \(heads) heads and \(kvHeads) key/value heads do not divide evenly")
    }
    let headDim = try optionalFirst(sources, "head_dim") { (f, k) in try f.int(k) } ?? hiddenSize / heads
    let rope = try decodeRope(sources, headDim: headDim)
    return TextConfig(
      hiddenSize: hiddenSize, intermediateSize: try int("intermediate_size"),
      numHiddenLayers: try int("num_hidden_layers"), numAttentionHeads: heads, numKeyValueHeads: kvHeads,
      headDim: headDim, vocabSize: try int("vocab_size"), rmsNormEps: try double("rms_norm_eps"),
      ropeTheta: rope.theta, mropeSection: rope.section,
      maxPositionEmbeddings: try int("max_position_embeddings"),
      hiddenAct: try optionalFirst(sources, "hidden_act") { (f, k) in try f.string(k) } ?? "silu",
      attentionDropout: try optionalFirst(sources, "attention_dropout") { (f, k) in try f.double(k) } ?? 0,
      useSlidingWindow: try optionalFirst(sources, "use_sliding_window") { (f, k) in try f.bool(k) } ?? false,
      slidingWindow: try optionalFirst(sources, "sliding_window") { (f, k) in try f.int(k) },
      maxWindowLayers: try optionalFirst(sources, "max_window_layers") { (f, k) in try f.int(k) })
  }

  /// Reads theta and the M-RoPE sections from `rope_parameters` (5.x) or `rope_theta` +
  /// `rope_scaling` (4.x). Only plain ("default", written "mrope" in 4.x files) RoPE is supported.
  static func decodeRope(_ sources: [JSONFields], headDim: Int) throws -> (theta: Double, section: [Int]) {
    let parameters = try optionalFirst(sources, "rope_parameters") { (f, k) in try f.object(k) }
    let scaling = try optionalFirst(sources, "rope_scaling") { (f, k) in try f.object(k) }
    let primary = sources.first ?? JSONFields([:], file: "config.json")
    guard let rope = parameters ?? scaling else {
      throw ModelConfigError.missingField(file: primary.file, field: primary.fieldPath("rope_scaling.mrope_section"))
    }
    let ropeType = try rope.string("rope_type") ?? rope.string("type") ?? "default"
    guard ropeType == "default" || ropeType == "mrope" else {
      throw ModelConfigError.invalidValue(file: rope.file, field: rope.fieldPath("rope_type"), reason: "'\(ropeType)' RoPE is not supported (only default/mrope)")
    }
    let section = try rope.required("mrope_section", rope.ints)
    guard section.count == 3, section.allSatisfy({ $0 > 0 }), section.reduce(0, +) * 2 == headDim else {
      throw ModelConfigError.invalidValue(file: rope.file, field: rope.fieldPath("mrope_section"), reason: "\(section) must be 3 positive sizes summing to head_dim / 2 = \(headDim / 2)")
    }
    let theta: Double
    if let value = try rope.double("rope_theta") {
      theta = value
    } else {
      theta = try first(sources, "rope_theta") { (f, k) in try f.double(k) }
    }
    return (theta, section)
  }

  static func decodeVision(_ fields: JSONFields, family: QwenVLFamily) throws -> VisionConfig {
    let inChannels = try fields.int("in_chans") ?? fields.int("in_channels") ?? 3
    var config = VisionConfig(
      depth: try fields.positive("depth"), embedDim: 0, numHeads: try fields.positive("num_heads"),
      intermediateSize: 0, outHiddenSize: 0, hiddenAct: "", inChannels: inChannels,
      patchSize: try fields.int("patch_size") ?? fields.positive("spatial_patch_size"),
      temporalPatchSize: try fields.positive("temporal_patch_size"),
      spatialMergeSize: try fields.positive("spatial_merge_size"))
    switch family {
    case .qwen2VL:
      config.embedDim = try fields.positive("embed_dim")
      let ratio = try fields.required("mlp_ratio", fields.double)
      config.mlpRatio = ratio
      config.intermediateSize = Int((Double(config.embedDim) * ratio).rounded(.towardZero))
      config.outHiddenSize = try fields.positive("hidden_size")
      // Not written in the Hub files: the architecture's activation (transformers' class default).
      config.hiddenAct = try fields.string("hidden_act") ?? "quick_gelu"
    case .qwen25VL:
      config.embedDim = try fields.positive("hidden_size")
      config.intermediateSize = try fields.positive("intermediate_size")
      config.outHiddenSize = try fields.positive("out_hidden_size")
      config.hiddenAct = try fields.string("hidden_act") ?? "silu"
      config.windowSize = try fields.positive("window_size")
      config.fullAttentionBlockIndexes = try fields.required("fullatt_block_indexes", fields.ints)
      config.tokensPerSecond = try fields.required("tokens_per_second", fields.int)
    }
    guard config.embedDim % config.numHeads == 0 else {
      throw ModelConfigError.invalidValue(file: fields.file, field: fields.fieldPath("num_heads"), reason: "\(config.numHeads) heads do not divide width \(config.embedDim)")
    }
    return config
  }
}
