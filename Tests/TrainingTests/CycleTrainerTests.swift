import Common
import Datasets
import Foundation
import NN
import Imaging
import Prompting
import Testing
@testable import Rewards
@testable import Models
@testable import Torch
@testable import Training

/// The dual-loop region <-> caption trainer (docs/cycle.md) on the tiny Qwen2.5-VL fixture and
/// synthetic region-caption data.
extension TinyModelTests {
@Suite(.serialized) struct CycleTrainerTests {
  func config(output: URL, data: URL, steps: Int, judgeWeight: Double = 0, emaDecay: Double = 0.5,
              extra: String = "") throws -> TrainingConfig {
    let json = """
    {"job_type": "cycle", "dataset": {"labeled_path": "\(data.path)"},
     "models": {"student": "\(TinySetup.modelFolder.path)"},
     "training": {"output_dir": "\(output.path)", "per_device_train_batch_size": 4, "roll_out_num": 2,
                  "max_steps": \(steps), "max_completion_length": 5, "partner_max_completion_length": 4,
                  "learning_rate": 0.001, "weight_decay": 0.1, "save_steps": 2, "logging_steps": 1, "beta": 0,
                  "seed": 7, "max_pixels": 3136, "gradient_checkpointing": false, "ema_decay": \(emaDecay),
                  "cycle_judge_weight": \(judgeWeight), "region_prompt": "both"\(extra)}}
    """
    return try TrainingConfig.parse(Data(json.utf8), source: "cycle test config")
  }

  func data(_ root: URL) throws -> (file: URL, examples: [Example]) {
    let file = try SyntheticTasks.write(task: .regionCaption, count: 4, seed: 5, imageSize: 56, to: root.appendingPathComponent("data"))
    return (file, try DatasetLoader.load(path: file.path).examples)
  }

  func partnerTensors(_ trainer: GRPOTrainer) throws -> [Tensor] {
    let source = try #require(trainer.source as? CycleSource)
    return source.partner.trainedTensors.map { $0.clone() }
  }

