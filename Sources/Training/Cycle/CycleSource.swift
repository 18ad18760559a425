import Common
import Datasets
import Foundation
import Generation
import Imaging
import ModelConfig
import Models
import Prompting
import Rewards
import Torch

/// The two loops of the dual-loop region <-> caption RL (docs/cycle.md).
public enum CycleLoop: String, Sendable, CaseIterable {
  /// Loop 1: region -> caption (policy, G samples, trained) -> region' (partner); IoU(region', region).
  case regionToCaption = "region_to_caption"
  /// Loop 2: caption -> region (policy, G samples, trained) -> caption' (partner); METEOR + judge.
  case captionToRegion = "caption_to_region"
}

/// The cycle trainer: GRPO (the same stages, checkpoints, sinks and resume as `GRPOTrainer`) whose
/// generation batches come from the two loops, with an EMA copy of the policy as the partner that
/// produces the intermediate step. `job_type: cycle`.
public enum CycleTrainer {
  public static func make(config: TrainingConfig, modelDirectory: URL, examples: [Example], device: Device = .cpu,
                          dtype: DType = .float32, switches: KernelSwitches = KernelSwitches()) throws -> GRPOTrainer {
    guard config.jobType == .cycle else {
      throw TrainingError.invalidArgument("CycleTrainer needs job_type cycle, got \(config.jobType.rawValue)")
    }
    try config.validate()
    // Stages 3-4, checkpoints and sinks are GRPO's; the configured rewards are unused (the loops
    // bring their own), so the trainer gets an empty runner.
    let trainer = try GRPOTrainer(config: config, modelDirectory: modelDirectory, examples: examples,
                                  rewards: RewardRunner(functions: []), device: device, dtype: dtype, switches: switches)
    trainer.install(source: try CycleSource(trainer: trainer, config: config, modelDirectory: modelDirectory))
    return trainer
  }
}

/// Stages 1-2 of a cycle step: the policy's rollouts of one loop (or both, `mixed`), the partner's
/// rollouts of the intermediate step, and the loop's reward, as one `SourcedBatch` whose trained
/// completions are the policy's.
final class CycleSource: GenerationSource {
  let builder: PromptBuilder
  let policyStage: RolloutStage
  let partner: EMAPartner
  /// The partner's own engine when it is a separate model (else the policy's engine is used).
  let partnerEngine: RolloutEngine?
  let partnerSampling: SamplingSettings
  let schedule: String
  let regionPrompt: String
  let captionTemplate: String
  let groundingTemplate: String
  let frame: BoxFrame
  let regionScoring: ScoringStage
  let captionScoring: ScoringStage

