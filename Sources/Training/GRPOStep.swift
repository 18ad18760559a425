import Foundation
import Generation
import Models
import NN
import Rewards
import Torch

/// One generation batch: prompts, their completions (prompt after prompt, G each), rewards and
/// advantages, split into micro-batches of `per_device_train_batch_size` prompts.
struct GenerationBatch {
  var prompts: [PreparedPrompt]
  var completions: [SampledCompletion]
  var advantages: [Double]
  /// Completion indices of each micro-batch.
  var microBatches: [[Int]]
  /// Vision features per prompt when the vision tower has nothing to train (nil entries otherwise).
  var features: [Tensor?]?
  /// Metrics of generation and scoring (the same for every optimizer step of the batch).
  var metrics: [String: Double]
  var samples: [RolloutSample]
  /// Completion tokens that count in the loss over the whole generation batch (`dapo`).
  var activeTokens: Double
}

/// Log-probs fixed for a generation batch, per micro-batch: the old policy's (`num_iterations > 1`)
/// and the reference model's (`beta > 0`).
struct FixedLogProbs {
  var old: [Tensor?]
  var reference: [Tensor?]
}

extension GRPOTrainer {
  /// Rollouts, rewards and advantages for the next generation batch.
  func generate() async throws -> GenerationBatch {
    let prompts = try nextBatch().map { try builder.prepare($0) }
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
    let (advantages, stats) = try Advantages.compute(totals: scores.total, groupSize: config.training.numGenerations,
                                                     scaling: config.training.scaleRewards)
    var metrics: [String: Double] = [
      MetricName.reward: stats.rewardMean, MetricName.rewardStd: stats.rewardStd,
      MetricName.fracRewardZeroStd: stats.fracRewardZeroStd, MetricName.timeGenerate: generateTime,
      MetricName.timeScore: Date().timeIntervalSince(timer), "rollout/decode_tokens_per_second": rolloutTimings.tokensPerSecond,
    ]
    metrics.merge(try RewardStats.metrics(names: rewardNames, values: rewardNames.map { scores.perFunction[$0] ?? [] })) { $1 }
    metrics.merge(try CompletionStats(lengths: completions.map(\.tokens.count), truncated: completions.map(\.truncated)).metrics) { $1 }
    for (name, count) in scores.errorCounts where count > 0 { metrics["rewards/\(name)/errors"] = Double(count) }
    let samples = completions.enumerated().map { index, completion in
      RolloutSample(promptIndex: completion.promptIndex, prompt: prompts[completion.promptIndex].example.promptText,
                    completion: texts[index], rewards: rewardNames.map { ($0, scores.perFunction[$0]?[index] ?? nil) },
                    total: scores.total[index], advantage: advantages[index], completionTokens: completion.tokens.count,
                    truncated: completion.truncated)
    }
    let perMicroBatch = config.training.perDeviceTrainBatchSize
    let microBatches = stride(from: 0, to: prompts.count, by: perMicroBatch).map { first in
      completions.indices.filter { (first..<(first + perMicroBatch)).contains(completions[$0].promptIndex) }
    }
    let counted = completions.filter { !(config.training.maskTruncatedCompletions && $0.truncated) }
    return GenerationBatch(prompts: prompts, completions: completions, advantages: advantages, microBatches: microBatches,
                           features: visionIsFrozen ? PolicyPass.imageFeatures(model: model, prompts: prompts) : nil,
                           metrics: metrics, samples: samples, activeTokens: Double(counted.reduce(0) { $0 + $1.tokens.count }))
  }

  /// True when nothing in the vision tower trains (its features are then computed once per prompt).
  var visionIsFrozen: Bool {
    !model.visual.parameters.contains(where: \.trainable)
      && !LoRA.namedParameters(in: model.visual).contains(where: { $0.1.trainable })
  }

  /// The old policy's log-probs (only when `num_iterations > 1`: otherwise `logp.detach()` is the
  /// same thing) and the reference's (when `beta > 0`), once per generation batch.
  func fixedLogProbs(_ batch: GenerationBatch) throws -> FixedLogProbs {
    var fixed = FixedLogProbs(old: [], reference: [])
    let temperature = config.training.temperature
    for members in batch.microBatches {
      let completions = members.map { batch.completions[$0] }
      fixed.old.append(config.training.numIterations > 1 ? try withNoGrad {
        try PolicyPass.logProbs(model: model, prompts: batch.prompts, completions: completions, temperature: temperature,
                                features: batch.features).logp
      } : nil)
      guard config.training.beta > 0 else { fixed.reference.append(nil); continue }
      fixed.reference.append(try withNoGrad {
        if let reference {
          return try PolicyPass.logProbs(model: reference, prompts: batch.prompts, completions: completions,
                                         temperature: temperature).logp
        }
        return try LoRA.withAdaptersDisabled(model) {
          try PolicyPass.logProbs(model: model, prompts: batch.prompts, completions: completions, temperature: temperature).logp
        }
      })
    }
    return fixed
  }

