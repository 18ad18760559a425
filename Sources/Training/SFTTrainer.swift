import Common
import Datasets
import Foundation
import Jinja
import ModelConfig
import Models
import NN
import Prompting
import Rewards
import Torch

/// Supervised fine-tuning on conversations, loss on assistant tokens only (the seeds' format warm-up).
/// Conversation records train every assistant turn, each against the conversation before it; the
/// other kinds become one-turn conversations whose answer the kind's GRPO rewards score (the box
/// `[x1, y1, x2, y2]` of a grounding record, ...). Trains the full model, the language model only
/// (`freeze_vision_tower`) or LoRA adapters (`use_peft`). It shares GRPO's data order
/// (`ExampleStream`), optimizer step (`OptimizerStepper`), metrics sinks (`RunSinks`) and checkpoints
/// (`Checkpoint`, with exact resume; a LoRA run's are peft adapter folders).
public final class SFTTrainer: @unchecked Sendable {
  public let config: TrainingConfig
  public let model: QwenVLModel
  let builder: PromptBuilder
  /// How REC answers write their boxes for this model (`RECFrame`).
  let recFrame: RECFrame
  let examples: [Example]
  let stepper: OptimizerStepper
  public let totalSteps: Int
  public let outputDirectory: URL
  let modelDirectory: URL
  /// The adapter settings when training LoRA.
  let adapter: LoRAConfig?
  public internal(set) var state: TrainerState
  var stream: ExampleStream
  /// The data-parallel ranks this trainer is one of (nil: one process): each optimizer step's
  /// global batch is split into contiguous per-rank slices, gradients averaged (or sharded, ZeRO),
  /// rank 0 writes every output (docs/distributed.md).
  public let processGroup: ProcessGroup?
  var isMain: Bool { processGroup?.isMain ?? true }

  public init(config: TrainingConfig, modelDirectory: URL, examples given: [Example], device: Device = .cpu,
              dtype: DType = .float32, switches: KernelSwitches = KernelSwitches(), processGroup: ProcessGroup? = nil,
              log: (String) -> Void = { Console.log($0) }) throws {
    guard !given.isEmpty else { throw TrainingError.invalidArgument("SFT: the dataset has no usable examples") }
    try config.checkImplemented()
    // Only records with an answer to learn train; the rest are counted by kind and named, never
    // silently averaged in as zero-token examples.
    let folder = try ModelFolder(directory: modelDirectory)
    let builder = try PromptBuilder(folder: folder, minPixels: config.training.minPixels, maxPixels: config.training.maxPixels)
    let recFrame = Self.recFrame(builder, family: folder.config.family)
    let examples = given.filter { Self.answer(for: $0, recFrame: recFrame) != nil }
    let unanswered = Dictionary(grouping: given.filter { Self.answer(for: $0, recFrame: recFrame) == nil }, by: \.kind.rawValue)
      .mapValues(\.count)
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
    self.builder = builder
    self.recFrame = recFrame
    self.processGroup = processGroup
    // From a peft adapter folder: with use_peft its adapter trains on, without it is merged in.
    (model, adapter) = try QwenVLModel.loadForTraining(directory: modelDirectory, lora: config.training.usePeft ? config.loraConfig : nil,
                                                       seed: UInt64(config.training.seed), dtype: dtype, device: device)
    model.switches = switches
    if config.training.freezeVisionTower { model.visual.setTrainable(false) }
    // `optim`: float32 master weights and moments by default for bf16 weights (mixed precision).
    let optimizer = try config.makeOptimizer(model.namedTrainableParameters.map(\.1), weights: model.dtype)
    // A step's global batch: every rank's micro-batches together.
    let batch = config.training.perDeviceTrainBatchSize * (processGroup?.worldSize ?? 1)
    totalSteps = config.training.maxSteps > 0 ? config.training.maxSteps
      : Int((config.training.numTrainEpochs * Double(examples.count)
        / Double(batch * max(1, config.training.gradientAccumulationSteps))).rounded(.up))
    stepper = OptimizerStepper(optimizer: optimizer, schedule: config.lrSchedule(totalSteps: totalSteps),
                               maxGradNorm: config.training.maxGradNorm, processGroup: processGroup,
                               zeroStage: try config.zeroStage(worldSize: processGroup?.worldSize ?? 1))
    outputDirectory = URL(fileURLWithPath: config.training.outputDir)
    state = TrainerState(step: 0, examplesSeen: 0, seed: config.training.seed, configFingerprint: config.resolvedJSONText())
    stream = ExampleStream(examples: examples, seed: config.training.seed, shuffle: config.training.shuffleDataset)
  }

