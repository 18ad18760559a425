import Common
import Foundation

/// One key of a config section: its type, default and the names it is also accepted under.
struct ConfigField: Sendable {
  enum Kind: Sendable {
    case int(minimum: Int?)
    case double(minimum: Double?)
    case bool
    case string
    case choice([String])
    /// One of the names, or a boolean standing for one of them (`scale_rewards: true` = `group`).
    case choiceOrBool([String], whenTrue: String, whenFalse: String)
    case stringList
    case doubleList
    /// A JSON object passed through (reward parameters).
    case object
    /// A path string or an inline JSON object (`deepspeed`).
    case stringOrObject
    /// A path, or `true` for "the latest checkpoint in output_dir" (`resume_from_checkpoint`).
    case stringOrBool
    /// A list of names or one string such as `all-linear` (`lora_target_modules`).
    case stringOrStringList
  }

  let key: String
  let kind: Kind
  /// The value when the file does not set the key; `.null` makes the key optional.
  let defaultValue: JSONValue
  let aliases: [String]

  init(_ key: String, _ kind: Kind, _ defaultValue: JSONValue, aliases: [String] = []) {
    self.key = key
    self.kind = kind
    self.defaultValue = defaultValue
    self.aliases = aliases
  }

  var isOptional: Bool { defaultValue.isNull }
  /// A value from `--set` for a string-typed key is taken verbatim (so `output_dir=2024` stays a string).
  var takesRawText: Bool {
    switch kind {
    case .string, .choice, .choiceOrBool, .stringOrBool: return true
    default: return false
    }
  }
}

/// The keys vlmrl's training config accepts, section by section. Names are TRL's (GRPOConfig,
/// TrainingArguments, ModelConfig) or the seeds' where they differ; defaults are those of
/// docs/grpo.md, then TRL's.
enum ConfigSchema {
  static let jobTypes = ["grpo", "sft", "cycle"]
  /// Seed names for a GRPO run.
  static let jobTypeAliases = ["mmkd_rl_grounding": "grpo", "r1": "grpo", "rl": "grpo"]

  static let topLevelKeys = ["job_type", "dataset", "models", "training"]

  static let dataset: [ConfigField] = [
    ConfigField("labeled_path", .string, .null),
    ConfigField("eval_path", .string, .null),
    ConfigField("image_root", .string, .null),
    // Column mapping of user datasets (docs/data.md): defaults for every file and YAML entry.
    ConfigField("prompt_key", .string, .null),
    ConfigField("image_key", .string, .null),
    ConfigField("answer_key", .string, .null),
    ConfigField("solution_key", .string, .null),
    ConfigField("system_prompt", .string, .null),
  ]

  static let models: [ConfigField] = [
    ConfigField("student", .string, .null),
    ConfigField("reference", .string, .null),
    ConfigField("teacher", .string, .null),
  ]

  static let training: [ConfigField] = run + generation + grpo + optimizer + rewards + logging + evaluation + data + adapters
    + sft + cycle

  /// Output, length, schedule of steps, precision, checkpoints.
  static let run: [ConfigField] = [
    ConfigField("output_dir", .string, .string("output")),
    ConfigField("num_train_epochs", .double(minimum: 0), .double(3)),
    ConfigField("max_steps", .int(minimum: -1), .int(-1)),
    ConfigField("per_device_train_batch_size", .int(minimum: 1), .int(8)),
    ConfigField("gradient_accumulation_steps", .int(minimum: 1), .int(1)),
    ConfigField("generation_batch_size", .int(minimum: 1), .null),
    ConfigField("steps_per_generation", .int(minimum: 1), .null),
    ConfigField("max_length", .int(minimum: 1), .null),
    ConfigField("save_steps", .int(minimum: 1), .int(500)),
    ConfigField("save_total_limit", .int(minimum: 1), .null),
    ConfigField("resume_from_checkpoint", .stringOrBool, .null),
    ConfigField("allow_config_change", .bool, .bool(false)),
    ConfigField("seed", .int(minimum: 0), .int(42)),
    ConfigField("data_seed", .int(minimum: 0), .null),
    ConfigField("bf16", .bool, .bool(true)),
    ConfigField("gradient_checkpointing", .bool, .null),
    // The c10d backend of multi-process runs (docs/distributed.md): nil = nccl on CUDA, gloo on the CPU.
    ConfigField("ddp_backend", .choice(["nccl", "gloo"]), .null),
    ConfigField("deepspeed", .stringOrObject, .null),
    ConfigField("zero_stage", .int(minimum: 0), .null),
    ConfigField("disable_dropout", .bool, .bool(false)),
  ]