  init(trainer: GRPOTrainer, config: TrainingConfig, modelDirectory: URL) throws {
    let t = config.training
    builder = trainer.builder
    policyStage = trainer.rollout
    partner = try EMAPartner(policy: trainer.model, modelDirectory: modelDirectory, decay: t.emaDecay,
                             updateSteps: t.emaUpdateSteps, adapter: trainer.adapter)
    if case .model(let model) = partner.storage { partnerEngine = RolloutEngine(model: model) } else { partnerEngine = nil }
    var sampling = SamplingSettings(maxNewTokens: t.partnerMaxCompletionLength ?? t.maxCompletionLength,
                                    temperature: t.partnerTemperature, topP: t.topP, topK: t.topK ?? 0, minP: t.minP ?? 0,
                                    repetitionPenalty: t.repetitionPenalty)
    sampling.eosTokenIds = builder.stopTokenIds
    partnerSampling = sampling
    schedule = t.cycleSchedule
    regionPrompt = t.regionPrompt
    captionTemplate = t.cycleCaptionPrompt
    groundingTemplate = t.cycleGroundingPrompt
    let family = try ModelFolder(directory: modelDirectory).config.family
    frame = family == .qwen25VL ? .resized : .norm1000
    let groupSize = t.numGenerations
    regionScoring = ScoringStage(rewards: RewardRunner(functions: [RegionIoUReward(frame: frame)]), groupSize: groupSize,
                                 scaling: t.scaleRewards)
    // METEOR and the judge take their parameters from reward_parameters (shared keys, or blocks
    // named `meteor` / `llm_judge`); the judge only when it has weight.
    let names = t.cycleJudgeWeight > 0 ? ["meteor", "llm_judge"] : ["meteor"]
    let functions: [any RewardFunction]
    do {
      functions = try RewardRegistry.make(names, parameters: t.rewardParameters)
    } catch {
      throw TrainingError.invalidArgument("reward_parameters for the cycle trainer's caption reward (\(names.joined(separator: ", "))): \(error)"
        + (t.cycleJudgeWeight > 0 ? " (loop 2 needs a judge url, or cycle_judge_weight 0 for METEOR alone)" : ""))
    }
    let caption = CaptionCycleReward(meteor: functions[0], judge: functions.count > 1 ? functions[1] as? LLMJudgeReward : nil,
                                     meteorWeight: t.cycleMeteorWeight, judgeWeight: t.cycleJudgeWeight)
    captionScoring = ScoringStage(rewards: RewardRunner(functions: [caption]), groupSize: groupSize, scaling: t.scaleRewards)
    if let bad = trainer.examples.first(where: { Region(fields: $0.rewardFields) == nil && Self.caption(of: $0) == nil }) {
      throw TrainingError.invalidArgument("\(bad.source): a cycle record needs a region (mask_rle or bbox) and a caption")
    }
  }

  /// The loops of the generation batch starting at optimizer step `step` (one step per batch).
  func loops(step: Int) -> [CycleLoop] {
    switch schedule {
    case "region_to_caption": return [.regionToCaption]
    case "caption_to_region": return [.captionToRegion]
    case "mixed": return [.regionToCaption, .captionToRegion]
    default: return [step % 2 == 0 ? .regionToCaption : .captionToRegion]
    }
  }

  func nextBatch(_ stream: inout ExampleStream, seed: Int, step: Int, log: (String) -> Void) async throws -> SourcedBatch {
    let loops = self.loops(step: step)
    let total = policyStage.promptsPerBatch
    var parts: [SourcedBatch] = []
    for (position, loop) in loops.enumerated() {
      // `mixed`: the first half of the prompts (rounded up) runs loop 1, the rest loop 2.
      let count = loops.count == 1 ? total : (position == 0 ? (total + 1) / 2 : total / 2)
      guard count > 0 else { continue }
      let first = parts.reduce(0) { $0 + $1.rollouts.prompts.count }
      parts.append(try await run(loop, prompts: count, stream: &stream, seed: seed, step: step, salt: UInt64(position),
                                 firstPosition: first, log: log))
    }
    return parts.count == 1 ? parts[0] : try Self.merge(parts)
  }

  func didStep(_ step: Int) throws { partner.update(step: step) }
  var memoryEntries: [MemoryPlan.Entry] { partner.memoryEntry.map { [$0] } ?? [] }
  func save(into checkpoint: URL) throws { try partner.save(into: checkpoint) }
  func restore(from checkpoint: URL) throws { try partner.restore(from: checkpoint) }

  // MARK: One loop

