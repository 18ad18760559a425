import Common
import Foundation
import Testing
@testable import Training

@Suite struct ConfigTests {
  static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

  static func parse(_ json: String, overrides: [String] = []) throws -> TrainingConfig {
    try TrainingConfig.parse(Data(json.utf8), source: "test.json", overrides: overrides)
  }

  static let minimal = """
    {"dataset": {"labeled_path": "d.json"}, "models": {"student": "m"}, "training": {"reward_funcs": ["format"]}}
    """

  /// The error's text (for checking that it names the key and lists the known ones).
  static func message(_ body: () throws -> Void) -> String {
    do { try body() } catch { return "\(error)" }
    return ""
  }

  @Test func seedConfigParsesAsWritten() throws {
    let config = try TrainingConfig.load(Self.fixtures.appendingPathComponent("mmkd_rl_grounding.json"))
    #expect(config.jobType == .grpo)
    #expect(config.dataset.labeledPath == "data/multi_box_grounding.yaml")
    #expect(config.models.student == "Qwen/Qwen2.5-VL-3B-Instruct")
    let t = config.training
    #expect(t.rewardFuncs == ["multi_box_format_reward", "multi_gaussian_point", "multi_gaussian_plane_reward"])
    #expect(t.zeroStage == 3)  // the file does not exist here: read from the name stage3.json
    #expect(t.outputDir == "./result/" && t.maxLength == 4096 && t.numTrainEpochs == 1)
    #expect(t.perDeviceTrainBatchSize == 8 && t.numGenerations == 8 && t.saveSteps == 400 && t.loggingSteps == 4)
    #expect(t.learningRate == 1e-6 && t.maxPixels == 12_845_056)
    // Defaults from docs/grpo.md.
    #expect(t.beta == 0.04 && t.epsilon == 0.2 && t.epsilonHigh == nil && t.lossType == .grpo)
    #expect(t.scaleRewards == .group && t.importanceSamplingLevel == .token && t.maxCompletionLength == 256)
    #expect(t.temperature == 1 && t.minPixels == 3136 && t.bf16 && t.numIterations == 1)
    #expect(config.lossOptions.resolvedEpsilonHigh == 0.2)
  }

  @Test func resolvedConfigRoundTripsWithCanonicalNames() throws {
    let config = try TrainingConfig.load(Self.fixtures.appendingPathComponent("mmkd_rl_grounding.json"))
    let json = config.resolvedJSON()
    #expect(json["job_type"] == .string("grpo"))
    #expect(json["training"]?["num_generations"] == .int(8))
    #expect(json["training"]?["roll_out_num"] == nil)
    #expect(json["training"]?["epsilon_high"] == .null)
    #expect(json["training"]?["zero_stage"] == .int(3))
    let again = try TrainingConfig.parse(Data(config.resolvedJSONText().utf8), source: "resolved.json")
    #expect(again == config)
  }

  /// A valid non-null value of a field's kind.
  static func sample(_ field: ConfigField) -> JSONValue {
    if !field.defaultValue.isNull { return field.defaultValue }
    switch field.kind {
    case .int: return .int(3)
    case .double: return .double(0.5)
    case .bool: return .bool(true)
    case .string, .stringOrBool, .stringOrStringList: return .string("x")
    case .choice(let choices): return .string(choices[0])
    case .choiceOrBool(let choices, _, _): return .string(choices[0])
    case .stringList: return .array([.string("x")])
    case .doubleList: return .array([.double(1)])
    case .object: return .object([:])
    case .stringOrObject: return .object(["zero_optimization": .object(["stage": .int(3)])])
    }
  }

