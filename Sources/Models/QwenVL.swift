import Foundation
import ModelConfig
import NN
import SafeTensors
import Torch

/// A Qwen2-VL or Qwen2.5-VL model: vision tower, Qwen2 decoder with M-RoPE and the LM head.
/// Canonical weight names are the Hub's 4.x layout (`visual.*`, `model.*`, `lm_head.weight`).
public final class QwenVLModel: Module, @unchecked Sendable {
  public let config: QwenVLConfig
  public let visual: VisionTower
  public let language: LanguageModel
  /// nil when the head is tied to the input embeddings.
  let lmHead: Linear?
  /// Fast-path switches of the model and of the engines that run it (the CLI sets them once from
  /// the environment; the defaults are the tested fast paths).
  public var switches = KernelSwitches() {
    didSet { visual.switches = switches }
  }

  public init(config: QwenVLConfig, dtype: DType = .float32, device: Device = .cpu) {
    self.config = config
    visual = VisionTower(config: config.vision, family: config.family, dtype: dtype, device: device)
    language = LanguageModel(config: config.text, dtype: dtype, device: device)
    lmHead = config.tieWordEmbeddings ? nil
      : Linear(config.text.hiddenSize, config.text.vocabSize, bias: false, dtype: dtype, device: device)
  }

  public override var children: [(String, Module)] {
    var out: [(String, Module)] = [("visual", visual), ("model", language)]
    if let lmHead { out.append(("lm_head", lmHead)) }
    return out
  }

  /// The output projection `[vocab, hidden]` (the embedding table when tied).
  public var headWeight: Tensor { lmHead?.weight.value ?? language.embeddingWeight.value }

  public var dtype: DType { language.embeddingWeight.value.dtype }
  public var device: Device { language.embeddingWeight.value.device }

  public var ropeTokens: RopeIndex.Tokens {
    RopeIndex.Tokens(image: config.imageTokenId, video: config.videoTokenId, visionStart: config.visionStartTokenId)
  }

  /// Rope positions of a prompt (its image grids in order).
  public func ropePositions(promptIDs: [Int], imageGrids: [[Int]]) -> RopePositions {
    RopeIndex.compute(ids: promptIDs, imageGrids: imageGrids, tokens: ropeTokens, mergeSize: config.vision.spatialMergeSize,
                      family: config.family, tokensPerSecond: config.vision.tokensPerSecond ?? 2)
  }

  // MARK: Embeddings with images

  /// Token embeddings `[1, L, D]` of one prompt with the image features written into its
  /// `<|image_pad|>` slots. Only the first `promptLength` positions are searched for slots, so a
  /// completion that contains vision tokens is never mistaken for image input.
  public func embed(ids: [Int], promptLength: Int? = nil, pixelValues: Tensor?, grids: [[Int]]) throws -> Tensor {
    let idTensor = Tensor(ids).to(device).unsqueeze(0)
    var embeddings = language.embed(idTensor)
    guard let pixelValues, !grids.isEmpty else { return embeddings }
    let features = visual(pixelValues, grids: grids).to(embeddings.dtype)
    let limit = promptLength ?? ids.count
    let slots = ids.prefix(limit).enumerated().filter { $0.element == config.imageTokenId }.map(\.offset)
    guard slots.count == features.size(0) else {
      throw ModelError.imageTokenMismatch(tokens: slots.count, features: features.size(0))
    }
    embeddings = embeddings.clone()
    let flat = embeddings.view(-1, embeddings.size(-1))
    flat.indexPut_([(0, Tensor(slots).to(device))], features)
    return embeddings
  }

  // MARK: Forward