  func run(_ loop: CycleLoop, prompts count: Int, stream: inout ExampleStream, seed: Int, step: Int, salt: UInt64,
           firstPosition: Int, log: (String) -> Void) async throws -> SourcedBatch {
    let (prompts, originals, skipped) = try policyPrompts(loop, count: count, stream: &stream, log: log)
    // The second loop of a `mixed` batch continues the batch's prompt positions, which key the
    // sampling randomness: its prompts never draw the first loop's streams.
    let batch = try policyStage.run(prompts, skipped: skipped, seed: seed, step: step, firstPosition: firstPosition)
    let timer = Date()
    let partnerInputs = try partnerPrompts(loop, records: batch.records, originals: originals)
    let outputs = try partnerRollouts(partnerInputs.prompts, seed: seed, step: step, salt: salt)
    var texts = [String](repeating: "", count: batch.records.count)
    for (slot, record) in zip(partnerInputs.owners, outputs) { texts[slot] = record.text }
    let partnerSeconds = Date().timeIntervalSince(timer)
    // The rewards read the partner's output as the completion, with the trained record's fields
    // (truth region, captions, judge questions) and image geometry; token counts stay the policy's.
    let scoringRecords = zip(batch.records, texts).map { record, text -> RolloutRecord in
      var scored = record
      scored.text = text
      return scored
    }
    var metrics: [String: Double] = ["time/partner": partnerSeconds,
                                     "cycle/partner_prompt_skipped": Double(partnerInputs.skipped)]
    let scored: ScoredBatch
    switch loop {
    case .regionToCaption:
      scored = try await regionScoring.run(scoringRecords)
      metrics["cycle/region_iou"] = scored.metrics["rewards/region_iou/mean"]
    case .captionToRegion:
      scored = try await captionScoring.run(scoringRecords)
      metrics["cycle/caption_meteor"] = scored.metrics["rewards/caption_cycle/meteor"]
      metrics["cycle/caption_judge"] = scored.metrics["rewards/caption_cycle/judge"]
      metrics["cycle/judge_missing"] = scored.metrics["rewards/caption_cycle/judge_missing"] ?? 0
      metrics["cycle/judge_cache_hits"] = scored.metrics["rewards/caption_cycle/judge_cache_hits"]
      metrics["cycle/grounding_parsed"] = Double(partnerInputs.owners.count + partnerInputs.skipped)
        / Double(max(1, batch.records.count))
    }
    metrics["cycle/loop_\(loop.rawValue)"] = 1
    return SourcedBatch(rollouts: batch, scored: scored, metrics: metrics.compactMapValues { $0 })
  }

  // MARK: Prompts

  /// The first caption of a record (the reference of loop 2, and what loop 2's policy grounds).
  static func caption(of example: Example) -> String? {
    example.rewardFields["captions"]?.arrayValue?.first?.stringValue
      ?? example.rewardFields["caption"]?.stringValue
  }

  /// `count` prepared policy prompts of `loop`; records that cannot serve it are skipped and counted.
  /// `originals[i]` is the record prompt `i` was made from.
  func policyPrompts(_ loop: CycleLoop, count: Int, stream: inout ExampleStream, log: (String) -> Void) throws
    -> (prompts: [PreparedPrompt], originals: [Example], skipped: [String: Int]) {
    var prompts: [PreparedPrompt] = [], originals: [Example] = [], skipped: [String: Int] = [:]
    var failuresInARow = 0
    while prompts.count < count {
      let example = stream.next()
      do {
        prompts.append(try builder.prepare(try policyExample(loop, example)))
        originals.append(example)
        failuresInARow = 0
      } catch let error as PromptError {
        skipped[error.reason, default: 0] += 1
        log("skipped \(error)")
        failuresInARow += 1
      } catch let error as CycleRecordProblem {
        skipped[error.reason, default: 0] += 1
        log("skipped \(example.source): \(error.message)")
        failuresInARow += 1
      }
      if failuresInARow >= stream.examples.count {
        throw TrainingError.invalidArgument("no record of the dataset can become a \(loop.rawValue) prompt (see the skipped lines above)")
      }
    }
    return (prompts, originals, skipped)
  }

  struct CycleRecordProblem: Error {
    var reason: String
    var message: String
  }

