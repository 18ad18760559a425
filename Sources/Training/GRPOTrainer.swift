import Common
import Datasets
import Foundation
import Generation
import ModelConfig
import Models
import NN
import Rewards
import Torch

/// GRPO as docs/grpo.md: rollouts, concurrent rewards, group advantages, the clipped policy loss
/// with optional k3 KL, gradient accumulation, `num_iterations` passes per generation batch, AdamW
/// with warm-up/schedule and clipping, metrics, rollout logs and atomic checkpoints with exact
/// resume. Trains the full model, the language model only (`freeze_vision_tower`) or LoRA adapters
/// (`use_peft`). Each stage is its own unit; this type only sequences them.
public final class GRPOTrainer: @unchecked Sendable {
  public let config: TrainingConfig
  public let model: QwenVLModel
  /// The frozen reference model when `beta > 0` without LoRA (with LoRA the reference is the
  /// policy with its adapters switched off: no second copy).
  let reference: QwenVLModel?
  let builder: PromptBuilder
  let examples: [Example]
  let rewards: RewardRunner
  let rewardNames: [String]
  let optimizer: AdamW
  /// Optimizer steps of the run.
  public let totalSteps: Int
  let schedule: LRSchedule
  public let outputDirectory: URL
  public internal(set) var state: TrainerState
  var skippedNonFinite = 0
  let modelDirectory: URL
  let engine: RolloutEngine
  /// The adapter settings when training LoRA.
  let adapter: LoRAConfig?

  /// `rewards` replaces the configured `reward_funcs` (library use and tests); by default the
  /// registry builds them from the config.
  public init(config: TrainingConfig, modelDirectory: URL, examples: [Example], rewards: RewardRunner? = nil,
              device: Device = .cpu, dtype: DType = .float32) throws {
    guard !examples.isEmpty else { throw TrainingError.invalidArgument("GRPO: the dataset has no usable examples") }
    let training = config.training
    if training.syncRefModel && training.usePeft {
      throw TrainingError.invalidArgument("training.sync_ref_model: not supported with use_peft (the reference is the base model)")
    }
    self.config = config
    self.examples = examples
    self.modelDirectory = modelDirectory
    let folder = try ModelFolder(directory: modelDirectory)
    builder = try PromptBuilder(folder: folder, minPixels: training.minPixels, maxPixels: training.maxPixels,
                                maxPromptLength: training.maxPromptLength)
    model = try QwenVLModel.load(directory: modelDirectory, dtype: dtype, device: device)
    adapter = training.usePeft ? config.loraConfig : nil
    if let adapter { try model.addAdapters(adapter, seed: UInt64(training.seed)) }
    if training.freezeVisionTower { model.visual.setTrainable(false) }
    engine = RolloutEngine(model: model)
    reference = training.beta > 0 && !training.usePeft
      ? try QwenVLModel.load(directory: modelDirectory, dtype: dtype, device: device) : nil
    reference?.setTrainable(false)
    if let rewards {
      self.rewards = rewards
    } else {
      let functions = try RewardRegistry.make(training.rewardFuncs, parameters: training.rewardParameters)
      self.rewards = try RewardRunner.validated(functions: functions, weights: training.rewardWeights)
    }
    rewardNames = self.rewards.functions.map(\.name)
    // Half-precision weights train with float32 master weights and moments (mixed precision).
    optimizer = AdamW(model.namedTrainableParameters.map(\.1), config.adamW, masterWeights: model.dtype != .float32)
    let promptsPerGeneration = training.perDeviceTrainBatchSize * training.gradientAccumulationSteps
    totalSteps = training.maxSteps > 0 ? training.maxSteps
      : Int((training.numTrainEpochs * Double(examples.count) / Double(promptsPerGeneration)).rounded(.up))
        * training.numIterations
    schedule = config.lrSchedule(totalSteps: totalSteps)
    outputDirectory = URL(fileURLWithPath: training.outputDir)
    state = TrainerState(step: 0, examplesSeen: 0, seed: training.seed, configFingerprint: config.resolvedJSONText())
  }

  // MARK: Run

