import Common
import Datasets
import Foundation
import Imaging
import Testing
@testable import Training

/// Every shipped seed recipe in configs/ runs as a user types it (README, "Seed recipes"): its file
/// unchanged but for the student, the data, the output folder and sizes cut down by `--set`, for 2
/// steps on tiny data of its record kind, with every configured reward logged.
extension TinyModelTests {
@Suite(.serialized) struct SeedRecipeTests {
  static let configs = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../configs").standardizedFileURL

  /// Tiny data of the kind a recipe trains on.
  static func data(for recipe: String, in root: URL) throws -> URL {
    switch recipe {
    case "easydistill_single_box.json":
      return try SyntheticTasks.write(task: .singleBox, count: 4, seed: 5, imageSize: 56, to: root)
    case "easydistill_multi_box_sft.json", "mmkd_rl_grounding.json":
      return try SyntheticTasks.write(task: .multiBox, count: 4, seed: 5, imageSize: 56, to: root)
    case "r1_counting.json", "r1_geoqa.json":
      return try SyntheticTasks.write(task: .counting, count: 4, seed: 5, imageSize: 56, to: root)
    case "aokvqa_mdi.json":
      return try SyntheticTasks.write(task: .multipleChoice, count: 4, seed: 5, imageSize: 56, to: root)
    case "r1_rec.json":
      // VLM-R1's REC records (`image`, `problem`, `solution` box, `normal_caption`) over synthetic scenes.
      let single = try SyntheticTasks.write(task: .singleBox, count: 4, seed: 5, imageSize: 56, to: root)
      let records = try #require(try JSONValue.parse(Data(contentsOf: single)).arrayValue)
      let rec = records.map { record -> JSONValue in
        .object(["image": record["image_path"] ?? .null, "problem": .string("the shape in the picture"),
                 "solution": record["bbox"] ?? .null, "normal_caption": .string("a shape")])
      }
      let file = root.appendingPathComponent("rec.json")
      try Data(JSONValue.array(rec).jsonString.utf8).write(to: file)
      return file
    default:
      throw TrainingError.invalidArgument("no tiny data for \(recipe)")
    }
  }

  @Test(arguments: ["easydistill_single_box.json", "easydistill_multi_box_sft.json", "mmkd_rl_grounding.json",
                    "r1_rec.json", "r1_counting.json", "r1_geoqa.json", "aokvqa_mdi.json", "cycle_region_caption.json"])
  func recipeRunsTwoSteps(_ recipe: String) async throws {
    let root = TinySetup.temporaryFolder("recipe")
    defer { try? FileManager.default.removeItem(at: root) }
    let data = recipe == "cycle_region_caption.json"
      ? try SyntheticTasks.write(task: .regionCaption, count: 4, seed: 5, imageSize: 56, to: root.appendingPathComponent("data"))
      : try Self.data(for: recipe, in: root.appendingPathComponent("data"))
    let output = root.appendingPathComponent("run")
    var overrides = [
      "models.student=\(TinySetup.modelFolder.path)", "dataset.labeled_path=\(data.path)", "dataset.image_root=\(data.deletingLastPathComponent().path)",
      "training.output_dir=\(output.path)", "training.max_steps=2", "training.max_pixels=3136", "training.gradient_checkpointing=false",
    ]
    let file = Self.configs.appendingPathComponent(recipe)
    let original = try TrainingConfig.load(file)
    if original.jobType != .sft {
      overrides += ["training.max_completion_length=4", "training.roll_out_num=2", "training.per_device_train_batch_size=2",
                    "training.gradient_accumulation_steps=1"]
    }
    if recipe == "cycle_region_caption.json" {
      // No judge here: METEOR alone scores loop 2.
      overrides += ["training.cycle_judge_weight=0", "training.reward_parameters={}", "training.partner_max_completion_length=4"]
    }
    let config = try TrainingConfig.load(file, overrides: overrides)
    let examples = try DatasetLoader.load(path: data.path, imageRoot: config.dataset.imageRoot).examples
    let rows: [MetricsRow]
    switch config.jobType {
    case .sft:
      rows = try SFTTrainer(config: config, modelDirectory: TinySetup.modelFolder, examples: examples, log: { _ in })
        .run(log: { _ in })
    case .cycle:
      rows = try await CycleTrainer.make(config: config, modelDirectory: TinySetup.modelFolder, examples: examples)
        .run(log: { _ in })
    case .grpo:
      rows = try await GRPOTrainer(config: config, modelDirectory: TinySetup.modelFolder, examples: examples).run(log: { _ in })
    }
    #expect(rows.map(\.step) == [1, 2], "\(recipe)")
    #expect(rows.allSatisfy { $0.values["loss"]?.isFinite == true }, "\(recipe)")
    for name in original.training.rewardFuncs {
      #expect(rows.last?.values["rewards/\(name)/mean"] != nil, "\(recipe): rewards/\(name)/mean")
    }
  }

