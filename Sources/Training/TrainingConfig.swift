import Common
import Datasets
import NN
import Torch
import Foundation

/// The resolved config of a `vlmrl train` / `vlmrl sft` run (docs/grpo.md). Decode it with
/// `TrainingConfig.load(_:overrides:)`; every key has a type and a default (see `ConfigSchema`).
/// Property names are the file's keys in camelCase (`roll_out_num` is read as `num_generations`).
public struct TrainingConfig: Sendable, Equatable, Codable {
  public enum JobType: String, Sendable, Codable, CaseIterable { case grpo, sft, cycle }

  /// The `dataset` section.
  public struct DatasetSection: Sendable, Equatable, Codable {
    /// A dataset YAML (`datasets: [{json_path, sampling_strategy}]`), one data file, or a hub dataset
    /// (`hub:org/name[:split]`, downloaded by the commands: docs/data.md).
    public var labeledPath: String?
    public var evalPath: String?
    public var imageRoot: String?
    /// Column mapping (docs/data.md): the prompt, image and ground-truth columns, and a system turn
    /// for prompts that have none.
    public var promptKey: String?
    public var imageKey: String?
    public var answerKey: String?
    public var solutionKey: String?
    public var systemPrompt: String?
  }

  /// The `models` section.
  public struct ModelsSection: Sendable, Equatable, Codable {
    /// A model folder or a hub id resolved through the local Hugging Face cache (the commands
    /// download a hub id missing from it first: docs/model-files.md, "Hub downloads").
    public var student: String?
    /// A separate reference model for the KL term (default: the student's initial weights).
    public var reference: String?
    /// Accepted for the seeds' distillation configs; unused by GRPO.
    public var teacher: String?
  }

  /// `lr_scheduler_type`.
  /// `optim`: AdamW in every case (libtorch's fused kernel), told apart by how bf16/fp16 weights keep
  /// their state (docs/training.md, "Optimizer memory"). float32 weights always train in float32.
  public enum Optimizer: String, Sendable, Codable, CaseIterable {
    /// float32 master weights and moments (12 bytes per parameter): TRL's names for AdamW.
    case adamwTorch = "adamw_torch", adamwTorchFused = "adamw_torch_fused"
    /// bf16 moments and stochastically rounded bf16 weight updates (4 bytes per parameter).
    case adamwBF16 = "adamw_bf16"
    /// bf16 moments and a bf16 Kahan compensation of the weights' rounding (6 bytes per parameter).
    case adamwBF16Kahan = "adamw_bf16_kahan"

    public var precision: AdamW.Precision {
      switch self {
      case .adamwTorch, .adamwTorchFused: return .master
      case .adamwBF16: return .stochastic
      case .adamwBF16Kahan: return .kahan
      }
    }
  }

  public enum SchedulerType: String, Sendable, Codable, CaseIterable {
    case linear, cosine, constant
    case constantWithWarmup = "constant_with_warmup"
  }