  /// Trains until `totalSteps` optimizer steps (or until `stopAfterStep`, which simulates an
  /// interrupted run), resuming from the newest checkpoint when `resume` is set. One generation
  /// batch serves `num_iterations` optimizer steps; checkpoints are written at generation-batch
  /// boundaries (the first one at or after each multiple of `save_steps`).
  @discardableResult
  public func run(resume: Bool = false, stopAfterStep: Int? = nil,
                  log: @escaping (String) -> Void = { print($0) }) async throws -> [MetricsRow] {
    try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
    if resume, let last = try Checkpoint.list(outputDirectory).last { try restore(from: last.url, log: log) }
    try config.write(to: outputDirectory.appendingPathComponent("resolved_config.json"))
    let metrics = try MetricsJSONL(url: outputDirectory.appendingPathComponent("metrics.jsonl"), keepingThrough: state.step)
    let board = try TensorBoardWriter(directory: outputDirectory.appendingPathComponent("runs"))
    defer { board.close() }
    let rolloutLog = RolloutLog(directory: URL(fileURLWithPath: config.training.rolloutLogPath
      ?? outputDirectory.appendingPathComponent("rollouts").path))
    let progress = ConsoleProgress(totalSteps: totalSteps, colorize: config.training.colorizeOutput)
    let limit = min(totalSteps, stopAfterStep ?? totalSteps)
    var rows: [MetricsRow] = []
    while state.step < limit {
      let firstStep = state.step
      let batch = try await generate()
      let fixed = try fixedLogProbs(batch)
      for iteration in 0..<config.training.numIterations where state.step < limit {
        var values = try optimizerStep(batch, fixed: fixed, iteration: iteration)
        if case .cuda(let index) = model.device {
          // Peak device memory of this optimizer step (generation included on its first iteration).
          values["memory/peak_allocated_gib"] = Double(CUDA.memoryStats(index).peakAllocated) / 1_073_741_824
          CUDA.resetPeakMemory(index)
        }
        state.step += 1
        syncReference()
        let row = MetricsRow(step: state.step, epoch: Double(state.examplesSeen) / Double(examples.count), values: values)
        if state.step % max(1, config.training.loggingSteps) == 0 || state.step == totalSteps {
          try metrics.append(row)
          try board.add(values, step: state.step)
          progress.summary(step: state.step, metrics: values)
        }
        progress.update(step: state.step, reward: values[MetricName.reward], tokensPerSecond: values[MetricName.tokensPerSecond])
        rows.append(row)
      }
      if config.training.realtimeRolloutLogging || config.training.logCompletions {
        try rolloutLog.append(step: firstStep + 1, samples: batch.samples)
      }
      let saveSteps = max(1, config.training.saveSteps)
      if firstStep / saveSteps != state.step / saveSteps || state.step == totalSteps {
        let url = try Checkpoint.save(model: model, optimizer: optimizer, state: state, outputDirectory: outputDirectory,
                                      saveTotalLimit: config.training.saveTotalLimit, adapter: adapter,
                                      baseModel: modelDirectory.path, reference: config.training.syncRefModel ? reference : nil)
        log("saved \(url.lastPathComponent)")
      }
    }
    progress.finish()
    if state.step == totalSteps {
      try Checkpoint.exportModel(model, companionFilesFrom: modelDirectory, to: outputDirectory.appendingPathComponent("final"),
                                 adapter: adapter)
    }
    let all = try MetricsJSONL.read(outputDirectory.appendingPathComponent("metrics.jsonl"))
    try Report.write(rows: all, to: outputDirectory.appendingPathComponent("report.html"))
    return rows
  }

  func restore(from directory: URL, log: (String) -> Void) throws {
    let saved = try Checkpoint.loadState(directory)
    if adapter != nil {
      try model.loadAdapter(directory: directory)
    } else {
      let weights = try QwenVLModel.load(directory: directory, dtype: model.dtype, device: model.device)
      try model.load(weights.stateDict())
    }
    let referenceFolder = directory.appendingPathComponent("reference")
    if let reference, config.training.syncRefModel, FileManager.default.fileExists(atPath: referenceFolder.path) {
      try reference.load(try QwenVLModel.load(directory: referenceFolder, dtype: reference.dtype, device: reference.device).stateDict())
    }
    try Checkpoint.loadOptimizer(optimizer, model: model, from: directory)
    state = saved
    log("resumed from \(directory.lastPathComponent) at step \(saved.step)")
  }

  /// TRL's SyncRefModelCallback: every `ref_model_sync_steps` optimizer steps the reference moves
  /// to `alpha * policy + (1 - alpha) * reference`.
  func syncReference() {
    guard config.training.syncRefModel, let reference, state.step % max(1, config.training.refModelSyncSteps) == 0 else { return }
    let alpha = config.training.refModelMixupAlpha
    withNoGrad {
      for ((_, target), (_, source)) in zip(reference.namedParameters(), model.namedParameters()) {
        target.value.lerp_(source.value.to(target.value.dtype), weight: alpha)
      }
    }
  }

  // MARK: Data

  /// The examples of the next generation batch (`per_device_train_batch_size` x
  /// `gradient_accumulation_steps` prompts), in a seeded order that is a pure function of (seed, epoch).
  func nextBatch() -> [Example] {
    let count = examples.count
    var batch: [Example] = []
    for _ in 0..<(config.training.perDeviceTrainBatchSize * config.training.gradientAccumulationSteps) {
      let epoch = state.examplesSeen / count, position = state.examplesSeen % count
      let order = config.training.shuffleDataset ? DataOrder.permutation(count: count, seed: UInt64(state.seed), epoch: epoch)
        : Array(0..<count)
      batch.append(examples[order[position]])
      state.examplesSeen += 1
    }
    return batch
  }
}

/// Seeded data order and seed mixing (SplitMix64), so that order and sampling are pure functions of
/// their inputs and a resumed run repeats them exactly.
public enum DataOrder {
  public static func mix(_ values: UInt64...) -> UInt64 {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    for value in values { state = splitMix(state ^ value) }
    return state
  }

  static func splitMix(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Fisher-Yates with a SplitMix64 stream seeded by (seed, epoch).
  public static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
    var order = Array(0..<count)
    var state = mix(seed, UInt64(epoch))
    for i in stride(from: count - 1, to: 0, by: -1) {
      state = splitMix(state)
      order.swapAt(i, Int(state % UInt64(i + 1)))
    }
    return order
  }
}