  @Test func everySchemaKeyIsATypedProperty() throws {
    // Every key set: the typed struct must carry each one back out (a schema key without a
    // property, or a property without a schema key, would be silently dropped or never set).
    var top: [String: JSONValue] = [:]
    for section in ["dataset", "models", "training"] {
      var object: [String: JSONValue] = [:]
      for field in ConfigSchema.fields(ofSection: section) ?? [] { object[field.key] = Self.sample(field) }
      top[section] = .object(object)
    }
    top["training"] = .object((top["training"]?.objectValue ?? [:]).merging([
      "reward_funcs": .array([.string("iou")]), "reward_weights": .array([.double(1)]), "top_p": .double(0.5),
      "min_p": .double(0.1), "top_entropy_quantile": .double(0.5), "zero_stage": .int(3),
      // TRL refuses both batch keys at once; the other one is checked below.
      "generation_batch_size": .int(16), "steps_per_generation": .null,
    ]) { $1 })
    let config = try TrainingConfig.parse(Data(JSONValue.object(top).jsonString.utf8), source: "all.json")
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    let encoded = try JSONValue.parse(encoder.encode(config))
    for section in ["dataset", "models", "training"] {
      let written = Set(encoded[section]?.objectValue?.keys.map { $0 } ?? [])
      let schema = Set((ConfigSchema.fields(ofSection: section) ?? []).map(\.key)).subtracting(["steps_per_generation"])
      #expect(written == schema, "\(section): \(written.symmetricDifference(schema).sorted())")
    }
    let stepped = try TrainingConfig.parse(Data(#"{"training": {"reward_funcs": ["iou"], "steps_per_generation": 2}}"#.utf8))
    #expect(stepped.training.stepsPerGeneration == 2)
  }

  @Test func unknownKeysListTheKnownOnes() {
    let text = Self.message {
      _ = try Self.parse(#"{"models": {"student": "m"}, "training": {"learning_rat": 1e-6}}"#)
    }
    #expect(text.contains("training.learning_rat"))
    #expect(text.contains("learning_rate") && text.contains("roll_out_num"))
    #expect(Self.message { _ = try Self.parse(#"{"trainer": {}}"#) }.contains("known: job_type, dataset, models, training"))
    #expect(Self.message { _ = try Self.parse(#"{"dataset": {"path": "x"}}"#) }.contains("labeled_path"))
  }

  @Test func wrongTypesAndRangesNameTheKey() {
    #expect(Self.message { _ = try Self.parse(#"{"training": {"beta": "high"}}"#) }.contains("training.beta: expected a number"))
    #expect(Self.message { _ = try Self.parse(#"{"training": {"loss_type": "ppo"}}"#) }
      .contains("not one of: grpo, bnpo, dr_grpo, dapo"))
    #expect(Self.message { _ = try Self.parse(#"{"training": {"save_steps": 0}}"#) }.contains("at least 1"))
    #expect(Self.message { _ = try Self.parse(#"{"job_type": "ppo"}"#) }.contains("job_type"))
    #expect(Self.message { _ = try Self.parse(#"{"training": {"num_generations": 4, "roll_out_num": 4}}"#) }
      .contains("set twice"))
    #expect(Self.message { _ = try Self.parse(#"{"training": {"reward_funcs": ["iou"], "reward_weights": [1, 2]}}"#) }
      .contains("2 weights for 1 reward functions"))
    #expect(Self.message { _ = try Self.parse(#"{"training": {"reward_funcs": ["nope"]}}"#) }.contains("unknown reward 'nope'"))
    #expect(Self.message { _ = try Self.parse(#"{"training": {"reward_funcs": ["iou"], "top_p": 1.5}}"#) }.contains("top_p"))
  }

