import Common
import Datasets
import Foundation
import Generation
import ModelConfig
import Models
import NN
import Prompting
import Rewards
import Torch

/// GRPO as docs/grpo.md describes it, composed from four stages built once from `GRPOSettings`:
/// rollout (`RolloutStage`) -> scoring (`ScoringStage`: rewards, group advantages, reward metrics)
/// -> old/reference log-probs (`LogProbStage`) -> policy update (`PolicyUpdate`: micro-batches,
/// loss, backward, the shared `OptimizerStepper`). This type only sequences them, per generation
/// batch, and owns what a run owns: the data order, metrics sinks, rollout logs and checkpoints.
/// Trains the full model, the language model only (`freeze_vision_tower`) or LoRA adapters (`use_peft`).
public final class GRPOTrainer: @unchecked Sendable {
  public let config: TrainingConfig
  public private(set) var settings: GRPOSettings
  public let model: QwenVLModel
  /// The frozen reference model when `beta > 0` without LoRA (with LoRA the reference is the
  /// policy with its adapters switched off: no second copy).
  let reference: QwenVLModel?
  let builder: PromptBuilder
  let examples: [Example]
  let rollout: RolloutStage
  let scoring: ScoringStage
  let logProbs: LogProbStage
  let update: PolicyUpdate
  let stepper: OptimizerStepper
  /// Optimizer steps of the run.
  public let totalSteps: Int
  public let outputDirectory: URL
  public internal(set) var state: TrainerState
  let modelDirectory: URL
  /// The adapter settings when training LoRA.
  let adapter: LoRAConfig?
  /// Consecutive generation batches in which each reward function failed on every call.
  var rewardFailureStreak: [String: Int] = [:]
  /// Where each generation batch's trained completions and scores come from (stages 1-2): the
  /// policy's rollouts scored by the configured rewards, unless a trainer built on this one (the
  /// cycle trainer) installs its own.
  public private(set) var source: (any GenerationSource)!
  /// The data-parallel ranks this trainer is one of (nil: one process). Each rank rolls out its own
  /// block of every generation batch's prompts; rewards are gathered, gradients averaged, metrics
  /// reduced; rank 0 alone writes outputs and checkpoints (docs/distributed.md).
  public let processGroup: ProcessGroup?
  /// Rank 0, or the only process: the one that writes metrics, logs, reports and checkpoints.
  public var isMain: Bool { processGroup?.isMain ?? true }