  /// Four steps alternating the loops: each loop's metrics on its steps, the EMA partner equal to
  /// the expected decay of the policy, and an interrupted run resumed from its checkpoint (EMA
  /// included) ending exactly where the uninterrupted run ends.
  @Test func fourStepsBothLoopsEMAAndExactResume() async throws {
    let root = TinySetup.temporaryFolder("cycle")
    defer { try? FileManager.default.removeItem(at: root) }
    let (file, examples) = try data(root)
    #expect(examples.allSatisfy { $0.kind == .regionCaption && $0.rewardFields["mask_rle"] != nil && $0.rewardFields["bbox"] != nil })

    // Interrupted after step 1: the partner is 0.5 * initial + 0.5 * policy after step 1.
    let resumedOut = root.appendingPathComponent("resumed")
    let first = try CycleTrainer.make(config: try config(output: resumedOut, data: file, steps: 4),
                                      modelDirectory: TinySetup.modelFolder, examples: examples)
    let initial = first.model.namedTrainableParameters.map { $0.1.value.clone() }
    _ = try await first.run(stopAfterStep: 1, log: { _ in })
    let policy1 = first.model.namedTrainableParameters.map { $0.1.value.clone() }
    let partner1 = try partnerTensors(first)
    var changed = 0
    for ((theta0, theta1), ema) in zip(zip(initial, policy1), partner1) {
      if theta0.maxAbsDifference(theta1) > 0 { changed += 1 }
      let expected = theta0 * 0.5 + theta1 * 0.5
      #expect(ema.maxAbsDifference(expected) <= 1e-6)
    }
    #expect(changed == initial.count, "every trained tensor moves (weight decay), so the EMA check has something to check")

    // Step 2 (caption -> region) then a checkpoint at step 2; stop there.
    _ = try await first.run(resume: true, stopAfterStep: 2, log: { _ in })
    let policy2 = first.model.namedTrainableParameters.map { $0.1.value.clone() }
    for ((ema1, theta2), ema2) in zip(zip(partner1, policy2), try partnerTensors(first)) {
      #expect(ema2.maxAbsDifference(ema1 * 0.5 + theta2 * 0.5) <= 1e-6)
    }
    #expect(FileManager.default.fileExists(atPath: resumedOut.appendingPathComponent("checkpoint-2/partner/model.safetensors").path))

    // A fresh trainer resumes from checkpoint-2 (policy, optimizer and partner) and finishes.
    let resumed = try CycleTrainer.make(config: try config(output: resumedOut, data: file, steps: 4),
                                        modelDirectory: TinySetup.modelFolder, examples: examples)
    let tail = try await resumed.run(resume: true, log: { _ in })
    #expect(tail.map(\.step) == [3, 4])

    let straightOut = root.appendingPathComponent("straight")
    let straight = try CycleTrainer.make(config: try config(output: straightOut, data: file, steps: 4),
                                         modelDirectory: TinySetup.modelFolder, examples: examples)
    let rows = try await straight.run(log: { _ in })
    #expect(rows.map(\.step) == [1, 2, 3, 4])
    // Alternate: steps 1 and 3 run loop 1, steps 2 and 4 loop 2.
    for row in [rows[0], rows[2]] {
      #expect(row.values["cycle/region_iou"]?.isFinite == true)
      #expect(row.values["cycle/loop_region_to_caption"] == 1 && row.values["cycle/caption_meteor"] == nil)
    }
    for row in [rows[1], rows[3]] {
      #expect(row.values["cycle/loop_caption_to_region"] == 1 && row.values["cycle/region_iou"] == nil)
      #expect(row.values["cycle/grounding_parsed"]?.isFinite == true)
      #expect(row.values["cycle/judge_missing"] == 0)
    }
    for row in rows { #expect((row.values["time/partner"] ?? -1) >= 0 && row.values["loss"]?.isFinite == true) }
    for ((_, a), (_, b)) in zip(straight.model.namedTrainableParameters, resumed.model.namedTrainableParameters) {
      #expect(a.value.maxAbsDifference(b.value) == 0)
    }
    for (a, b) in zip(try partnerTensors(straight), try partnerTensors(resumed)) { #expect(a.maxAbsDifference(b) == 0) }
  }

  /// `mixed` runs both loops in every batch; a judge that is down does not stop the run.
  @Test func mixedScheduleWithTheJudgeDown() async throws {
    let root = TinySetup.temporaryFolder("cycle-mixed")
    defer { try? FileManager.default.removeItem(at: root) }
    let (file, examples) = try data(root)
    let judge = #", "reward_parameters": {"llm_judge": {"url": "http://127.0.0.1:9", "generate_questions": true, "retries": 0, "timeout": 2}}"#
    let trainer = try CycleTrainer.make(
      config: try config(output: root.appendingPathComponent("run"), data: file, steps: 2, judgeWeight: 0.75, emaDecay: 0,
                         extra: #", "cycle_schedule": "mixed""# + judge),
      modelDirectory: TinySetup.modelFolder, examples: examples)
    let source = try #require(trainer.source as? CycleSource)
    if case .policy = source.partner.storage {} else { Issue.record("decay 0 with updates every step shares the policy") }
    let rows = try await trainer.run(log: { _ in })
    #expect(rows.map(\.step) == [1, 2])
    for row in rows {
      #expect(row.values["cycle/loop_region_to_caption"] == 1 && row.values["cycle/loop_caption_to_region"] == 1)
      #expect(row.values["cycle/region_iou"]?.isFinite == true && row.values["cycle/judge_missing"] != nil)
      #expect(row.values["completions/mean_length"]?.isFinite == true)
    }
  }

  @Test func configKeysBelongToTheirJobType() throws {
    func message(_ json: String) -> String {
      do {
        let config = try TrainingConfig.parse(Data(json.utf8), source: "c.json")
        try config.checkImplemented()
        return "accepted"
      } catch {
        return "\(error)"
      }
    }
    #expect(message(#"{"job_type": "grpo", "training": {"reward_funcs": ["format"], "ema_decay": 0.9}}"#).contains("ema_decay"))
    #expect(message(#"{"job_type": "cycle", "training": {"reward_funcs": ["format"]}}"#).contains("reward_funcs"))
    #expect(message(#"{"job_type": "cycle", "training": {"ema_decay": 1.5}}"#).contains("ema_decay"))
    #expect(message(#"{"job_type": "cycle", "training": {"cycle_grounding_prompt": "no slot"}}"#).contains("{caption}"))
    #expect(message(#"{"job_type": "cycle", "training": {"ema_decay": 1}}"#) == "accepted")
  }

  /// Regions: the box of a mask, IoU of a box against a mask or a box, the outline drawn inside.
  @Test func regionsFromMasksAndBoxes() throws {
    // A 4x6 (h x w) mask covering x 1..<3, y 1..<3 (column-major runs).
    var pixels = [Bool](repeating: false, count: 24)
    for x in 1..<3 { for y in 1..<3 { pixels[x * 4 + y] = true } }
    let mask = RLEMask(height: 4, width: 6, pixels: pixels)
    let region = try #require(Region(fields: ["mask_rle": mask.json]))
    #expect(region.box == Box(1, 1, 3, 3))
    #expect(abs(region.iou(predicted: Box(1, 1, 3, 3)) - 1) < 1e-12)
    #expect(abs(region.iou(predicted: Box(1, 1, 5, 3)) - 0.5) < 1e-12)
    #expect(region.iou(predicted: Box(4, 0, 6, 1)) == 0)
    let boxOnly = try #require(Region(fields: ["bbox": .array([.int(0), .int(0), .int(4), .int(4)])]))
    #expect(boxOnly.mask == nil && abs(boxOnly.iou(predicted: Box(0, 0, 4, 2)) - 0.5) < 1e-12)
    #expect(Region(fields: [:]) == nil)

    // The directly built runs of a box equal the runs of its pixels, edges and empty boxes included.
    for (b, (h, w)) in [(Box(0, 0, 6, 4), (4, 6)), (Box(1.2, 0, 3.6, 4), (4, 6)), (Box(-3, -1, 2, 2), (4, 6)),
                        (Box(5, 3, 9, 9), (4, 6)), (Box(2, 2, 2.4, 3), (4, 6)), (Box(0.5, 1.5, 6.5, 3.5), (5, 7))] {
      var boxPixels = [Bool](repeating: false, count: h * w)
      for x in 0..<w { for y in 0..<h {
        let cx = Double(x) + 0.5, cy = Double(y) + 0.5
        boxPixels[x * h + y] = cx >= b.x1 && cx < b.x2 && cy >= b.y1 && cy < b.y2
      } }
      let built = Region.rasterised(b, height: h, width: w)
      #expect(built.decode() == boxPixels, "\(b)")
      #expect(built.area == boxPixels.filter { $0 }.count)
    }

    let image = RGBImageFixture.gray(width: 6, height: 4)
    let outlined = region.outlined(image)
    #expect(outlined.pixels[(1 * 6 + 1) * 3] == 255 && outlined.pixels[(1 * 6 + 1) * 3 + 1] == 0)
    #expect(outlined.pixels[(0 * 6 + 0) * 3] == 128, "outside the region the image is unchanged")
    #expect(Region.text(Box(1.4, 2.6, 10, 20)) == "[1, 3, 10, 20]")
  }

  /// The synthetic region-caption records: the mask is exactly the target's drawn pixels, its box
  /// the shape's box, and the caption names the shape.
  @Test func syntheticRegionCaptionRecords() throws {
    for index in 0..<5 {
      let (scene, fields) = SyntheticTasks.sample(task: .regionCaption, index: index, seed: 11, imageSize: 64)
      let shape = scene.shapes[0]
      let region = try #require(Region(fields: fields))
      #expect(region.box == Box(Double(shape.x1), Double(shape.y1), Double(shape.x2), Double(shape.y2)))
      let pixels = try #require(region.mask).decode()
      var drawn = 0
      for x in 0..<scene.width {
        for y in 0..<scene.height where shape.covers(x: x, y: y) && x >= shape.x1 && x < shape.x2 && y >= shape.y1 && y < shape.y2 {
          drawn += 1
          #expect(pixels[x * scene.height + y])
        }
      }
      #expect(pixels.filter { $0 }.count == drawn)
      let caption = fields["conversations"]?.arrayValue?.last?["value"]?.stringValue ?? ""
      #expect(caption.contains(shape.color.rawValue) && caption.contains(shape.kind.rawValue))
    }
  }

  /// The Grasp-Any-Region release layout (Arrow files written by `datasets`: Image feature, COCO RLE
  /// with a compressed string, `conversations`, `catagory`), made by tools/golden/region_caption_layouts.py,
  /// loads as region captioning with its masks and captions.
  @Test func graspAnyRegionArrowLayoutLoads() throws {
    let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/gar_layout")
    let expected = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("expected.json")))
      as? [[String: Any]])
    for path in [folder.appendingPathComponent("data-00000-of-00001.arrow").path, folder.path] {
      let examples = try DatasetLoader.load(path: path).examples
      #expect(examples.count == expected.count, "\(path)")
      for (example, truth) in zip(examples, expected) {
        #expect(example.kind == .regionCaption)
        let region = try #require(Region(fields: example.rewardFields))
        #expect(region.mask?.area == truth["area"] as? Int)
        #expect([region.box.x1, region.box.y1, region.box.x2, region.box.y2].map { Int($0) } == truth["box"] as? [Int])
        #expect(CycleSource.caption(of: example) == truth["caption"] as? String)
        #expect(example.images.count == 1)
      }
    }
  }

