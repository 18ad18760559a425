import Common
import Datasets
import Evaluation
import Generation
import Foundation
import ModelConfig
import Prompting
import Rewards
import Testing
@testable import Models
@testable import Torch
@testable import Training

/// The joints between the GRPO stages: reward keys, the prompt rewards see, attention input to `mdi`.
extension TinyModelTests {
@Suite(.serialized) struct StageTests {
  func trainer(_ root: URL, _ extra: String = "", steps: Int = 1, rewards: RewardRunner) throws -> GRPOTrainer {
    let json = """
    {"job_type": "grpo", "dataset": {"labeled_path": "\(root.path)"}, "models": {"student": "\(TinySetup.modelFolder.path)"},
     "training": {"reward_funcs": ["format"], "output_dir": "\(root.appendingPathComponent("run").path)", "roll_out_num": 2,
                  "max_completion_length": 4, "logging_steps": 1, "seed": 5, "warmup_steps": 0, "max_steps": \(steps),
                  "per_device_train_batch_size": 4, "learning_rate": 0.001, "realtime_rollout_logging": false \(extra)}}
    """
    let config = try TrainingConfig.parse(Data(json.utf8), source: "test config")
    let examples = try TinySetup.examples(root.appendingPathComponent("data"), count: 4)
    return try GRPOTrainer(config: config, modelDirectory: TinySetup.modelFolder, examples: examples, rewards: rewards)
  }

  /// Two functions of one name (two `command` rewards) each log their own `rewards/<key>/mean`.
  @Test func rewardsOfTheSameNameKeepSeparateMetrics() async throws {
    let root = TinySetup.temporaryFolder("same-name")
    defer { try? FileManager.default.removeItem(at: root) }
    let runner = RewardRunner(functions: [SampleReward(name: "command") { _ in 0.25 }, SampleReward(name: "command") { _ in 0.75 }])
    let rows = try await trainer(root, rewards: runner).run(log: { _ in })
    let values = try #require(rows.first?.values)
    #expect(values["rewards/command/mean"] == 0.25)
    #expect(values["rewards/command#2/mean"] == 0.75)
    #expect(values["reward"] == 1.0)
  }

