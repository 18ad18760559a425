import Common
import Datasets
import Foundation
import ModelConfig
import Testing
@testable import Evaluation

/// The runner with canned outputs: sampling, ground truths, metrics and the report files.
struct RunnerTests {
  /// Hand-labelled REC outputs for the four records of `Fixtures.recRecords(4)`.
  static func recOutput(_ example: Example) -> String {
    switch example.source.index {
    case 0: return "<think>left</think><answer>[10, 10, 60, 80]</answer>"  // exact: IoU 1
    case 1: return "<answer>[36, 10, 86, 80]</answer>"  // truth [11,10,61,80]: 1750 / 5250 = 1/3
    case 2: return "no idea"  // nothing extracted
    default: return "<answer>{\"bbox_2d\": [13, 10, 63, 80]}</answer>"  // exact
    }
  }

  @Test func recMetricsAndReportFiles() async throws {
    let root = try Fixtures.temporaryFolder("report")
    defer { try? FileManager.default.removeItem(at: root) }
    let data = root.appendingPathComponent("refcoco_val.json")
    try Fixtures.writeJSON(Fixtures.recRecords(4), to: data)
    let run = try await EvalRunner.canned(EvalSettings(model: "tiny", task: .rec, data: [data.path], batchSize: 3)) { Self.recOutput($0) }
    let set = try #require(run.report.sets.first)
    #expect(set.name == "refcoco_val" && set.evaluated == 4 && set.skipped == 0)
    #expect(set.metric("accuracy")?.value == 0.5)
    #expect(abs((set.metric("mean_iou")?.value ?? 0) - 7.0 / 12.0) < 1e-12)
    #expect(set.metric("extracted")?.value == 0.75)
    #expect(run.report.boxFrame == "resized" && run.report.modelFamily == "qwen2_5_vl")
    #expect(run.samples.first?.prompt == "<image>the thing number 0 First output the thinking process in <think> </think> tags and then output the final answer in <answer> </answer> tags. Output the final answer in JSON format.")
    #expect(EvalOutput.console(run.report).last == "4 examples: accuracy 50.00%, mean_iou 0.5833, extracted 75.00%")

    let out = root.appendingPathComponent("out")
    try EvalOutput.write(run, to: out)
    let reread = try EvalReport.read(out.appendingPathComponent("eval.json"))
    #expect(reread == run.report)
    let json = try JSONValue.parse(Data(contentsOf: out.appendingPathComponent("eval.json")))
    #expect(json["settings"]?["max_new_tokens"] == .int(256))
    #expect(json["settings"]?["method"] == .string("r1"))
    #expect(json["sets"]?.arrayValue?.first?["metrics"]?.arrayValue?.count == 3)

    let lines = try String(contentsOf: out.appendingPathComponent("samples.jsonl"), encoding: .utf8)
      .split(separator: "\n").map { try JSONValue.parse(String($0)) }
    #expect(lines.count == 4)
    for line in lines {
      for key in ["set", "source", "prompt", "output", "ground_truth", "correct", "values", "finished"] {
        #expect(line[key] != nil, "samples.jsonl line lacks \(key)")
      }
    }
    #expect(lines[1]["ground_truth"]?.arrayValue?.compactMap(\.doubleValue) == [11, 10, 61, 80])
    #expect(lines[1]["correct"] == .bool(false))
    #expect(lines[2]["extracted"] == nil)

    let markdown = try String(contentsOf: out.appendingPathComponent("eval.md"), encoding: .utf8)
    #expect(markdown.contains("| set | n | accuracy | mean_iou | extracted |"))
    #expect(markdown.contains("| refcoco_val | 4 | 50.00% | 0.5833 | 75.00% |"))
    #expect(markdown.contains("## Failures: refcoco_val (2 shown)"))
    #expect(markdown.contains("- output: no idea"))
  }

