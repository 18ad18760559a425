import Common
import Datasets
import Foundation
import Generation
import ModelConfig
import Models
import NN
import Rewards
import Torch

/// GRPO as specs/grpo.md: rollouts, concurrent rewards, group advantages, the clipped policy loss
/// with optional k3 KL, AdamW with warm-up/schedule and clipping, metrics, rollout logs and atomic
/// checkpoints with exact resume. Each stage is its own unit; this type only sequences them.
public final class GRPOTrainer: @unchecked Sendable {
  public let config: TrainingConfig
  public let model: QwenVLModel
  let reference: QwenVLModel?
  let builder: PromptBuilder
  let examples: [Example]
  let rewards: RewardRunner
  let rewardNames: [String]
  let optimizer: AdamW
  public let totalSteps: Int
  let schedule: LRSchedule
  public let outputDirectory: URL
  public private(set) var state: TrainerState
  var skippedNonFinite = 0
  let modelDirectory: URL
  let engine: RolloutEngine

  /// `rewards` replaces the configured `reward_funcs` (library use and tests); by default the
  /// registry builds them from the config.
  public init(config: TrainingConfig, modelDirectory: URL, examples: [Example], rewards: RewardRunner? = nil,
              device: Device = .cpu, dtype: DType = .float32) throws {
    guard !examples.isEmpty else { throw TrainingError.invalidArgument("GRPO: the dataset has no usable examples") }
    self.config = config
    self.examples = examples
    self.modelDirectory = modelDirectory
    let folder = try ModelFolder(directory: modelDirectory)
    builder = try PromptBuilder(folder: folder, minPixels: config.training.minPixels, maxPixels: config.training.maxPixels,
                                maxPromptLength: config.training.maxPromptLength)
    model = try QwenVLModel.load(directory: modelDirectory, dtype: dtype, device: device)
    if config.training.freezeVisionTower { model.visual.setTrainable(false) }
    engine = RolloutEngine(model: model)
    reference = config.training.beta > 0 ? try QwenVLModel.load(directory: modelDirectory, dtype: dtype, device: device) : nil
    reference?.setTrainable(false)
    if let rewards {
      self.rewards = rewards
    } else {
      let functions = try RewardRegistry.make(config.training.rewardFuncs, parameters: config.training.rewardParameters)
      self.rewards = try RewardRunner.validated(functions: functions, weights: config.training.rewardWeights)
    }
    rewardNames = self.rewards.functions.map(\.name)
    optimizer = AdamW(model.trainableParameters, config.adamW)
    let batch = config.training.perDeviceTrainBatchSize
    totalSteps = config.training.maxSteps > 0 ? config.training.maxSteps
      : Int((config.training.numTrainEpochs * Double(examples.count) / Double(batch)).rounded(.up))
    schedule = config.lrSchedule(totalSteps: totalSteps)
    outputDirectory = URL(fileURLWithPath: config.training.outputDir)
    state = TrainerState(step: 0, examplesSeen: 0, seed: config.training.seed, configFingerprint: config.resolvedJSONText())
  }

  // MARK: Run