  /// The `training` section: every GRPO / SFT option under TRL's name.
  public struct TrainingSection: Sendable, Equatable, Codable {
    // Run
    public var outputDir: String
    public var numTrainEpochs: Double
    /// -1: run `num_train_epochs`.
    public var maxSteps: Int
    /// Completions per micro-batch (as TRL; not prompts).
    public var perDeviceTrainBatchSize: Int
    public var gradientAccumulationSteps: Int
    /// Completions per generation batch; nil: `per_device_train_batch_size x steps_per_generation`.
    public var generationBatchSize: Int?
    /// Micro-batches per generation batch; nil: from `generation_batch_size`, else
    /// `gradient_accumulation_steps`.
    public var stepsPerGeneration: Int?
    public var maxLength: Int?
    public var saveSteps: Int
    public var saveTotalLimit: Int?
    /// A checkpoint folder, or `true` for the latest one in `output_dir`.
    public var resumeFromCheckpoint: JSONValue?
    /// Resume even when the checkpoint was trained with other values of keys that change training.
    public var allowConfigChange: Bool
    public var seed: Int
    public var dataSeed: Int?
    public var bf16: Bool
    /// nil: on for models over 1B parameters.
    public var gradientCheckpointing: Bool?
    /// `nccl` or `gloo` for multi-process runs; nil: nccl on CUDA, gloo on the CPU.
    public var ddpBackend: String?
    /// A DeepSpeed config path (or inline object); only its ZeRO stage is used.
    public var deepspeed: JSONValue?
    /// The sharding stage: explicit, or read from `deepspeed` when the config is loaded.
    public var zeroStage: Int?
    public var disableDropout: Bool
    // Generation
    /// `roll_out_num` in the seed configs.
    public var numGenerations: Int
    public var maxPromptLength: Int
    public var maxCompletionLength: Int
    public var temperature: Double
    public var topP: Double
    public var topK: Int?
    public var minP: Double?
    public var repetitionPenalty: Double
    // GRPO
    public var beta: Double
    public var epsilon: Double
    public var epsilonHigh: Double?
    public var delta: Double?
    public var lossType: LossType
    public var scaleRewards: RewardScaling
    public var importanceSamplingLevel: ImportanceSamplingLevel
    public var numIterations: Int
    public var maskTruncatedCompletions: Bool
    public var topEntropyQuantile: Double
    public var syncRefModel: Bool
    public var refModelMixupAlpha: Double
    public var refModelSyncSteps: Int
    // Optimizer
    public var learningRate: Double
    public var lrSchedulerType: SchedulerType
    public var warmupRatio: Double
    public var warmupSteps: Int
    public var weightDecay: Double
    public var adamBeta1: Double
    public var adamBeta2: Double
    public var adamEpsilon: Double
    public var maxGradNorm: Double
    /// How AdamW keeps the state of half-precision weights (`Optimizer`).
    public var optim: Optimizer
    // Rewards
    public var rewardFuncs: [String]
    /// One weight per reward function; nil: the registry's defaults.
    public var rewardWeights: [Double]?
    /// Shared reward parameters, and per-function blocks under a function's name (docs/rewards.md).
    public var rewardParameters: [String: JSONValue]
    public var computeAttentionMetrics: Bool
    public var mdiBalanceRatio: Double
    /// Layer groups of the attention diagnostics: `thin`, `thirds`, or `{"name": [layers], ...}`.
    public var attentionLayerGroups: JSONValue
    /// Generation batches in a row in which a reward fails on every call before the run stops (0: never).
    public var rewardFailurePatience: Int
    // Logging
    public var loggingSteps: Int
    public var logCompletions: Bool
    public var realtimeRolloutLogging: Bool
    /// nil: `<output_dir>/rollouts`.
    public var rolloutLogPath: String?
    public var attentionDiagLogPath: String?
    public var colorizeOutput: Bool
    // Evaluation during training (`dataset.eval_path`)
    /// `steps` with `dataset.eval_path`; `no` (or unset) without it.
    public var evalStrategy: String?
    /// nil: `logging_steps`, as TRL.
    public var evalSteps: Int?
    /// nil: from the eval set's record kinds.
    public var evalTask: String?
    public var evalSampleNum: Int?
    public var evalMaxNewTokens: Int?
    public var perDeviceEvalBatchSize: Int
    // Data
    public var maxPixels: Int
    public var minPixels: Int
    public var filterBigImages: Bool
    public var onBadRecord: BadRecordPolicy
    public var recPrompt: RECPromptStyle
    public var shuffleDataset: Bool
    // Adapters
    public var usePeft: Bool
    public var loraR: Int
    public var loraAlpha: Double
    public var loraDropout: Double
    /// Names or patterns of the modules that get adapters (a list, or one string such as
    /// `all-linear`); nil: the attention and MLP projections.
    public var loraTargetModules: JSONValue?
    public var freezeVisionTower: Bool
    // SFT
    public var assistantOnlyLoss: Bool
    public var packing: Bool
    // Cycle (docs/cycle.md)
    /// `alternate`, `region_to_caption`, `caption_to_region` or `mixed`.
    public var cycleSchedule: String
    public var emaDecay: Double
    public var emaUpdateSteps: Int
    /// How loop 1 shows the region: `coordinates`, `outline` or `both`.
    public var regionPrompt: String
    public var partnerTemperature: Double
    /// nil: `max_completion_length`.
    public var partnerMaxCompletionLength: Int?
    public var cycleCaptionPrompt: String
    public var cycleGroundingPrompt: String
    public var cycleMeteorWeight: Double
    public var cycleJudgeWeight: Double
  }

  public var jobType: JobType
  public var dataset: DatasetSection
  public var models: ModelsSection
  public var training: TrainingSection
  /// Keys TRL users pass out of habit that mean nothing here (`ConfigSchema.ignoredTRLKeys`), with
  /// their values: accepted, named in `ignoredKeysNotice`, never written to the resolved config.
  public var ignoredKeys: [String: JSONValue] = [:]

