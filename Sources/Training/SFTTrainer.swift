import Common
import Datasets
import Foundation
import Jinja
import ModelConfig
import Models
import NN
import Prompting
import Torch

/// Supervised fine-tuning on conversations, loss on assistant tokens only (the seeds' format warm-up).
/// Conversation records use their assistant turns; grounding records (single box) are turned into
/// one-turn conversations whose answer is the ground-truth box `[x1, y1, x2, y2]`. It shares GRPO's
/// data order (`ExampleStream`), optimizer step (`OptimizerStepper`), metrics sinks (`RunSinks`)
/// and checkpoints (`Checkpoint`, with exact resume).
public final class SFTTrainer: @unchecked Sendable {
  public let config: TrainingConfig
  public let model: QwenVLModel
  let builder: PromptBuilder
  let examples: [Example]
  let stepper: OptimizerStepper
  public let totalSteps: Int
  public let outputDirectory: URL
  let modelDirectory: URL
  public internal(set) var state: TrainerState
  var stream: ExampleStream

  public init(config: TrainingConfig, modelDirectory: URL, examples given: [Example], device: Device = .cpu,
              dtype: DType = .float32, switches: KernelSwitches = KernelSwitches(),
              log: (String) -> Void = { Console.log($0) }) throws {
    guard !given.isEmpty else { throw TrainingError.invalidArgument("SFT: the dataset has no usable examples") }
    try config.checkImplemented()
    // Only records with an answer to learn train; the rest are counted by kind and named, never
    // silently averaged in as zero-token examples.
    let examples = given.filter { Self.answer(for: $0) != nil }
    let unanswered = Dictionary(grouping: given.filter { Self.answer(for: $0) == nil }, by: \.kind.rawValue).mapValues(\.count)
    if !unanswered.isEmpty {
      let list = unanswered.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
      log("SFT: skipped \(given.count - examples.count) of \(given.count) records with no answer to train on (\(list))")
    }
    guard !examples.isEmpty else {
      throw TrainingError.invalidArgument("SFT: no record has an answer to train on (an assistant turn, a box, "
        + "labelled boxes, a solution or a correct choice); see docs/training.md, \"SFT answers\"")
    }
    self.config = config
    self.examples = examples
    self.modelDirectory = modelDirectory
    let folder = try ModelFolder(directory: modelDirectory)
    builder = try PromptBuilder(folder: folder, minPixels: config.training.minPixels, maxPixels: config.training.maxPixels)
    model = try QwenVLModel.load(directory: modelDirectory, dtype: dtype, device: device)
    model.switches = switches
    if config.training.freezeVisionTower { model.visual.setTrainable(false) }
    // `optim`: float32 master weights and moments by default for bf16 weights (mixed precision).
    let optimizer = try config.makeOptimizer(model.trainableParameters, weights: model.dtype)
    let batch = config.training.perDeviceTrainBatchSize
    totalSteps = config.training.maxSteps > 0 ? config.training.maxSteps
      : Int((config.training.numTrainEpochs * Double(examples.count) / Double(batch)).rounded(.up))
    stepper = OptimizerStepper(optimizer: optimizer, schedule: config.lrSchedule(totalSteps: totalSteps),
                               maxGradNorm: config.training.maxGradNorm)
    outputDirectory = URL(fileURLWithPath: config.training.outputDir)
    state = TrainerState(step: 0, examplesSeen: 0, seed: config.training.seed, configFingerprint: config.resolvedJSONText())
    stream = ExampleStream(examples: examples, seed: config.training.seed, shuffle: config.training.shuffleDataset)
  }