  /// Trains until `totalSteps` (or until `stopAfterStep`, which simulates an interrupted run),
  /// resuming from the newest checkpoint when `resume` is set.
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
    var rows: [MetricsRow] = []
    while state.step < min(totalSteps, stopAfterStep ?? totalSteps) {
      let (values, samples) = try await step()
      state.step += 1
      let row = MetricsRow(step: state.step, epoch: Double(state.examplesSeen) / Double(examples.count), values: values)
      if state.step % max(1, config.training.loggingSteps) == 0 || state.step == totalSteps {
        try metrics.append(row)
        try board.add(values, step: state.step)
        progress.summary(step: state.step, metrics: values)
      }
      if config.training.realtimeRolloutLogging || config.training.logCompletions {
        try rolloutLog.append(step: state.step, samples: samples)
      }
      progress.update(step: state.step, reward: values[MetricName.reward], tokensPerSecond: values[MetricName.tokensPerSecond])
      rows.append(row)
      if config.training.saveSteps > 0 && state.step % config.training.saveSteps == 0 || state.step == totalSteps {
        let url = try Checkpoint.save(model: model, optimizer: optimizer, state: state, outputDirectory: outputDirectory,
                                      saveTotalLimit: config.training.saveTotalLimit)
        log("saved \(url.lastPathComponent)")
      }
    }
    progress.finish()
    if state.step == totalSteps {
      try Checkpoint.exportModel(model, companionFilesFrom: modelDirectory, to: outputDirectory.appendingPathComponent("final"))
    }
    let all = try MetricsJSONL.read(outputDirectory.appendingPathComponent("metrics.jsonl"))
    try Report.write(rows: all, to: outputDirectory.appendingPathComponent("report.html"))
    return rows
  }

  func restore(from directory: URL, log: (String) -> Void) throws {
    let saved = try Checkpoint.loadState(directory)
    let weights = try QwenVLModel.load(directory: directory, dtype: model.dtype, device: model.device)
    try model.load(weights.stateDict())
    try Checkpoint.loadOptimizer(optimizer, model: model, from: directory)
    state = saved
    log("resumed from \(directory.lastPathComponent) at step \(saved.step)")
  }

  // MARK: One step

  /// The examples of the next batch, in a seeded order that is a pure function of (seed, epoch).
  func nextBatch() -> [Example] {
    let count = examples.count
    var batch: [Example] = []
    for _ in 0..<config.training.perDeviceTrainBatchSize {
      let epoch = state.examplesSeen / count, position = state.examplesSeen % count
      let order = config.training.shuffleDataset ? DataOrder.permutation(count: count, seed: UInt64(state.seed), epoch: epoch)
        : Array(0..<count)
      batch.append(examples[order[position]])
      state.examplesSeen += 1
    }
    return batch
  }

  func step() async throws -> ([String: Double], [RolloutSample]) {
    let stepStart = Date()
    let prompts = try nextBatch().map { try builder.prepare($0) }
    let generations = config.training.numGenerations
    var timer = Date()
    let (completions, rolloutTimings) = try rollout(prompts)
    let generateTime = Date().timeIntervalSince(timer)

    timer = Date()
    let texts = completions.map { builder.tokenizer.decode($0.tokens, skipSpecialTokens: true) }
    let rewardSamples = zip(completions, texts).map { completion, text in
      let prompt = prompts[completion.promptIndex]
      return RewardSample(prompt: prompt.text, completion: text, images: prompt.images, fields: prompt.example.rewardFields,
                          attention: nil)
    }
    let scores = await rewards.score(rewardSamples)
    let (advantages, advantageStats) = try Advantages.compute(totals: scores.total, groupSize: generations,
                                                              scaling: config.training.scaleRewards)
    let scoreTime = Date().timeIntervalSince(timer)

    timer = Date()
    let policy = try PolicyPass.logProbs(model: model, prompts: prompts, completions: completions,
                                         temperature: config.training.temperature,
                                         checkpointLayers: config.training.gradientCheckpointing ?? false)
    let logp = policy.logp
    var mask = policy.mask
    if config.training.maskTruncatedCompletions {
      let keep = Tensor(completions.map { $0.truncated ? Float(0) : 1 }, shape: [completions.count, 1]).to(model.device)
      mask = mask * keep
    }
    let refLogp = try reference.map { reference in
      try withNoGrad {
        try PolicyPass.logProbs(model: reference, prompts: prompts, completions: completions,
                                temperature: config.training.temperature).logp
      }
    }
    let (loss, lossMetrics) = try GRPOLoss.compute(
      GRPOLossInputs(logp: logp, refLogp: refLogp, advantages: advantages, completionMask: mask),
      options: config.lossOptions)
    let logprobTime = Date().timeIntervalSince(timer)

    timer = Date()
    let lossValue = loss.item()
    var gradNorm = Double.nan
    if lossValue.isFinite {
      loss.backward()
      CheckpointRegistry.shared.releaseAll()
      gradNorm = clipGradNorm(optimizer.parameters, maxNorm: config.training.maxGradNorm)
    }
    let backwardTime = Date().timeIntervalSince(timer)

    timer = Date()
    let learningRate = schedule.rate(at: state.step)
    if lossValue.isFinite && gradNorm.isFinite {
      optimizer.step(learningRate: learningRate)
    } else {
      skippedNonFinite += 1  // a non-finite loss or gradient never reaches the weights
    }
    optimizer.zeroGrad()
    let optimizerTime = Date().timeIntervalSince(timer)

    let tokens = prompts.count * generations == 0 ? 0
      : completions.reduce(0) { $0 + $1.tokens.count + prompts[$1.promptIndex].ids.count }
    let stepTime = Date().timeIntervalSince(stepStart)
    var values: [String: Double] = [
      MetricName.loss: lossValue, MetricName.gradNorm: gradNorm, MetricName.learningRate: learningRate,
      MetricName.reward: advantageStats.rewardMean, MetricName.rewardStd: advantageStats.rewardStd,
      MetricName.fracRewardZeroStd: advantageStats.fracRewardZeroStd,
      MetricName.clipRatioLow: lossMetrics.clipRatioLow, MetricName.clipRatioHigh: lossMetrics.clipRatioHigh,
      MetricName.clipRatioRegion: lossMetrics.clipRatioRegion, MetricName.numTokens: Double(tokens),
      MetricName.stepTime: stepTime, MetricName.tokensPerSecond: Double(tokens) / max(stepTime, 1e-9),
      MetricName.timeGenerate: generateTime, MetricName.timeScore: scoreTime, MetricName.timeLogprobs: logprobTime,
      MetricName.timeBackward: backwardTime, MetricName.timeOptimizer: optimizerTime,
      "skipped_steps_non_finite": Double(skippedNonFinite),
      "rollout/decode_tokens_per_second": rolloutTimings.tokensPerSecond,
    ]
    if let kl = lossMetrics.kl { values[MetricName.kl] = kl }
    values.merge(try RewardStats.metrics(names: rewardNames, values: rewardNames.map { scores.perFunction[$0] ?? [] })) { $1 }
    values.merge(try CompletionStats(lengths: completions.map(\.tokens.count), truncated: completions.map(\.truncated)).metrics) { $1 }
    for (name, count) in scores.errorCounts where count > 0 { values["rewards/\(name)/errors"] = Double(count) }
    let samples = completions.enumerated().map { index, completion in
      RolloutSample(promptIndex: completion.promptIndex, prompt: prompts[completion.promptIndex].example.promptText,
                    completion: texts[index],
                    rewards: rewardNames.map { ($0, scores.perFunction[$0]?[index] ?? nil) }, total: scores.total[index],
                    advantage: advantages[index], completionTokens: completion.tokens.count, truncated: completion.truncated)
    }
    return (values, samples)
  }

  /// G samples per prompt through the batched rollout engine (vision and prefill once per prompt,
  /// shared by its samples). Each request's randomness is keyed by (seed, step, prompt) and each
  /// sample's by its index inside the request, so a resumed run draws exactly what an uninterrupted
  /// one would, whatever the batch composition.
  func rollout(_ prompts: [PreparedPrompt]) throws -> (completions: [SampledCompletion], timings: RolloutTimings) {
    let eos = Set(model.config.eosTokenIds + [builder.tokenizer.tokenToId("<|im_end|>"),
                                              builder.tokenizer.tokenToId("<|endoftext|>")].compactMap { $0 })
    let settings = SamplingSettings(maxNewTokens: config.training.maxCompletionLength, temperature: config.training.temperature,
                                    topP: config.training.topP, topK: config.training.topK ?? 0,
                                    minP: config.training.minP ?? 0, repetitionPenalty: config.training.repetitionPenalty,
                                    eosTokenIds: eos)
    let requests = prompts.enumerated().map { index, prompt in
      RolloutRequest(promptIDs: prompt.ids, pixelValues: prompt.pixelValues?.to(model.device), grids: prompt.grids,
                     samples: config.training.numGenerations,
                     seed: DataOrder.mix(UInt64(state.seed), UInt64(state.step), UInt64(index)))
    }
    let (completions, timings) = try withNoGrad { try engine.generate(requests, settings: settings) }
    let ordered = completions.sorted { ($0.requestIndex, $0.sampleIndex) < ($1.requestIndex, $1.sampleIndex) }
    return (ordered.map { SampledCompletion(promptIndex: $0.requestIndex, tokens: $0.tokens, truncated: !$0.finished) }, timings)
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
