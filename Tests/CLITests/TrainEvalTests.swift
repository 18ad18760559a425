import Foundation
import Testing

/// Evaluation during `vlmrl train` (`dataset.eval_path`): the grounding task on held-out records,
/// greedy through the engine, every `eval_steps` optimizer steps and after the last, as `eval/*`
/// metrics in metrics.jsonl (also on steps that are not logging steps) and one log line each.
@Suite struct TrainEvalTests {
  @Test func heldOutRecordsAreEvaluatedDuringTraining() throws {
    let executable = try #require(
      Harness.executable(), "no vlmrl binary next to the test bundle: build it (swift build --build-tests) or set VLMRL=path")
    let work = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-traineval-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: work) }
    let tokenizer = Catalog.root.appendingPathComponent("assets/tokenizer")
    let made = try Harness.run(executable, [
      "model", "init", "--out", "model", "--tokenizer", tokenizer.path, "--hidden", "32", "--layers", "1", "--heads", "2",
      "--kv-heads", "1", "--vision-hidden", "32", "--vision-depth", "1",
    ], in: work, timeout: 120)
    try #require(made.status == 0, "model init failed: \(made.stderr)")
    for (name, seed) in [("train", "1"), ("held_out", "2")] {
      let synth = try Harness.run(executable, ["data", "synth", "--count", "6", "--image-size", "32", "--seed", seed, "--out", name],
                                  in: work, timeout: 120)
      try #require(synth.status == 0, "data synth failed: \(synth.stderr)")
    }
    let config = """
      {"job_type": "grpo", "dataset": {"labeled_path": "train/single_box.json", "eval_path": "held_out/single_box.json"},
       "models": {"student": "model"},
       "training": {"reward_funcs": ["format"], "output_dir": "out", "per_device_train_batch_size": 2, "roll_out_num": 2,
                    "max_steps": 3, "max_completion_length": 4, "save_steps": 100, "logging_steps": 100,
                    "eval_strategy": "steps", "eval_steps": 2, "eval_max_new_tokens": 8, "max_pixels": 3136}}
      """
    try Data(config.utf8).write(to: work.appendingPathComponent("grpo.json"))
    let run = try Harness.run(executable, ["train", "--config", "grpo.json"], in: work, timeout: 600)
    try #require(run.status == 0, "train failed: \(run.stderr)\n\(run.stdout)")
    let text = run.stdout + run.stderr
    #expect(text.contains("eval at step 2 (grounding, 6 records): format"), "\(text)")
    #expect(text.contains("eval at step 3 (grounding, 6 records)"), "\(text)")
    let rows = try String(contentsOf: work.appendingPathComponent("out/metrics.jsonl"), encoding: .utf8)
      .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    // Step 2 is an eval step but not a logging step: its row is written for the eval metrics.
    let evaluated = rows.filter { $0["eval/format"] != nil }.compactMap { $0["step"] as? Int }
    #expect(evaluated == [2, 3], "\(rows)")
    for row in rows where row["eval/format"] != nil {
      let format = try #require(row["eval/format"] as? Double)
      #expect(format >= 0 && format <= 1)
      #expect(row["eval/gaussian_point"] != nil && row["eval/gaussian_plane"] != nil && row["eval/seconds"] != nil)
    }
    // A config whose eval set holds no gradable records is refused before training, by name.
    let bad = config.replacingOccurrences(of: "\"eval_path\": \"held_out/single_box.json\"", with: "\"eval_path\": \"nowhere.json\"")
      .replacingOccurrences(of: "\"output_dir\": \"out\"", with: "\"output_dir\": \"out2\"")
    try Data(bad.utf8).write(to: work.appendingPathComponent("bad.json"))
    let refused = try Harness.run(executable, ["train", "--config", "bad.json"], in: work, timeout: 120)
    #expect(refused.status == 1 && refused.stderr.contains("nowhere.json"), "\(refused.status) \(refused.stderr)")
  }
}
