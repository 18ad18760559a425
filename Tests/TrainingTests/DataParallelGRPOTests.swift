import Datasets
import Foundation
import NN
import Rewards
import Testing
@testable import Models
@testable import Torch
@testable import Training

/// Data-parallel GRPO on two ranks in one process (two Gloo groups over loopback, one trainer each)
/// against one process training the same global batch.
extension TinyModelTests {
@Suite(.serialized) struct DataParallelGRPOTests {
  /// `perDevice` completions per rank; with G = 4, one process at 8 and two ranks at 4 both train on
  /// 2 prompts per generation batch: the same 2 prompts, rank r taking prompt r.
  func config(perDevice: Int, output: URL, data: URL, scaling: String, zeroStage: Int = 0) throws -> TrainingConfig {
    let json = """
    {"job_type": "mmkd_rl_grounding", "dataset": {"labeled_path": "\(data.path)"},
     "models": {"student": "\(TinySetup.modelFolder.path)"},
     "training": {"reward_funcs": ["format"], "output_dir": "\(output.path)",
                  "per_device_train_batch_size": \(perDevice), "roll_out_num": 4, "max_steps": 3, "max_completion_length": 6,
                  "learning_rate": 0.001, "save_steps": 2, "logging_steps": 1, "beta": 0.04, "seed": 7,
                  "warmup_steps": 0, "scale_rewards": "\(scaling)", "zero_stage": \(zeroStage)}}
    """
    return try TrainingConfig.parse(Data(json.utf8), source: "test config")
  }

  /// A reward that varies with any text, so advantages are not all zero on a random tiny model.
  func rewards() -> RewardRunner {
    RewardRunner(functions: [SampleReward(name: "length_parity") { Double($0.completion.unicodeScalars.count % 5) / 4 }])
  }

  /// Trains one trainer per rank, each with its own process group, concurrently. Each rank's task
  /// runs on its own serial queue (a task executor), not on the cooperative pool: a rank blocks in
  /// its collectives until the other arrives, which on a pool of two threads could starve the other.
  func trainRanks(_ worldSize: Int, config: TrainingConfig, examples: [Example]) async throws
    -> [(trainer: GRPOTrainer, rows: [MetricsRow])] {
    let port = ProcessGroup.freeLoopbackPort()
    let executors = (0..<worldSize).map { SerialQueueExecutor(label: "rank \($0)") }
    let rewards = rewards()
    let results = try await withThrowingTaskGroup(of: (Int, GRPOTrainer, [MetricsRow]).self) { tasks in
      for rank in 0..<worldSize {
        tasks.addTask(executorPreference: executors[rank]) {
          let group = try ProcessGroup(rank: rank, worldSize: worldSize, masterAddress: "127.0.0.1", port: port, timeout: 60)
          let trainer = try GRPOTrainer(config: config, modelDirectory: TinySetup.modelFolder, examples: examples,
                                        rewards: rewards, processGroup: group)
          return (rank, trainer, try await trainer.run(log: { _ in }))
        }
      }
      return try await tasks.reduce(into: [:]) { $0[$1.0] = (trainer: $1.1, rows: $1.2) }
    }
    return (0..<worldSize).map { results[$0]! }
  }

  /// The largest difference between two models' trainable weights, relative to each tensor's scale.
  func weightDifference(_ a: QwenVLModel, _ b: QwenVLModel) -> (name: String, value: Double) {
    var worst = (name: "", value: 0.0)
    for ((name, x), (_, y)) in zip(a.namedParameters(), b.namedParameters()) {
      let scale = max(x.value.abs().max().item(), 1e-3)
      let difference = x.value.maxAbsDifference(y.value) / scale
      if difference > worst.value { worst = (name, difference) }
    }
    return worst
  }