  /// The same record gives a reward the same prompt text in training (the rollout stage) and in
  /// evaluation (the evaluation generator), whatever the image resolution each uses.
  @Test func rewardsSeeTheSamePromptInTrainingAndEvaluation() async throws {
    let root = TinySetup.temporaryFolder("prompt-text")
    defer { try? FileManager.default.removeItem(at: root) }
    let grpo = try trainer(root, #", "min_pixels": 12544, "max_pixels": 12544"#, rewards: RewardRunner(functions: [SampleReward(name: "one") { _ in 1 }]))
    let examples = try TinySetup.examples(root.appendingPathComponent("eval"), count: 4)
    var stream = ExampleStream(examples: examples, seed: 1, shuffle: false)
    let (prompts, _) = try grpo.rollout.preparePrompts(&stream, log: { _ in })
    let training = try grpo.rollout.run(prompts, seed: 1, step: 0).records.map(\.rewardSample)
    let builder = try PromptBuilder(folder: try ModelFolder(directory: TinySetup.modelFolder))
    let generator = EngineGenerator(model: grpo.model, builder: builder)
    let evaluation = try generator.generate(try examples.prefix(2).map { try builder.prepare($0) }, maxNewTokens: 3)
      .map(\.rewardSample)
    #expect(prompts[0].ids.count != (try builder.prepare(examples[0])).ids.count, "the two paths used other image sizes")
    for (index, sample) in evaluation.enumerated() {
      let trained = training[index * 2]
      #expect(trained.prompt == sample.prompt)
      #expect(trained.fields == sample.fields)
      #expect(sample.prompt.components(separatedBy: "<|image_pad|>").count == 2, "one unexpanded pad per image")
      #expect(sample.prompt.contains("Locate"))
    }
  }

  /// With `compute_attention_metrics` the rollouts carry attention diagnostics to the scoring
  /// stage and `mdi` scores; without, it does not apply (null mean).
  @Test func mdiReceivesAttentionWhenRecordingIsOn() async throws {
    let root = TinySetup.temporaryFolder("mdi-input")
    defer { try? FileManager.default.removeItem(at: root) }
    func runner() throws -> RewardRunner {
      RewardRunner(functions: try RewardRegistry.make(["mdi"], parameters: [:])
        + [SampleReward(name: "length_parity") { Double($0.completion.unicodeScalars.count % 5) / 4 }])
    }
    let on = try await trainer(root.appendingPathComponent("on"), #", "compute_attention_metrics": true"#, rewards: try runner())
      .run(log: { _ in })
    let off = try await trainer(root.appendingPathComponent("off"), rewards: try runner()).run(log: { _ in })
    let mean = try #require(on.first?.values["rewards/mdi/mean"])
    #expect(mean.isFinite && mean >= -1 && mean <= 1, "\(mean)")
    #expect(off.first?.values["rewards/mdi/mean"]?.isFinite != true)
  }

  struct ReportingReward: RewardFunction {
    let name = "reporting"
    func score(_ batch: [RewardSample]) async throws -> [Double?] { batch.map { _ in 0.5 } }
    func scoreWithMetrics(_ batch: [RewardSample]) async throws -> (values: [Double?], metrics: [String: Double]) {
      (try await score(batch), ["batch_size": Double(batch.count)])
    }
  }

  /// Extra metrics a reward reports reach the step's metrics as `rewards/<key>/<name>`.
  @Test func rewardMetricsReachTheStep() async throws {
    let root = TinySetup.temporaryFolder("reward-metrics")
    defer { try? FileManager.default.removeItem(at: root) }
    let rows = try await trainer(root, rewards: RewardRunner(functions: [ReportingReward()])).run(log: { _ in })
    #expect(rows.first?.values["rewards/reporting/batch_size"] == 4)
  }

  struct BrokenReward: RewardFunction {
    let name = "broken"
    func score(_ batch: [RewardSample]) async throws -> [Double?] { throw RewardError.external(reward: name, message: "exit 3") }
  }

  /// A reward that fails on every call stops the run after `reward_failure_patience` generation
  /// batches instead of finishing "successfully" on zero rewards.
  @Test func aRewardThatAlwaysFailsStopsTheRun() async throws {
    let root = TinySetup.temporaryFolder("reward-fails")
    defer { try? FileManager.default.removeItem(at: root) }
    let grpo = try trainer(root, #", "reward_failure_patience": 2"#, steps: 5,
                           rewards: RewardRunner(functions: [SampleReward(name: "one") { _ in 1 }, BrokenReward()]))
    var lines: [String] = []
    do {
      _ = try await grpo.run(log: { lines.append($0) })
      Issue.record("the run finished although a reward failed on every call")
    } catch {
      #expect("\(error)".contains("broken") && "\(error)".contains("2 generation batches"))
    }
    #expect(grpo.state.step == 1, "stopped at the second generation batch")
    #expect(lines.filter { $0.contains("reward broken failed") }.count == 1, "the failure is printed once: \(lines)")
  }

  /// An image that stops decoding mid-run is skipped, counted and named; the batch is filled from
  /// the next record and training goes on.
  @Test func aRecordWhoseImageBreaksMidRunIsSkippedAndCounted() async throws {
    let root = TinySetup.temporaryFolder("bad-image")
    defer { try? FileManager.default.removeItem(at: root) }
    let grpo = try trainer(root, #", "shuffle_dataset": false"#,
                           rewards: RewardRunner(functions: [SampleReward(name: "one") { _ in 1 }]))
    guard case .file(let url) = try #require(grpo.examples[1].images.first).source else {
      Issue.record("the synthetic records should name image files")
      return
    }
    try Data("not an image".utf8).write(to: url)
    var lines: [String] = []
    let rows = try await grpo.run(log: { lines.append($0) })
    #expect(rows.map(\.step) == [1])
    #expect(rows[0].values["skipped/bad_image"] == 1)
    #expect(lines.contains { $0.hasPrefix("skipped ") && $0.contains("#1") }, "\(lines)")
  }
}
}

/// The MDI fork's 4:1:1 recipe (configs/aokvqa_mdi.json) for 2 steps on tiny multiple-choice data,
/// and the layer groups of the attention diagnostics.
extension TinyModelTests {
@Suite(.serialized) struct MDIRecipeTests {
  static let configFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../configs/aokvqa_mdi.json").standardizedFileURL