  /// `rewards` replaces the configured `reward_funcs` (library use and tests); by default the
  /// registry builds them from the config. `switches` are the kernel switches of the model and engine.
  /// With `processGroup` this trainer is one data-parallel rank; every rank is built from the same
  /// config and examples, and `per_device_train_batch_size` counts this rank's completions.
  public init(config: TrainingConfig, modelDirectory: URL, examples: [Example], rewards: RewardRunner? = nil,
              device: Device = .cpu, dtype: DType = .float32, switches: KernelSwitches = KernelSwitches(),
              processGroup: ProcessGroup? = nil) throws {
    guard !examples.isEmpty else { throw TrainingError.invalidArgument("GRPO: the dataset has no usable examples") }
    try config.checkImplemented()
    try config.checkBatchLayout()
    let training = config.training
    if training.syncRefModel && training.usePeft {
      throw TrainingError.invalidArgument("training.sync_ref_model: not supported with use_peft (the reference is the base model)")
    }
    self.config = config
    settings = GRPOSettings(config)
    (settings.rank, settings.worldSize) = (processGroup?.rank ?? 0, processGroup?.worldSize ?? 1)
    self.processGroup = processGroup
    self.examples = examples
    self.modelDirectory = modelDirectory
    let folder = try ModelFolder(directory: modelDirectory)
    builder = try PromptBuilder(folder: folder, minPixels: training.minPixels, maxPixels: training.maxPixels,
                                maxPromptLength: training.maxPromptLength)
    // From a peft adapter folder: with use_peft its adapter trains on, without it is merged in.
    (model, adapter) = try QwenVLModel.loadForTraining(directory: modelDirectory, lora: training.usePeft ? config.loraConfig : nil,
                                                       seed: UInt64(training.seed), dtype: dtype, device: device)
    model.switches = switches
    if training.freezeVisionTower { model.visual.setTrainable(false) }
    // `gradient_checkpointing` unset: activation recompute above 1B parameters.
    if training.gradientCheckpointing == nil { settings.checkpointLayers = model.parameterCount > 1_000_000_000 }
    // The reference of the KL term: `models.reference` when given, else the student's initial weights.
    let referenceDirectory = try config.models.reference.map { try ModelLocator.resolve($0) } ?? modelDirectory
    reference = training.beta > 0 && !training.usePeft
      ? try QwenVLModel.load(directory: referenceDirectory, dtype: dtype, device: device) : nil
    reference?.setTrainable(false)
    let runner = try rewards ?? Self.configuredRewards(config: config, family: folder.config.family)
    // `optim`: float32 master weights and moments by default for bf16 weights (mixed precision).
    let optimizer = try config.makeOptimizer(model.namedTrainableParameters.map(\.1), weights: model.dtype)
    totalSteps = training.maxSteps > 0 ? training.maxSteps
      : Int((training.numTrainEpochs * Double(examples.count) / Double(settings.globalPromptsPerGeneration)).rounded(.up))
        * settings.layout.optimizerStepsPerGeneration
    stepper = OptimizerStepper(optimizer: optimizer, schedule: config.lrSchedule(totalSteps: totalSteps),
                               maxGradNorm: settings.maxGradNorm, processGroup: processGroup,
                               zeroStage: try config.zeroStage(worldSize: processGroup?.worldSize ?? 1))
    rollout = try RolloutStage(builder: builder, engine: RolloutEngine(model: model), settings: settings)
    scoring = ScoringStage(rewards: runner, groupSize: settings.numGenerations, scaling: settings.scaleRewards,
                           ranks: processGroup)
    logProbs = LogProbStage(model: model, reference: reference, temperature: settings.temperature, beta: settings.beta,
                            recordOld: settings.layout.needsOldLogProbs)
    update = PolicyUpdate(model: model, stepper: stepper, loss: settings.loss, temperature: settings.temperature,
                          maskTruncatedCompletions: settings.maskTruncatedCompletions, checkpointLayers: settings.checkpointLayers)
    outputDirectory = URL(fileURLWithPath: training.outputDir)
    state = TrainerState(step: 0, examplesSeen: 0, seed: training.seed, configFingerprint: config.resolvedJSONText())
    source = PlainGRPOSource(rollout: rollout, scoring: scoring)
  }

  /// What this run holds on its device (`MemoryPlan`); `extraMemory` adds a source's own holdings.
  func memoryPlan() -> MemoryPlan {
    MemoryPlan.training(model: model, reference: reference, trainable: optimizer.parameters, optim: config.training.optim,
                        usePeft: config.training.usePeft, checkpointLayers: settings.checkpointLayers,
                        sharding: stepper.sharding, extra: source.memoryEntries)
  }

  /// Evaluation during training (`dataset.eval_path`), installed by the caller before `run`; a
  /// config with `eval_path` and no evaluator is an error at `run`.
  public var evaluator: (any TrainingEvaluator)?

  /// Called with the 0-based optimizer step before each step's update (the CLI's fault injection
  /// for the process-level tests, `VLMRL_FAULT_KILL`).
  public var beforeStep: ((Int) -> Void)?

  /// Replaces stages 1-2 (before `run`).
  public func install(source: any GenerationSource) { self.source = source }

  public var optimizer: AdamW { stepper.optimizer }

  /// The rewards of `config` (`reward_funcs`, `reward_weights`, `reward_parameters`) as the trainer
  /// builds them for the model in `modelDirectory`, followed by `extra` functions of the caller's own
  /// (library use, docs/library.md), each weighing `extraWeights[i]` (default 1).
  public static func configuredRewards(config: TrainingConfig, modelDirectory: URL, adding extra: [any RewardFunction] = [],
                                       extraWeights: [Double]? = nil) throws -> RewardRunner {
    try configuredRewards(config: config, family: ModelFolder(directory: modelDirectory).config.family, adding: extra,
                          extraWeights: extraWeights)
  }

