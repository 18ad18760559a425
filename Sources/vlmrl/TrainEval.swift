import Datasets
import Evaluation
import Foundation
import ModelConfig
import Models
import Prompting
import Training

/// Evaluation during `vlmrl train` (`dataset.eval_path`, docs/training.md "Evaluation during
/// training"): the `vlmrl eval` task that matches the held-out records, greedy through the rollout
/// engine on the policy as it is at that step (LoRA adapters applied), with the prompt settings of
/// the training run. Its overall metrics become `eval/<metric>` in metrics.jsonl and TensorBoard.
final class InTrainingEvaluation: TrainingEvaluator {
  let settings: EvalSettings
  let folder: ModelFolder
  let builder: PromptBuilder
  let generator: EngineGenerator

  init(config: TrainingConfig, modelDirectory: URL, model: QwenVLModel, source: String) throws {
    guard let path = config.dataset.evalPath else { throw TrainingError.invalidArgument("\(source): dataset.eval_path is not set") }
    let t = config.training
    let task = try Self.task(config, path: path, source: source)
    folder = try ModelFolder(directory: modelDirectory)
    builder = try PromptBuilder(folder: folder, minPixels: t.minPixels, maxPixels: t.maxPixels)
    settings = EvalSettings(model: modelDirectory.path, task: task, data: [path], imageRoot: config.dataset.imageRoot,
                            sampleNum: t.evalSampleNum ?? task.defaultSampleNum, seed: UInt64(truncatingIfNeeded: t.seed),
                            batchSize: t.perDeviceEvalBatchSize, maxNewTokens: t.evalMaxNewTokens ?? task.defaultMaxNewTokens,
                            device: "\(model.device)", dtype: "\(model.dtype)", minPixels: t.minPixels, maxPixels: t.maxPixels)
    generator = EngineGenerator(model: model, builder: builder)
  }

  /// `eval_task`, or the task whose record kinds the eval set holds (REC -> rec, A-OKVQA -> aokvqa,
  /// boxes -> grounding); R1-V records serve both counting and geoqa, so they need `eval_task`.
  static func task(_ config: TrainingConfig, path: String, source: String) throws -> EvalTask {
    if let name = config.training.evalTask {
      guard let task = EvalTask(rawValue: name) else {
        throw TrainingError.invalidConfig(source: source, path: "training.eval_task", reason: "unknown task \(name)")
      }
      return task
    }
    let kinds = Set(try DatasetLoader.load(path: path, imageRoot: config.dataset.imageRoot).examples.map(\.kind))
    if let task = EvalTask.allCases.first(where: { !kinds.isEmpty && kinds.isSubset(of: $0.acceptedKinds) }),
      task != .counting, task != .geoqa {
      return task
    }
    let names = kinds.map(\.rawValue).sorted().joined(separator: ", ")
    let hint = kinds.isSubset(of: EvalTask.counting.acceptedKinds) && !kinds.isEmpty
      ? "R1-V records are scored as counting or geoqa: set training.eval_task"
      : "no eval task reads these records (rec, counting, geoqa, aokvqa, grounding; docs/eval.md)"
    throw TrainingError.invalidConfig(source: source, path: "dataset.eval_path", reason: "\(path) holds \(names) records; \(hint)")
  }

  func evaluate(step: Int, log: (String) -> Void) async throws -> [String: Double] {
    let run = try await EvalRunner.run(settings, folder: folder, builder: builder, generator: generator, log: { _ in })
    let metrics = run.report.overall.filter { $0.count > 0 }
    log("eval at step \(step) (\(settings.task.rawValue), \(metrics.first?.count ?? 0) records): "
      + metrics.map { String(format: "%@ %.4f", $0.name, $0.value) }.joined(separator: ", "))
    return Dictionary(metrics.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
  }
}