  enum CodingKeys: String, CodingKey { case jobType, dataset, models, training }

  /// The one line a run prints when the config had ignored keys (nil when it had none).
  public var ignoredKeysNotice: String? {
    guard !ignoredKeys.isEmpty else { return nil }
    let named = ignoredKeys.keys.sorted().map { "\($0) (\(ConfigSchema.ignoredReason($0) ?? "no meaning here"))" }
    return "ignored TRL keys with no meaning in vlmrl: " + named.joined(separator: "; ")
  }

  /// An ignored key whose value would ask for something vlmrl does not do is refused instead.
  func checkIgnoredValues(source: String) throws {
    func refuse(_ key: String, _ reason: String) -> TrainingError {
      .invalidConfig(source: source, path: "training.\(key)", reason: reason)
    }
    // A habitual key is ignored only with a value that asks for nothing vlmrl leaves undone.
    if let value = ignoredKeys["save_strategy"], value.stringValue?.lowercased() != "steps" {
      throw refuse("save_strategy", "\(value.jsonString): vlmrl saves every save_steps optimizer steps and at the end only; "
        + "set \"steps\" (or drop it)")
    }
    if let value = ignoredKeys["push_to_hub"], value.boolValue != false {
      throw refuse("push_to_hub", "\(value.jsonString): nothing is uploaded from a run; the final model is in output_dir/final")
    }
  }

  /// The loss options these settings select.
  public var lossOptions: GRPOLossOptions {
    GRPOLossOptions(lossType: training.lossType, importanceSamplingLevel: training.importanceSamplingLevel,
                    epsilon: training.epsilon, epsilonHigh: training.epsilonHigh, delta: training.delta,
                    beta: training.beta, maxCompletionLength: training.maxCompletionLength,
                    gradientAccumulationSteps: training.gradientAccumulationSteps,
                    topEntropyQuantile: training.topEntropyQuantile)
  }

  /// `lora_target_modules` as a list (one string becomes a one-element list).
  public var loraTargetModules: [String]? {
    switch training.loraTargetModules {
    case .string(let name): return [name]
    case .array(let items): return items.compactMap(\.stringValue)
    default: return nil
    }
  }
}

extension TrainingConfig {
  /// The generation batch, micro-batches and optimizer steps these keys select (one process; see
  /// `BatchLayout`). `checkBatchLayout` tells whether the keys agree.
  public var batchLayout: BatchLayout {
    let t = training
    let steps = t.stepsPerGeneration ?? t.generationBatchSize.map { max(1, $0 / t.perDeviceTrainBatchSize) }
      ?? t.gradientAccumulationSteps
    return BatchLayout(completionsPerMicroBatch: t.perDeviceTrainBatchSize, stepsPerGeneration: steps,
                       gradientAccumulationSteps: t.gradientAccumulationSteps, numGenerations: t.numGenerations,
                       numIterations: t.numIterations)
  }

  /// TRL's checks of the batch keys (GRPOConfig's, with one process), plus the one vlmrl adds: an
  /// optimizer step never spans two generation batches, so `steps_per_generation` is a multiple of
  /// `gradient_accumulation_steps`.
  public func checkBatchLayout(source: String = "<config>") throws {
    let t = training
    func fail(_ key: String, _ reason: String) -> TrainingError {
      .invalidConfig(source: source, path: "training.\(key)", reason: reason)
    }
    let batch = t.perDeviceTrainBatchSize, accumulation = t.gradientAccumulationSteps, groups = t.numGenerations
    if jobType == .sft {
      if t.generationBatchSize != nil { throw fail("generation_batch_size", "only GRPO reads it (an SFT batch is per_device_train_batch_size examples)") }
      if t.stepsPerGeneration != nil { throw fail("steps_per_generation", "only GRPO reads it (an SFT batch is per_device_train_batch_size examples)") }
      return
    }
    if t.generationBatchSize != nil && t.stepsPerGeneration != nil {
      throw fail("generation_batch_size", "cannot be set together with steps_per_generation (each one determines the other)")
    }
    if let size = t.generationBatchSize, size % batch != 0 {
      throw fail("generation_batch_size", "\(size) must be divisible by the global batch size "
        + "(per_device_train_batch_size \(batch) x 1 process = \(batch))")
    }
    let layout = batchLayout
    if layout.generationBatchSize % groups != 0 {
      let key = t.generationBatchSize != nil ? "generation_batch_size" : "per_device_train_batch_size"
      throw fail(key, "the generation batch of \(layout.generationBatchSize) completions (per_device_train_batch_size \(batch) "
        + "x steps_per_generation \(layout.stepsPerGeneration)) must be divisible by num_generations (\(groups)), "
        + "because it holds whole prompt groups; per_device_train_batch_size counts completions, as in TRL "
        + "(\(batch) prompts of \(groups) generations would be \(batch * groups))")
    }
    if layout.stepsPerGeneration % accumulation != 0 {
      let key = t.generationBatchSize != nil ? "generation_batch_size" : "steps_per_generation"
      throw fail(key, "steps_per_generation (\(layout.stepsPerGeneration)) must be a multiple of gradient_accumulation_steps "
        + "(\(accumulation)): vlmrl never lets an optimizer step span two generation batches")
    }
    if jobType == .cycle && layout.stepsPerGeneration != accumulation {
      let key = t.generationBatchSize != nil ? "generation_batch_size" : "steps_per_generation"
      throw fail(key, "the cycle trainer takes one optimizer step per generation batch (steps_per_generation = "
        + "gradient_accumulation_steps)")
    }
  }