  static func configuredRewards(config: TrainingConfig, family: QwenVLFamily?, adding extra: [any RewardFunction] = [],
                                extraWeights: [Double]? = nil) throws -> RewardRunner {
    let training = config.training
    if let extraWeights, extraWeights.count != extra.count {
      throw TrainingError.invalidArgument("\(extraWeights.count) weights for \(extra.count) added reward functions")
    }
    if let clash = extra.first(where: { function in training.rewardFuncs.contains { RewardRegistry.canonicalName($0) == function.name } }) {
      throw TrainingError.invalidArgument("an added reward is named '\(clash.name)', as one of training.reward_funcs")
    }
    let functions = try RewardRegistry.make(training.rewardFuncs, parameters: rewardParameters(training, family: family))
    guard !extra.isEmpty else { return try RewardRunner.validated(functions: functions, weights: training.rewardWeights) }
    if let weights = training.rewardWeights, weights.count != functions.count {
      throw TrainingError.invalidArgument("training.reward_weights: \(weights.count) weights for \(functions.count) reward functions")
    }
    let configured = training.rewardWeights ?? functions.map { RewardRegistry.defaultWeight(for: $0.name) }
    return try RewardRunner.validated(functions: functions + extra,
                                      weights: configured + (extraWeights ?? extra.map { _ in 1 }))
  }

  /// The reward parameters as the trainer completes them: the REC rewards (`iou`, `rec_accuracy`)
  /// compare boxes in the model family's own frame unless `box_frame` is given (Qwen2.5-VL `resized`
  /// pixels, Qwen2-VL `norm1000`, as evaluation does; the grounding rewards keep `original`), and the
  /// training key `mdi_balance_ratio` is the one source of the MDI reward's ratio R (a different
  /// value under `reward_parameters` is a conflict, not an override).
  static func rewardParameters(_ training: TrainingConfig.TrainingSection, family: QwenVLFamily? = nil) throws
    -> [String: JSONValue] {
    var parameters = training.rewardParameters
    if let family, parameters["box_frame"] == nil {
      let frame = family == .qwen25VL ? "resized" : "norm1000"
      for name in training.rewardFuncs where ["iou", "rec_accuracy"].contains(RewardRegistry.canonicalName(name)) {
        var block = parameters[name]?.objectValue ?? [:]
        guard block["box_frame"] == nil else { continue }
        block["box_frame"] = .string(frame)
        parameters[name] = .object(block)
      }
    }
    guard training.rewardFuncs.contains(where: { RewardRegistry.canonicalName($0) == "mdi" }) else { return parameters }
    if let given = parameters["mdi_balance_ratio"]?.doubleValue, given != training.mdiBalanceRatio {
      throw TrainingError.invalidArgument("reward_parameters.mdi_balance_ratio (\(given)) differs from training.mdi_balance_ratio "
        + "(\(training.mdiBalanceRatio)); set the ratio once, as training.mdi_balance_ratio")
    }
    parameters["mdi_balance_ratio"] = .double(training.mdiBalanceRatio)
    return parameters
  }
  public var rewards: RewardRunner { scoring.rewards }

  // MARK: Run