  /// Final hidden states `[1, L, D]` of one sequence (prompt + optional completion tokens).
  public func hiddenStates(ids: [Int], promptLength: Int? = nil, pixelValues: Tensor? = nil, grids: [[Int]] = [],
                           checkpointLayers: Bool = false) throws -> Tensor {
    let promptLength = promptLength ?? ids.count
    let embeddings = try embed(ids: ids, promptLength: promptLength, pixelValues: pixelValues, grids: grids)
    let positions = ropePositions(promptIDs: Array(ids.prefix(promptLength)), imageGrids: grids)
      .extended(by: ids.count - promptLength)
    return language(embeddings: embeddings, positions: positionTensor(positions), checkpointLayers: checkpointLayers)
  }

  /// Logits `[1, L, vocab]` in the model dtype.
  public func logits(ids: [Int], pixelValues: Tensor? = nil, grids: [[Int]] = []) throws -> Tensor {
    F.linear(try hiddenStates(ids: ids, pixelValues: pixelValues, grids: grids), headWeight)
  }

  func positionTensor(_ positions: RopePositions) -> Tensor {
    Tensor(positions.channels.flatMap { $0 }, shape: [3, 1, positions.length]).to(device)
  }

  /// log p(target | prefix) for each row of `hidden` `[T, D]`, computed in vocabulary-sized chunks of
  /// rows whose float32 logits are recomputed in backward (never `[T, vocab]` float32 at once).
  public func tokenLogProbs(hidden: Tensor, targets: Tensor, temperature: Double = 1, chunkRows: Int = 512) -> Tensor {
    let weight = headWeight
    let rows = hidden.size(0)
    var outputs: [Tensor] = []
    var start = 0
    while start < rows {
      let count = Swift.min(chunkRows, rows - start)
      let h = hidden.narrow(0, start: start, length: count)
      let t = targets.narrow(0, start: start, length: count)
      let compute: ([Tensor]) -> [Tensor] = { inputs in
        var logits = F.linear(inputs[0], weight)
        if logits.dtype != .float64 { logits = logits.to(.float32) }
        if temperature != 1 { logits = logits / temperature }
        return [logits.logSoftmax(dim: -1).gather(1, t.unsqueeze(1)).squeeze(1)]
      }
      outputs.append(Autograd.isGradEnabled ? checkpoint([h], outputCount: 1, compute)[0] : compute([h])[0])
      start += count
    }
    return Tensor.cat(outputs)
  }
}

public enum ModelError: Error, CustomStringConvertible, Sendable {
  case imageTokenMismatch(tokens: Int, features: Int)
  case weights(String)
  case unsupported(String)
  public var description: String {
    switch self {
    case .imageTokenMismatch(let tokens, let features):
      return "the prompt has \(tokens) image tokens but the images give \(features) feature rows "
        + "(each image needs t*h*w/merge^2 <|image_pad|> tokens; expand the pads with the processor)"
    case .weights(let message): return message
    case .unsupported(let message): return message
    }
  }
}

// MARK: - Loading and saving

extension QwenVLModel {
  /// Loads a Hugging Face model folder (4.x `visual.*`/`model.*` or 5.x `model.visual.*`/
  /// `model.language_model.*` key layout), strictly, converting to `dtype` on `device`. A peft LoRA
  /// adapter folder loads as its base with the adapter merged in (`load(adapter:...)`).
  public static func load(directory: URL, dtype: DType = .float32, device: Device = .cpu) throws -> QwenVLModel {
    if let adapter = try AdapterFolder.read(directory) { return try load(adapter: adapter, dtype: dtype, device: device) }
    let config = try QwenVLConfig(contentsOf: directory.appendingPathComponent("config.json"))
    // Every parameter is overwritten by the strict load below, so none is randomly initialised.
    let model = Initializer.$skipRandomInit.withValue(true) { QwenVLModel(config: config, dtype: dtype, device: device) }
    let weights = try ShardedSafeTensors(directory: directory)
    var tensors: [String: Tensor] = [:]
    for name in weights.names {
      let info = try weights.info(name)
      guard let torchType = DType(safeTensors: info.dtype) else {
        throw ModelError.weights("\(directory.path): tensor \(name) has dtype \(info.dtype.rawValue), which vlmrl does not load")
      }
      let bytes = try weights.bytes(name)
      let file = try weights.file(containing: name)
      let tensor = bytes.count == 0
        ? Tensor.zeros(info.shape, dtype: torchType)
        : Tensor.wrapping(bytes.baseAddress!, shape: info.shape, dtype: torchType, owner: file)
      tensors[canonicalKey(name)] = tensor
    }
    if config.tieWordEmbeddings { tensors["lm_head.weight"] = nil }
    do {
      try model.load(tensors, dtype: dtype, device: device)
    } catch let problems as StateDictProblems {
      throw ModelError.weights("\(directory.path): \(problems)")
    }
    try checkFinite(model, directory: directory)
    return model
  }

