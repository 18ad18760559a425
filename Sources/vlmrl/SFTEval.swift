import ArgumentParser
import Datasets
import Foundation
import Hub
import ModelConfig
import Models
import Torch
import Training

/// `vlmrl sft --config FILE`: supervised warm-up (job_type sft), loss on assistant tokens.
struct SFT: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "sft", abstract: "Supervised fine-tuning from a config file.")
  @Option(help: "Config file (JSON).") var config: String
  @Option(name: .customLong("set"), help: "Override a config value (repeatable).") var overrides: [String] = []
  @Option(help: "cpu or cuda[:i].") var device = "cpu"
  @Flag(help: "Continue from the newest checkpoint in output_dir.") var resume = false
  @Flag(help: "Replace an earlier run's outputs in output_dir (otherwise a used output_dir is an error).") var overwrite = false
  @Option(help: "Start this many local data-parallel ranks of this command (docs/distributed.md).") var nproc: Int?

  func run() async throws {
    if let nproc { return try LocalLauncher.run(nproc, arguments: LocalLauncher.childArguments(Array(CommandLine.arguments.dropFirst()))) }
    let trainingConfig = try TrainingConfig.load(URL(fileURLWithPath: config), overrides: overrides)
    let processGroup = try joinProcessGroup(trainingConfig, command: nil,
                                            cuda: self.device.lowercased().hasPrefix("cuda") || self.device.lowercased() == "gpu")
    let device = try rankDevice(try usableDevice(self.device), processGroup)
    guard let student = trainingConfig.models.student else { throw ValidationError("\(config): models.student is missing") }
    let modelDirectory = try await HubModels.resolve(student)
    let examples = try loadTrainingDataset(try await withHubDataDownloaded(trainingConfig), source: config)
    let trainer = try SFTTrainer(config: trainingConfig, modelDirectory: modelDirectory, examples: examples,
                                 device: device, dtype: device.isCUDA && trainingConfig.training.bf16 ? .bfloat16 : .float32,
                                 switches: KernelSwitches.fromEnvironment(), processGroup: processGroup)
    if processGroup?.isMain ?? true {
      print("SFT: \(examples.count) examples, \(trainer.totalSteps) steps" + (processGroup.map { " on each of \($0.worldSize) ranks" } ?? ""))
    }
    try trainer.run(resume: resume, overwrite: overwrite)
  }
}