  /// Trains until `totalSteps` optimizer steps (or until `stopAfterStep`, which simulates an
  /// interrupted run), resuming from the newest checkpoint when `resume` is set. One generation
  /// batch serves `BatchLayout.optimizerStepsPerGeneration` optimizer steps; checkpoints are written at generation-batch
  /// boundaries (the first one at or after each multiple of `save_steps`). The output folder is
  /// locked for the run; an earlier run's outputs there are an error unless `resume` or `overwrite`.
  @discardableResult
  public func run(resume: Bool = false, overwrite: Bool = false, stopAfterStep: Int? = nil,
                  log mainLog: @escaping (String) -> Void = { Console.log($0) }) async throws -> [MetricsRow] {
    // Other ranks see what rank 0 sees (the same prompts are prepared everywhere): only rank 0 speaks.
    let log: (String) -> Void = isMain ? mainLog : { _ in }
    if config.dataset.evalPath != nil && evaluator == nil {
      throw TrainingError.invalidArgument("dataset.eval_path is set but nothing evaluates: `vlmrl train` installs the "
        + "evaluator; library callers set GRPOTrainer.evaluator")
    }
    let resuming = ResumePoint.wanted(config: config, resume: resume)
    let folder = isMain ? try OutputFolder(outputDirectory, resume: resuming || state.step > 0, overwrite: overwrite) : nil
    defer { withExtendedLifetime(folder) {} }
    // Rank 0 has cleared or locked the folder before any rank looks for a checkpoint in it.
    try processGroup?.barrier()
    if resuming, let checkpoint = try ResumePoint.checkpoint(config: config, outputDirectory: outputDirectory, resume: resume, log: log) {
      try restore(from: checkpoint, log: log)
    }
    try synchronizeStart()
    if model.device.isCUDA {
      // The optimizer state exists from here on, so that the rollout engine's memory plan sees what
      // training holds (it is otherwise made at the first step, after the first rollout planned).
      stepper.allocateState()
      let plan = memoryPlan()
      OutOfMemory.setPlan(plan.description)
      if isMain { log(plan.description) }
    }
    if isMain {
      try config.write(to: outputDirectory.appendingPathComponent("resolved_config.json"))
      log(settings.layout.summary + (processGroup.map { " on each of \($0.worldSize) ranks" } ?? ""))
      if let notice = config.ignoredKeysNotice { log(notice) }
    }
    let sinks = isMain ? try RunSinks(outputDirectory: outputDirectory, totalSteps: totalSteps, loggingSteps: config.training.loggingSteps,
                                      colorize: config.training.colorizeOutput, resumedAt: state.step) : nil
    let rolloutLog = RolloutLog(directory: URL(fileURLWithPath: config.training.rolloutLogPath
      ?? outputDirectory.appendingPathComponent("rollouts").path))
    let limit = min(totalSteps, stopAfterStep ?? totalSteps)
    var rows: [MetricsRow] = []
    var stream = ExampleStream(examples: examples, seed: state.seed, shuffle: settings.shuffle, seen: state.examplesSeen)
    while state.step < limit {
      let firstStep = state.step
      let generation = try await generationBatch(&stream, log: log)
      state.examplesSeen = stream.seen
      // Passes (`num_iterations`) over the generation batch, each of `optimizerStepsPerPass` optimizer
      // steps summing `gradient_accumulation_steps` micro-batches.
      let microBatchCount = generation.inputs.microBatches.count
      for index in 0..<settings.layout.optimizerStepsPerGeneration where state.step < limit {
        let stepStart = Date()
        beforeStep?(state.step)
        if adapter != nil { LoRA.reseedDropout(in: model, seed: DataOrder.mix(UInt64(state.seed), UInt64(state.step), 0x10AA)) }
        let range = settings.layout.microBatchRange(ofStep: index, microBatchCount: microBatchCount)
        var values = generation.metrics.merging(try update.run(generation.inputs, step: state.step, microBatches: range)) { $1 }
        values.merge(stepTimes(generation, iteration: index, updateSeconds: Date().timeIntervalSince(stepStart),
                               forward: values[MetricName.timeLogprobs] ?? 0)) { $1 }
        if case .cuda(let index) = model.device {
          // Peak device memory of this optimizer step (generation included on its first iteration).
          values["memory/peak_allocated_gib"] = Double(CUDA.memoryStats(index).peakAllocated) / 1_073_741_824
          CUDA.resetPeakMemory(index)
        }
        state.step += 1
        syncReference()
        try source.didStep(state.step)
        if let evaluator, state.step % (config.training.evalSteps ?? config.training.loggingSteps) == 0 || state.step == totalSteps {
          // Every rank evaluates the same records (no rank waits on another); rank 0 logs.
          let started = Date()
          for (name, value) in try await evaluator.evaluate(step: state.step, log: log) {
            values["eval/" + name] = value
          }
          values["eval/seconds"] = Date().timeIntervalSince(started)
        }
        if let processGroup { values = try processGroup.reduceMetrics(values) }
        let row = MetricsRow(step: state.step, epoch: stream.epoch, values: values)
        try sinks?.record(row)
        rows.append(row)
      }
      if rollout.attentionGroups != nil, isMain {
        let folder = config.training.attentionDiagLogPath ?? outputDirectory.appendingPathComponent("attention_diagnostics").path
        try AttentionReport.write(step: firstStep + 1, records: generation.rollouts.records, scored: generation.scored,
                                  to: URL(fileURLWithPath: folder))
      }
      if isMain, config.training.realtimeRolloutLogging || config.training.logCompletions {
        try rolloutLog.append(step: firstStep + 1, samples: logSamples(generation.rollouts, generation.scored))
      }
      let saveSteps = max(1, config.training.saveSteps)
      let saving = firstStep / saveSteps != state.step / saveSteps || state.step == totalSteps
      let wholeOptimizer = try saving
        ? Checkpoint.stageOptimizer(stepper, model: model, outputDirectory: outputDirectory, step: state.step) : nil
      if saving, let sinks {
        let url = try Checkpoint.save(model: model, optimizer: wholeOptimizer, state: state, outputDirectory: outputDirectory,
                                      saveTotalLimit: config.training.saveTotalLimit, adapter: adapter,
                                      startModel: modelDirectory, reference: config.training.syncRefModel ? reference : nil,
                                      extras: { [source] in try source!.save(into: $0) })
        // The report first: a run killed right after the "saved" line still has one of this checkpoint.
        try sinks.writeReport()
        log("saved \(url.lastPathComponent)")
      }
      // The other ranks wait while rank 0 writes (every rank has the same weights).
      if saving { try processGroup?.barrier() }
    }
    if state.step == totalSteps, isMain {
      try Checkpoint.exportModel(model, companionFilesFrom: modelDirectory, to: outputDirectory.appendingPathComponent("final"),
                                 adapter: adapter)
    }
    try sinks?.finish()
    try processGroup?.barrier()
    if !rows.isEmpty, stepper.skippedNonFinite >= rows.count {
      throw TrainingError.invalidArgument("every optimizer step of this run had a non-finite loss or gradient and was "
        + "skipped: the weights did not change (check the model for NaN weights, the learning rate and the data)")
    }
    return rows
  }