  /// The policy's view of a record: loop 1 shows the region and asks for a caption; loop 2 gives the
  /// record's caption and asks for the region.
  func policyExample(_ loop: CycleLoop, _ example: Example) throws -> Example {
    guard example.images.count == 1, let image = example.images.first else {
      throw CycleRecordProblem(reason: "image_count", message: "a cycle record needs exactly one image, it has \(example.images.count)")
    }
    switch loop {
    case .regionToCaption:
      guard let region = Region(fields: example.rewardFields) else {
        throw CycleRecordProblem(reason: "no_region", message: "no region (mask_rle or bbox) to describe")
      }
      return try regionExample(example, image: image, regionInOriginal: region, modelBox: nil)
    case .captionToRegion:
      guard let caption = Self.caption(of: example) else {
        throw CycleRecordProblem(reason: "no_caption", message: "no caption to ground")
      }
      return groundingExample(example, image: image, caption: caption)
    }
  }

  /// A prompt that names a region (loop 1's policy, loop 2's partner), shown as `region_prompt` says:
  /// its box in the model's frame in the text, an outline drawn on the image, or both.
  /// `modelBox` is the box as the model wrote it (loop 2); else it is computed from the region.
  func regionExample(_ example: Example, image: ImageInfo, regionInOriginal region: Region, modelBox: Box?) throws -> Example {
    let needsPixels = regionPrompt != "coordinates" || image.width == nil || image.height == nil
    let decoded = needsPixels ? try decode(image, example) : nil
    let width = image.width ?? decoded?.width ?? 0, height = image.height ?? decoded?.height ?? 0
    let resized = try builder.processor.resizedSize(height: height, width: width, name: image.source.name)
    let geometry = ImageGeometry(originalWidth: width, originalHeight: height, resizedWidth: resized.width,
                                 resizedHeight: resized.height)
    let coordinates = Region.text(modelBox ?? frame.fromOriginal(region.box, image: geometry))
    var shown = image
    let regionText: String
    switch regionPrompt {
    case "outline", "both":
      let pixels = try decoded ?? decode(image, example)
      let outlined = region.outlined(pixels)
      shown = ImageInfo(source: .bytes(try encodePNG(outlined), name: "\(image.source.name)#outlined"), width: width, height: height)
      regionText = regionPrompt == "outline" ? "outlined in red" : "outlined in red at \(coordinates)"
    default:
      regionText = coordinates
    }
    let text = captionTemplate.replacingOccurrences(of: "{region}", with: regionText)
    return Example(source: example.source, kind: .regionCaption, prompt: [.image(shown.source), .text(text)],
                   rewardFields: example.rewardFields, images: [shown])
  }

  /// A prompt that asks to ground a caption (loop 2's policy, loop 1's partner) on the clean image.
  func groundingExample(_ example: Example, image: ImageInfo, caption: String) -> Example {
    let cleaned = String(caption.trimmingCharacters(in: .whitespacesAndNewlines).prefix(1000))
    let text = groundingTemplate.replacingOccurrences(of: "{caption}", with: cleaned)
    return Example(source: example.source, kind: .regionCaption, prompt: [.image(image.source), .text(text)],
                   rewardFields: example.rewardFields, images: [image])
  }

  func decode(_ image: ImageInfo, _ example: Example) throws -> RGBImage {
    do {
      return try ImageLoader.decode(image.source)
    } catch {
      throw PromptError.image(source: example.source, message: "\(error)")
    }
  }

  /// The partner's prompts for the policy's records (`owners[i]`: the record prompt `i` belongs to).
  /// Loop 1 grounds each caption; loop 2 describes each region the policy wrote (a grounding with no
  /// box gets no partner prompt, its caption' stays empty and scores 0). A prompt that fails (too
  /// long, say) is counted in `skipped` and its record scores as an empty answer.
  func partnerPrompts(_ loop: CycleLoop, records: [RolloutRecord], originals: [Example]) throws
    -> (prompts: [PreparedPrompt], owners: [Int], skipped: Int) {
    var result: [PreparedPrompt] = [], owners: [Int] = [], skipped = 0
    for (index, record) in records.enumerated() {
      // The record with its clean image (loop 1's policy prompt may show an outlined copy).
      let original = originals[record.promptIndex]
      let example: Example
      switch loop {
      case .regionToCaption:
        example = groundingExample(original, image: original.images[0], caption: AnswerParsing.answer(in: record.text))
      case .captionToRegion:
        guard let box = AnswerParsing.firstBox(in: AnswerParsing.answer(in: record.text)) else { continue }
        let region = Region(box: frame.toOriginal(box, image: record.images.first))
        example = try regionExample(original, image: original.images[0], regionInOriginal: region, modelBox: box)
      }
      do {
        result.append(try builder.prepare(example))
        owners.append(index)
      } catch is PromptError {
        skipped += 1
      }
    }
    return (result, owners, skipped)
  }