  /// The (last) assistant answer an example is trained on, in the form the kind's GRPO rewards read
  /// (docs/training.md, "SFT answers"):
  /// - a conversation or region caption: its last assistant turn (`messages(for:)` trains every one);
  /// - single box: `[x1, y1, x2, y2]` (original pixels, the grounding rewards' frame);
  /// - multi box: the labelled boxes as a JSON object in a fenced block, labels without boxes left out;
  /// - R1 QA (counting, GeoQA): the solution as written (`<answer> 3 </answer>`);
  /// - A-OKVQA: the letter of the correct choice;
  /// - REC (with `recFrame`): VLM-R1's `<think>...</think> <answer>{"bbox_2d": [...]}</answer>` with the
  ///   solution box in the model's frame (`recAnswer`).
  /// A record with none is skipped and counted.
  public static func answer(for example: Example, recFrame: RECFrame? = nil) -> String? {
    if let turn = example.conversation.last(where: { $0.role == "assistant" }) { return turn.text }
    let fields = example.rewardFields
    switch example.kind {
    case .rec:
      return recFrame.flatMap { recAnswer(example, frame: $0) }
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

  /// The frame a REC answer's box is written in: the one the REC rewards read the model's boxes in
  /// for its family (`rewardParameters`' `box_frame` default): Qwen2.5-VL, pixels of the image as
  /// the processor resizes it (`resized`, a `resize(height, width)` of the original size);
  /// Qwen2-VL, 0-1000 of the original (`norm1000`).
  public enum RECFrame: Sendable {
    case resized(@Sendable (_ height: Int, _ width: Int) -> (height: Int, width: Int)?)
    case norm1000
  }

  /// The frame for `builder`'s processor and `family`.
  public static func recFrame(_ builder: PromptBuilder, family: QwenVLFamily) -> RECFrame {
    guard family == .qwen25VL else { return .norm1000 }
    let processor = builder.processor
    return .resized { height, width in try? processor.resizedSize(height: height, width: width) }
  }

  /// A REC record's answer in VLM-R1's format: a fixed reasoning sentence in `<think>` and the
  /// solution box as `{"bbox_2d": [...]}` in `<answer>`, in the model's frame (rounded to whole
  /// units). Nil without a box, an image size or a frame.
  static func recAnswer(_ example: Example, frame: RECFrame) -> String? {
    let solution = example.rewardFields["solution"]
    var box = solution?.arrayValue?.compactMap(\.doubleValue) ?? []
    if box.count != 4, let text = solution?.stringValue, let parsed = AnswerParsing.firstBox(in: AnswerParsing.answer(in: text)) {
      box = [parsed.x1, parsed.y1, parsed.x2, parsed.y2]
    }
    guard box.count == 4, let image = example.images.first, let width = image.width, let height = image.height,
      width > 0, height > 0 else { return nil }
    let scale: (x: Double, y: Double)
    switch frame {
    case .norm1000: scale = (1000 / Double(width), 1000 / Double(height))
    case .resized(let resize):
      guard let size = resize(height, width) else { return nil }
      scale = (Double(size.width) / Double(width), Double(size.height) / Double(height))
    }
    let scaled = [box[0] * scale.x, box[1] * scale.y, box[2] * scale.x, box[3] * scale.y]
    return "<think>I find the object the question describes in the image and give its box.</think> "
      + "<answer>{\"bbox_2d\": \(boxText(scaled))}</answer>"
  }

  static func boxText(_ box: [Double]) -> String {
    "[" + box.map { String(Int($0.rounded())) }.joined(separator: ", ") + "]"
  }

  /// The chat an example trains on, every assistant turn in it an answer: a conversation's turns from
  /// its first user turn on (that turn as the example's prompt, with its images; later turns as
  /// written) when an assistant turn follows it, else the prompt and `answer(for:)`. Nil when the
  /// example has no answer.
  public static func messages(for example: Example, recFrame: RECFrame? = nil) -> [ChatMessage]? {
    let dialogue = example.conversation.drop { $0.role != "user" }.dropFirst()
    guard dialogue.contains(where: { $0.role == "assistant" }) else {
      return answer(for: example, recFrame: recFrame).map { PromptBuilder.messages(for: example, answer: $0) }
    }
    return PromptBuilder.messages(for: example) + dialogue.map(laterMessage)
  }

  /// A turn after the first user turn, as written; `<image>` markers become image parts (which
  /// `prepareDialogue` refuses by name instead of training on a stray marker).
  static func laterMessage(_ turn: ConversationTurn) -> ChatMessage {
    let pieces = turn.text.components(separatedBy: "<image>")
    guard pieces.count > 1 else { return ChatMessage(role: turn.role, text: turn.text) }
    return ChatMessage(role: turn.role, parts: pieces.enumerated().flatMap { offset, piece -> [ChatContent] in
      (piece.isEmpty ? [] : [.text(piece)]) + (offset < pieces.count - 1 ? [.image] : [])
    })
  }

  /// Trains, writes metrics, checkpoints every `save_steps` and the final model (Hugging Face
  /// layout, or with LoRA the peft adapter, with tokenizer and processor files); `resume` continues
  /// from the newest checkpoint (its weights or adapter, and the optimizer state).
  @discardableResult
  public func run(resume: Bool = false, overwrite: Bool = false, stopAfterStep: Int? = nil,
                  log mainLog: @escaping (String) -> Void = { Console.log($0) }) throws -> [MetricsRow] {
    let log: (String) -> Void = isMain ? mainLog : { _ in }
    let resuming = ResumePoint.wanted(config: config, resume: resume)
    let folder = isMain ? try OutputFolder(outputDirectory, resume: resuming || state.step > 0, overwrite: overwrite) : nil
    defer { withExtendedLifetime(folder) {} }
    // Rank 0 has cleared or locked the folder before any rank looks for a checkpoint in it.
    try processGroup?.barrier()
    if resuming, let checkpoint = try ResumePoint.checkpoint(config: config, outputDirectory: outputDirectory, resume: resume, log: log) {
      let saved = try Checkpoint.loadState(checkpoint)
      try ResumePoint.checkUnchanged(saved, config: config, checkpoint: checkpoint)
      if adapter != nil {
        try model.loadAdapter(directory: checkpoint)
      } else {
        try model.load(try QwenVLModel.load(directory: checkpoint, dtype: model.dtype, device: model.device).stateDict())
      }
      try Checkpoint.loadOptimizer(stepper, model: model, from: checkpoint)
      state = saved
      log("resumed from \(checkpoint.lastPathComponent) at step \(saved.step)")
    }
    try processGroup?.synchronizeStart(step: state.step, parameters: model.namedTrainableParameters.map(\.1))
    if let notice = config.ignoredKeysNotice { log(notice) }
    stream.seen = state.examplesSeen
    if isMain { try config.write(to: outputDirectory.appendingPathComponent("resolved_config.json")) }
    let sinks = isMain ? try RunSinks(outputDirectory: outputDirectory, totalSteps: totalSteps, loggingSteps: config.training.loggingSteps,
                             colorize: config.training.colorizeOutput, resumedAt: state.step) : nil
    let limit = min(totalSteps, stopAfterStep ?? totalSteps)
    var rows: [MetricsRow] = []
    while state.step < limit {
      let start = Date()
      var lossValue = 0.0, tokens = 0, finite = true
      // LoRA dropout masks are a pure function of (seed, step), so a resumed run draws the same ones.
      if adapter != nil { LoRA.reseedDropout(in: model, seed: DataOrder.mix(UInt64(state.seed), UInt64(state.step), 0x10AA)) }
      // An optimizer step sums `gradient_accumulation_steps` micro-batches, each loss divided by their
      // number: the mean over all their examples, as one batch of them all would give.
      let accumulation = max(1, config.training.gradientAccumulationSteps)
      for _ in 0..<accumulation {
        let batch = nextBatch()
        guard let (loss, count) = try batchLoss(batch) else { continue }
        (loss / Double(accumulation)).backward()
        RecomputeRegistry.shared.releaseAll()
        let value = loss.item()
        finite = finite && value.isFinite
        lossValue += value / Double(accumulation)
        tokens += count
      }
      let result = try stepper.synchronizedStep(state.step, lossFinite: finite)
      state.step += 1
      state.examplesSeen = stream.seen
      let seconds = Date().timeIntervalSince(start)
      var values = [MetricName.loss: lossValue, MetricName.gradNorm: result.gradNorm,
                    MetricName.learningRate: result.learningRate, MetricName.numTokens: Double(tokens),
                    MetricName.stepTime: seconds, MetricName.tokensPerSecond: Double(tokens) / max(seconds, 1e-9)]
      // Each rank's loss is the mean over its slice: their mean is the global batch's.
      if let processGroup { values = try processGroup.reduceMetrics(values) }
      let row = MetricsRow(step: state.step, epoch: stream.epoch, values: values)
      try sinks?.record(row)
      rows.append(row)
      let saveSteps = max(1, config.training.saveSteps)
      if state.step % saveSteps == 0 && state.step < totalSteps {
        let optimizer = try Checkpoint.stageOptimizer(stepper, model: model, outputDirectory: outputDirectory, step: state.step)
        if let sinks {
          let url = try Checkpoint.save(model: model, optimizer: optimizer, state: state, outputDirectory: outputDirectory,
                                        saveTotalLimit: config.training.saveTotalLimit, adapter: adapter, startModel: modelDirectory)
          // The report first: a run killed right after the "saved" line still has one of this checkpoint.
          try sinks.writeReport(title: "vlmrl SFT report")
          log("saved \(url.lastPathComponent)")
        }
        // The other ranks wait while rank 0 writes.
        try processGroup?.barrier()
      }
    }
    if state.step == totalSteps, isMain {
      try exportFinal()
      log("SFT done: model in \(outputDirectory.appendingPathComponent("final").path)")
    }
    try sinks?.finish(title: "vlmrl SFT report")
    try processGroup?.barrier()
    return rows
  }

  /// `gradient_checkpointing`, or when unset, activation recompute above 1B parameters.
  var checkpointLayers: Bool { config.training.gradientCheckpointing ?? (model.parameterCount > 1_000_000_000) }

  /// This rank's micro-batch: the next `per_device_train_batch_size` x world size examples of the
  /// shared data order, of which rank r keeps the r-th contiguous slice.
  func nextBatch() -> [Example] {
    let size = config.training.perDeviceTrainBatchSize
    let global = stream.next(size * (processGroup?.worldSize ?? 1))
    let start = size * (processGroup?.rank ?? 0)
    return Array(global[start..<(start + size)])
  }

  /// The example's conversation as one sequence (`PromptBuilder.prepareDialogue`), or nil when it has
  /// no answer.
  func dialogue(_ example: Example) throws -> PreparedDialogue? {
    try Self.messages(for: example, recFrame: recFrame).map { try builder.prepareDialogue(example, messages: $0) }
  }

  /// The batch's loss: the mean over its examples of each example's mean token negative
  /// log-likelihood over all its answers' tokens (an example without an answer counts as 0, as
  /// before), computed in one packed pass (`PolicyPass`: vision once per prompt, sequences packed
  /// without padding, chunked log-probs). Each conversation is one sequence whose labels are its
  /// assistant turns' tokens. Returns the loss and the number of answer tokens, or nil when no example
  /// has an answer.
  func batchLoss(_ batch: [Example]) throws -> (Tensor, Int)? {
    var prompts: [PreparedPrompt] = [], completions: [RolloutRecord] = [], labels: [[Bool]] = []
    for example in batch {
      guard let dialogue = try dialogue(example) else { continue }
      prompts.append(dialogue.prompt)
      completions.append(RolloutRecord(promptIndex: prompts.count - 1, tokens: dialogue.tokens, truncated: false))
      labels.append(dialogue.trained)
    }
    guard !completions.isEmpty else { return nil }
    let out = try PolicyPass.logProbs(model: model, prompts: prompts, completions: completions, temperature: 1,
                                      checkpointLayers: checkpointLayers)
    // The padding mask with the masked (non-answer) tokens zeroed too.
    let width = out.logp.size(1)
    let mask = Tensor(labels.flatMap { row in row.map { $0 ? Float(1) : 0 } + Array(repeating: 0, count: width - row.count) },
                      shape: [labels.count, width]).to(model.device)
    let perExample = -(out.logp * mask).sum(dim: 1) / mask.sum(dim: 1).clamp(min: 1)
    return (perExample.sum() / Double(batch.count), labels.joined().filter { $0 }.count)
  }

  /// Mean negative log-likelihood of the answer tokens (each answer with its closing `<|im_end|>`) of
  /// one example, one forward of its own (the reference `batchLoss` is tested against).
  func exampleLoss(_ example: Example) throws -> (Tensor, Int)? {
    guard let dialogue = try dialogue(example) else { return nil }
    let prompt = dialogue.prompt
    let hidden = try model.hiddenStates(ids: prompt.ids + dialogue.tokens, promptLength: prompt.ids.count,
                                        pixelValues: prompt.pixelValues?.to(model.device), grids: prompt.grids,
                                        checkpointLayers: checkpointLayers)[0]
    let logProbs = model.tokenLogProbs(hidden: hidden.narrow(0, start: prompt.ids.count - 1, length: dialogue.tokens.count),
                                       targets: Tensor(dialogue.tokens).to(model.device))
    let mask = Tensor(dialogue.trained.map { $0 ? Float(1) : 0 }).to(logProbs.dtype, device: model.device)
    return (-(logProbs * mask).sum() / Double(dialogue.trainedTokenCount), dialogue.trainedTokenCount)
  }

  func exportFinal() throws {
    try Checkpoint.exportModel(model, companionFilesFrom: modelDirectory, to: outputDirectory.appendingPathComponent("final"),
                               adapter: adapter)
  }
}