  /// The outputs of stages 1-3 for one generation batch.
  struct GenerationBatch {
    var rollouts: RolloutBatch
    var scored: ScoredBatch
    var inputs: UpdateInputs
    /// Generation and scoring metrics (the same for every optimizer step of the batch).
    var metrics: [String: Double]
    var fixedLogProbSeconds: Double
  }

  /// Stages 1-3 for the next generation batch: rollouts, scores and advantages, fixed log-probs.
  func generationBatch(_ stream: inout ExampleStream, log: (String) -> Void) async throws -> GenerationBatch {
    let sourced = try await source.nextBatch(&stream, seed: state.seed, step: state.step, log: log)
    let batch = sourced.rollouts, scored = sourced.scored, prompts = batch.prompts
    try checkRewardFailures(scored, log: log)
    let microBatches = settings.layout.microBatches(recordCount: batch.records.count)
    let features = visionIsFrozen ? PolicyPass.imageFeatures(model: model, prompts: prompts) : nil
    let timer = Date()
    let fixed = try logProbs.run(prompts: prompts, records: batch.records, microBatches: microBatches, features: features)
    let counted = batch.records.filter { !(settings.maskTruncatedCompletions && $0.truncated) }
    var activeTokens = Double(counted.reduce(0) { $0 + $1.tokens.count })
    if let processGroup {
      // `dapo` divides by the whole batch's tokens; each rank's loss is then a 1/world share of the
      // mean that the gradient average restores (TRL's num_items_in_batch / num_processes).
      activeTokens = try processGroup.allGather([activeTokens]).joined().reduce(0, +) / Double(processGroup.worldSize)
    }
    let inputs = UpdateInputs(prompts: prompts, records: batch.records, advantages: scored.advantages, microBatches: microBatches,
                              features: features, fixed: fixed, activeTokens: activeTokens)
    var metrics = scored.metrics.merging(AttentionReport.metrics(batch.records)) { $1 }.merging(sourced.metrics) { $1 }
    metrics[MetricName.timeGenerate] = batch.seconds
    let fixedSeconds = Date().timeIntervalSince(timer)
    metrics["rollout/decode_tokens_per_second"] = batch.timings.tokensPerSecond
    for (reason, count) in batch.skipped { metrics["skipped/\(reason)"] = Double(count) }
    return GenerationBatch(rollouts: batch, scored: scored, inputs: inputs, metrics: metrics, fixedLogProbSeconds: fixedSeconds)
  }

