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
    do { value = try JSONValue.parse(jsonText) } catch {
      throw ModelConfigError.invalidJSON(path: file, reason: JSONSyntax.describe(Data(jsonText.utf8), fallback: JSONFields.unparsedReason))
    }
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
    let vocabulary = text.vocabSize
    let primary = textSources.reversed().first ?? top
    for (key, id) in [("image_token_id", imageTokenId), ("video_token_id", videoTokenId),
                      ("vision_start_token_id", visionStartTokenId), ("vision_end_token_id", visionEndTokenId),
                      ("vision_token_id", visionTokenId), ("bos_token_id", bosTokenId)] {
      guard let id else { continue }
      guard (0..<vocabulary).contains(id) else {
        throw primary.invalid(key, "token id \(id) is outside the vocabulary (vocab_size \(vocabulary))")
      }
    }
    if let bad = eosTokenIds.first(where: { !(0..<vocabulary).contains($0) }) {
      throw primary.invalid("eos_token_id", "token id \(bad) is outside the vocabulary (vocab_size \(vocabulary))")
    }
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
    /// A required integer within `range`, the error naming the file and field that holds it.
    func int(_ key: String, in range: ClosedRange<Int>) throws -> Int {
      let value = try int(key)
      let holder = sources.first { $0.has(key) } ?? top
      try holder.check(key, value, in: range)
      return value
    }
    func holder(_ key: String) -> JSONFields { sources.first { $0.has(key) } ?? sources.first ?? top }
    let limits = Limits.self
    let hiddenSize = try int("hidden_size", in: 1...limits.width)
    let heads = try int("num_attention_heads", in: 1...limits.heads)
    let kvHeads = try int("num_key_value_heads", in: 1...heads)
    guard heads % kvHeads == 0 else {
      throw holder("num_key_value_heads").invalid(
        "num_key_value_heads", "\(heads) attention heads are not a multiple of \(kvHeads) key/value heads")
    }
    guard hiddenSize % heads == 0 else {
      throw holder("hidden_size").invalid(
        "hidden_size", "\(hiddenSize) is not divisible by num_attention_heads \(heads)")
    }
    let headDim = try optionalFirst(sources, "head_dim") { (f, k) in try f.int(k) } ?? hiddenSize / heads
    guard headDim > 0, headDim % 2 == 0, headDim <= limits.headDim else {
      throw holder("head_dim").invalid("head_dim", "\(headDim) must be even and in 2...\(limits.headDim)")
    }
    let rope = try decodeRope(sources, headDim: headDim)
    let eps = try double("rms_norm_eps")
    guard eps.isFinite, eps >= 0, eps < 1 else {
      throw holder("rms_norm_eps").invalid("rms_norm_eps", "\(eps) must be a finite number in [0, 1)")
    }
    let activation = try optionalFirst(sources, "hidden_act") { (f, k) in try f.string(k) } ?? "silu"
    try checkActivation(activation, holder("hidden_act"), "hidden_act")
    let dropout = try optionalFirst(sources, "attention_dropout") { (f, k) in try f.double(k) } ?? 0
    guard dropout.isFinite, dropout >= 0, dropout < 1 else {
      throw holder("attention_dropout").invalid("attention_dropout", "\(dropout) must be in [0, 1)")
    }
    let slidingWindow = try optionalFirst(sources, "sliding_window") { (f, k) in try f.int(k) }
    if let slidingWindow, slidingWindow < 0 {
      throw holder("sliding_window").invalid("sliding_window", "\(slidingWindow) must not be negative")
    }
    let maxWindowLayers = try optionalFirst(sources, "max_window_layers") { (f, k) in try f.int(k) }
    if let maxWindowLayers, maxWindowLayers < 0 {
      throw holder("max_window_layers").invalid("max_window_layers", "\(maxWindowLayers) must not be negative")
    }
    return TextConfig(
      hiddenSize: hiddenSize, intermediateSize: try int("intermediate_size", in: 1...limits.intermediate),
      numHiddenLayers: try int("num_hidden_layers", in: 1...limits.layers), numAttentionHeads: heads,
      numKeyValueHeads: kvHeads, headDim: headDim, vocabSize: try int("vocab_size", in: 1...limits.vocabulary),
      rmsNormEps: eps, ropeTheta: rope.theta, mropeSection: rope.section,
      maxPositionEmbeddings: try int("max_position_embeddings", in: 1...limits.positions),
      hiddenAct: activation, attentionDropout: dropout,
      useSlidingWindow: try optionalFirst(sources, "use_sliding_window") { (f, k) in try f.bool(k) } ?? false,
      slidingWindow: slidingWindow, maxWindowLayers: maxWindowLayers)
  }

  /// The activations the model implements (`hidden_act`, text and vision).
  public static let supportedActivations = ["silu", "swish", "quick_gelu", "gelu", "gelu_pytorch_tanh", "gelu_new"]

  static func checkActivation(_ name: String, _ fields: JSONFields, _ key: String) throws {
    guard supportedActivations.contains(name) else {
      throw fields.invalid(key, "'\(name)' is not supported; supported: \(supportedActivations.joined(separator: ", "))")
    }
  }

  /// Upper bounds on sizes, far above every released Qwen-VL checkpoint (72B: width 8192, 80
  /// layers, 64 heads, vocabulary 152064), so a typo or overflow fails at load, not at allocation.
  public enum Limits {
    public static let width = 65_536
    public static let intermediate = 1 << 20
    public static let layers = 1_024
    public static let heads = 1_024
    public static let headDim = 1_024
    public static let vocabulary = 1 << 24
    public static let positions = 1 << 26
    public static let visionDepth = 256
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
    guard section.count == 3, section.allSatisfy({ $0 > 0 && $0 <= headDim }), section.reduce(0, +) * 2 == headDim else {
      throw ModelConfigError.invalidValue(file: rope.file, field: rope.fieldPath("mrope_section"), reason: "\(section) must be 3 positive sizes summing to head_dim / 2 = \(headDim / 2)")
    }
    let theta: Double
    let thetaHolder: JSONFields
    if let value = try rope.double("rope_theta") {
      theta = value
      thetaHolder = rope
    } else {
      theta = try first(sources, "rope_theta") { (f, k) in try f.double(k) }
      thetaHolder = sources.first { $0.has("rope_theta") } ?? primary
    }
    guard theta.isFinite, theta > 0 else {
      throw thetaHolder.invalid("rope_theta", "\(theta) must be a positive finite number")
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
      let width = Double(config.embedDim) * ratio
      guard ratio.isFinite, ratio > 0, width < Double(Limits.intermediate) else {
        throw fields.invalid("mlp_ratio", "\(ratio) must be a positive finite number with embed_dim x mlp_ratio <= \(Limits.intermediate)")
      }
      config.intermediateSize = Int(width.rounded(.towardZero))
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
    let embedKey = family == .qwen2VL ? "embed_dim" : "hidden_size"
    try fields.check("depth", config.depth, in: 1...Limits.visionDepth)
    try fields.check("num_heads", config.numHeads, in: 1...Limits.heads)
    try fields.check(embedKey, config.embedDim, in: 1...Limits.width)
    try fields.check(family == .qwen2VL ? "mlp_ratio" : "intermediate_size", config.intermediateSize, in: 1...Limits.intermediate)
    try fields.check(fields.has("in_chans") ? "in_chans" : "in_channels", config.inChannels, in: 3...3)
    try fields.check(fields.has("patch_size") ? "patch_size" : "spatial_patch_size", config.patchSize, in: 1...1024)
    try fields.check("temporal_patch_size", config.temporalPatchSize, in: 1...64)
    try fields.check("spatial_merge_size", config.spatialMergeSize, in: 1...64)
    try checkActivation(config.hiddenAct, fields, "hidden_act")
    if let window = config.windowSize, window % (config.patchSize * config.spatialMergeSize) != 0 {
      throw fields.invalid(
        "window_size", "\(window) is not a multiple of patch_size x spatial_merge_size = \(config.patchSize * config.spatialMergeSize)")
    }
    if let blocks = config.fullAttentionBlockIndexes, let bad = blocks.first(where: { !(0..<config.depth).contains($0) }) {
      throw fields.invalid("fullatt_block_indexes", "block \(bad) is not one of the \(config.depth) blocks (0...\(config.depth - 1))")
    }
    if let rate = config.tokensPerSecond, rate <= 0 {
      throw fields.invalid("tokens_per_second", "\(rate) must be positive")
    }
    return config
  }
}
