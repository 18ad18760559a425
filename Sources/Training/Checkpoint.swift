import Foundation
import ModelConfig
import Models
import NN
import SafeTensors
import Torch

/// What a run needs to continue exactly: the step, the data position and order, and the optimizer.
public struct TrainerState: Codable, Sendable, Equatable {
  public var step: Int
  /// Examples consumed so far in the data order (epoch * count + position).
  public var examplesSeen: Int
  public var seed: Int
  public var configFingerprint: String
  public init(step: Int, examplesSeen: Int, seed: Int, configFingerprint: String) {
    self.step = step
    self.examplesSeen = examplesSeen
    self.seed = seed
    self.configFingerprint = configFingerprint
  }
}

/// `checkpoint-<step>/`: Hugging Face weights (or the LoRA adapter), the companion files of the
/// model training started from, `optimizer.safetensors` (AdamW moments and steps by parameter
/// name) and `trainer_state.json`. Written to a temporary folder and renamed when complete, so a
/// crash mid-write leaves either the previous checkpoint or the new one, never half of one. Every
/// checkpoint (and `final/`) loads wherever a model folder does.
public enum Checkpoint {
  /// With `adapter` the weights are the LoRA adapter in peft's layout (`adapter_config.json` +
  /// `adapter_model.safetensors`); `startModel` is the model folder training started from
  /// (`models.student`): its tokenizer, chat template, processor and generation config are copied
  /// in and an adapter names its base after it; `reference` (a reference model that moves,
  /// `sync_ref_model`) is saved under `reference/`; `extras` writes a trainer's own state (the cycle
  /// trainer's EMA partner) into the folder before it is renamed into place.
  ///
  /// With a nil `optimizer` (ZeRO) the ranks have already written their optimizer shards into
  /// `stagingFolder(outputDirectory, step:)`, which this call completes and renames.
  public static func save(model: QwenVLModel, optimizer: AdamW?, state: TrainerState, outputDirectory: URL,
                          saveTotalLimit: Int?, adapter: LoRAConfig? = nil, startModel: URL,
                          reference: QwenVLModel? = nil, extras: (URL) throws -> Void = { _ in }) throws -> URL {
    let final = outputDirectory.appendingPathComponent("checkpoint-\(state.step)")
    let temporary = stagingFolder(outputDirectory, step: state.step)
    let fm = FileManager.default
    if optimizer != nil { try? fm.removeItem(at: temporary) }
    try fm.createDirectory(at: temporary, withIntermediateDirectories: true)
    try writeModel(model, adapter: adapter, startModel: startModel, to: temporary)
    try reference?.save(to: temporary.appendingPathComponent("reference"))
    try extras(temporary)
    if let optimizer {
      try saveOptimizer(optimizer, model: model, to: temporary.appendingPathComponent("optimizer.safetensors"))
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(state).write(to: temporary.appendingPathComponent("trainer_state.json"), options: .atomic)
    try? fm.removeItem(at: final)
    try fm.moveItem(at: temporary, to: final)
    if let limit = saveTotalLimit, limit > 0 {
      // Only this run's own history rotates: a checkpoint numbered past the current step (left by
      // another run) never pushes out the one just written.
      let existing = try list(outputDirectory).filter { $0.step <= state.step }
      for old in existing.dropLast(limit) { try? fm.removeItem(at: old.url) }
    }
    return final
  }

  /// What every rank does before rank 0's `save` of checkpoint `step`: with ZeRO (`stepper.sharding`)
  /// rank 0 clears the staging folder and each rank writes its optimizer shard into it, between
  /// barriers. Returns what `save` takes as `optimizer`: the whole optimizer, or nil when sharded.
  public static func stageOptimizer(_ stepper: OptimizerStepper, model: QwenVLModel, outputDirectory: URL, step: Int) throws -> AdamW? {
    guard let sharding = stepper.sharding else { return stepper.optimizer }
    let staging = stagingFolder(outputDirectory, step: step)
    if sharding.group.isMain {
      try? FileManager.default.removeItem(at: staging)
      try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
    }
    try sharding.group.barrier()
    try sharding.saveShard(to: staging, names: parameterNames(model))
    try sharding.group.barrier()
    return nil
  }

  /// Where checkpoint `step` is written before it is renamed into place.
  public static func stagingFolder(_ outputDirectory: URL, step: Int) -> URL {
    outputDirectory.appendingPathComponent(".checkpoint-\(step).partial")
  }

  /// A model folder others can load (transformers, `vlmrl generate`): weights and config (or the
  /// adapter), plus the tokenizer, chat template and processor files of the model training started
  /// from. Written into a sibling temporary folder and renamed into place when complete.
  public static func exportModel(_ model: QwenVLModel, companionFilesFrom source: URL, to folder: URL,
                                 adapter: LoRAConfig? = nil) throws {
    try writeWhole(folder) { try writeModel(model, adapter: adapter, startModel: source, to: $0) }
  }

  /// Writes `folder` through `body` into `.<name>.partial` beside it, then renames it into place
  /// (replacing an earlier one): the folder is whole or absent.
  public static func writeWhole(_ folder: URL, _ body: (URL) throws -> Void) throws {
    let fm = FileManager.default
    let temporary = folder.deletingLastPathComponent().appendingPathComponent(".\(folder.lastPathComponent).partial")
    try? fm.removeItem(at: temporary)
    try fm.createDirectory(at: temporary, withIntermediateDirectories: true)
    do {
      try body(temporary)
    } catch {
      try? fm.removeItem(at: temporary)
      throw error
    }
    try? fm.removeItem(at: folder)
    try fm.moveItem(at: temporary, to: folder)
  }

  /// The weights (or the adapter, naming its base) and the companion files of `startModel`.
  static func writeModel(_ model: QwenVLModel, adapter: LoRAConfig?, startModel: URL, to folder: URL) throws {
    if let adapter {
      // A run that started from an adapter folder trained that adapter on its base: name the base.
      let base = (try AdapterFolder.read(startModel))?.base ?? startModel
      try model.saveAdapter(adapter, baseModel: base.path, to: folder)
    } else {
      try model.save(to: folder)
    }
    // From wherever `ModelFolder` reads them: the folder itself, an adapter folder's base, an older
    // checkpoint's run.
    try copyCompanionFiles(from: ModelFolder.companionFolder(of: startModel, adapter: try AdapterFolder.read(startModel)),
                           to: folder)
  }

  /// Copies the tokenizer, chat template, processor and generation config files
  /// (`ModelFolder.companionFileNames`) that `files` holds into `folder`.
  public static func copyCompanionFiles(from files: URL, to folder: URL) throws {
    let fm = FileManager.default
    for name in ModelFolder.companionFileNames {
      let from = files.appendingPathComponent(name)
      guard fm.fileExists(atPath: from.path) else { continue }
      let target = folder.appendingPathComponent(name)
      try? fm.removeItem(at: target)
      try fm.copyItem(at: from, to: target)
    }
  }

  /// Complete checkpoints in step order.
  public static func list(_ outputDirectory: URL) throws -> [(step: Int, url: URL)] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: outputDirectory.path) else { return [] }
    return names.compactMap { name -> (Int, URL)? in
      guard name.hasPrefix("checkpoint-"), let step = Int(name.dropFirst("checkpoint-".count)) else { return nil }
      let url = outputDirectory.appendingPathComponent(name)
      guard FileManager.default.fileExists(atPath: url.appendingPathComponent("trainer_state.json").path) else { return nil }
      return (step, url)
    }.sorted { $0.0 < $1.0 }
  }

  public static func loadState(_ directory: URL) throws -> TrainerState {
    let file = directory.appendingPathComponent("trainer_state.json")
    let state: TrainerState
    do {
      state = try JSONDecoder().decode(TrainerState.self, from: Data(contentsOf: file))
    } catch {
      throw TrainingError.io(path: file.path, reason: "not a readable trainer state (step, examplesSeen, seed, configFingerprint)")
    }
    guard state.step >= 0, state.examplesSeen >= 0 else {
      throw TrainingError.io(path: file.path, reason: "step \(state.step) and examplesSeen \(state.examplesSeen) must not be negative")
    }
    return state
  }

  static func saveOptimizer(_ optimizer: AdamW, model: QwenVLModel, to url: URL) throws {
    let names = parameterNames(model)
    var tensors: [TensorToWrite] = []
    for (index, parameter) in optimizer.parameters.enumerated() {
      guard let state = optimizer.states[index], let name = names[ObjectIdentifier(parameter)] else { continue }
      let master: [(String, Tensor)] = state.master.map { [("master", $0)] } ?? []
      let compensation: [(String, Tensor)] = state.compensation.map { [("compensation", $0)] } ?? []
      for (suffix, tensor) in [("exp_avg", state.expAvg), ("exp_avg_sq", state.expAvgSq), ("step", state.step)]
        + master + compensation {
        let cpu = tensor.detach().to(.float32, device: .cpu).contiguous()
        tensors.append(TensorToWrite(name: "\(name).\(suffix)", dtype: .float32, shape: cpu.shape, byteCount: cpu.byteCount) { sink in
          try sink(UnsafeRawBufferPointer(start: cpu.dataPointer, count: cpu.byteCount))
        })
      }
    }
    try SafeTensorsWriter.write(tensors, to: url)
  }

  /// Optimizer-state names: Hugging Face names of the model's parameters and peft names of adapters.
  static func parameterNames(_ model: QwenVLModel) -> [ObjectIdentifier: String] {
    let all = model.namedParameters() + LoRA.namedParameters(in: model, hubName: QwenModuleNames.hub)
    return Dictionary(all.map { (ObjectIdentifier($0.1), $0.0) }, uniquingKeysWith: { first, _ in first })
  }

  /// Restores AdamW moments saved by `save` into `optimizer` (same parameters, by name), from
  /// `optimizer.safetensors` or merged from a ZeRO run's shards, whatever its world size.
  public static func loadOptimizer(_ optimizer: AdamW, model: QwenVLModel, from directory: URL) throws {
    let saved = try savedOptimizerState(directory)
    let names = parameterNames(model)
    optimizer.restore(states: try optimizer.parameters.map { parameter in
      guard let name = names[ObjectIdentifier(parameter)] else { return nil }
      return try restoredState(name: name, value: parameter.value, precision: optimizer.precision, saved: saved)
    })
  }

  /// Restores the optimizer state of `stepper` (this rank's blocks of it when sharded).
  public static func loadOptimizer(_ stepper: OptimizerStepper, model: QwenVLModel, from directory: URL) throws {
    guard let sharding = stepper.sharding else { return try loadOptimizer(stepper.optimizer, model: model, from: directory) }
    try sharding.restore(names: parameterNames(model), saved: try savedOptimizerState(directory))
  }

  /// The saved state of one parameter `name` (weight `value`) on `value`'s device, brought to the
  /// optimizer's `precision` whatever the checkpoint's (a resume with another `optim` and
  /// --allow-config-change): a float32 master and moments for `.master` (the saved master, else the
  /// weight widened), moments in the weight's dtype otherwise, and the saved compensation (else zero)
  /// for `.kahan`. Nil when nothing was saved for it, unless `orFresh`: then the state before any step.
  /// Every tensor is a copy: the fused update writes the state in place, and saved tensors may share
  /// storage (a merged shard's members, one step count for all).
  static func restoredState(name: String, value: Tensor, precision: AdamW.Precision, saved: SavedOptimizerState,
                            orFresh: Bool = false) throws -> AdamW.State? {
    let expAvg = try saved("\(name).exp_avg")
    if expAvg == nil && !orFresh { return nil }
    let half = value.dtype == .bfloat16 || value.dtype == .float16
    var master: Tensor?, compensation: Tensor?
    if half && precision == .master {
      master = try saved("\(name).master")?.to(.float32, device: value.device, copy: true) ?? value.detach().to(.float32, copy: true)
    }
    if half && precision == .kahan {
      compensation = try saved("\(name).compensation")?.to(value.dtype, device: value.device, copy: true)
        ?? Tensor.zeros(value.shape, dtype: value.dtype, device: value.device)
    }
    let momentLike = master ?? value
    func moment(_ tensor: Tensor?) -> Tensor {
      tensor?.to(momentLike.dtype, device: value.device, copy: true) ?? Tensor.zeros(value.shape, dtype: momentLike.dtype, device: value.device)
    }
    return AdamW.makeState(expAvg: moment(expAvg), expAvgSq: moment(try saved("\(name).exp_avg_sq")),
                           step: try saved("\(name).step")?.to(.float32, device: value.device, copy: true)
                             ?? Tensor.zeros([], dtype: .float32, device: value.device),
                           master: master, compensation: compensation)
  }

  /// Saved optimizer tensors by "<parameter name>.<exp_avg|exp_avg_sq|step|master|compensation>",
  /// float32 on the CPU; nil for a name not saved.
  typealias SavedOptimizerState = (String) throws -> Tensor?

  /// The optimizer state of the checkpoint `directory`: `optimizer.safetensors`, else the shards a
  /// ZeRO run wrote (`ShardedOptimizer.shardLayoutFile` and one file per rank), merged.
  static func savedOptimizerState(_ directory: URL) throws -> SavedOptimizerState {
    let whole = directory.appendingPathComponent("optimizer.safetensors")
    if !FileManager.default.fileExists(atPath: whole.path),
      FileManager.default.fileExists(atPath: directory.appendingPathComponent(ShardedOptimizer.shardLayoutFile).path) {
      let merged = try ShardedOptimizer.mergedState(directory)
      return { merged[$0] }
    }
    let file = try SafeTensorsFile(url: whole)
    return { name in
      guard file.contains(name) else { return nil }
      let info = try file.info(name)
      return Tensor(bytes: try file.bytes(name), shape: info.shape, dtype: .float32)
    }
  }
}