  /// One partner sample per prompt, with the partner's weights.
  func partnerRollouts(_ prompts: [PreparedPrompt], seed: Int, step: Int, salt: UInt64) throws -> [RolloutRecord] {
    guard !prompts.isEmpty else { return [] }
    let seeds = prompts.indices.map { DataOrder.mix(UInt64(seed), UInt64(step), 0xC7C1E + salt, UInt64($0)) }
    return try partner.withPartner { model in
      let engine = partnerEngine ?? policyStage.engine
      let isPolicy = model === policyStage.engine.model
      if isPolicy { model.eval() }
      defer { if isPolicy { model.train() } }
      return try engine.rollouts(prompts, builder: builder, samples: 1, settings: partnerSampling, seeds: seeds).records
    }
  }

  // MARK: Mixed batches

  /// Two loops' batches as one: prompts and records concatenated (record prompt indices shifted),
  /// each loop's rewards under its own key (nil for the other loop's records), advantages as
  /// computed per group, and the batch metrics over both.
  static func merge(_ parts: [SourcedBatch]) throws -> SourcedBatch {
    var rollouts = parts[0].rollouts
    var scored = parts[0].scored
    var metrics = parts[0].metrics
    for part in parts.dropFirst() {
      let offset = rollouts.prompts.count, before = rollouts.records.count
      rollouts.prompts += part.rollouts.prompts
      rollouts.records += part.rollouts.records.map { record in
        var shifted = record
        shifted.promptIndex += offset
        return shifted
      }
      rollouts.seconds += part.rollouts.seconds
      rollouts.skipped.merge(part.rollouts.skipped) { $0 + $1 }
      let added = part.rollouts.records.count
      scored.rewards = scored.rewards.map { (key: $0.key, values: $0.values + Array(repeating: nil, count: added)) }
        + part.scored.rewards.map { (key: $0.key, values: Array(repeating: nil, count: before) + $0.values) }
      scored.totals += part.scored.totals
      scored.advantages += part.scored.advantages
      scored.failedFunctions += part.scored.failedFunctions
      scored.errorMessages.merge(part.scored.errorMessages) { a, _ in a }
      scored.metrics.merge(part.scored.metrics) { a, b in a + b }
      metrics.merge(part.metrics) { a, b in a + b }
    }
    // The batch-wide numbers over both loops.
    let totals = scored.totals.compactMap { $0 }
    let mean = totals.isEmpty ? 0 : totals.reduce(0, +) / Double(totals.count)
    let variance = totals.count > 1 ? totals.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(totals.count - 1) : 0
    scored.metrics[MetricName.reward] = mean
    scored.metrics[MetricName.rewardStd] = variance.squareRoot()
    scored.metrics[MetricName.fracRewardZeroStd] = parts.reduce(0) {
      $0 + ($1.scored.metrics[MetricName.fracRewardZeroStd] ?? 0) * Double($1.rollouts.prompts.count)
    } / Double(max(1, rollouts.prompts.count))
    scored.metrics.merge(try CompletionStats(lengths: rollouts.records.map(\.tokens.count),
                                             truncated: rollouts.records.map(\.truncated)).metrics) { $1 }
    return SourcedBatch(rollouts: rollouts, scored: scored, metrics: metrics)
  }
}
