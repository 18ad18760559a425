import ArgumentParser
import Datasets
import Foundation
import ModelConfig
import Models
import Torch
import Training

/// `vlmrl train --config FILE`: GRPO (job_type grpo, alias mmkd_rl_grounding / r1) as docs/grpo.md.
struct Train: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Train with GRPO from a config file (the seeds' format).")
  @Option(help: "Config file (JSON).") var config: String
  @Option(name: .customLong("set"), help: "Override a config value, e.g. training.learning_rate=2e-6 (repeatable).")
  var overrides: [String] = []
  @Flag(help: "Continue from the newest checkpoint in output_dir.") var resume = false
  @Flag(help: "Replace an earlier run's outputs in output_dir (otherwise a used output_dir is an error).") var overwrite = false
  @Option(help: "cpu or cuda[:i].") var device = "cpu"
  @Option(help: "Parameter dtype (float32 or bfloat16; default: bfloat16 when training.bf16 on CUDA).") var dtype: String?

  func run() async throws {
    let trainingConfig = try TrainingConfig.load(URL(fileURLWithPath: config), overrides: overrides)
    guard trainingConfig.jobType != .sft else {
      throw ValidationError("\(config): job_type sft is not implemented yet (GRPO only)")
    }
    let device = try usableDevice(device)
    let parameterType: DType = try dtype.map {
      guard let t = DType(name: $0) else { throw ValidationError("--dtype: unknown dtype '\($0)'") }
      return t
    } ?? (device.isCUDA && trainingConfig.training.bf16 ? .bfloat16 : .float32)
    guard let student = trainingConfig.models.student else { throw ValidationError("\(config): models.student is missing") }
    let modelDirectory = try ModelLocator.resolve(student)
    let examples = try loadTrainingDataset(trainingConfig, source: config)
    let trainer = try GRPOTrainer(config: trainingConfig, modelDirectory: modelDirectory, examples: examples,
                                  device: device, dtype: parameterType,
                                  switches: KernelSwitches.fromEnvironment())
    print("GRPO: \(examples.count) examples, \(trainer.totalSteps) steps, model \(modelDirectory.path) on \(device) (\(parameterType))")
    try await trainer.run(resume: resume || trainingConfig.training.resumeFromCheckpoint?.boolValue == true, overwrite: overwrite)
    print("done: outputs in \(trainer.outputDirectory.path)")
  }
}

/// The examples of a config's `dataset.labeled_path` (a data file or a dataset YAML), with the
/// config's bad-record and image filters; the load summary is printed.
func loadTrainingDataset(_ config: TrainingConfig, source: String) throws -> [Example] {
  guard let path = config.dataset.labeledPath else { throw ValidationError("\(source): dataset.labeled_path is missing") }
  var options = LoadOptions()
  options.onBadRecord = config.training.onBadRecord
  options.recPrompt = config.training.recPrompt
  if config.training.filterBigImages { options.maxImageSide = LoadOptions.bigImageSide }
  if let seed = config.training.dataSeed { options.dataSeed = UInt64(seed) }
  let loaded: LoadedDataset
  if path.hasSuffix(".yaml") || path.hasSuffix(".yml") {
    loaded = try DatasetLoader.load(try DatasetConfig.load(URL(fileURLWithPath: path)), options: options)
  } else {
    loaded = try DatasetLoader.load(path: path, imageRoot: config.dataset.imageRoot, options: options)
  }
  loaded.summary.lines.forEach { print($0) }
  return loaded.examples
}
