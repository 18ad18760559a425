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
      var lossSum = 0.0, tokens = 0
      let batch = nextBatch()
      for example in batch {
        guard let (loss, count) = try exampleLoss(example) else { continue }
        (loss / Double(batch.count)).backward()
        CheckpointRegistry.shared.releaseAll()
        lossSum += loss.item()
        tokens += count
      }
      let gradNorm = clipGradNorm(optimizer.parameters, maxNorm: config.training.maxGradNorm)
      let learningRate = schedule.rate(at: step)
      if gradNorm.isFinite { optimizer.step(learningRate: learningRate) }
      optimizer.zeroGrad()
      let seconds = Date().timeIntervalSince(start)
      let values = [MetricName.loss: lossSum / Double(max(1, batch.count)), MetricName.gradNorm: gradNorm,
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

  /// Mean negative log-likelihood of the answer tokens (and the closing `<|im_end|>`).
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