  /// Two ranks at per-device batch 4 end with identical weights, equal (float32 rounding aside) to
  /// one process at 8 over the same prompts and completions; rank 0 alone wrote the outputs, with the
  /// rewards of the whole batch. With ZeRO stage 1 or 2 the same holds, and the checkpoint holds one
  /// optimizer shard per rank whose merge is the one process's optimizer state.
  @Test(arguments: zip(["group", "batch", "group", "batch"], [0, 0, 1, 2]))
  func twoRanksTrainAsOneProcessWithTheGlobalBatch(scaling: String, zeroStage: Int) async throws {
    let root = TinySetup.temporaryFolder("data-parallel")
    defer { try? FileManager.default.removeItem(at: root) }
    let examples = try TinySetup.examples(root.appendingPathComponent("data"))
    let single = try GRPOTrainer(config: try config(perDevice: 8, output: root.appendingPathComponent("single"), data: root,
                                                    scaling: scaling),
                                 modelDirectory: TinySetup.modelFolder, examples: examples, rewards: rewards())
    let singleRows = try await single.run(log: { _ in })
    let output = root.appendingPathComponent("ranks")
    let ranks = try await trainRanks(2, config: try config(perDevice: 4, output: output, data: root, scaling: scaling,
                                                           zeroStage: zeroStage), examples: examples)
    #expect((ranks[0].trainer.stepper.sharding?.stage ?? 0) == zeroStage)

    #expect(ranks[0].trainer.totalSteps == single.totalSteps)
    let between = weightDifference(ranks[0].trainer.model, ranks[1].trainer.model)
    #expect(between.value == 0, "ranks differ at \(between.name) by \(between.value)")
    let versusOne = weightDifference(ranks[0].trainer.model, single.model)
    // Float32 sums in another order differ in the last bits; AdamW divides each gradient by its own
    // magnitude, which lifts that to ~3e-5 of a tensor's scale after 3 steps on this model (a wrong
    // gradient scale shows in grad_norm below, which Adam's normalisation would hide).
    #expect(versusOne.value < 1e-4, "2 ranks vs 1 process differ at \(versusOne.name) by \(versusOne.value) (relative)")
    let changed = weightDifference(single.model, try QwenVLModel.load(directory: TinySetup.modelFolder))
    #expect(changed.value > 1e-4, "training moved the weights")

    for (mine, theirs) in zip(ranks[0].rows, singleRows) {
      for key in [MetricName.reward, MetricName.rewardStd, MetricName.meanLength, "rewards/length_parity/mean"] {
        #expect(abs((mine.values[key] ?? .nan) - (theirs.values[key] ?? .nan)) < 1e-9, "\(key) at step \(mine.step)")
      }
      #expect(abs(mine.values[MetricName.loss]! - theirs.values[MetricName.loss]!) < 1e-4, "loss at step \(mine.step)")
      let norms = (mine.values[MetricName.gradNorm]!, theirs.values[MetricName.gradNorm]!)
      #expect(abs(norms.0 - norms.1) <= 1e-4 * norms.1, "grad_norm at step \(mine.step): \(norms.0) vs \(norms.1)")
    }
    let written = try MetricsJSONL.read(output.appendingPathComponent("metrics.jsonl"))
    #expect(written.map(\.step) == [1, 2, 3], "one row per step: rank 0 alone writes")
    for file in ["checkpoint-2/model.safetensors", "checkpoint-3/trainer_state.json", "final/model.safetensors",
                 "rollouts/step_1.md", "report.html"] {
      #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent(file).path), "\(file) missing")
    }
    if zeroStage > 0 {
      try checkShardedCheckpoint(output.appendingPathComponent("checkpoint-2"),
                                 against: root.appendingPathComponent("single/checkpoint-2"), model: single.model)
    }
  }

  /// A ZeRO checkpoint: one optimizer file per rank and the layout, no whole optimizer file; merged,
  /// every parameter's moments and step equal the one-process checkpoint's (within the training's
  /// float32 rounding).
  func checkShardedCheckpoint(_ sharded: URL, against whole: URL, model: QwenVLModel) throws {
    let fm = FileManager.default
    for file in ["optimizer-rank0-of-2.safetensors", "optimizer-rank1-of-2.safetensors", "optimizer-shards.json"] {
      #expect(fm.fileExists(atPath: sharded.appendingPathComponent(file).path), "\(file) missing")
    }
    #expect(!fm.fileExists(atPath: sharded.appendingPathComponent("optimizer.safetensors").path))
    let merged = try Checkpoint.savedOptimizerState(sharded), reference = try Checkpoint.savedOptimizerState(whole)
    var compared = 0
    for (name, parameter) in model.namedParameters() where parameter.trainable {
      for field in ["exp_avg", "exp_avg_sq", "step"] {
        let expected = try #require(try reference("\(name).\(field)"), "\(name).\(field) in the one-process checkpoint")
        let got = try #require(try merged("\(name).\(field)"), "\(name).\(field) in the merged shards")
        #expect(got.shape == expected.shape, "\(name).\(field)")
        let scale = max(expected.abs().max().item(), 1e-12)
        #expect(got.maxAbsDifference(expected) <= 1e-3 * scale, "\(name).\(field) differs")
        compared += 1
      }
    }
    #expect(compared > 10)
  }
}
}

/// Runs a task's jobs on one serial dispatch queue (threads outside the cooperative pool).
final class SerialQueueExecutor: TaskExecutor, @unchecked Sendable {
  let queue: DispatchQueue
  init(label: String) { queue = DispatchQueue(label: label) }

  func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
  }
}