  /// Sampling of the rollouts.
  static let generation: [ConfigField] = [
    ConfigField("num_generations", .int(minimum: 1), .int(8), aliases: ["roll_out_num"]),
    ConfigField("max_prompt_length", .int(minimum: 1), .int(512)),
    ConfigField("max_completion_length", .int(minimum: 1), .int(256)),
    ConfigField("temperature", .double(minimum: 0), .double(1)),
    ConfigField("top_p", .double(minimum: 0), .double(1)),
    ConfigField("top_k", .int(minimum: 0), .null),
    ConfigField("min_p", .double(minimum: 0), .null),
    ConfigField("repetition_penalty", .double(minimum: 0), .double(1)),
  ]

  /// The GRPO objective.
  static let grpo: [ConfigField] = [
    ConfigField("beta", .double(minimum: 0), .double(0.04)),
    ConfigField("epsilon", .double(minimum: 0), .double(0.2)),
    ConfigField("epsilon_high", .double(minimum: 0), .null),
    ConfigField("delta", .double(minimum: 0), .null),
    ConfigField("loss_type", .choice(LossType.allCases.map(\.rawValue)), .string("grpo")),
    // TRL also takes true (group) and false (none).
    ConfigField("scale_rewards", .choiceOrBool(RewardScaling.allCases.map(\.rawValue), whenTrue: "group", whenFalse: "none"),
                .string("group")),
    ConfigField("importance_sampling_level", .choice(ImportanceSamplingLevel.allCases.map(\.rawValue)),
                .string("token")),
    ConfigField("num_iterations", .int(minimum: 1), .int(1)),
    ConfigField("mask_truncated_completions", .bool, .bool(false)),
    ConfigField("top_entropy_quantile", .double(minimum: 0), .double(1)),
    ConfigField("sync_ref_model", .bool, .bool(false)),
    ConfigField("ref_model_mixup_alpha", .double(minimum: 0), .double(0.6)),
    ConfigField("ref_model_sync_steps", .int(minimum: 1), .int(512)),
  ]

  /// AdamW and its schedule (TrainingArguments names).
  static let optimizer: [ConfigField] = [
    ConfigField("learning_rate", .double(minimum: 0), .double(1e-6)),
    ConfigField("lr_scheduler_type", .choice(["linear", "cosine", "constant", "constant_with_warmup"]),
                .string("linear")),
    ConfigField("warmup_ratio", .double(minimum: 0), .double(0)),
    ConfigField("warmup_steps", .int(minimum: 0), .int(0)),
    ConfigField("weight_decay", .double(minimum: 0), .double(0)),
    ConfigField("adam_beta1", .double(minimum: 0), .double(0.9)),
    ConfigField("adam_beta2", .double(minimum: 0), .double(0.999)),
    ConfigField("adam_epsilon", .double(minimum: 0), .double(1e-8)),
    ConfigField("max_grad_norm", .double(minimum: 0), .double(1)),
    ConfigField("optim", .choice(TrainingConfig.Optimizer.allCases.map(\.rawValue)), .string("adamw_torch_fused")),
  ]

