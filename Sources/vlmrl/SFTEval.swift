import ArgumentParser
import Datasets
import Foundation
import ModelConfig
import Torch
import Training

/// `vlmrl sft --config FILE`: supervised warm-up (job_type sft), loss on assistant tokens.
struct SFT: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "sft", abstract: "Supervised fine-tuning from a config file.")
  @Option(help: "Config file (JSON).") var config: String
  @Option(name: .customLong("set"), help: "Override a config value (repeatable).") var overrides: [String] = []
  @Option(help: "cpu or cuda[:i].") var device = "cpu"

  func run() throws {
    let trainingConfig = try TrainingConfig.load(URL(fileURLWithPath: config), overrides: overrides)
    guard let device = Device(name: device) else { throw ValidationError("--device: unknown device '\(self.device)'") }
    guard let student = trainingConfig.models.student else { throw ValidationError("\(config): models.student is missing") }
    let examples = try loadTrainingDataset(trainingConfig, source: config)
    let trainer = try SFTTrainer(config: trainingConfig, modelDirectory: try ModelLocator.resolve(student), examples: examples,
                                 device: device, dtype: device.isCUDA && trainingConfig.training.bf16 ? .bfloat16 : .float32)
    print("SFT: \(examples.count) examples, \(trainer.totalSteps) steps")
    try trainer.run()
  }
}

/// `vlmrl eval --task grounding`: greedy answers on held-out records scored with reward functions.
struct Eval: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Evaluate a model (task grounding: mean rewards of greedy answers).")
  @Option(help: "Model folder.") var model: String
  @Option(help: "Task (grounding).") var task = "grounding"
  @Option(help: "Data file.") var data: String
  @Option(help: "Comma-separated reward functions.") var funcs = "format,gaussian_point,gaussian_plane"
  @Option(help: "Records to evaluate (first N).") var sampleNum: Int?
  @Option(help: "Maximum new tokens.") var maxNewTokens = 32
  @Option(help: "cpu or cuda[:i].") var device = "cpu"
  @Flag(help: "Print every sample.") var verbose = false

  func run() async throws {
    guard task == "grounding" else { throw ValidationError("--task: only 'grounding' is implemented so far") }
    guard let device = Device(name: device) else { throw ValidationError("--device: unknown device '\(self.device)'") }
    var examples = try DatasetLoader.load(path: data).examples
    if let sampleNum { examples = Array(examples.prefix(sampleNum)) }
    let result = try await GroundingEval.run(modelDirectory: try ModelLocator.resolve(model), examples: examples,
                                             rewardNames: funcs.split(separator: ",").map(String.init),
                                             maxNewTokens: maxNewTokens, device: device)
    if verbose {
      for sample in result.samples { print("\(sample.completion.debugDescription) -> \(sample.scores.map { $0.map { String(format: "%.3f", $0) } ?? "nil" })") }
    }
    print("\(examples.count) examples: " + result.means.map { String(format: "%@ %.4f", $0.name, $0.mean) }.joined(separator: ", "))
  }
}