  /// Step time and throughput: the first iteration of a generation batch carries its generation,
  /// scoring and fixed log-prob time (the latter inside `time/logprobs`); later ones only their own update.
  func stepTimes(_ generation: GenerationBatch, iteration: Int, updateSeconds: Double, forward: Double) -> [String: Double] {
    var values: [String: Double] = [:]
    var seconds = updateSeconds
    let batch = generation.rollouts, fixed = generation.fixedLogProbSeconds
    if iteration == 0 {
      seconds += batch.seconds + (generation.metrics[MetricName.timeScore] ?? 0) + fixed
        + (generation.metrics["time/partner"] ?? 0)
      values[MetricName.timeLogprobs] = forward + fixed
    } else {
      values[MetricName.timeGenerate] = 0
      values[MetricName.timeScore] = 0
    }
    let tokens = batch.records.reduce(0) { $0 + $1.tokens.count + batch.prompts[$1.promptIndex].ids.count }
    values[MetricName.numTokens] = Double(tokens)
    values[MetricName.stepTime] = seconds
    values[MetricName.tokensPerSecond] = Double(tokens) / max(seconds, 1e-9)
    return values
  }

  /// A reward that fails on every call is reported once per distinct message; after
  /// `rewardFailurePatience` generation batches in a row the run stops instead of training on
  /// zeros.
  func checkRewardFailures(_ scored: ScoredBatch, log: (String) -> Void) throws {
    for key in scored.rewards.map(\.key) {
      guard scored.failedFunctions.contains(key) else { rewardFailureStreak[key] = 0; continue }
      let streak = (rewardFailureStreak[key] ?? 0) + 1
      rewardFailureStreak[key] = streak
      if streak == 1 { log("reward \(key) failed: \(scored.errorMessages[key] ?? "unknown error")") }
      if settings.rewardFailurePatience > 0 && streak >= settings.rewardFailurePatience {
        throw TrainingError.invalidArgument("reward \(key) failed on every call for \(streak) generation batches in a row "
          + "(last error: \(scored.errorMessages[key] ?? "unknown")); stopping instead of training on zero rewards")
      }
    }
  }

  /// The rollout log's view of the batch.
  func logSamples(_ batch: RolloutBatch, _ scored: ScoredBatch) -> [RolloutSample] {
    batch.records.enumerated().map { index, record in
      RolloutSample(promptIndex: record.promptIndex, prompt: record.question, completion: record.text,
                    rewards: scored.rewards.map { ($0.key, $0.values[index]) }, total: scored.totals[index],
                    advantage: scored.advantages[index], completionTokens: record.tokens.count, truncated: record.truncated)
    }
  }

  /// True when nothing in the vision tower trains (its features are then computed once per prompt).
  var visionIsFrozen: Bool {
    !model.visual.parameters.contains(where: \.trainable)
      && !LoRA.namedParameters(in: model.visual).contains(where: { $0.1.trainable })
  }

  func restore(from directory: URL, log: (String) -> Void) throws {
    let saved = try Checkpoint.loadState(directory)
    try ResumePoint.checkUnchanged(saved, config: config, checkpoint: directory)
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
    try Checkpoint.loadOptimizer(stepper, model: model, from: directory)
    try source.restore(from: directory)
    state = saved
    log("resumed from \(directory.lastPathComponent) at step \(saved.step)")
  }

  /// Data-parallel start: every rank must stand at the same step (each resumed from the same
  /// checkpoint) and hold rank 0's trainable weights, so that identical averaged gradients keep
  /// them identical.
  func synchronizeStart() throws {
    try processGroup?.synchronizeStart(step: state.step, parameters: model.namedTrainableParameters.map(\.1))
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
}