  /// NaN or infinite weights would make every output NaN; they are refused at load, naming the
  /// first such tensor. One reduction per parameter on its device and a single copy of the flags.
  static func checkFinite(_ model: QwenVLModel, directory: URL) throws {
    let parameters = model.namedParameters()
    guard !parameters.isEmpty else { return }
    let finite = Tensor.stack(parameters.map { $0.1.value.isfinite().all() }).bools()
    if let first = finite.firstIndex(of: false) {
      throw ModelError.weights(
        "\(directory.path): tensor \(parameters[first].0) has non-finite values (NaN or infinity); the checkpoint is corrupt")
    }
  }

  /// Maps the 5.x key layout onto the canonical 4.x names.
  static func canonicalKey(_ name: String) -> String {
    if name.hasPrefix("model.visual.") { return String(name.dropFirst("model.".count)) }
    if name.hasPrefix("model.language_model.") { return "model." + name.dropFirst("model.language_model.".count) }
    return name
  }

  /// Writes config.json and (sharded) safetensors in the Hub's 4.x layout, loadable by transformers.
  public func save(to directory: URL, dtype: DType? = nil, maxShardSize: Int = SafeTensorsWriter.defaultMaxShardSize) throws {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    var toWrite: [TensorToWrite] = []
    for (name, parameter) in namedParameters() {
      let tensor = parameter.value.detach().to(dtype ?? parameter.value.dtype, device: .cpu).contiguous()
      guard let stType = tensor.dtype.safeTensors else { throw ModelError.weights("cannot save \(name) of dtype \(tensor.dtype)") }
      toWrite.append(TensorToWrite(name: name, dtype: stType, shape: tensor.shape, byteCount: tensor.byteCount) { sink in
        try sink(UnsafeRawBufferPointer(start: tensor.dataPointer, count: tensor.byteCount))
      })
    }
    try SafeTensorsWriter.writeCheckpoint(toWrite, to: directory, maxShardSize: maxShardSize)
    var savedConfig = config
    if let dtype { savedConfig.torchDtype = dtype == .bfloat16 ? "bfloat16" : dtype == .float16 ? "float16" : "float32" }
    try savedConfig.write(to: directory)
  }
}

extension DType {
  /// The Torch dtype of a safetensors dtype (nil for the ones vlmrl does not load).
  public init?(safeTensors: TensorDType) {
    switch safeTensors {
    case .float32: self = .float32
    case .float64: self = .float64
    case .float16: self = .float16
    case .bfloat16: self = .bfloat16
    case .int64: self = .int64
    case .int32: self = .int32
    case .int16: self = .int16
    case .int8: self = .int8
    case .uint8: self = .uint8
    case .bool: self = .bool
    default: return nil
    }
  }
  var safeTensors: TensorDType? {
    switch self {
    case .float32: return .float32
    case .float64: return .float64
    case .float16: return .float16
    case .bfloat16: return .bfloat16
    case .int64: return .int64
    case .int32: return .int32
    case .int16: return .int16
    case .int8: return .int8
    case .uint8: return .uint8
    case .bool: return .bool
    }
  }
}
