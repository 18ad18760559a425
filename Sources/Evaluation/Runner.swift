import Common
import Datasets
import Foundation
import Generation
import ModelConfig
import Models
import Rewards
import Prompting
import Models
import Torch

/// Turns prepared prompts into outputs (the rollout engine; tests may pass canned outputs).
public protocol EvalGenerator: Sendable {
  /// One rollout record per prompt, in prompt order.
  func generate(_ prompts: [PreparedPrompt], maxNewTokens: Int) throws -> [RolloutRecord]
}

/// Greedy decoding through the batched rollout engine: temperature 0, one sample per prompt, stop at
/// the model's end tokens (as training's rollouts), special tokens dropped from the text.
public final class EngineGenerator: EvalGenerator, @unchecked Sendable {
  public let model: QwenVLModel
  let engine: RolloutEngine
  let builder: PromptBuilder

  public init(model: QwenVLModel, builder: PromptBuilder) {
    self.model = model
    self.builder = builder
    engine = RolloutEngine(model: model)
  }

  public func generate(_ prompts: [PreparedPrompt], maxNewTokens: Int) throws -> [RolloutRecord] {
    let settings = SamplingSettings.greedy(maxNewTokens: maxNewTokens, eosTokenIds: builder.stopTokenIds)
    return try engine.rollouts(prompts, builder: builder, samples: 1, settings: settings,
                               seeds: Array(repeating: 0, count: prompts.count)).records
  }
}

/// A finished run: eval.json's contents and every sample.
public struct EvalRun: Sendable {
  public var report: EvalReport
  public var samples: [SampleRecord]
}

/// Runs an evaluation: loads the model, samples each test set independently with the seed, builds
/// prompts as training does, decodes greedily in batches, scores, and collects the report.
public enum EvalRunner {
  /// Loads the model named by the settings and runs every set.
  public static func run(_ settings: EvalSettings, switches: KernelSwitches = KernelSwitches(),
                         log: @escaping @Sendable (String) -> Void = { print($0) }) async throws -> EvalRun {
    guard let device = Device(name: settings.device) else {
      throw EvalError.invalidArgument("--device: unknown device '\(settings.device)' (cpu, cuda, cuda:N)")
    }
    guard let dtype = DType(name: settings.dtype), [.float32, .bfloat16, .float16].contains(dtype) else {
      throw EvalError.invalidArgument("--dtype: '\(settings.dtype)' is not float32, bfloat16 or float16")
    }
    let folder = try ModelFolder(resolving: settings.model)
    let builder = try PromptBuilder(folder: folder, minPixels: settings.minPixels, maxPixels: settings.maxPixels)
    let model = try QwenVLModel.load(folder: folder, dtype: dtype, device: device)
    model.switches = switches
    if let adapter = settings.adapter {
      do {
        try model.loadAdapter(directory: URL(fileURLWithPath: adapter))
      } catch {
        throw EvalError.invalidFile(adapter, "cannot load the LoRA adapter (adapter_config.json + adapter_model.safetensors): \(error)")
      }
    }
    let generator = EngineGenerator(model: model, builder: builder)
    return try await run(settings, folder: folder, builder: builder, generator: generator, log: log)
  }