  /// The assistant answer an example is trained on, in the form the kind's GRPO rewards read
  /// (docs/training.md, "SFT answers"):
  /// - a conversation or region caption: its last assistant turn;
  /// - single box: `[x1, y1, x2, y2]` (original pixels, the grounding rewards' frame);
  /// - multi box: the labelled boxes as a JSON object in a fenced block, labels without boxes left out;
  /// - R1 QA (counting, GeoQA): the solution as written (`<answer> 3 </answer>`);
  /// - A-OKVQA: the letter of the correct choice.
  /// REC has none yet: its boxes are compared in the model's resized frame, which depends on the
  /// image's processed size. A record with none is skipped and counted.
  public static func answer(for example: Example) -> String? {
    if let turn = example.conversation.last(where: { $0.role == "assistant" }) { return turn.text }
    let fields = example.rewardFields
    switch example.kind {
    case .singleBox:
      guard let box = fields["bbox"]?.arrayValue?.compactMap(\.doubleValue), box.count == 4 else { return nil }
      return boxText(box)
    case .multiBox:
      guard let labels = fields["abs_box"]?.objectValue else { return nil }
      let entries = labels.keys.sorted().compactMap { label -> String? in
        let boxes = (labels[label]?.arrayValue ?? []).compactMap { $0.arrayValue?.compactMap(\.doubleValue) }.filter { $0.count == 4 }
        guard !boxes.isEmpty else { return nil }
        return "\(JSONValue.string(label).jsonString): [\(boxes.map(boxText).joined(separator: ", "))]"
      }
      return entries.isEmpty ? nil : "```json\n{" + entries.joined(separator: ", ") + "}\n```"
    case .r1vQA, .r1vTest:
      return (fields["solution"] ?? fields["ground_truth"])?.stringValue
    case .aokvqa:
      guard let index = (fields["label_idx"] ?? fields["correct_choice_idx"])?.intValue, (0..<26).contains(index) else { return nil }
      return String(UnicodeScalar(UInt8(65 + index)))
    default:
      return nil
    }
  }

  static func boxText(_ box: [Double]) -> String {
    "[" + box.map { String(Int($0.rounded())) }.joined(separator: ", ") + "]"
  }

  /// Trains, writes metrics, checkpoints every `save_steps` and the final model (Hugging Face
  /// layout, with tokenizer and processor files); `resume` continues from the newest checkpoint.
  @discardableResult
  public func run(resume: Bool = false, overwrite: Bool = false, stopAfterStep: Int? = nil,
                  log: @escaping (String) -> Void = { Console.log($0) }) throws -> [MetricsRow] {
    let resuming = ResumePoint.wanted(config: config, resume: resume)
    let folder = try OutputFolder(outputDirectory, resume: resuming || state.step > 0, overwrite: overwrite)
    defer { withExtendedLifetime(folder) {} }
    if resuming, let checkpoint = try ResumePoint.checkpoint(config: config, outputDirectory: outputDirectory, resume: resume, log: log) {
      let saved = try Checkpoint.loadState(checkpoint)
      try ResumePoint.checkUnchanged(saved, config: config, checkpoint: checkpoint)
      try model.load(try QwenVLModel.load(directory: checkpoint, dtype: model.dtype, device: model.device).stateDict())
      try Checkpoint.loadOptimizer(stepper.optimizer, model: model, from: checkpoint)
      state = saved
      log("resumed from \(checkpoint.lastPathComponent) at step \(saved.step)")
    }
    if let notice = config.ignoredKeysNotice { log(notice) }
    stream.seen = state.examplesSeen
    try config.write(to: outputDirectory.appendingPathComponent("resolved_config.json"))
    let sinks = try RunSinks(outputDirectory: outputDirectory, totalSteps: totalSteps, loggingSteps: config.training.loggingSteps,
                             colorize: config.training.colorizeOutput, resumedAt: state.step)
    let limit = min(totalSteps, stopAfterStep ?? totalSteps)
    var rows: [MetricsRow] = []
    while state.step < limit {
      let start = Date()
      var lossValue = 0.0, tokens = 0
      let batch = nextBatch()
      if let (loss, count) = try batchLoss(batch) {
        loss.backward()
        RecomputeRegistry.shared.releaseAll()
        lossValue = loss.item()
        tokens = count
      }
      let result = stepper.step(state.step, lossFinite: lossValue.isFinite)
      state.step += 1
      state.examplesSeen = stream.seen
      let seconds = Date().timeIntervalSince(start)
      let values = [MetricName.loss: lossValue, MetricName.gradNorm: result.gradNorm,
                    MetricName.learningRate: result.learningRate, MetricName.numTokens: Double(tokens),
                    MetricName.stepTime: seconds, MetricName.tokensPerSecond: Double(tokens) / max(seconds, 1e-9)]
      let row = MetricsRow(step: state.step, epoch: stream.epoch, values: values)
      try sinks.record(row)
      rows.append(row)
      let saveSteps = max(1, config.training.saveSteps)
      if state.step % saveSteps == 0 && state.step < totalSteps {
        let url = try Checkpoint.save(model: model, optimizer: stepper.optimizer, state: state, outputDirectory: outputDirectory,
                                      saveTotalLimit: config.training.saveTotalLimit, startModel: modelDirectory)
        // The report first: a run killed right after the "saved" line still has one of this checkpoint.
        try sinks.writeReport(title: "vlmrl SFT report")
        log("saved \(url.lastPathComponent)")
      }
    }
    if state.step == totalSteps {
      try exportFinal()
      log("SFT done: model in \(outputDirectory.appendingPathComponent("final").path)")
    }
    try sinks.finish(title: "vlmrl SFT report")
    return rows
  }

