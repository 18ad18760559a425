import Datasets
import Foundation
import Testing
@testable import Models
@testable import Torch
@testable import Training

/// Data-parallel SFT on two ranks in one process (two Gloo groups over loopback, one trainer each,
/// each on its own thread) against one process training the same global batch.
extension TinyModelTests {
@Suite(.serialized) struct DataParallelSFTTests {
  func config(_ root: URL, _ name: String, batch: Int, zeroStage: Int) throws -> (TrainingConfig, [Example]) {
    let data = try SyntheticTasks.write(task: .singleBox, count: 8, seed: 4, imageSize: 56, to: root.appendingPathComponent("data"))
    let json = """
    {"job_type": "sft", "dataset": {"labeled_path": "\(data.path)"}, "models": {"student": "\(SFTAccumulationTests.modelFolder.path)"},
     "training": {"output_dir": "\(root.appendingPathComponent(name).path)", "per_device_train_batch_size": \(batch),
                  "max_steps": 2, "save_steps": 1000, "learning_rate": 0.003, "warmup_steps": 0, "logging_steps": 1,
                  "seed": 2, "zero_stage": \(zeroStage)}}
    """
    return (try TrainingConfig.parse(Data(json.utf8), source: "test config"), try DatasetLoader.load(path: data.path).examples)
  }

  /// Two ranks at batch 2 (ZeRO 0 and 2) take the steps of one process at batch 4: the same loss and
  /// gradient norm, weights equal within float32 rounding, identical on both ranks; rank 0 alone
  /// writes the metrics and the final model.
  @Test(arguments: [0, 2])
  func twoRanksTrainAsOneProcessWithTheGlobalBatch(zeroStage: Int) throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-sft-dp-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    let (wholeConfig, examples) = try config(root, "whole", batch: 4, zeroStage: zeroStage)
    let whole = try SFTTrainer(config: wholeConfig, modelDirectory: SFTAccumulationTests.modelFolder, examples: examples, log: { _ in })
    let wholeRows = try whole.run(log: { _ in })

    let (rankConfig, _) = try config(root, "ranks", batch: 2, zeroStage: zeroStage)
    let port = ProcessGroup.freeLoopbackPort()
    let results = onRankThreads(2) { rank -> (SFTTrainer, [MetricsRow]) in
      let group = try ProcessGroup(rank: rank, worldSize: 2, masterAddress: "127.0.0.1", port: port, timeout: 60)
      let trainer = try SFTTrainer(config: rankConfig, modelDirectory: SFTAccumulationTests.modelFolder, examples: examples,
                                   processGroup: group, log: { _ in })
      return (trainer, try trainer.run(log: { _ in }))
    }
    let (rank0, rows) = try results.get(0), (rank1, _) = try results.get(1)
    #expect((rank0.stepper.sharding?.stage ?? 0) == zeroStage)
    #expect(rank0.totalSteps == whole.totalSteps)
    for (mine, theirs) in zip(rows, wholeRows) {
      for key in [MetricName.loss, MetricName.gradNorm] {
        let (x, y) = (mine.values[key]!, theirs.values[key]!)
        #expect(abs(x - y) <= 1e-5 * max(1, abs(y)), "\(key) at step \(mine.step): \(x) vs \(y)")
      }
      #expect(mine.values[MetricName.numTokens] == theirs.values[MetricName.numTokens], "tokens summed over the ranks")
    }
    for (((name, p), (_, q)), (_, r)) in zip(zip(rank0.model.namedParameters(), whole.model.namedParameters()),
                                            rank1.model.namedParameters()) {
      #expect(p.value.maxAbsDifference(q.value) < 1e-4, "\(name): 2 ranks vs 1 process")
      #expect(p.value.maxAbsDifference(r.value) == 0, "\(name): rank 0 vs rank 1")
    }
    let output = root.appendingPathComponent("ranks")
    #expect(try MetricsJSONL.read(output.appendingPathComponent("metrics.jsonl")).map(\.step) == [1, 2])
    #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent("final/model.safetensors").path))
  }
}
}
