import Common
import Foundation
import Generation
import NN

/// What the stages of a GRPO step need from the config, derived once (`GRPOSettings(config)`), so
/// the stages read a small value instead of `config.training.*`.
public struct GRPOSettings: Sendable {
  /// Completions per prompt (G, `num_generations` / `roll_out_num`).
  public var numGenerations: Int
  /// How a generation batch is cut into micro-batches and optimizer steps (TRL's batch keys).
  public var layout: BatchLayout
  /// Passes over each generation batch (`num_iterations`, mu).
  public var numIterations: Int
  /// How rollouts sample (temperature, filters, length limit; the stop tokens come from the prompt builder).
  public var sampling: SamplingSettings
  /// Sampling temperature, also applied to the log-probs of the policy and reference passes.
  public var temperature: Double
  public var beta: Double
  public var maskTruncatedCompletions: Bool
  public var scaleRewards: RewardScaling
  public var loss: GRPOLossOptions
  public var maxGradNorm: Double
  /// Recompute decoder layers in backward instead of keeping their activations.
  public var checkpointLayers: Bool
  public var seed: Int
  public var shuffle: Bool
  /// Rollouts record attention diagnostics (`compute_attention_metrics`), feeding `mdi`.
  public var recordAttention: Bool
  /// `attention_layer_groups` (`thin`, `thirds` or named layer lists).
  public var attentionLayerGroups: JSONValue
  /// Consecutive generation batches in which a reward function fails on every call before the run
  /// stops with an error (`reward_failure_patience`; 0 = never stop).
  public var rewardFailurePatience: Int
  /// This process's data-parallel rank and the number of ranks (0 and 1 on one process); the layout
  /// is per rank, the generation batch `worldSize` times it (docs/distributed.md).
  public var rank = 0
  public var worldSize = 1

  public init(_ config: TrainingConfig) {
    let training = config.training
    numGenerations = training.numGenerations
    layout = config.batchLayout
    numIterations = training.numIterations
    temperature = training.temperature
    sampling = SamplingSettings(maxNewTokens: training.maxCompletionLength, temperature: training.temperature,
                                topP: training.topP, topK: training.topK ?? 0, minP: training.minP ?? 0,
                                repetitionPenalty: training.repetitionPenalty)
    beta = training.beta
    maskTruncatedCompletions = training.maskTruncatedCompletions
    scaleRewards = training.scaleRewards
    loss = config.lossOptions
    maxGradNorm = training.maxGradNorm
    checkpointLayers = training.gradientCheckpointing ?? false
    seed = training.seed
    shuffle = training.shuffleDataset
    recordAttention = training.computeAttentionMetrics
    attentionLayerGroups = training.attentionLayerGroups
    rewardFailurePatience = training.rewardFailurePatience
  }

  /// Prompts per generation batch on this rank (the generation batch's completions / G).
  public var promptsPerGeneration: Int { layout.promptsPerGeneration }
  /// Prompts per generation batch over all ranks, i.e. per optimizer step's share of the data.
  public var globalPromptsPerGeneration: Int { promptsPerGeneration * worldSize }
}

/// The batch keys as TRL's GRPOConfig defines them, on one process: a micro-batch holds
/// `per_device_train_batch_size` completions (not prompts; it may hold part of a prompt's group, whose
/// advantages are computed over the whole generation batch first); a generation batch holds
/// `per_device_train_batch_size x steps_per_generation` completions, i.e. that many / G prompts;
/// `steps_per_generation` defaults to `gradient_accumulation_steps`, and `generation_batch_size` may
/// set the size instead. An optimizer step sums `gradient_accumulation_steps` micro-batches, so each
/// pass over the generation batch takes `steps_per_generation / gradient_accumulation_steps` of them,
/// and `num_iterations` passes run per generation batch.
public struct BatchLayout: Sendable, Equatable {
  /// `per_device_train_batch_size`.
  public var completionsPerMicroBatch: Int
  /// Micro-batches per generation batch (`steps_per_generation`).
  public var stepsPerGeneration: Int
  public var gradientAccumulationSteps: Int
  /// G.
  public var numGenerations: Int
  public var numIterations: Int

  /// Completions per generation batch (`generation_batch_size`).
  public var generationBatchSize: Int { completionsPerMicroBatch * stepsPerGeneration }
  public var promptsPerGeneration: Int { generationBatchSize / max(1, numGenerations) }
  /// Optimizer steps in one pass over the generation batch.
  public var optimizerStepsPerPass: Int { max(1, stepsPerGeneration / max(1, gradientAccumulationSteps)) }
  /// Optimizer steps per generation batch, all passes.
  public var optimizerStepsPerGeneration: Int { optimizerStepsPerPass * numIterations }
  /// Whether the policy changes before the last micro-batch of a generation batch trains, so the
  /// sampling policy's log-probs must be recorded (TRL: when `gradient_accumulation_steps` is not a
  /// multiple of `steps_per_generation x num_iterations`).
  public var needsOldLogProbs: Bool { optimizerStepsPerGeneration > 1 }

  /// The micro-batches of a generation batch of `recordCount` completions: consecutive slices of
  /// `completionsPerMicroBatch` record indices (the last one shorter when the count is not a multiple).
  public func microBatches(recordCount: Int) -> [[Int]] {
    stride(from: 0, to: recordCount, by: completionsPerMicroBatch).map {
      Array($0..<min(recordCount, $0 + completionsPerMicroBatch))
    }
  }

  /// The micro-batch indices that optimizer step `index` (0-based, within a generation batch) sums.
  public func microBatchRange(ofStep index: Int, microBatchCount: Int) -> Range<Int> {
    let perStep = max(1, microBatchCount / optimizerStepsPerPass)
    let first = (index % optimizerStepsPerPass) * perStep
    return first..<min(microBatchCount, first + perStep)
  }

  /// The one line a run prints at its start.
  public var summary: String {
    func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : noun.hasSuffix("h") ? "es" : "s")" }
    return "batch: \(count(promptsPerGeneration, "prompt")) x \(numGenerations) generations = "
      + "\(count(generationBatchSize, "completion")) per generation batch, "
      + "\(count(stepsPerGeneration, "micro-batch")) of \(count(completionsPerMicroBatch, "completion")), "
      + "\(count(optimizerStepsPerGeneration, "optimizer step")) per generation batch "
      + "(gradient_accumulation_steps \(gradientAccumulationSteps), num_iterations \(numIterations))"
  }
}
