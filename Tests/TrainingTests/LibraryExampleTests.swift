import Datasets
import ExampleReward
import Foundation
import Rewards
import Testing
@testable import Training

/// vlmrl as a library (docs/library.md): the example package's Swift reward
/// (docs/examples/swift-reward) scores as documented and trains beside the config's rewards.
extension TinyModelTests {
@Suite(.serialized) struct LibraryExampleTests {
  @Test func validBoxScoresBoxesInsideTheImage() async throws {
    let image = ImageGeometry(originalWidth: 56, originalHeight: 40, resizedWidth: 56, resizedHeight: 40)
    let texts = ["[1, 2, 30, 20]", "first [0, 0, 3, 3] then [10, 10, 5, 20]", "[0, 0, 57, 10]", "no box", "[1.5, 2, 3, 4.5]"]
    let (values, metrics) = try await ValidBoxReward().scoreWithMetrics(texts.map { RewardSample(completion: $0, images: [image]) })
    #expect(values == [1, 0, 0, 0, 1])
    #expect(metrics["has_brackets"] == 0.8)
    // No image: the reward does not apply.
    #expect(try await ValidBoxReward().score([RewardSample(completion: "[1, 2, 3, 4]")]) == [nil])
  }

  @Test func addedRewardsFollowTheConfiguredOnes() throws {
    let json = #"{"job_type": "grpo", "training": {"reward_funcs": ["format", "gaussian_point"], "reward_weights": [2, 3]}}"#
    let config = try TrainingConfig.parse(Data(json.utf8), source: "c.json")
    let runner = try GRPOTrainer.configuredRewards(config: config, modelDirectory: TinySetup.modelFolder,
                                                   adding: [ValidBoxReward()], extraWeights: [0.5])
    #expect(runner.functions.map(\.name) == ["format", "gaussian_point", "valid_box"])
    #expect(runner.weights == [2, 3, 0.5])
    #expect(throws: TrainingError.self) {
      try GRPOTrainer.configuredRewards(config: config, modelDirectory: TinySetup.modelFolder,
                                        adding: [SampleReward(name: "format") { _ in 1 }])
    }
    #expect(throws: TrainingError.self) {
      try GRPOTrainer.configuredRewards(config: config, modelDirectory: TinySetup.modelFolder, adding: [ValidBoxReward()],
                                        extraWeights: [1, 2])
    }
  }

  @Test func exampleTrainsTwoStepsWithTheSwiftReward() async throws {
    let root = TinySetup.temporaryFolder("library-example")
    defer { try? FileManager.default.removeItem(at: root) }
    let data = try SyntheticTasks.write(task: .singleBox, count: 8, seed: 5, imageSize: 56, to: root.appendingPathComponent("data"))
    let config = root.appendingPathComponent("grpo.json")
    try Data("""
    {"job_type": "grpo", "dataset": {"labeled_path": "\(data.path)"}, "models": {"student": "\(TinySetup.modelFolder.path)"},
     "training": {"reward_funcs": ["format"], "output_dir": "\(root.appendingPathComponent("out").path)",
                  "per_device_train_batch_size": 4, "roll_out_num": 2, "max_steps": 2, "max_completion_length": 6,
                  "logging_steps": 1, "beta": 0, "max_pixels": 3136, "gradient_checkpointing": false}}
    """.utf8).write(to: config)
    let rows = try await trainWithValidBox(configFile: config)
    #expect(rows.map(\.step) == [1, 2])
    for row in rows {
      let mean = try #require(row.values["rewards/valid_box/mean"])
      #expect((0...1).contains(mean))
      #expect(row.values["rewards/valid_box/has_brackets"] != nil && row.values["rewards/format/mean"] != nil)
    }
  }
}
}