  /// One optimizer step over the generation batch: a forward/backward per micro-batch (each loss
  /// already divided by the accumulation steps where TRL divides), clipping, AdamW.
  func optimizerStep(_ batch: GenerationBatch, fixed: FixedLogProbs, iteration: Int) throws -> [String: Double] {
    let stepStart = Date()
    if adapter != nil { LoRA.reseedDropout(in: model, seed: DataOrder.mix(UInt64(state.seed), UInt64(state.step), 0x10AA)) }
    var lossSum = 0.0, forwardTime = 0.0, backwardTime = 0.0
    var sums: [String: Double] = [:]
    var finite = true
    for (index, members) in batch.microBatches.enumerated() {
      var timer = Date()
      let (loss, lossMetrics) = try microBatchLoss(batch, members: members, old: fixed.old[index], reference: fixed.reference[index])
      forwardTime += Date().timeIntervalSince(timer)
      timer = Date()
      let value = loss.item()
      lossSum += value
      if value.isFinite { loss.backward() } else { finite = false }
      RecomputeRegistry.shared.releaseAll()
      backwardTime += Date().timeIntervalSince(timer)
      for (key, metric) in [(MetricName.kl, lossMetrics.kl), (MetricName.entropy, lossMetrics.entropy),
                            (MetricName.clipRatioLow, lossMetrics.clipRatioLow), (MetricName.clipRatioHigh, lossMetrics.clipRatioHigh),
                            (MetricName.clipRatioRegion, lossMetrics.clipRatioRegion)] {
        if let metric { sums[key, default: 0] += metric / Double(batch.microBatches.count) }
      }
    }
    var timer = Date()
    let gradNorm = finite ? clipGradNorm(optimizer.parameters, maxNorm: config.training.maxGradNorm) : .nan
    backwardTime += Date().timeIntervalSince(timer)
    timer = Date()
    let learningRate = schedule.rate(at: state.step)
    if finite && gradNorm.isFinite {
      optimizer.step(learningRate: learningRate)
    } else {
      skippedNonFinite += 1  // a non-finite loss or gradient never reaches the weights
    }
    optimizer.zeroGrad()
    let optimizerTime = Date().timeIntervalSince(timer)
    let tokens = batch.completions.reduce(0) { $0 + $1.tokens.count + batch.prompts[$1.promptIndex].ids.count }
    let generationTime = iteration == 0 ? (batch.metrics[MetricName.timeGenerate] ?? 0) + (batch.metrics[MetricName.timeScore] ?? 0) : 0
    let stepTime = Date().timeIntervalSince(stepStart) + generationTime
    var values = batch.metrics.merging(sums) { $1 }
    if iteration > 0 { values[MetricName.timeGenerate] = 0; values[MetricName.timeScore] = 0 }
    values.merge([
      MetricName.loss: lossSum, MetricName.gradNorm: gradNorm, MetricName.learningRate: learningRate,
      MetricName.numTokens: Double(tokens), MetricName.stepTime: stepTime,
      MetricName.tokensPerSecond: Double(tokens) / max(stepTime, 1e-9), MetricName.timeLogprobs: forwardTime,
      MetricName.timeBackward: backwardTime, MetricName.timeOptimizer: optimizerTime,
      "skipped_steps_non_finite": Double(skippedNonFinite),
    ]) { $1 }
    return values
  }

  /// The GRPO loss of one micro-batch (policy pass with grad, truncated rows masked when asked).
  func microBatchLoss(_ batch: GenerationBatch, members: [Int], old: Tensor?,
                      reference: Tensor?) throws -> (Tensor, GRPOLossMetrics) {
    let completions = members.map { batch.completions[$0] }
    let policy = try PolicyPass.logProbs(model: model, prompts: batch.prompts, completions: completions,
                                         temperature: config.training.temperature,
                                         checkpointLayers: config.training.gradientCheckpointing ?? false, features: batch.features)
    var mask = policy.mask
    if config.training.maskTruncatedCompletions {
      let keep = Tensor(completions.map { $0.truncated ? Float(0) : 1 }, shape: [completions.count, 1]).to(model.device)
      mask = mask * keep
    }
    return try GRPOLoss.compute(
      GRPOLossInputs(logp: policy.logp, oldLogp: old, refLogp: reference, advantages: members.map { batch.advantages[$0] },
                     completionMask: mask, entropies: policy.entropies, activeTokensGlobal: max(1, batch.activeTokens)),
      options: config.lossOptions)
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
    // Rollouts sample from the policy as it is (adapters on, no dropout: eval mode).
    model.eval()
    defer { model.train() }
    let (completions, timings) = try withNoGrad { try engine.generate(requests, settings: settings) }
    let ordered = completions.sorted { ($0.requestIndex, $0.sampleIndex) < ($1.requestIndex, $1.sampleIndex) }
    return (ordered.map { SampledCompletion(promptIndex: $0.requestIndex, tokens: $0.tokens, truncated: !$0.finished) }, timings)
  }
}