  /// Loop 1's reward reads the partner's box in the model's frame.
  @Test func regionIoURewardMapsTheModelFrame() async throws {
    let geometry = ImageGeometry(originalWidth: 200, originalHeight: 100, resizedWidth: 100, resizedHeight: 50)
    let fields: [String: JSONValue] = ["bbox": .array([.int(20), .int(20), .int(60), .int(60)])]
    let samples = [
      RewardSample(completion: "[10, 10, 30, 30]", images: [geometry], fields: fields),
      RewardSample(completion: "no box here", images: [geometry], fields: fields),
      RewardSample(completion: "[10, 10, 30, 30]", images: [geometry], fields: [:]),
    ]
    let resized = try await RegionIoUReward(frame: .resized).score(samples)
    #expect(resized[0].map { abs($0 - 1) < 1e-12 } == true && resized[1] == 0 && resized[2] == nil)
    let original = try await RegionIoUReward(frame: .original).score(samples)
    #expect(original[0].map { $0 < 0.2 } == true)
    #expect(BoxFrame.resized.fromOriginal(Box(20, 20, 60, 60), image: geometry) == Box(10, 10, 30, 30))
    #expect(BoxFrame.norm1000.fromOriginal(Box(20, 20, 60, 60), image: geometry) == Box(100, 200, 300, 600))
  }