  /// `gradient_checkpointing`, or when unset, activation recompute above 1B parameters.
  var checkpointLayers: Bool { config.training.gradientCheckpointing ?? (model.parameterCount > 1_000_000_000) }

  func nextBatch() -> [Example] { stream.next(config.training.perDeviceTrainBatchSize) }

  /// The batch's loss: the mean over its examples of each answer's mean token negative log-likelihood
  /// (an example without an answer counts as 0, as before), computed in one packed pass
  /// (`PolicyPass`: vision once per prompt, sequences packed without padding, chunked log-probs).
  /// Returns the loss and the number of answer tokens, or nil when no example has an answer.
  func batchLoss(_ batch: [Example]) throws -> (Tensor, Int)? {
    var prompts: [PreparedPrompt] = [], completions: [RolloutRecord] = []
    for example in batch {
      guard let answer = Self.answer(for: example) else { continue }
      prompts.append(try builder.prepare(example))
      completions.append(RolloutRecord(promptIndex: prompts.count - 1, tokens: builder.tokenizer.encode(answer + "<|im_end|>"),
                                       truncated: false))
    }
    guard !completions.isEmpty else { return nil }
    let out = try PolicyPass.logProbs(model: model, prompts: prompts, completions: completions, temperature: 1,
                                      checkpointLayers: checkpointLayers)
    let perExample = -(out.logp * out.mask).sum(dim: 1) / out.mask.sum(dim: 1).clamp(min: 1)
    return (perExample.sum() / Double(batch.count), completions.reduce(0) { $0 + $1.tokens.count })
  }

  /// Mean negative log-likelihood of the answer tokens (and the closing `<|im_end|>`) of one example,
  /// one forward of its own (the reference `batchLoss` is tested against).
  func exampleLoss(_ example: Example) throws -> (Tensor, Int)? {
    guard let answer = Self.answer(for: example) else { return nil }
    let prompt = try builder.prepare(example)
    let answerIDs = builder.tokenizer.encode(answer + "<|im_end|>")
    let ids = prompt.ids + answerIDs
    let hidden = try model.hiddenStates(ids: ids, promptLength: prompt.ids.count, pixelValues: prompt.pixelValues?.to(model.device),
                                        grids: prompt.grids, checkpointLayers: checkpointLayers)[0]
    let logProbs = model.tokenLogProbs(hidden: hidden.narrow(0, start: prompt.ids.count - 1, length: answerIDs.count),
                                       targets: Tensor(answerIDs).to(model.device))
    return (-logProbs.mean(), answerIDs.count)
  }

  func exportFinal() throws {
    try Checkpoint.exportModel(model, companionFilesFrom: modelDirectory, to: outputDirectory.appendingPathComponent("final"))
  }
}
