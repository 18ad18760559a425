import Datasets
import Evaluation
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
  func trainer(_ root: URL, _ extra: String = "", rewards: RewardRunner) throws -> GRPOTrainer {
    let json = """
    {"job_type": "grpo", "dataset": {"labeled_path": "\(root.path)"}, "models": {"student": "\(TinySetup.modelFolder.path)"},
     "training": {"reward_funcs": ["format"], "output_dir": "\(root.appendingPathComponent("run").path)", "roll_out_num": 2,
                  "max_completion_length": 4, "logging_steps": 1, "seed": 5, "warmup_steps": 0, "max_steps": 1,
                  "per_device_train_batch_size": 2, "learning_rate": 0.001, "realtime_rollout_logging": false \(extra)}}
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