  static let rewards: [ConfigField] = [
    ConfigField("reward_funcs", .stringList, .array([])),
    ConfigField("reward_weights", .doubleList, .null),
    ConfigField("reward_parameters", .object, .object([:])),
    ConfigField("compute_attention_metrics", .bool, .bool(false)),
    ConfigField("mdi_balance_ratio", .double(minimum: 1), .double(2)),
    ConfigField("reward_failure_patience", .int(minimum: 0), .int(10)),
    ConfigField("attention_layer_groups", .stringOrObject, .string("thin")),
  ]

  /// Metrics, rollout logs and the console (the MDI fork's names for the logs).
  static let logging: [ConfigField] = [
    ConfigField("logging_steps", .int(minimum: 1), .int(10)),
    ConfigField("log_completions", .bool, .bool(false)),
    ConfigField("realtime_rollout_logging", .bool, .bool(true)),
    ConfigField("rollout_log_path", .string, .null),
    ConfigField("attention_diag_log_path", .string, .null),
    ConfigField("colorize_output", .bool, .bool(true)),
  ]

  /// Evaluation during training (`dataset.eval_path`; docs/training.md, "Evaluation during training").
  static let evaluation: [ConfigField] = [
    ConfigField("eval_strategy", .choice(["no", "steps"]), .null, aliases: ["evaluation_strategy"]),
    ConfigField("eval_steps", .int(minimum: 1), .null),
    ConfigField("eval_task", .choice(["rec", "counting", "geoqa", "aokvqa", "grounding"]), .null),
    ConfigField("eval_sample_num", .int(minimum: 1), .null),
    ConfigField("eval_max_new_tokens", .int(minimum: 1), .null),
    ConfigField("per_device_eval_batch_size", .int(minimum: 1), .int(32)),
  ]

  /// Images and records.
  static let data: [ConfigField] = [
    ConfigField("max_pixels", .int(minimum: 1), .int(12_845_056)),
    ConfigField("min_pixels", .int(minimum: 1), .int(3136)),
    ConfigField("filter_big_images", .bool, .bool(false)),
    ConfigField("on_bad_record", .choice(["skip", "error"]), .string("skip")),
    ConfigField("rec_prompt", .choice(["r1", "baseline"]), .string("r1")),
    ConfigField("shuffle_dataset", .bool, .bool(true)),
  ]

  /// What trains: LoRA (TRL ModelConfig names) or a frozen vision tower.
  static let adapters: [ConfigField] = [
    ConfigField("use_peft", .bool, .bool(false)),
    ConfigField("lora_r", .int(minimum: 1), .int(16)),
    ConfigField("lora_alpha", .double(minimum: 0), .double(32)),
    ConfigField("lora_dropout", .double(minimum: 0), .double(0.05)),
    ConfigField("lora_target_modules", .stringOrStringList, .null),
    ConfigField("freeze_vision_tower", .bool, .bool(false)),
  ]

  /// Supervised warm-up (TRL SFTConfig names).
  static let sft: [ConfigField] = [
    ConfigField("assistant_only_loss", .bool, .bool(true)),
    ConfigField("packing", .bool, .bool(true)),
  ]

  /// The dual-loop region <-> caption trainer (`job_type: cycle`, docs/cycle.md); refused elsewhere.
  static let cycle: [ConfigField] = [
    ConfigField("cycle_schedule", .choice(["alternate", "region_to_caption", "caption_to_region", "mixed"]),
                .string("alternate")),
    ConfigField("ema_decay", .double(minimum: 0), .double(0.99)),
    ConfigField("ema_update_steps", .int(minimum: 1), .int(1)),
    ConfigField("region_prompt", .choice(["coordinates", "outline", "both"]), .string("coordinates")),
    ConfigField("partner_temperature", .double(minimum: 0), .double(0)),
    ConfigField("partner_max_completion_length", .int(minimum: 1), .null),
    ConfigField("cycle_caption_prompt", .string, .string("Describe the region {region} in one sentence.")),
    ConfigField("cycle_grounding_prompt", .string,
                .string("Locate the region described as: {caption} Answer with [x1, y1, x2, y2].")),
    ConfigField("cycle_meteor_weight", .double(minimum: 0), .double(0.25)),
    ConfigField("cycle_judge_weight", .double(minimum: 0), .double(0.75)),
  ]