  /// Runs every set with a given prompt builder and generator.
  public static func run(_ settings: EvalSettings, folder: ModelFolder, builder: PromptBuilder, generator: any EvalGenerator,
                         log: @escaping @Sendable (String) -> Void = { print($0) }) async throws -> EvalRun {
    try validate(settings)
    let started = Date()
    let frame = RECScoring.frame(for: folder.config.family)
    var rewards: RewardRunner?
    if settings.task == .grounding {
      rewards = RewardRunner(functions: try RewardRegistry.make(settings.rewardFuncs, parameters: [:]))
    }
    let scorer = TaskScorer(task: settings.task, method: settings.method, frame: frame, rewards: rewards,
                            difficulty: DifficultyFlags(enabled: settings.task == .aokvqa))
    var sets: [SetResult] = []
    var samples: [SampleRecord] = []
    for (position, path) in settings.data.enumerated() {
      let name = uniqueName(for: path, position: position, among: settings.data)
      log("\(name): loading \(path)")
      let (result, setSamples) = try await runSet(name: name, path: path, settings: settings, builder: builder,
                                                  generator: generator, scorer: scorer, log: log)
      sets.append(result)
      samples.append(contentsOf: setSamples)
    }
    var notes: [String] = []
    if settings.task == .aokvqa {
      let missing = scorer.difficulty.unreadableFiles.sorted()
      notes.append(missing.isEmpty
        ? "direct-answer accuracy skips difficult_direct_answer questions (official A-OKVQA evaluation)"
        : "no difficult_direct_answer flags in \(missing.joined(separator: ", ")) (not JSON): direct-answer accuracy covers every question")
    }
    let report = EvalReport(
      settings: settings, modelFamily: folder.config.family.rawValue,
      boxFrame: settings.task == .rec ? frame.rawValue : nil, sets: sets,
      overall: Aggregate.metrics(samples.map { ($0.correct, $0.values, $0.extracted != nil) }, task: settings.task,
                                 rewardNames: rewards?.metricKeys ?? []),
      totalSeconds: Date().timeIntervalSince(started), finishedAt: ISO8601DateFormatter().string(from: Date()), notes: notes)
    return EvalRun(report: report, samples: samples)
  }

  static func validate(_ settings: EvalSettings) throws {
    guard !settings.data.isEmpty else { throw EvalError.invalidArgument("--data: give at least one test set") }
    guard settings.batchSize >= 1 else { throw EvalError.invalidArgument("--batch-size must be at least 1, got \(settings.batchSize)") }
    guard settings.maxNewTokens >= 1 else {
      throw EvalError.invalidArgument("--max-new-tokens must be at least 1, got \(settings.maxNewTokens)")
    }
    if let count = settings.sampleNum, count < 1 {
      throw EvalError.invalidArgument("--sample-num must be at least 1, got \(count)")
    }
    if settings.task == .grounding, settings.rewardFuncs.isEmpty {
      throw EvalError.invalidArgument("--funcs: the grounding task needs at least one reward function")
    }
  }

  /// The set's name: its file name without extension, with `#N` added when two sets share it.
  static func uniqueName(for path: String, position: Int, among paths: [String]) -> String {
    func stem(_ path: String) -> String {
      let last = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
      return last.isEmpty ? path : last
    }
    let base = stem(path)
    let clashes = paths.enumerated().filter { stem($0.element) == base }.map(\.offset)
    return clashes.count > 1 ? "\(base)#\((clashes.firstIndex(of: position) ?? 0) + 1)" : base
  }

  /// The records of one set: drawn with the seed alone (not a generator shared across sets), so a
  /// set's sample does not depend on which sets come before it.
  static func loadSet(path: String, settings: EvalSettings) throws -> LoadedDataset {
    var options = LoadOptions()
    options.dataSeed = settings.seed
    options.recPrompt = settings.method
    let sampling: SamplingStrategy = settings.sampleNum.map { .random(.count($0)) } ?? .all
    return try DatasetLoader.load(path: path, sampling: sampling, imageRoot: settings.imageRoot, options: options)
  }
}

/// Sample lists to metrics: accuracy over samples with a correctness, each per-sample value's mean
/// over the samples that have it, and the share of outputs with an extracted answer.
enum Aggregate {
  static func metrics(_ samples: [(correct: Bool?, values: [String: Double], extracted: Bool)], task: EvalTask,
                      rewardNames: [String]) -> [Metric] {
    let names = task == .grounding ? rewardNames : task.metricNames
    return names.compactMap { name -> Metric? in
      let values: [Double]
      switch name {
      case "accuracy": values = samples.compactMap { $0.correct.map { $0 ? 1 : 0 } }
      case "extracted": values = samples.map { $0.extracted ? 1 : 0 }
      case "mean_iou": values = samples.compactMap { $0.values["iou"] }
      default: values = samples.compactMap { $0.values[name] }
      }
      guard !values.isEmpty else { return Metric(name: name, value: 0, count: 0) }
      return Metric(name: name, value: values.reduce(0, +) / Double(values.count), count: values.count)
    }
  }
}
