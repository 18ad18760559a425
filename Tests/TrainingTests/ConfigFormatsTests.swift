import Common
import Foundation
import Testing
@testable import Training

/// Config files in YAML, and the flat TRL `GRPOConfig` layout (issue 15).
@Suite struct ConfigFormatsTests {
  static let seed = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/mmkd_rl_grounding.json")

  func write(_ text: String, _ name: String) throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-config-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let url = folder.appendingPathComponent(name)
    try Data(text.utf8).write(to: url)
    return url
  }

  func message(_ body: () throws -> Void) -> String {
    do { try body() } catch { return "\(error)" }
    return "accepted"
  }

  /// The seed's nested config written as YAML loads to the same config as the JSON file.
  @Test func nestedYAMLEqualsTheJSONFile() throws {
    let yaml = """
    job_type: mmkd_rl_grounding
    dataset:
      labeled_path: data/multi_box_grounding.yaml
    models:
      student: Qwen/Qwen2.5-VL-3B-Instruct
    training:
      reward_funcs: [multi_box_format_reward, multi_gaussian_point, multi_gaussian_plane_reward]
      deepspeed: configs/accelerate_config/stage3.json
      output_dir: ./result/
      max_length: 4096
      num_train_epochs: 1
      per_device_train_batch_size: 8
      roll_out_num: 8
      save_steps: 400
      logging_steps: 4
      learning_rate: 1e-6
      max_pixels: 12845056
    """
    let fromYAML = try TrainingConfig.load(try write(yaml, "seed.yaml"))
    let fromJSON = try TrainingConfig.load(Self.seed)
    #expect(fromYAML == fromJSON)
    #expect(fromYAML.training.learningRate == 1e-6)
  }

  /// A flat TRL-style file (YAML or JSON): the model as `model_name_or_path`, the data as
  /// `dataset_name`, every other key a training key; `--set` takes flat keys too.
  @Test func flatTRLLayoutMapsOntoTheSections() throws {
    let yaml = """
    model_name_or_path: /models/tiny
    dataset_name: data/train.jsonl
    output_dir: out
    learning_rate: 2e-6
    per_device_train_batch_size: 8
    num_generations: 4
    scale_rewards: false
    reward_funcs: [format, iou]
    report_to: none
    bf16: true
    """
    let config = try TrainingConfig.load(try write(yaml, "grpo.yml"), overrides: ["max_completion_length=64", "image_root=/images"])
    #expect(config.jobType == .grpo && config.models.student == "/models/tiny" && config.dataset.labeledPath == "data/train.jsonl")
    #expect(config.dataset.imageRoot == "/images")
    let t = config.training
    #expect(t.outputDir == "out" && t.learningRate == 2e-6 && t.numGenerations == 4 && t.scaleRewards == .none)
    #expect(t.rewardFuncs == ["format", "iou"] && t.maxCompletionLength == 64 && config.batchLayout.promptsPerGeneration == 2)
    #expect(config.ignoredKeys.keys.sorted() == ["report_to"])
    let json = #"{"model_name_or_path": "/models/tiny", "train_file": "t.jsonl", "reward_funcs": ["format"], "beta": 0}"#
    let flatJSON = try TrainingConfig.load(try write(json, "grpo.json"))
    #expect(flatJSON.models.student == "/models/tiny" && flatJSON.dataset.labeledPath == "t.jsonl" && flatJSON.training.beta == 0)
    // The resolved config is written nested, and loads back equal.
    #expect(try TrainingConfig.parse(Data(config.resolvedJSONText().utf8)).training == config.training)
  }

  /// Mistakes name the key: a quoted number stays a string, a key written twice (in YAML, or as two
  /// flat spellings), flat keys beside sections, YAML that does not parse, a flat typo.
  @Test func formatMistakesAreNamed() throws {
    let quoted = message { _ = try TrainingConfig.load(try write("reward_funcs: [format]\nlearning_rate: '1e-6'\n", "q.yaml")) }
    #expect(quoted.contains("training.learning_rate: expected a number"), "\(quoted)")
    let twice = message { _ = try TrainingConfig.load(try write("reward_funcs: [format]\nbeta: 0\nbeta: 1\n", "d.yaml")) }
    #expect(twice.contains("beta: written twice (lines 2 and 3)"), "\(twice)")
    let spellings = message {
      _ = try TrainingConfig.load(try write(#"{"dataset_name": "a", "train_file": "b", "reward_funcs": ["format"]}"#, "s.json"))
    }
    #expect(spellings.contains("dataset.labeled_path: set twice (as dataset_name and train_file)"), "\(spellings)")
    let mixed = message {
      _ = try TrainingConfig.load(try write(#"{"model_name_or_path": "m", "training": {"reward_funcs": ["format"]}}"#, "m.json"))
    }
    #expect(mixed.contains("model_name_or_path: unknown key") && mixed.contains("models.student"), "\(mixed)")
    let broken = message { _ = try TrainingConfig.load(try write("training: [unclosed\n", "b.yaml")) }
    #expect(broken.contains("b.yaml") && broken.contains("not valid YAML"), "\(broken)")
    let typo = message { _ = try TrainingConfig.load(try write("reward_funcs: [format]\nlerning_rate: 1\n", "t.yaml")) }
    #expect(typo.contains("did you mean learning_rate?"), "\(typo)")
  }
}
