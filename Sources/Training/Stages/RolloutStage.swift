import Datasets
import Foundation
import Generation
import Models
import Prompting
import Torch

/// The prompts of one generation batch and their G rollouts each.
public struct RolloutBatch: @unchecked Sendable {
  public var prompts: [PreparedPrompt]
  /// Prompt after prompt, G samples each.
  public var records: [RolloutRecord]
  public var timings: RolloutTimings
  public var seconds: Double
  /// Records left out of this batch, by reason (`prompt_too_long`, `bad_image`, `bad_prompt`).
  public var skipped: [String: Int]
}

/// Stage 1 of a GRPO step: draws the next prompts from the example stream, prepares them (records
/// that cannot become a prompt are skipped, counted and named, never fatal), and samples G
/// completions per prompt through the rollout engine (vision and prefill once per prompt, sampling
/// on the device), each wrapped once into a `RolloutRecord`. Randomness is keyed by (seed, step,
/// prompt position), so a resumed run draws exactly what an uninterrupted one would.
public struct RolloutStage: @unchecked Sendable {
  public let builder: PromptBuilder
  public let engine: RolloutEngine
  public let sampling: SamplingSettings
  public let numGenerations: Int
  /// This rank's prompts per generation batch (`BatchLayout.promptsPerGeneration`).
  public let promptsPerBatch: Int
  /// This process's place among data-parallel ranks (0 of 1 on one process).
  public let rank: Int
  public let worldSize: Int
  /// The layer groups whose attention diagnostics the records carry (`compute_attention_metrics`).
  public let attentionGroups: AttentionLayerGroups?

  public init(builder: PromptBuilder, engine: RolloutEngine, settings: GRPOSettings) throws {
    self.builder = builder
    self.engine = engine
    var sampling = settings.sampling
    sampling.eosTokenIds = builder.stopTokenIds
    attentionGroups = settings.recordAttention
      ? try AttentionReport.groups(settings.attentionLayerGroups, layers: engine.model.config.text.numHiddenLayers) : nil
    if let attentionGroups { sampling.recordAttentionLayers = attentionGroups.allLayers }
    self.sampling = sampling
    numGenerations = settings.numGenerations
    promptsPerBatch = settings.promptsPerGeneration
    (rank, worldSize) = (settings.rank, settings.worldSize)
  }

  /// Prepares the prompts of the whole generation batch (`promptsPerBatch` per rank) from `stream`,
  /// skipping records that fail. Every rank prepares all of them, so all ranks skip the same
  /// records and consume the stream alike; `share(of:)` then picks this rank's. Fails only when a
  /// whole pass over the data yields no usable prompt.
  public func preparePrompts(_ stream: inout ExampleStream, log: (String) -> Void) throws
    -> (prompts: [PreparedPrompt], skipped: [String: Int]) {
    var prompts: [PreparedPrompt] = [], skipped: [String: Int] = [:]
    var failuresInARow = 0
    while prompts.count < promptsPerBatch * worldSize {
      let example = stream.next()
      do {
        prompts.append(try builder.prepare(example))
        failuresInARow = 0
      } catch let error as PromptError {
        skipped[error.reason, default: 0] += 1
        log("skipped \(error)")
        failuresInARow += 1
        if failuresInARow >= stream.examples.count {
          throw TrainingError.invalidArgument("no record of the dataset can become a prompt (last: \(error))")
        }
      }
    }
    return (prompts, skipped)
  }

  /// This rank's contiguous block of the generation batch's prompts and the position of its first
  /// prompt in the batch: rank r takes prompts r*P ..< (r+1)*P, so the ranks' blocks in rank order
  /// are the batch a single process with all of them would train on.
  public func share(of prompts: [PreparedPrompt]) -> (prompts: [PreparedPrompt], firstPosition: Int) {
    let first = min(prompts.count, rank * promptsPerBatch)
    return (Array(prompts[first..<min(prompts.count, first + promptsPerBatch)]), first)
  }

  /// G rollouts of each prompt; `step` and each prompt's position in the whole generation batch
  /// (`firstPosition` + its index here) key the randomness, so a prompt samples the same
  /// completions whichever rank draws it.
  public func run(_ prompts: [PreparedPrompt], skipped: [String: Int] = [:], seed: Int, step: Int,
                  firstPosition: Int = 0) throws -> RolloutBatch {
    let seeds = prompts.indices.map { DataOrder.mix(UInt64(seed), UInt64(step), UInt64(firstPosition + $0)) }
    let model = engine.model
    let timer = Date()
    // Rollouts sample from the policy as it is (adapters on, no dropout: eval mode).
    model.eval()
    defer { model.train() }
    let (records, timings) = try engine.rollouts(prompts, builder: builder, samples: numGenerations, settings: sampling,
                                                 seeds: seeds, attentionGroups: attentionGroups)
    return RolloutBatch(prompts: prompts, records: records, timings: timings, seconds: Date().timeIntervalSince(timer),
                        skipped: skipped)
  }
}
