import ArgumentParser
import Datasets
import Evaluation
import Foundation
import Hub
import Models

/// `vlmrl eval`: the seeds' test protocols (REC, counting, GeoQA, A-OKVQA) and the grounding
/// rewards, greedy through the rollout engine, with report files; `vlmrl eval compare` puts two
/// runs side by side.
struct Eval: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Evaluate a model: rec, counting, geoqa, aokvqa or grounding (greedy, batched); compare two runs.",
    subcommands: [Run.self, Compare.self], defaultSubcommand: Run.self)

  struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Evaluate a model on test sets (docs/eval.md describes each task).")
    @Option(help: "Model folder, hub id (downloaded when missing), or training checkpoint folder.") var model: String
    @Option(help: "LoRA adapter folder (peft layout) applied on top of the model.") var adapter: String?
    @Option(help: "rec, counting, geoqa, aokvqa or grounding.") var task = "grounding"
    @Option(parsing: .upToNextOption, help: "Test set files, or hub datasets as hub:org/name[:split] (several allowed, each scored on its own).")
    var data: [String]
    @Option(help: "Folder that relative image paths are resolved against.") var imageRoot: String?
    @Option(help: "REC prompt and box extraction: r1 or baseline.") var method = "r1"
    @Option(help: "Records drawn per set with the seed (default: 500 for rec, every record otherwise).") var sampleNum: Int?
    @Option(help: "Sampling seed.") var seed: UInt64 = 42
    @Option(help: "Prompts per rollout-engine call.") var batchSize = 32
    @Option(help: "Maximum new tokens (default: 256; 32 for grounding).") var maxNewTokens: Int?
    @Option(help: "Output folder for eval.json, samples.jsonl and eval.md.") var out: String?
    @Option(help: "cpu or cuda[:i].") var device = "cpu"
    @Option(help: "float32, bfloat16 or float16 (default: bfloat16 on CUDA, float32 on CPU).") var dtype: String?
    @Option(help: "Grounding: comma-separated reward functions.") var funcs = "format,gaussian_point,gaussian_plane"
    @Option(help: "Image processor min_pixels (default: the model's).") var minPixels: Int?
    @Option(help: "Image processor max_pixels (default: the model's).") var maxPixels: Int?
    @Option(help: "Failures listed per set in eval.md.") var failures = 10
    @Flag(help: "Print every sample.") var verbose = false
    @Flag(help: "No progress lines on stderr.") var quiet = false

    func run() async throws {
      guard let evalTask = EvalTask(rawValue: task) else {
        throw ValidationError("--task: '\(task)' is not one of \(EvalTask.allCases.map(\.rawValue).joined(separator: ", "))")
      }
      guard let style = RECPromptStyle(rawValue: method) else { throw ValidationError("--method: '\(method)' is not r1 or baseline") }
      _ = try usableDevice(device)  // CUDA asked for where it cannot load: one line, before any work
      let isCUDA = device.lowercased().hasPrefix("cuda") || device.lowercased() == "gpu"
      // Hub ids and hub datasets missing from the cache are downloaded before the run reads them.
      _ = try await HubModels.resolve(model)
      if let adapter { _ = try await HubModels.resolve(adapter) }
      var dataPaths: [String] = []
      for path in data { dataPaths.append(try await HubDatasets.localPath(path)) }
      let settings = EvalSettings(
        model: model, adapter: adapter, task: evalTask, data: dataPaths, imageRoot: imageRoot, method: style,
        sampleNum: sampleNum ?? evalTask.defaultSampleNum, seed: seed, batchSize: batchSize, maxNewTokens: maxNewTokens,
        device: device, dtype: dtype ?? (isCUDA ? "bfloat16" : "float32"),
        rewardFuncs: funcs.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty },
        minPixels: minPixels, maxPixels: maxPixels)
      let quiet = self.quiet
      let run = try await EvalRunner.run(settings, switches: KernelSwitches.fromEnvironment()) { line in
        if !quiet { FileHandle.standardError.write(Data((line + "\n").utf8)) }
      }
      if verbose {
        for sample in run.samples {
          print("[\(sample.source)] \(sample.output.debugDescription) -> \(sample.extracted?.jsonString ?? "none")"
            + (sample.correct.map { $0 ? " correct" : " wrong" } ?? "")
            + sample.values.sorted { $0.key < $1.key }.map { String(format: " %@=%.3f", $0.key, $0.value) }.joined())
        }
      }
      if let out {
        try EvalOutput.write(run, to: URL(fileURLWithPath: out), failuresPerSet: failures)
        if !quiet { FileHandle.standardError.write(Data("wrote eval.json, samples.jsonl and eval.md to \(out)\n".utf8)) }
      }
      EvalOutput.console(run.report).forEach { print($0) }
    }
  }

  struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Two eval.json files side by side, with B - A.")
    @Argument(help: "Run A's eval.json (or its folder), e.g. the base model.") var first: String
    @Argument(help: "Run B's eval.json (or its folder), e.g. the trained model.") var second: String

    func run() throws {
      let a = try EvalReport.read(Self.reportURL(first))
      let b = try EvalReport.read(Self.reportURL(second))
      EvalComparison.render(a, b, labels: (first, second)).forEach { print($0) }
    }

    static func reportURL(_ path: String) -> URL {
      var isFolder: ObjCBool = false
      let url = URL(fileURLWithPath: path)
      if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
        return url.appendingPathComponent(EvalOutput.reportFile)
      }
      return url
    }
  }
}
