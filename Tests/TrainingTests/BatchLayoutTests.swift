import Foundation
import Testing
@testable import Training

/// Log lines a run printed (the trainer's `log` closure).
final class LogLines: @unchecked Sendable {
  private let lock = NSLock()
  private var lines: [String] = []
  func append(_ line: String) { lock.withLock { lines.append(line) } }
  var all: [String] { lock.withLock { lines } }
}

/// TRL's batch keys (issue 15): `per_device_train_batch_size` counts completions, the generation
/// batch is `per_device_train_batch_size x steps_per_generation` completions, and the checks TRL's
/// GRPOConfig makes.
@Suite struct BatchLayoutTests {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..")
    .standardizedFileURL

  func config(_ training: String, jobType: String = "grpo") throws -> TrainingConfig {
    let rewards = jobType == "grpo" ? #""reward_funcs": ["format"], "# : ""
    let json = #"{"job_type": "\#(jobType)", "training": {\#(rewards)\#(training)}}"#
    return try TrainingConfig.parse(Data(json.utf8), source: "test.json")
  }

  func rejection(_ training: String, jobType: String = "grpo") -> String {
    do {
      _ = try config(training, jobType: jobType)
      return "accepted"
    } catch {
      return "\(error)"
    }
  }

  /// The seed's file as written: 8 completions per micro-batch and G 8, so one prompt per generation
  /// batch and one optimizer step, as TRL trains it (not 8 prompts x 8).
  @Test func seedConfigTrainsEightCompletionsPerMicroBatch() throws {
    let seed = try TrainingConfig.load(Self.root.appendingPathComponent("configs/mmkd_rl_grounding.json"))
    let layout = seed.batchLayout
    #expect(layout.completionsPerMicroBatch == 8 && layout.generationBatchSize == 8 && layout.promptsPerGeneration == 1)
    #expect(layout.stepsPerGeneration == 1 && layout.optimizerStepsPerGeneration == 1 && !layout.needsOldLogProbs)
    #expect(layout.microBatches(recordCount: 8) == [Array(0..<8)])
  }

  /// The shipped configs keep the workload they had when the batch counted prompts: the demo 8
  /// prompts x 8 in one micro-batch, the cycle recipe 8 prompts in micro-batches of one prompt's 8.
  @Test func shippedConfigsKeepTheirWorkload() throws {
    let demo = try TrainingConfig.load(Self.root.appendingPathComponent("demo/grpo.json")).batchLayout
    #expect(demo.promptsPerGeneration == 8 && demo.generationBatchSize == 64 && demo.stepsPerGeneration == 1)
    let cycle = try TrainingConfig.load(Self.root.appendingPathComponent("configs/cycle_region_caption.json")).batchLayout
    #expect(cycle.promptsPerGeneration == 8 && cycle.completionsPerMicroBatch == 8 && cycle.stepsPerGeneration == 8)
    #expect(cycle.optimizerStepsPerGeneration == 1)
  }

  /// `generation_batch_size` sets `steps_per_generation` (and the other way round); a generation
  /// batch larger than one optimizer step's micro-batches serves several steps, which then need the
  /// sampling policy's log-probs.
  @Test func generationBatchSizeAndStepsPerGeneration() throws {
    let sized = try config(#""per_device_train_batch_size": 4, "roll_out_num": 2, "generation_batch_size": 16"#).batchLayout
    let stepped = try config(#""per_device_train_batch_size": 4, "roll_out_num": 2, "steps_per_generation": 4"#).batchLayout
    #expect(sized == stepped)
    #expect(sized.promptsPerGeneration == 8 && sized.stepsPerGeneration == 4 && sized.optimizerStepsPerGeneration == 4)
    #expect(sized.needsOldLogProbs)
    let accumulated = try config(#""per_device_train_batch_size": 4, "roll_out_num": 2, "gradient_accumulation_steps": 2, "#
      + #""generation_batch_size": 16, "num_iterations": 3"#).batchLayout
    #expect(accumulated.optimizerStepsPerPass == 2 && accumulated.optimizerStepsPerGeneration == 6)
    #expect(accumulated.microBatchRange(ofStep: 0, microBatchCount: 4) == 0..<2)
    #expect(accumulated.microBatchRange(ofStep: 1, microBatchCount: 4) == 2..<4)
    #expect(accumulated.microBatchRange(ofStep: 2, microBatchCount: 4) == 0..<2)  // second pass
    // Defaults: steps_per_generation = gradient_accumulation_steps.
    let plain = try config(#""per_device_train_batch_size": 6, "roll_out_num": 3, "gradient_accumulation_steps": 2"#).batchLayout
    #expect(plain.generationBatchSize == 12 && plain.promptsPerGeneration == 4 && plain.optimizerStepsPerGeneration == 1)
  }

  /// Micro-batches count completions: one may hold part of a prompt's group.
  @Test func microBatchesSplitGroups() throws {
    let layout = try config(#""per_device_train_batch_size": 3, "roll_out_num": 2, "gradient_accumulation_steps": 2"#).batchLayout
    #expect(layout.promptsPerGeneration == 3)
    #expect(layout.microBatches(recordCount: 6) == [[0, 1, 2], [3, 4, 5]])
  }

  /// TRL's errors, naming the key.
  @Test func inconsistentBatchKeysAreRejected() {
    let both = rejection(#""per_device_train_batch_size": 8, "generation_batch_size": 16, "steps_per_generation": 2"#)
    #expect(both.contains("training.generation_batch_size") && both.contains("steps_per_generation"), "\(both)")
    let notGlobal = rejection(#""per_device_train_batch_size": 8, "generation_batch_size": 12"#)
    #expect(notGlobal.contains("training.generation_batch_size") && notGlobal.contains("divisible by the global batch size"),
            "\(notGlobal)")
    let partialGroup = rejection(#""per_device_train_batch_size": 4, "roll_out_num": 8"#)
    #expect(partialGroup.contains("training.per_device_train_batch_size") && partialGroup.contains("num_generations (8)")
      && partialGroup.contains("would be 32"), "\(partialGroup)")
    let sizedPartial = rejection(#""per_device_train_batch_size": 2, "roll_out_num": 4, "generation_batch_size": 6"#)
    #expect(sizedPartial.contains("training.generation_batch_size") && sizedPartial.contains("num_generations (4)"), "\(sizedPartial)")
    let spanning = rejection(#""per_device_train_batch_size": 8, "gradient_accumulation_steps": 2, "steps_per_generation": 3"#)
    #expect(spanning.contains("training.steps_per_generation") && spanning.contains("multiple of gradient_accumulation_steps"),
            "\(spanning)")
    let cycle = rejection(#""per_device_train_batch_size": 4, "roll_out_num": 2, "steps_per_generation": 2"#, jobType: "cycle")
    #expect(cycle.contains("training.steps_per_generation") && cycle.contains("one optimizer step per generation batch"), "\(cycle)")
    let sft = rejection(#""steps_per_generation": 2"#, jobType: "sft")
    #expect(sft.contains("training.steps_per_generation") && sft.contains("only GRPO"), "\(sft)")
  }
}
