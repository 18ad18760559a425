import Common
import Datasets
import Foundation
import Models
import NN
import Testing
import Torch
import Prompting
@testable import Evaluation

/// Every task end to end on the tiny random checkpoints: model load, prompts, batched greedy
/// decoding through the rollout engine, scoring and the report.
@Suite(.serialized) struct EndToEndTests {
  func settings(_ task: EvalTask, _ data: URL, model: URL = Fixtures.qwen25, batchSize: Int = 2) -> EvalSettings {
    EvalSettings(model: model.path, task: task, data: [data.path], batchSize: batchSize, maxNewTokens: 4)
  }

  func checkRun(_ run: EvalRun, records: Int) {
    #expect(run.report.sets.first?.evaluated == records)
    #expect(run.samples.count == records)
    for metric in run.report.overall {
      #expect(metric.value >= 0 && metric.value <= 1, "\(metric.name) = \(metric.value)")
    }
    #expect(run.report.sets.first?.generatedTokens ?? 0 >= records)
    #expect((run.report.sets.first?.generatedTokens ?? 99) <= 4 * records)
  }

  @Test func everyTaskRunsOnTheTinyModel() async throws {
    let root = try Fixtures.temporaryFolder("e2e")
    defer { try? FileManager.default.removeItem(at: root) }
    let rec = root.appendingPathComponent("refcoco_val.json")
    try Fixtures.writeJSON(Fixtures.recRecords(3), to: rec)
    let counting = root.appendingPathComponent("counting.jsonl")
    try Fixtures.writeJSONLines(Fixtures.countingRecords(), to: counting)
    let geoqa = root.appendingPathComponent("geoqa.jsonl")
    try Fixtures.writeJSONLines(Fixtures.geoqaRecords(), to: geoqa)
    let aokvqa = root.appendingPathComponent("aokvqa.json")
    try Fixtures.writeJSON(Fixtures.aokvqaRecords(), to: aokvqa)
    let grounding = try SyntheticTasks.write(task: .singleBox, count: 2, seed: 1, imageSize: 56, to: root.appendingPathComponent("g"))

    let recRun = try await EvalRunner.run(settings(.rec, rec), log: { _ in })
    checkRun(recRun, records: 3)
    #expect(recRun.report.boxFrame == "resized")
    checkRun(try await EvalRunner.run(settings(.counting, counting), log: { _ in }), records: 2)
    checkRun(try await EvalRunner.run(settings(.geoqa, geoqa), log: { _ in }), records: 2)
    checkRun(try await EvalRunner.run(settings(.aokvqa, aokvqa), log: { _ in }), records: 2)
    let groundingRun = try await EvalRunner.run(settings(.grounding, grounding), log: { _ in })
    checkRun(groundingRun, records: 2)
    #expect(groundingRun.report.overall.map(\.name) == ["format", "gaussian_point", "gaussian_plane"])
    #expect(EvalOutput.console(groundingRun.report).last?.hasPrefix("2 examples: format ") == true)
  }

  /// Batching changes nothing: each prompt's greedy output is the same alone or with others, so
  /// outputs are matched to their prompts.
  @Test func outputsDoNotDependOnTheBatch() async throws {
    let root = try Fixtures.temporaryFolder("batch")
    defer { try? FileManager.default.removeItem(at: root) }
    let rec = root.appendingPathComponent("refcoco_val.json")
    try Fixtures.writeJSON(Fixtures.recRecords(3), to: rec)
    var batched = settings(.rec, rec, batchSize: 3)
    batched.maxNewTokens = 6
    var single = batched
    single.batchSize = 1
    let a = try await EvalRunner.run(batched, log: { _ in })
    let b = try await EvalRunner.run(single, log: { _ in })
    #expect(a.samples.map(\.output) == b.samples.map(\.output))
    #expect(a.samples.map(\.source) == b.samples.map(\.source))
  }

  /// `--adapter`: a zero adapter (B = 0, as peft initializes it) leaves every output as the base
  /// model's; a trained-looking one (random B) changes them.
  @Test func adaptersApplyOnTopOfTheModel() async throws {
    let root = try Fixtures.temporaryFolder("adapter")
    defer { try? FileManager.default.removeItem(at: root) }
    let rec = root.appendingPathComponent("refcoco_val.json")
    try Fixtures.writeJSON(Fixtures.recRecords(3), to: rec)
    let model = try QwenVLModel.load(directory: Fixtures.qwen25)
    let config = LoRAConfig(rank: 2, alpha: 4, dropout: 0, targets: .names(["q_proj", "v_proj", "down_proj"]))
    let adapters = try model.addAdapters(config)
    try model.saveAdapter(config, baseModel: nil, to: root.appendingPathComponent("zero"))
    let generator = Generator(seed: 3, device: .cpu)
    for (_, adapter) in adapters {
      adapter.up.weight.assign(Tensor.randn(adapter.up.weight.value.shape, dtype: .float32, generator: generator) * 4)
    }
    try model.saveAdapter(config, baseModel: nil, to: root.appendingPathComponent("random"))
    var base = settings(.rec, rec, batchSize: 3)
    base.maxNewTokens = 6
    var zero = base, random = base
    zero.adapter = root.appendingPathComponent("zero").path
    random.adapter = root.appendingPathComponent("random").path
    let baseOutputs = try await EvalRunner.run(base, log: { _ in }).samples.map(\.output)
    #expect(try await EvalRunner.run(zero, log: { _ in }).samples.map(\.output) == baseOutputs)
    #expect(try await EvalRunner.run(random, log: { _ in }).samples.map(\.output) != baseOutputs)
  }

  @Test func qwen2ReadsBoxesOnTheThousandScale() async throws {
    let root = try Fixtures.temporaryFolder("qwen2")
    defer { try? FileManager.default.removeItem(at: root) }
    let rec = root.appendingPathComponent("refcoco_val.json")
    try Fixtures.writeJSON(Fixtures.recRecords(2), to: rec)
    let run = try await EvalRunner.run(settings(.rec, rec, model: Fixtures.qwen2), log: { _ in })
    #expect(run.report.boxFrame == "norm1000" && run.report.modelFamily == "qwen2_vl")
    checkRun(run, records: 2)
  }
}
