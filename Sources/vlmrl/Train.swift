import ArgumentParser
import Datasets
import Foundation
import Hub
import ModelConfig
import Models
import Torch
import Training

/// `vlmrl train --config FILE`: GRPO (job_type grpo, alias mmkd_rl_grounding / r1) as docs/grpo.md,
/// or the dual-loop region <-> caption trainer (job_type cycle) as docs/cycle.md.
struct Train: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Train with GRPO from a config file (the seeds' format).")
  @Option(help: "Config file (JSON or YAML).") var config: String
  @Option(name: .customLong("set"), help: "Override a config value, e.g. training.learning_rate=2e-6 (repeatable).")
  var overrides: [String] = []
  @Flag(help: "Continue from the newest checkpoint in output_dir.") var resume = false
  @Flag(help: "Resume even when the checkpoint was trained with other values of keys that change training.")
  var allowConfigChange = false
  @Flag(help: "Replace an earlier run's outputs in output_dir (otherwise a used output_dir is an error).") var overwrite = false
  @Option(help: "cpu or cuda[:i].") var device = "cpu"
  @Option(help: "Parameter dtype (float32 or bfloat16; default: bfloat16 when training.bf16 on CUDA).") var dtype: String?
  @Option(help: "Start this many local data-parallel ranks of this command (docs/distributed.md).") var nproc: Int?

  func run() async throws {
    if let nproc { return try LocalLauncher.run(nproc, arguments: LocalLauncher.childArguments(Array(CommandLine.arguments.dropFirst()))) }
    let trainingConfig = try TrainingConfig.load(URL(fileURLWithPath: config),
                                                 overrides: overrides + (allowConfigChange ? ["training.allow_config_change=true"] : []))
    switch trainingConfig.jobType {
    case .grpo: break
    case .sft: throw ValidationError("\(config): job_type sft trains with `vlmrl sft --config \(config)`")
    case .cycle: break
    }
    let processGroup = try joinProcessGroup(trainingConfig, command: trainingConfig.jobType == .cycle ? "job_type cycle" : nil,
                                            cuda: device.lowercased().hasPrefix("cuda") || device.lowercased() == "gpu")
    let device = try rankDevice(try usableDevice(device), processGroup)
    let parameterType: DType = try dtype.map {
      guard let t = DType(name: $0) else { throw ValidationError("--dtype: unknown dtype '\($0)'") }
      return t
    } ?? (device.isCUDA && trainingConfig.training.bf16 ? .bfloat16 : .float32)
    guard let student = trainingConfig.models.student else { throw ValidationError("\(config): models.student is missing") }
    let modelDirectory = try await HubModels.resolve(student)
    if let reference = trainingConfig.models.reference { _ = try await HubModels.resolve(reference) }
    let dataConfig = try await withHubDataDownloaded(trainingConfig)
    let examples = try loadTrainingDataset(dataConfig, source: config)
    let switches = KernelSwitches.fromEnvironment()
    let trainer = trainingConfig.jobType == .cycle
      ? try CycleTrainer.make(config: trainingConfig, modelDirectory: modelDirectory, examples: examples, device: device,
                              dtype: parameterType, switches: switches)
      : try GRPOTrainer(config: trainingConfig, modelDirectory: modelDirectory, examples: examples,
                        device: device, dtype: parameterType, switches: switches, processGroup: processGroup)
    if trainingConfig.dataset.evalPath != nil {
      trainer.evaluator = try InTrainingEvaluation(config: dataConfig, modelDirectory: modelDirectory, model: trainer.model,
                                                   source: config)
    }
    let kind = trainingConfig.jobType == .cycle ? "cycle (\(trainingConfig.training.cycleSchedule))" : "GRPO"
    let ranks = processGroup.map { ", rank \($0.rank) of \($0.worldSize)" } ?? ""
    if processGroup?.isMain ?? true {
      print("\(kind): \(examples.count) examples, \(trainer.totalSteps) steps, model \(modelDirectory.path) on \(device) (\(parameterType))\(ranks)")
    }
    if let fault = try FaultInjection.fromEnvironment(), let processGroup {
      trainer.beforeStep = { step in fault.strike(rank: processGroup.rank, step: step) }
    }
    try await trainer.run(resume: resume, overwrite: overwrite)
    if processGroup?.isMain ?? true { print("done: outputs in \(trainer.outputDirectory.path)") }
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
  let d = config.dataset
  options.columns = ColumnMapping(promptKey: d.promptKey, imageKey: d.imageKey, answerKey: d.answerKey,
                                  solutionKey: d.solutionKey, systemPrompt: d.systemPrompt)
  let loaded: LoadedDataset
  if path.hasSuffix(".yaml") || path.hasSuffix(".yml") {
    loaded = try DatasetLoader.load(try DatasetConfig.load(URL(fileURLWithPath: path)), options: options)
  } else {
    loaded = try DatasetLoader.load(path: path, imageRoot: config.dataset.imageRoot, options: options)
  }
  loaded.summary.lines.forEach { print($0) }
  return loaded.examples
}

/// The data-parallel group torchrun or Slurm launched this process into (docs/distributed.md), or
/// nil for one process. `unsupported` names a command that trains on one process only: there a
/// launch of several processes is an error rather than N independent runs. A ZeRO setting says
/// what it does here: nothing on one process; stages 1-2 shard over several, stage 3 is refused.
func joinProcessGroup(_ config: TrainingConfig, command unsupported: String?, cuda: Bool) throws -> ProcessGroup? {
  let environment = ProcessInfo.processInfo.environment
  let launch = try DistributedEnvironment.parse(environment)
  if let stage = config.training.zeroStage, stage > 0, launch == nil {
    print("zero_stage \(stage) on one process: DeepSpeed would shard across one rank, i.e. keep everything; "
      + "training runs unsharded on this device")
  }
  guard let launch else { return nil }
  _ = try config.zeroStage(worldSize: launch.worldSize)
  if let unsupported {
    throw ValidationError("WORLD_SIZE=\(launch.worldSize): multi-process training is not supported for \(unsupported) yet "
      + "(GRPO and SFT are: docs/distributed.md); launch one process")
  }
  // ddp_backend, else NCCL on GPUs (GPU to GPU) and Gloo on the CPU, as torch.distributed's default.
  let backend = config.training.ddpBackend.flatMap(ProcessGroup.Backend.init(rawValue:)) ?? (cuda ? .nccl : .gloo)
  if backend == .nccl && !cuda {
    throw ValidationError("training.ddp_backend nccl needs --device cuda (NCCL runs collectives between GPUs); use gloo on the CPU")
  }
  return try ProcessGroup.fromEnvironment(environment, backend: backend)
}

/// Each rank trains on its own GPU: `--device cuda` means `cuda:LOCAL_RANK` under a launcher.
func rankDevice(_ device: Device, _ group: ProcessGroup?) throws -> Device {
  guard let group, case .cuda = device else { return device }
  let count = Torch.cudaDeviceCount
  guard group.localRank < count else {
    throw ValidationError("LOCAL_RANK \(group.localRank): this machine has \(count) CUDA device(s)")
  }
  return .cuda(group.localRank)
}

/// `VLMRL_FAULT_KILL=RANK:STEP`, for the process-level tests of docs/distributed.md: rank RANK
/// kills itself (SIGKILL, as a crash or the kernel's OOM killer would) when it starts the update of
/// 0-based optimizer step STEP, so the other ranks meet a dead peer in their next collective.
struct FaultInjection {
  var rank: Int
  var step: Int

  static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> FaultInjection? {
    guard let text = environment["VLMRL_FAULT_KILL"], !text.isEmpty else { return nil }
    let parts = text.split(separator: ":").map { Int($0) }
    guard parts.count == 2, let rank = parts[0], let step = parts[1] else {
      throw ValidationError("VLMRL_FAULT_KILL is '\(text)', not RANK:STEP")
    }
    return FaultInjection(rank: rank, step: step)
  }

  func strike(rank current: Int, step: Int) {
    guard current == rank, step == self.step else { return }
    FileHandle.standardError.write(Data("VLMRL_FAULT_KILL: rank \(rank) kills itself at step \(step)\n".utf8))
    kill(getpid(), SIGKILL)
  }
}