  @Test func overridesAreTyped() throws {
    let config = try Self.parse(Self.minimal, overrides: [
      "training.learning_rate=2e-6", "training.bf16=false", "training.output_dir=2024",
      "training.reward_funcs=[\"iou\", \"format\"]", "training.roll_out_num=4", "job_type=r1",
      "training.reward_parameters.box_frame=norm1000", "training.lora_target_modules=all-linear",
      "training.epsilon_high=0.28",
    ])
    let t = config.training
    #expect(t.learningRate == 2e-6 && !t.bf16 && t.outputDir == "2024")
    #expect(t.rewardFuncs == ["iou", "format"] && t.numGenerations == 4 && t.epsilonHigh == 0.28)
    #expect(t.rewardParameters == ["box_frame": .string("norm1000")])
    #expect(config.loraTargetModules == ["all-linear"])
    // An alias override replaces the canonical spelling in the file.
    let replaced = try Self.parse(#"{"training": {"reward_funcs": ["iou"], "num_generations": 8}}"#,
                                  overrides: ["training.roll_out_num=2"])
    #expect(replaced.training.numGenerations == 2)
    #expect(Self.message { _ = try Self.parse(Self.minimal, overrides: ["training.learnig_rate=1"]) }
      .contains("--set training.learnig_rate=1: training.learnig_rate: unknown key"))
    #expect(Self.message { _ = try Self.parse(Self.minimal, overrides: ["training.beta"]) }.contains("key=value"))
    #expect(Self.message { _ = try Self.parse(Self.minimal, overrides: ["training.beta=abc"]) }.contains("expected a number"))
  }

  @Test func zeroStageFromFileContentsThenName() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-zero-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    // The file's own stage wins over a misleading name.
    try Data(#"{"zero_optimization": {"stage": 2}}"#.utf8).write(to: folder.appendingPathComponent("stage3.json"))
    try Data("compute_environment: LOCAL_MACHINE\ndeepspeed_config:\n  zero_stage: 1\n".utf8)
      .write(to: folder.appendingPathComponent("deepspeed_zero3.yaml"))
    #expect(try TrainingConfig.zeroStage(of: .string("stage3.json"), baseFolder: folder) == 2)
    #expect(try TrainingConfig.zeroStage(of: .string("deepspeed_zero3.yaml"), baseFolder: folder) == 1)
    #expect(try TrainingConfig.zeroStage(of: .string("missing/ds_z2_config.json")) == 2)
    #expect(try TrainingConfig.zeroStage(of: .string("zero_stage1.json")) == 1)
    #expect(try TrainingConfig.zeroStage(of: .object(["zero_optimization": .object(["stage": .int(3)])])) == 3)
    #expect(Self.message { _ = try TrainingConfig.zeroStage(of: .string("accelerate.json")) }.contains("set training.zero_stage"))
    #expect(Self.message {
      _ = try Self.parse(#"{"training": {"reward_funcs": ["iou"], "deepspeed": "stage3.json", "zero_stage": 2}}"#)
    }.contains("disagrees"))
  }

  @Test func writesTheResolvedConfig() throws {
    let config = try Self.parse(Self.minimal)
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-config-\(UUID().uuidString)/config.json")
    defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
    try config.write(to: url)
    #expect(try TrainingConfig.load(url) == config)
    #expect(Self.message { _ = try TrainingConfig.load(URL(fileURLWithPath: "/nonexistent/c.json")) }.contains("cannot read"))
  }
}

@Suite struct ConfigScheduleTests {
  @Test func scheduleAndOptimizerFromTheConfig() throws {
    let config = try ConfigTests.parse(ConfigTests.minimal, overrides: [
      "training.warmup_ratio=0.1", "training.lr_scheduler_type=cosine", "training.learning_rate=2e-6",
      "training.weight_decay=0.01",
    ])
    // ceil(0.1 * 95) = 10 warm-up steps.
    let schedule = config.lrSchedule(totalSteps: 95)
    #expect(schedule.kind == .cosine && schedule.warmupSteps == 10 && schedule.peak == 2e-6 && schedule.totalSteps == 95)
    let explicit = try ConfigTests.parse(ConfigTests.minimal, overrides: ["training.warmup_steps=3", "training.warmup_ratio=0.5"])
    #expect(explicit.warmupSteps(totalSteps: 100) == 3)
    let constant = try ConfigTests.parse(ConfigTests.minimal, overrides: ["training.lr_scheduler_type=constant", "training.warmup_steps=3"])
    #expect(constant.lrSchedule(totalSteps: 10).warmupSteps == 0)
    #expect(config.adamW.weightDecay == 0.01 && config.adamW.learningRate == 2e-6 && config.adamW.beta2 == 0.999)
  }
}