  @Test func mdiRecipeRunsTwoStepsWithDiagnostics() async throws {
    let root = TinySetup.temporaryFolder("mdi-recipe")
    defer { try? FileManager.default.removeItem(at: root) }
    let data = try SyntheticTasks.write(task: .multipleChoice, count: 4, seed: 5, imageSize: 56, to: root.appendingPathComponent("data"))
    let output = root.appendingPathComponent("run")
    let config = try TrainingConfig.load(Self.configFile, overrides: [
      "models.student=\(TinySetup.modelFolder.path)", "dataset.labeled_path=\(data.path)", "training.output_dir=\(output.path)",
      "training.max_steps=2", "training.per_device_train_batch_size=2", "training.roll_out_num=2",
      "training.max_completion_length=4", "training.max_pixels=3136", "training.gradient_checkpointing=false",
    ])
    let examples = try DatasetLoader.load(path: try #require(config.dataset.labeledPath)).examples
    let trainer = try GRPOTrainer(config: config, modelDirectory: TinySetup.modelFolder, examples: examples)
    #expect(trainer.rewards.weights == [4, 1, 1])
    let rows = try await trainer.run(log: { _ in })
    #expect(rows.map(\.step) == [1, 2])
    for key in ["rewards/mdi_reward/mean", "attention/mdi/mean", "attention/early/aei_text/mean", "attention/late/mdi/std"] {
      #expect(rows[0].values[key]?.isFinite == true, "\(key)")
    }
    let log = try String(contentsOf: output.appendingPathComponent("attention_diagnostics/step_1.md"), encoding: .utf8)
    #expect(log.contains("| early |") && log.contains("| middle |") && log.contains("| late |"))
    #expect(log.contains("mdi_reward"))
  }

  @Test func layerGroupsByName() throws {
    let thin = AttentionLayerGroups.thin(layers: 36)
    #expect(thin.groups.map(\.layers) == [[0, 1], [17, 18], [34, 35]])
    #expect(AttentionLayerGroups.thirds(layers: 4).groups.map(\.layers) == [[0, 1], [2], [3]])
    #expect(AttentionLayerGroups.thin(layers: 4).allLayers == [0, 1, 2, 3])
    let named = try AttentionReport.groups(.object(["a": .array([.int(1)]), "b": .array([.int(0), .int(2)])]), layers: 4)
    #expect(named.groups.map(\.name) == ["a", "b"] && named.allLayers == [0, 1, 2])
    #expect(throws: TrainingError.self) { try AttentionReport.groups(.object(["a": .array([.int(9)])]), layers: 4) }
    #expect(throws: TrainingError.self) { try AttentionReport.groups(.string("halves"), layers: 4) }
  }

  /// REC rewards compare boxes in the family's frame by default in training, as evaluation does.
  @Test func recRewardsUseTheFamilysBoxFrame() throws {
    func parameters(_ extra: String, _ family: QwenVLFamily) throws -> [String: JSONValue] {
      let json = #"{"job_type": "grpo", "training": {"reward_funcs": ["rec_format", "iou", "rec_accuracy"]"# + extra + "}}"
      return try GRPOTrainer.rewardParameters(try TrainingConfig.parse(Data(json.utf8), source: "test").training, family: family)
    }
    #expect(try parameters("", .qwen25VL)["iou"]?["box_frame"] == .string("resized"))
    #expect(try parameters("", .qwen2VL)["rec_accuracy"]?["box_frame"] == .string("norm1000"))
    #expect(try parameters("", .qwen2VL)["rec_format"] == nil)
    let explicit = try parameters(#", "reward_parameters": {"box_frame": "original"}"#, .qwen25VL)
    #expect(explicit["iou"] == nil && explicit["box_frame"] == .string("original"))
    _ = try RewardRegistry.make(["rec_format", "iou", "rec_accuracy"], parameters: try parameters("", .qwen25VL))
  }

  /// One source for the MDI ratio R: the training key feeds the reward; a different value under
  /// reward_parameters is refused.
  @Test func mdiRatioHasOneSource() throws {
    func section(_ extra: String) throws -> TrainingConfig.TrainingSection {
      let json = #"{"job_type": "grpo", "training": {"reward_funcs": ["mdi"], "mdi_balance_ratio": 3"# + extra + "}}"
      return try TrainingConfig.parse(Data(json.utf8), source: "test").training
    }
    #expect(try GRPOTrainer.rewardParameters(try section(""))["mdi_balance_ratio"] == .double(3))
    #expect(throws: TrainingError.self) {
      try GRPOTrainer.rewardParameters(try section(#", "reward_parameters": {"mdi_balance_ratio": 2}"#))
    }
  }
}
}

/// `max_length` (EasyDistill) is the prompt-token limit unless `max_prompt_length` is given.
@Test func maxLengthLimitsPrompts() throws {
  func parse(_ keys: String) throws -> TrainingConfig.TrainingSection {
    let json = #"{"job_type": "grpo", "training": {"reward_funcs": ["format"]"# + keys + "}}"
    return try TrainingConfig.parse(Data(json.utf8), source: "test").training
  }
  #expect(try parse(#", "max_length": 4096"#).maxPromptLength == 4096)
  #expect(try parse(#", "max_length": 4096, "max_prompt_length": 1024"#).maxPromptLength == 1024)
  #expect(try parse("").maxPromptLength == 512)
}

/// Keys no trainer implements are refused with the reason, never accepted and ignored.
@Test func unimplementedKeysAreRefused() throws {
  func parse(_ job: String, _ sections: String) throws {
    let json = #"{"job_type": ""# + job + #"", "# + sections + "}"
    try TrainingConfig.parse(Data(json.utf8), source: "test").checkImplemented()
  }
  let grpo = #""training": {"reward_funcs": ["format"]}"#
  for bad in [#""models": {"teacher": "t"}, "# + grpo,
              #""models": {"reference": "r"}, "training": {"reward_funcs": ["format"], "beta": 0}"#,
              #""models": {"reference": "r"}, "training": {"reward_funcs": ["format"], "use_peft": true}"#] {
    #expect(throws: TrainingError.self, "\(bad)") { try parse("grpo", bad) }
  }
  for bad in [#""training": {"packing": false}"#, #""training": {"assistant_only_loss": false}"#, #""dataset": {"eval_path": "x.json"}"#] {
    #expect(throws: TrainingError.self, "\(bad)") { try parse("sft", bad) }
  }
  try parse("grpo", #""models": {"reference": "r"}, "training": {"reward_funcs": ["format"], "beta": 0.04}"#)
  try parse("sft", #""training": {"packing": true}"#)
  try parse("sft", #""training": {"use_peft": true}"#)  // LoRA SFT (issue 15)
}

/// `disable_dropout` turns the adapters' dropout off (the only dropout in these models).
@Test func disableDropoutZeroesAdapterDropout() throws {
  let json = #"{"job_type": "grpo", "training": {"reward_funcs": ["format"], "use_peft": true, "lora_dropout": 0.1, "disable_dropout": true}}"#
  #expect(try TrainingConfig.parse(Data(json.utf8), source: "test").loraConfig.dropout == 0)
}