  @Test func baselineUsesTheCaptionPrompt() async throws {
    let root = try Fixtures.temporaryFolder("baseline")
    defer { try? FileManager.default.removeItem(at: root) }
    let data = root.appendingPathComponent("refgta.json")
    try Fixtures.writeJSON(Fixtures.recRecords(2), to: data)
    let run = try await EvalRunner.canned(EvalSettings(model: "tiny", task: .rec, data: [data.path], method: .baseline)) { _ in
      "```json\n[{\"bbox_2d\": [10, 10, 60, 80], \"label\": \"thing\"}]\n```"
    }
    #expect(run.samples.map(\.prompt) == ["<image>Locate thing 0, output its bbox coordinates using JSON format.",
                                          "<image>Locate thing 1, output its bbox coordinates using JSON format."])
    // Record 1's truth is [11,10,61,80]: IoU 49*70 / (2*3500 - 3430) = 3430/3570.
    #expect(run.report.sets.first?.metric("accuracy")?.value == 1)
    #expect(abs((run.report.sets.first?.metric("mean_iou")?.value ?? 0) - (1 + 3430.0 / 3570.0) / 2) < 1e-12)
  }

  /// The reference shuffles every set with one generator seeded once, so a set's sample depends on
  /// the sets before it. Here each set is drawn with the seed alone.
  @Test func setSamplesDoNotDependOnSetOrder() async throws {
    let root = try Fixtures.temporaryFolder("order")
    defer { try? FileManager.default.removeItem(at: root) }
    let alpha = root.appendingPathComponent("alpha.json"), beta = root.appendingPathComponent("beta.json")
    try Fixtures.writeJSON(Fixtures.recRecords(10, tag: "alpha"), to: alpha)
    try Fixtures.writeJSON(Fixtures.recRecords(10, tag: "beta"), to: beta)
    func sources(_ order: [URL]) async throws -> [String: [String]] {
      let run = try await EvalRunner.canned(
        EvalSettings(model: "tiny", task: .rec, data: order.map(\.path), sampleNum: 4, seed: 42)) { _ in "none" }
      return Dictionary(grouping: run.samples, by: \.set).mapValues { $0.map(\.source) }
    }
    let forward = try await sources([alpha, beta])
    let backward = try await sources([beta, alpha])
    #expect(forward["alpha"]?.count == 4 && forward["beta"]?.count == 4)
    #expect(forward == backward)
    // A different seed draws a different sample (the seed is used at all).
    let run = try await EvalRunner.canned(EvalSettings(model: "tiny", task: .rec, data: [alpha.path], sampleNum: 4, seed: 7)) { _ in "" }
    #expect(run.samples.map(\.source) != forward["alpha"])
  }

  @Test func countingGeoqaAndAOKVQAThroughTheRunner() async throws {
    let root = try Fixtures.temporaryFolder("tasks")
    defer { try? FileManager.default.removeItem(at: root) }
    let counting = root.appendingPathComponent("superclevr_test200_counting_problems.jsonl")
    try Fixtures.writeJSONLines(Fixtures.countingRecords(), to: counting)
    let countRun = try await EvalRunner.canned(EvalSettings(model: "tiny", task: .counting, data: [counting.path])) { _ in
      "<think>count</think><answer>3</answer>"
    }
    #expect(countRun.report.overall.first { $0.name == "accuracy" }?.value == 0.5)

    let geoqa = root.appendingPathComponent("geoqa_test_prompts.jsonl")
    try Fixtures.writeJSONLines(Fixtures.geoqaRecords(), to: geoqa)
    let geoRun = try await EvalRunner.canned(EvalSettings(model: "tiny", task: .geoqa, data: [geoqa.path])) { _ in "<answer>140</answer>" }
    #expect(geoRun.report.overall.first { $0.name == "accuracy" }?.value == 0.5)  // "140°" yes, "2√3" no
    #expect(geoRun.samples.first?.groundTruth == .string("140°"))

    let aokvqa = root.appendingPathComponent("aokvqa_v1p0_val.json")
    try Fixtures.writeJSON(Fixtures.aokvqaRecords(), to: aokvqa)
    let okRun = try await EvalRunner.canned(EvalSettings(model: "tiny", task: .aokvqa, data: [aokvqa.path])) { _ in "<answer>B</answer>" }
    let metrics = try #require(okRun.report.sets.first?.metrics)
    #expect(metrics.first { $0.name == "mc_accuracy" } == Metric(name: "mc_accuracy", value: 1, count: 2))
    #expect(metrics.first { $0.name == "da_accuracy" } == Metric(name: "da_accuracy", value: 1, count: 1))
    #expect(okRun.samples.last?.groundTruth?["difficult_direct_answer"] == .bool(true))
  }

  @Test func badInputIsAnErrorThatNamesIt() async throws {
    let root = try Fixtures.temporaryFolder("bad")
    defer { try? FileManager.default.removeItem(at: root) }
    let rec = root.appendingPathComponent("refcoco_val.json")
    try Fixtures.writeJSON(Fixtures.recRecords(2), to: rec)
    let kindError = await #expect(throws: EvalError.self) {
      _ = try await EvalRunner.canned(EvalSettings(model: "tiny", task: .counting, data: [rec.path])) { _ in "" }
    }
    guard case .invalidFile(let path, let message)? = kindError else {
      Issue.record("expected invalidFile, got \(String(describing: kindError))")
      return
    }
    #expect(path == rec.path && message.contains("is a rec record"))
    await #expect(throws: EvalError.self) {
      _ = try await EvalRunner.canned(EvalSettings(model: "tiny", task: .rec, data: [rec.path], batchSize: 0)) { _ in "" }
    }
    let adapter = EvalSettings(model: Fixtures.qwen25.path, adapter: "lora-out", task: .rec, data: [rec.path])
    let adapterError = await #expect(throws: EvalError.self) { _ = try await EvalRunner.run(adapter, log: { _ in }) }
    #expect(adapterError?.description.contains("lora-out: cannot load the LoRA adapter") == true)
  }

  @Test func setNamesAreUnique() {
    let paths = ["a/refcoco_val.json", "b/refcoco_val.json", "c/refgta_subsample.json"]
    #expect(paths.indices.map { EvalRunner.uniqueName(for: paths[$0], position: $0, among: paths) }
      == ["refcoco_val#1", "refcoco_val#2", "refgta_subsample"])
  }
}

