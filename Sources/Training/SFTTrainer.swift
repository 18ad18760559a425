import Common
import Datasets
import Foundation
import Jinja
import ModelConfig
import Models
import NN
import Torch

/// Supervised fine-tuning on conversations, loss on assistant tokens only (the seeds' format warm-up).
/// Conversation records use their assistant turns; grounding records (single box) are turned into
/// one-turn conversations whose answer is the ground-truth box `[x1, y1, x2, y2]`.
public final class SFTTrainer: @unchecked Sendable {
  public let config: TrainingConfig
  public let model: QwenVLModel
  let builder: PromptBuilder
  let examples: [Example]
  let optimizer: AdamW
  public let totalSteps: Int
  let schedule: LRSchedule
  public let outputDirectory: URL
  let modelDirectory: URL
  var examplesSeen = 0

  public init(config: TrainingConfig, modelDirectory: URL, examples: [Example], device: Device = .cpu,
              dtype: DType = .float32) throws {
    guard !examples.isEmpty else { throw TrainingError.invalidArgument("SFT: the dataset has no usable examples") }
    self.config = config
    self.examples = examples
    self.modelDirectory = modelDirectory
    let folder = try ModelFolder(directory: modelDirectory)
    builder = try PromptBuilder(folder: folder, minPixels: config.training.minPixels, maxPixels: config.training.maxPixels)
    model = try QwenVLModel.load(directory: modelDirectory, dtype: dtype, device: device)
    if config.training.freezeVisionTower { model.visual.setTrainable(false) }
    // Half-precision weights train with float32 master weights and moments (mixed precision).
    optimizer = AdamW(model.trainableParameters, config.adamW, masterWeights: model.dtype != .float32)
    let batch = config.training.perDeviceTrainBatchSize
    totalSteps = config.training.maxSteps > 0 ? config.training.maxSteps
      : Int((config.training.numTrainEpochs * Double(examples.count) / Double(batch)).rounded(.up))
    schedule = config.lrSchedule(totalSteps: totalSteps)
    outputDirectory = URL(fileURLWithPath: config.training.outputDir)
  }

  /// The assistant answer an example is trained on.
  public static func answer(for example: Example) -> String? {
    if let turn = example.conversation.last(where: { $0.role == "assistant" }) { return turn.text }
    if let box = example.rewardFields["bbox"]?.arrayValue?.compactMap(\.doubleValue), box.count == 4 {
      return "[" + box.map { String(Int($0.rounded())) }.joined(separator: ", ") + "]"
    }
    return nil
  }

  /// Trains, writes metrics and the final model (Hugging Face layout, with tokenizer and processor files).
  @discardableResult
  public func run(log: @escaping (String) -> Void = { print($0) }) throws -> [MetricsRow] {
    try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
    let metrics = try MetricsJSONL(url: outputDirectory.appendingPathComponent("metrics.jsonl"))
    let progress = ConsoleProgress(totalSteps: totalSteps, colorize: config.training.colorizeOutput)
    var rows: [MetricsRow] = []
    for step in 0..<totalSteps {
      let start = Date()
      var lossValue = 0.0, tokens = 0
      let batch = nextBatch()
      if let (loss, count) = try batchLoss(batch) {
        loss.backward()
        RecomputeRegistry.shared.releaseAll()
        lossValue = loss.item()
        tokens = count
      }
      let gradNorm = clipGradNorm(optimizer.parameters, maxNorm: config.training.maxGradNorm)
      let learningRate = schedule.rate(at: step)
      if gradNorm.isFinite { optimizer.step(learningRate: learningRate) }
      optimizer.zeroGrad()
      let seconds = Date().timeIntervalSince(start)
      let values = [MetricName.loss: lossValue, MetricName.gradNorm: gradNorm,
                    MetricName.learningRate: learningRate, MetricName.numTokens: Double(tokens),
                    MetricName.stepTime: seconds, MetricName.tokensPerSecond: Double(tokens) / max(seconds, 1e-9)]
      let row = MetricsRow(step: step + 1, epoch: Double(examplesSeen) / Double(examples.count), values: values)
      if (step + 1) % max(1, config.training.loggingSteps) == 0 || step + 1 == totalSteps {
        try metrics.append(row)
        progress.summary(step: step + 1, metrics: values)
      }
      progress.update(step: step + 1)
      rows.append(row)
    }
    progress.finish()
    try exportFinal()
    log("SFT done: model in \(outputDirectory.appendingPathComponent("final").path)")
    return rows
  }

  func nextBatch() -> [Example] {
    (0..<config.training.perDeviceTrainBatchSize).map { _ in
      let count = examples.count
      let order = DataOrder.permutation(count: count, seed: UInt64(config.training.seed), epoch: examplesSeen / count)
      defer { examplesSeen += 1 }
      return examples[order[examplesSeen % count]]
    }
  }

  /// The batch's loss: the mean over its examples of each answer's mean token negative log-likelihood
  /// (an example without an answer counts as 0, as before), computed in one packed pass
  /// (`PolicyPass`: vision once per prompt, sequences packed without padding, chunked log-probs).
  /// Returns the loss and the number of answer tokens, or nil when no example has an answer.
  func batchLoss(_ batch: [Example]) throws -> (Tensor, Int)? {
    var prompts: [PreparedPrompt] = [], completions: [SampledCompletion] = []
    for example in batch {
      guard let answer = Self.answer(for: example) else { continue }
      prompts.append(try builder.prepare(example))
      completions.append(SampledCompletion(promptIndex: prompts.count - 1,
                                           tokens: builder.tokenizer.encode(answer + "<|im_end|>"), truncated: false))
    }
    guard !completions.isEmpty else { return nil }
    let out = try PolicyPass.logProbs(model: model, prompts: prompts, completions: completions, temperature: 1,
                                      checkpointLayers: config.training.gradientCheckpointing ?? false)
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
                                        grids: prompt.grids, checkpointLayers: config.training.gradientCheckpointing ?? false)[0]
    let logProbs = model.tokenLogProbs(hidden: hidden.narrow(0, start: prompt.ids.count - 1, length: answerIDs.count),
                                       targets: Tensor(answerIDs).to(model.device))
    return (-logProbs.mean(), answerIDs.count)
  }

  func exportFinal() throws {
    try Checkpoint.exportModel(model, companionFilesFrom: modelDirectory, to: outputDirectory.appendingPathComponent("final"))
  }
}
