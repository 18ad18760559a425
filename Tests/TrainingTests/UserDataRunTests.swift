import Datasets
import Foundation
import Rewards
import Testing
@testable import Training

/// Users' own data through training: the TRL conversational Parquet written by the `datasets`
/// library (tools/golden/trl_datasets_fixtures.py) trains two GRPO steps, and the dataset section's
/// column-mapping keys reach the loader.
extension TinyModelTests {
@Suite(.serialized) struct UserDataRunTests {
  static let trlChat = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../DatasetsTests/Fixtures/trl_chat/train.parquet").standardizedFileURL

  @Test func trlConversationalParquetTrainsTwoSteps() async throws {
    let root = TinySetup.temporaryFolder("trl-data")
    defer { try? FileManager.default.removeItem(at: root) }
    let examples = try DatasetLoader.load(path: Self.trlChat.path).examples
    #expect(!examples.isEmpty && examples.allSatisfy { $0.rewardFields["solution"] != nil })
    let json = """
    {"job_type": "grpo", "dataset": {"labeled_path": "\(Self.trlChat.path)", "system_prompt": "Answer briefly."},
     "models": {"student": "\(TinySetup.modelFolder.path)"},
     "training": {"reward_funcs": ["accuracy"], "output_dir": "\(root.path)", "per_device_train_batch_size": 4,
                  "roll_out_num": 2, "max_steps": 2, "max_completion_length": 4, "logging_steps": 1, "beta": 0,
                  "max_pixels": 3136, "gradient_checkpointing": false}}
    """
    let config = try TrainingConfig.parse(Data(json.utf8), source: "trl.json")
    #expect(config.dataset.systemPrompt == "Answer briefly.")
    // A reward that varies on any text, so the random model's steps have non-zero advantages.
    let varying = SampleReward(name: "length_parity") { Double($0.completion.unicodeScalars.count % 3) }
    let runner = RewardRunner(functions: try RewardRegistry.make(["accuracy"], parameters: [:]) + [varying])
    let trainer = try GRPOTrainer(config: config, modelDirectory: TinySetup.modelFolder, examples: examples, rewards: runner)
    let rows = try await trainer.run(log: { _ in })
    #expect(rows.map(\.step) == [1, 2])
    #expect(rows.allSatisfy { $0.values["loss"]?.isFinite == true && $0.values["rewards/accuracy/mean"] != nil })
  }

  @Test func columnMappingKeysAreConfigKeys() throws {
    let json = """
    {"job_type": "grpo", "dataset": {"labeled_path": "x.parquet", "prompt_key": "question", "image_key": "pictures",
     "answer_key": "label"}, "training": {"reward_funcs": ["accuracy"]}}
    """
    let config = try TrainingConfig.parse(Data(json.utf8), source: "c.json")
    #expect(config.dataset.promptKey == "question" && config.dataset.imageKey == "pictures" && config.dataset.answerKey == "label")
    #expect(throws: TrainingError.self) {
      try TrainingConfig.parse(Data(#"{"job_type": "grpo", "dataset": {"prompt_kye": "q"}, "training": {"reward_funcs": ["accuracy"]}}"#.utf8), source: "c.json")
    }
  }
}
}