  /// Keys TRL users pass out of habit that mean nothing here: accepted under `training` (or at the
  /// top of a flat config) and named in one notice at the start of a run. A trailing `*` matches a
  /// prefix. Each has the reason it changes nothing.
  static let ignoredTRLKeys: [(pattern: String, reason: String)] = [
    ("report_to", "metrics always go to metrics.jsonl and TensorBoard files under output_dir/runs"),
    ("run_name", "a run is named by its output_dir"),
    ("logging_dir", "TensorBoard files always go to output_dir/runs/<time>_<host>"),
    ("logging_first_step", "the first step is logged when logging_steps divides it, as every other"),
    ("save_strategy", "\"steps\": checkpoints every save_steps optimizer steps and at the end (other values are refused)"),
    ("use_vllm", "rollouts run on vlmrl's own engine, never vLLM"),
    ("vllm_*", "rollouts run on vlmrl's own engine, never vLLM"),
    ("ddp_*", "several processes train through torchrun and c10d (docs/distributed.md); DDP's other settings have no counterpart"),
    ("dataloader_*", "records are loaded in-process before training: there are no DataLoader workers"),
    ("push_to_hub", "false: nothing is uploaded (true is refused); the final model is in output_dir/final"),
    ("hub_*", "nothing is uploaded; the final model is in output_dir/final"),
    ("remove_unused_columns", "every record field reaches the reward functions"),
    ("torch_compile", "there is no torch.compile; the fast paths are vlmrl's own kernels"),
    ("use_liger_kernel", "the loss runs on vlmrl's chunked log-prob path, not Liger's"),
    ("disable_tqdm", "the progress bar shows in a terminal only and plain lines elsewhere"),
    ("log_level", "vlmrl logs one level"),
  ]

  /// The reason `key` is accepted and ignored, or nil when it is not one of `ignoredTRLKeys`.
  static func ignoredReason(_ key: String) -> String? {
    // A key of the schema is never ignored, even where a pattern covers it (`ddp_backend`).
    if training.contains(where: { $0.key == key || $0.aliases.contains(key) }) { return nil }
    return ignoredTRLKeys.first { entry in
      entry.pattern.hasSuffix("*") ? key.hasPrefix(entry.pattern.dropLast()) : key == entry.pattern
    }?.reason
  }

  /// The known key closest to `key` by edit distance, when close enough to be a typo.
  static func closest(to key: String, among known: [String]) -> String? {
    var best: (name: String, distance: Int)?
    for name in known.sorted() {
      let distance = editDistance(key, name)
      if distance < (best?.distance ?? Int.max) { best = (name, distance) }
    }
    guard let best, best.distance <= max(2, key.count / 3) else { return nil }
    return best.name
  }

  /// The message for an unknown key: the closest known key (when one is close), then all of them.
  static func unknownKeyReason(_ key: String, known: [String]) -> String {
    let suggestion = closest(to: key, among: known).map { "did you mean \($0)? " } ?? ""
    return "unknown key; \(suggestion)known: \(known.joined(separator: ", "))"
  }

  /// Levenshtein distance (insertions, deletions and substitutions of characters).
  static func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    guard !a.isEmpty else { return b.count }
    var previous = Array(0...b.count)
    for (i, x) in a.enumerated() {
      var current = [i + 1] + Array(repeating: 0, count: b.count)
      for (j, y) in b.enumerated() {
        current[j + 1] = Swift.min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
      }
      previous = current
    }
    return previous[b.count]
  }

  /// The fields of a section (nil for an unknown section).
  static func fields(ofSection name: String) -> [ConfigField]? {
    switch name {
    case "dataset": return dataset
    case "models": return models
    case "training": return training
    default: return nil
    }
  }
}
