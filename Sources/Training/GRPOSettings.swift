import Common
import Foundation
import Generation
import NN

/// What the stages of a GRPO step need from the config, derived once (`GRPOSettings(config)`), so
/// the stages read a small value instead of `config.training.*`.
public struct GRPOSettings: Sendable {
  /// Completions per prompt (G, `num_generations` / `roll_out_num`).
  public var numGenerations: Int
  /// Prompts per generation batch (`per_device_train_batch_size` x `gradient_accumulation_steps`).
  public var promptsPerGeneration: Int
  /// Prompts per micro-batch (one forward/backward each).
  public var promptsPerMicroBatch: Int
  /// Optimizer steps per generation batch.
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

  public init(_ config: TrainingConfig) {
    let training = config.training
    numGenerations = training.numGenerations
    promptsPerGeneration = training.perDeviceTrainBatchSize * training.gradientAccumulationSteps
    promptsPerMicroBatch = training.perDeviceTrainBatchSize
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
}