  /// Warm-up steps as transformers' `get_warmup_steps`: `warmup_steps` when positive, else
  /// `ceil(warmup_ratio * totalSteps)`.
  public func warmupSteps(totalSteps: Int) -> Int {
    training.warmupSteps > 0 ? training.warmupSteps : Int((training.warmupRatio * Double(totalSteps)).rounded(.up))
  }

  /// The learning-rate schedule for a run of `totalSteps` optimizer steps (`constant` has no
  /// warm-up, as transformers' `get_constant_schedule`).
  public func lrSchedule(totalSteps: Int) -> LRSchedule {
    let kind: LRSchedule.Kind
    switch training.lrSchedulerType {
    case .linear: kind = .linear
    case .cosine: kind = .cosine
    case .constant, .constantWithWarmup: kind = .constant
    }
    let warmup = training.lrSchedulerType == .constant ? 0 : warmupSteps(totalSteps: totalSteps)
    return LRSchedule(kind: kind, peak: training.learningRate, warmupSteps: warmup, totalSteps: totalSteps)
  }

  /// AdamW settings from `learning_rate`, `adam_beta1/2`, `adam_epsilon`, `weight_decay`.
  /// The optimizer for `parameters` as `optim` asks (float32 master weights by default). The bf16
  /// choices change how bf16 weights keep their state and mean nothing for other weights: refused
  /// there (stochastic rounding is defined for bf16 only).
  public func makeOptimizer(_ parameters: [Parameter], weights dtype: DType) throws -> AdamW {
    switch training.optim {
    case .adamwBF16 where dtype != .bfloat16, .adamwBF16Kahan where dtype != .bfloat16:
      throw TrainingError.invalidArgument("training.optim: \(training.optim.rawValue) keeps bf16 weights' optimizer state "
        + "in bf16, but the weights train in \(dtype); set bf16 true (or use adamw_torch_fused)")
    default:
      let optimizer = AdamW(parameters, adamW, precision: training.optim.precision)
      optimizer.roundingSeed = UInt64(truncatingIfNeeded: training.seed)
      return optimizer
    }
  }

  public var adamW: AdamW.Hyperparameters {
    AdamW.Hyperparameters(learningRate: training.learningRate, beta1: training.adamBeta1, beta2: training.adamBeta2,
                          eps: training.adamEpsilon, weightDecay: training.weightDecay)
  }
}

extension TrainingConfig {
  /// The adapter `use_peft` asks for: `lora_r`, `lora_alpha`, `lora_dropout`, `lora_target_modules`
  /// (nil: the attention and MLP projections, which in Qwen2.5-VL include the vision MLP's as peft
  /// matches by name suffix).
  public var loraConfig: LoRAConfig {
    let targets: LoRATargets
    switch training.loraTargetModules {
    case .string(let one): targets = LoRATargets(string: one)
    case .array(let items): targets = .names(items.compactMap(\.stringValue))
    default: targets = .names(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    }
    // `disable_dropout` (TRL): the adapters are the only dropout in these models.
    return LoRAConfig(rank: training.loraR, alpha: training.loraAlpha, dropout: training.disableDropout ? 0 : training.loraDropout,
                      targets: targets)
  }
}
