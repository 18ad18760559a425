import Datasets
import Foundation

/// What one generation batch trains on: the prompts and the records whose completions are trained
/// (`rollouts`), their rewards and advantages (`scored`), and metrics beyond the scoring stage's.
public struct SourcedBatch: @unchecked Sendable {
  public var rollouts: RolloutBatch
  public var scored: ScoredBatch
  public var metrics: [String: Double]

  public init(rollouts: RolloutBatch, scored: ScoredBatch, metrics: [String: Double] = [:]) {
    self.rollouts = rollouts
    self.scored = scored
    self.metrics = metrics
  }
}

/// Stages 1-2 of a GRPO step as a seam: where the trained completions of a generation batch come
/// from and how they are scored. The GRPO trainer's own source samples G completions per prompt and
/// scores them (`PlainGRPOSource`); the cycle trainer's chains a partner model's rollout between the
/// policy's and the rewards (docs/cycle.md). Stages 3-4 (log-probs, update), checkpoints, sinks and
/// resume stay the trainer's, so every source trains and resumes the same way.
public protocol GenerationSource: AnyObject {
  /// The next generation batch; `step` is the optimizer step it starts at (it keys randomness).
  func nextBatch(_ stream: inout ExampleStream, seed: Int, step: Int, log: (String) -> Void) async throws -> SourcedBatch
  /// After each optimizer step (`step` counts it).
  func didStep(_ step: Int) throws
  /// Writes the source's own state into a checkpoint folder being written (before it is renamed
  /// into place, so a checkpoint holds it whole or not at all).
  func save(into checkpoint: URL) throws
  /// Restores what `save` wrote.
  func restore(from checkpoint: URL) throws
  /// Device memory the source holds besides the trainer's (the memory plan's extra lines).
  var memoryEntries: [MemoryPlan.Entry] { get }
}

extension GenerationSource {
  public var memoryEntries: [MemoryPlan.Entry] { [] }
}

/// The GRPO trainer's source: G rollouts of each prompt from the policy, scored by the configured rewards.
final class PlainGRPOSource: GenerationSource {
  let rollout: RolloutStage
  let scoring: ScoringStage

  init(rollout: RolloutStage, scoring: ScoringStage) {
    self.rollout = rollout
    self.scoring = scoring
  }

  func nextBatch(_ stream: inout ExampleStream, seed: Int, step: Int, log: (String) -> Void) async throws -> SourcedBatch {
    let (prompts, skipped) = try rollout.preparePrompts(&stream, log: log)
    let share = rollout.share(of: prompts)
    let batch = try rollout.run(share.prompts, skipped: skipped, seed: seed, step: step, firstPosition: share.firstPosition)
    return SourcedBatch(rollouts: batch, scored: try await scoring.run(batch.records))
  }

  func didStep(_ step: Int) throws {}
  func save(into checkpoint: URL) throws {}
  func restore(from checkpoint: URL) throws {}
}

/// Evaluation during training (`dataset.eval_path`): called by the trainer every `eval_steps`
/// optimizer steps and after the last, on the model as it is then. Training does not import
/// Evaluation; the CLI supplies the implementation (the matching `vlmrl eval` task through the
/// rollout engine, greedy).
public protocol TrainingEvaluator: AnyObject {
  /// Metrics of the held-out records, named without the `eval/` prefix the trainer adds.
  func evaluate(step: Int, log: (String) -> Void) async throws -> [String: Double]
}