struct CompareTests {
  static func report(model: String, accuracy: Double, iou: Double) -> EvalReport {
    let metrics = [Metric(name: "accuracy", value: accuracy, count: 500), Metric(name: "mean_iou", value: iou, count: 500)]
    let set = SetResult(name: "refcoco_val", data: "refcoco_val.json", available: 1000, evaluated: 500, skipped: 0,
                        skippedRecords: [], metrics: metrics, truncated: 0, generatedTokens: 0, generationSeconds: 1)
    return EvalReport(settings: EvalSettings(model: model, task: .rec, data: ["refcoco_val.json"], sampleNum: 500),
                      modelFamily: "qwen2_5_vl", boxFrame: "resized", sets: [set], overall: metrics, totalSeconds: 1,
                      finishedAt: "2025-01-01T00:00:00Z", notes: [])
  }

  @Test func sideBySideWithDifferences() {
    let lines = EvalComparison.render(Self.report(model: "base", accuracy: 0.886, iou: 0.75),
                                      Self.report(model: "grpo", accuracy: 0.884, iou: 0.7625), labels: ("base/eval.json", "grpo/eval.json"))
    #expect(lines[0] == "A: base/eval.json (base, task rec)")
    #expect(lines.contains("refcoco_val  accuracy  88.60%  88.40%  -0.20 pp"))
    #expect(lines.contains("refcoco_val  mean_iou  0.7500  0.7625   +0.0125"))
    #expect(!lines.contains { $0.hasPrefix("note:") })
    var other = Self.report(model: "grpo", accuracy: 0.9, iou: 0.8)
    other.settings.seed = 7
    #expect(EvalComparison.render(Self.report(model: "base", accuracy: 0.886, iou: 0.75), other).contains("note: seed differs: 42 vs 7"))
  }
}

/// `--model checkpoint-N/` of a run from before checkpoints carried their companion files: weights
/// from the checkpoint, tokenizer and processor files from the run's `models.student`.
struct ModelFolderTests {
  @Test func checkpointsBorrowTheStudentsCompanionFiles() throws {
    let root = try Fixtures.temporaryFolder("checkpoint")
    defer { try? FileManager.default.removeItem(at: root) }
    let checkpoint = root.appendingPathComponent("checkpoint-2")
    try FileManager.default.createDirectory(at: checkpoint, withIntermediateDirectories: true)
    for name in ["config.json", "model.safetensors"] {
      try FileManager.default.copyItem(at: Fixtures.qwen25.appendingPathComponent(name), to: checkpoint.appendingPathComponent(name))
    }
    try Data("{\"step\": 2}".utf8).write(to: checkpoint.appendingPathComponent("trainer_state.json"))
    // No resolved_config.json yet: nothing to borrow from.
    #expect(try ModelFolder(resolving: checkpoint.path).chatTemplate == nil)
    let config = JSONValue.object(["models": .object(["student": .string(Fixtures.qwen25.path)])])
    try Data(config.jsonString.utf8).write(to: root.appendingPathComponent("resolved_config.json"))
    let folder = try ModelFolder(resolving: checkpoint.path)
    #expect(folder.filesDirectory.standardizedFileURL.path == Fixtures.qwen25.standardizedFileURL.path)
    #expect(folder.weightsEntryFile?.path == checkpoint.appendingPathComponent("model.safetensors").path)
    #expect(folder.chatTemplate != nil && folder.imageProcessorFile == "preprocessor_config.json")
    // A complete folder is used as it is.
    #expect(try ModelFolder(resolving: Fixtures.qwen25.path).filesDirectory.standardizedFileURL.path == Fixtures.qwen25.standardizedFileURL.path)
  }
}