  /// Loop 2's reward: weights, an empty caption scores 0 without a judge call, a judge that is down
  /// gives nil (counted), and repeated captions are served from the verdict cache.
  @Test func captionRewardJudgeDownAndCache() async throws {
    let meteor = try RewardRegistry.make("meteor")
    let alone = CaptionCycleReward(meteor: meteor, judge: nil, meteorWeight: 0.25, judgeWeight: 0)
    let fields: [String: JSONValue] = ["captions": .array([.string("The red circle at the top left of the image.")])]
    let (values, metrics) = try await alone.scoreWithMetrics([
      RewardSample(completion: "The red circle at the top left of the image.", fields: fields),
      RewardSample(completion: "  ", fields: fields),
    ])
    #expect(values[0].map { abs($0 - 0.25 * 0.9995) < 0.01 } == true && values[1] == 0)
    #expect(metrics["judge_missing"] == 0 && metrics["meteor"] != nil)

    let down = try #require(try RewardRegistry.make("llm_judge", parameters: [
      "url": .string("http://127.0.0.1:9"), "retries": .int(0), "timeout": .double(2)]) as? LLMJudgeReward)
    let question: JSONValue = .array([.object(["question": .string("q"), "choices": .array([.array([.string("x"), .int(1)])])])])
    var judged = fields
    judged["judge_questions"] = question
    let withJudge = CaptionCycleReward(meteor: meteor, judge: down, meteorWeight: 0.25, judgeWeight: 0.75)
    let stage = ScoringStage(rewards: RewardRunner(functions: [withJudge]), groupSize: 2, scaling: .group)
    let records = ["a red circle", "a blue square"].map { text in
      RolloutRecord(promptIndex: 0, question: "q", fields: judged, tokens: [1, 2], text: text, truncated: false)
    }
    let scored = try await stage.run(records)
    #expect(scored.totals == [nil, nil] && scored.advantages == [0, 0])
    #expect(scored.metrics["rewards/caption_cycle/judge_missing"] == 2)
    #expect(down.failures.value == 2)

    // A judge that answers: the second identical question is a cache hit.
    let cache = try #require(down.verdicts)
    let first = try #require(question.arrayValue?.first.flatMap(JudgeQuestion.init(json:)))
    cache.store(first.prompt(description: "a red circle"), 1)
    let again = try await withJudge.scoreWithMetrics([RewardSample(completion: "a red circle", fields: judged)])
    #expect(again.metrics["judge_cache_hits"] == 1 && again.values[0] != nil)
  }
}
}

enum RGBImageFixture {
  static func gray(width: Int, height: Int) -> Imaging.RGBImage {
    Imaging.RGBImage(width: width, height: height, pixels: [UInt8](repeating: 128, count: width * height * 3))
  }
}