  /// The EasyDistill seed's config on tiny data with its own 1280x720 images (about 1.2k image
  /// tokens each at its max_pixels): `max_length` 4096 is its prompt limit, so they train; with a
  /// prompt limit below them (512, the limit without `max_length`) they are skipped, counted in
  /// `skipped/prompt_too_long` and named, and training goes on with the small images.
  @Test func seedConfigWithWideImagesSkipsOnlyWhatIsTooLong() async throws {
    let root = TinySetup.temporaryFolder("wide")
    defer { try? FileManager.default.removeItem(at: root) }
    let data = try SyntheticTasks.write(task: .singleBox, count: 8, seed: 5, imageSize: 56, to: root.appendingPathComponent("data"))
    var records = try #require(try JSONValue.parse(Data(contentsOf: data)).arrayValue)
    // Three records in four get a 1280x720 photo-sized image (a grey field with a dark box where the
    // label is); the data order is seeded, so which are drawn is the same on every machine.
    let wide = RGBImage(width: 1280, height: 720, pixels: (0..<(1280 * 720)).flatMap { index -> [UInt8] in
      let (x, y) = (index % 1280, index / 1280)
      return (400..<700).contains(x) && (200..<500).contains(y) ? [30, 30, 30] : [200, 200, 200]
    })
    try encodePNG(wide).write(to: root.appendingPathComponent("data/wide.png"))
    for index in [0, 1, 2, 4, 5, 6] {
      guard case .object(var record) = records[index] else { continue }
      record["image_path"] = .string("wide.png")
      record["bbox"] = .array([400, 200, 700, 500].map { .int($0) })
      (record["width"], record["height"]) = (.int(1280), .int(720))
      records[index] = .object(record)
    }
    try Data(JSONValue.array(records).jsonString.utf8).write(to: data)
    func run(_ name: String, _ extra: [String]) async throws -> ([MetricsRow], [String]) {
      let overrides = [
        "models.student=\(TinySetup.modelFolder.path)", "dataset.labeled_path=\(data.path)",
        "dataset.image_root=\(data.deletingLastPathComponent().path)", "training.output_dir=\(root.appendingPathComponent(name).path)",
        "training.max_steps=2", "training.gradient_checkpointing=false", "training.max_completion_length=4",
        "training.roll_out_num=2", "training.per_device_train_batch_size=2", "training.gradient_accumulation_steps=1",
      ] + extra
      let config = try TrainingConfig.load(Self.configs.appendingPathComponent("easydistill_single_box.json"), overrides: overrides)
      #expect(config.training.maxPixels == 12845056)
      let examples = try DatasetLoader.load(path: data.path, imageRoot: config.dataset.imageRoot).examples
      let lines = LogLines()
      let rows = try await GRPOTrainer(config: config, modelDirectory: TinySetup.modelFolder, examples: examples)
        .run(log: { lines.append($0) })
      return (rows, lines.all)
    }
    let (kept, _) = try await run("kept", [])
    #expect(kept.map(\.step) == [1, 2])
    #expect(kept.allSatisfy { $0.values["skipped/prompt_too_long"] == nil }, "max_length 4096 holds the wide images")
    #expect(kept.compactMap { $0.values["num_tokens"] }.max() ?? 0 > 1000, "a wide image's ~1.2k tokens were trained: \(kept.map(\.values))")
    let (cut, lines) = try await run("cut", ["training.max_prompt_length=512"])
    #expect(cut.map(\.step) == [1, 2], "training goes on")
    let skipped = cut.compactMap { $0.values["skipped/prompt_too_long"] }.reduce(0, +)
    #expect(skipped >= 1, "\(cut.map(\.values))")
    #expect(lines.contains { $0.contains("skipped") && $0.contains("512") }, "\(lines)")
    #expect(cut.allSatisfy { $0.values["loss"]?.isFinite == true })
  }
}
}

