import Common
import Foundation
import Testing
import NN
import Torch
@testable import Training

/// Issue 15's config surface: `scale_rewards` booleans, "did you mean", TRL keys accepted with one
/// notice, errors naming the `--set` that caused them, and the resume fingerprint comparison.
@Suite struct ConfigSurfaceTests {
  static let minimal = #"{"models": {"student": "m"}, "training": {"reward_funcs": ["format"]}}"#

  func parse(_ json: String, overrides: [String] = []) throws -> TrainingConfig {
    try TrainingConfig.parse(Data(json.utf8), source: "test.json", overrides: overrides)
  }

  func training(_ keys: String, overrides: [String] = []) throws -> TrainingConfig {
    try parse(#"{"training": {"reward_funcs": ["format"], \#(keys)}}"#, overrides: overrides)
  }

  func message(_ body: () throws -> Void) -> String {
    do { try body() } catch { return "\(error)" }
    return "accepted"
  }

  /// TRL: `scale_rewards: true` is `group`, `false` is `none`; the names still work.
  @Test func scaleRewardsTakesBooleans() throws {
    #expect(try training(#""scale_rewards": true"#).training.scaleRewards == .group)
    #expect(try training(#""scale_rewards": false"#).training.scaleRewards == .none)
    #expect(try training(#""scale_rewards": "batch""#).training.scaleRewards == .batch)
    #expect(try parse(Self.minimal, overrides: ["training.scale_rewards=false"]).training.scaleRewards == .none)
    let resolved = try training(#""scale_rewards": false"#).resolvedJSON()
    #expect(resolved["training"]?["scale_rewards"] == .string("none"))
    #expect(message { _ = try training(#""scale_rewards": "maybe""#) }.contains("true (group), false (none)"))
    #expect(message { _ = try training(#""scale_rewards": 1"#) }.contains("training.scale_rewards"))
  }

  /// An unknown key names the closest known one, in the file and in `--set`.
  @Test func unknownKeysSuggestTheClosest() {
    let typo = message { _ = try training(#""learning_rat": 1e-6"#) }
    #expect(typo.contains("training.learning_rat: unknown key; did you mean learning_rate?"), "\(typo)")
    #expect(typo.contains("known: "))
    let far = message { _ = try training(#""qqqqqqqqqqqq": 1"#) }
    #expect(far.contains("unknown key") && !far.contains("did you mean"), "\(far)")
    #expect(message { _ = try parse(#"{"trainig": {}}"#) }.contains("did you mean training?"))
    #expect(message { _ = try parse(#"{"dataset": {"labeled_pth": "x"}}"#) }.contains("did you mean labeled_path?"))
    #expect(message { _ = try parse(Self.minimal, overrides: ["training.num_generation=4"]) }
      .contains("--set training.num_generation=4: training.num_generation: unknown key; did you mean num_generations?"))
    #expect(ConfigSchema.editDistance("kitten", "sitting") == 3 && ConfigSchema.editDistance("", "ab") == 2)
  }

  /// Keys TRL users pass out of habit are accepted, named in one notice with reasons, and kept out
  /// of the resolved config.
  @Test func habitualTRLKeysAreAcceptedWithOneNotice() throws {
    let config = try training(#""report_to": "wandb", "run_name": "x", "vllm_gpu_memory_utilization": 0.3, "dataloader_num_workers": 4, "optim": "adamw_torch_fused", "push_to_hub": false"#,
                              overrides: ["training.ddp_timeout=1800"])
    #expect(config.ignoredKeys.keys.sorted() == ["dataloader_num_workers", "ddp_timeout", "push_to_hub", "report_to",
                                                 "run_name", "vllm_gpu_memory_utilization"])
    let notice = try #require(config.ignoredKeysNotice)
    #expect(!notice.contains("\n"))
    for key in config.ignoredKeys.keys { #expect(notice.contains(key), "\(key)") }
    #expect(notice.contains("report_to (metrics always go to metrics.jsonl"))
    #expect(config.resolvedJSON()["training"]?["report_to"] == nil)
    #expect(try training(#""learning_rate": 1e-6"#).ignoredKeysNotice == nil)
    #expect(config.training.optim == .adamwTorchFused)
    // Ignored only with a value that asks for nothing left undone.
    #expect(try training(#""eval_strategy": "no", "save_strategy": "steps""#).ignoredKeys.count == 1)
    #expect(message { _ = try training(#""save_strategy": "epoch""#) }.contains("training.save_strategy"))
    #expect(message { _ = try training(#""push_to_hub": true"#) }.contains("training.push_to_hub"))
    // Only under `training`: elsewhere they are unknown keys.
    #expect(message { _ = try parse(#"{"models": {"report_to": "x"}}"#) }.contains("models.report_to: unknown key"))
  }

  /// `optim` is a real key: TRL's AdamW names select float32 master weights, the bf16 choices their
  /// precision; anything else is refused by name, and the bf16 choices need bf16 weights.
  @Test func optimSelectsTheOptimizerPrecision() throws {
    #expect(try training(#""learning_rate": 1e-6"#).training.optim.precision == .master)
    #expect(try training(#""optim": "adamw_torch""#).training.optim.precision == .master)
    #expect(try training(#""optim": "adamw_bf16""#).training.optim.precision == .stochastic)
    #expect(try training(#""optim": "adamw_bf16_kahan""#).training.optim.precision == .kahan)
    let sgd = message { _ = try training(#""optim": "sgd""#) }
    #expect(sgd.contains("training.optim") && sgd.contains("adamw_bf16"), "\(sgd)")
    let config = try training(#""optim": "adamw_bf16""#)
    let weights = [Parameter(Tensor.zeros([4]))]
    let refused = message { _ = try config.makeOptimizer(weights, weights: .float32) }
    #expect(refused.contains("training.optim") && refused.contains("bf16 true"), "\(refused)")
    #expect(try config.makeOptimizer([Parameter(Tensor.zeros([4], dtype: .bfloat16))], weights: .bfloat16).precision == .stochastic)
  }

  /// Evaluation during training: the eval keys need `dataset.eval_path`, `eval_strategy` agrees with
  /// it, SFT refuses it, and `evaluation_strategy` is TRL's older name for `eval_strategy`.
  @Test func evalKeysNeedAnEvalPath() throws {
    func implemented(_ json: String) -> String {
      message { try parse(json).checkImplemented(source: "test.json") }
    }
    let base = #"{"models": {"student": "m"}, "training": {"reward_funcs": ["format"], "#
    #expect(implemented(base + #""eval_steps": 5}}"#).contains("training.eval_steps: has no effect without dataset.eval_path"))
    #expect(implemented(base + #""eval_strategy": "steps"}}"#).contains("training.eval_strategy"))
    #expect(implemented(base + #""evaluation_strategy": "steps"}}"#).contains("needs dataset.eval_path"))
    let withPath = #"{"dataset": {"eval_path": "held_out.json"}, "models": {"student": "m"}, "training": {"reward_funcs": ["format"], "#
    #expect(implemented(withPath + #""eval_strategy": "no"}}"#).contains("contradicts dataset.eval_path"))
    #expect(implemented(withPath + #""eval_steps": 5, "eval_task": "rec"}}"#) == "accepted")
    let sft = #"{"job_type": "sft", "dataset": {"eval_path": "h.json"}, "models": {"student": "m"}, "training": {}}"#
    #expect(implemented(sft).contains("SFT does not evaluate during training"))
    #expect(try parse(withPath + #""eval_steps": 5}}"#).training.evalSteps == 5)
  }

  /// `ddp_backend` is a real key (nccl or gloo) although `ddp_*` keys are otherwise ignored.
  @Test func ddpBackendIsARealKey() throws {
    let config = try training(#""ddp_backend": "gloo", "ddp_timeout": 1800"#)
    #expect(config.training.ddpBackend == "gloo" && config.ignoredKeys.keys.sorted() == ["ddp_timeout"])
    #expect(try training(#""learning_rate": 1e-6"#).training.ddpBackend == nil)
    #expect(message { _ = try training(#""ddp_backend": "mpi""#) }.contains("training.ddp_backend"))
  }

  /// A value an override set is the override's fault: the error names the `--set`, not the file.
  @Test func badOverridesNameTheOverride() {
    let typed = message { _ = try parse(Self.minimal, overrides: ["training.beta=high"]) }
    #expect(typed.hasPrefix("--set training.beta=high: training.beta: expected a number"), "\(typed)")
    let range = message { _ = try parse(Self.minimal, overrides: ["training.top_p=1.5"]) }
    #expect(range.hasPrefix("--set training.top_p=1.5: training.top_p"), "\(range)")
    let alias = message { _ = try parse(Self.minimal, overrides: ["training.roll_out_num=1"]) }
    #expect(alias.hasPrefix("--set training.roll_out_num=1: training.num_generations"), "\(alias)")
    let nested = message { _ = try parse(Self.minimal, overrides: ["training.reward_funcs=[\"nope\"]"]) }
    #expect(nested.hasPrefix("--set training.reward_funcs="), "\(nested)")
    // The file's own mistakes still name the file.
    let file = message { _ = try parse(#"{"training": {"reward_funcs": ["format"], "beta": "x"}}"#, overrides: ["training.seed=3"]) }
    #expect(file.hasPrefix("test.json: training.beta"), "\(file)")
  }

  /// The fingerprint comparison behind resume: changed keys with both values; keys that only move
  /// outputs or logging may change; keys the fingerprint lacks are not compared.
  @Test func resumeFingerprintListsChangedKeys() throws {
    let saved = try training(#""learning_rate": 1e-6, "logging_steps": 4"#)
    let changed = try training(#""learning_rate": 5e-5, "logging_steps": 1, "output_dir": "elsewhere", "save_steps": 7"#)
    let keys = ResumePoint.changedKeys(fingerprint: saved.resolvedJSONText(), config: changed).map(\.key)
    #expect(keys == ["training.learning_rate"])
    #expect(ResumePoint.changedKeys(fingerprint: saved.resolvedJSONText(), config: saved).isEmpty)
    var older = saved.resolvedJSON()
    if case .object(var top) = older, case .object(var section)? = top["training"] {
      section["steps_per_generation"] = nil
      section["learning_rate"] = .int(0)
      top["training"] = .object(section)
      older = .object(top)
    }
    let fromOlder = ResumePoint.changedKeys(fingerprint: older.jsonString, config: saved)
    #expect(fromOlder.map(\.key) == ["training.learning_rate"] && fromOlder[0].saved == .int(0))
    #expect(ResumePoint.changedKeys(fingerprint: "", config: saved).isEmpty)
    let state = TrainerState(step: 2, examplesSeen: 4, seed: 42, configFingerprint: saved.resolvedJSONText())
    let refusal = message { try ResumePoint.checkUnchanged(state, config: changed, checkpoint: URL(fileURLWithPath: "/r/checkpoint-2")) }
    #expect(refusal.contains("/r/checkpoint-2") && refusal.contains("training.learning_rate (1e-06 -> 5e-05)")
      && refusal.contains("--allow-config-change"), "\(refusal)")
    var allowed = changed
    allowed.training.allowConfigChange = true
    #expect(message { try ResumePoint.checkUnchanged(state, config: allowed, checkpoint: URL(fileURLWithPath: "/r")) } == "accepted")
  }
}
