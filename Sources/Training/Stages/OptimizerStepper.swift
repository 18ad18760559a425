import Foundation
import NN
import Torch

/// The end of every training step, shared by GRPO, SFT and the trainers built from them: global
/// gradient-norm clipping, the scheduled learning rate, AdamW, zeroed gradients. A non-finite loss
/// or gradient never reaches the weights: the step is skipped and counted.
public final class OptimizerStepper: @unchecked Sendable {
  public let optimizer: AdamW
  public let schedule: LRSchedule
  public let maxGradNorm: Double
  /// Steps skipped because the loss or the gradient was not finite.
  public private(set) var skippedNonFinite = 0

  /// Data-parallel ranks whose gradients are averaged before each step (nil: one process).
  public let processGroup: ProcessGroup?

  /// ZeRO stage 1 or 2 over `processGroup` (nil: every rank keeps the whole optimizer state).
  public let sharding: ShardedOptimizer?

  /// `zeroStage` 1 or 2 with a group of several ranks shards the optimizer state (and with 2 the
  /// gradients) over them (`ShardedOptimizer`); 0, or one process, keeps everything.
  public init(optimizer: AdamW, schedule: LRSchedule, maxGradNorm: Double, processGroup: ProcessGroup? = nil, zeroStage: Int = 0) {
    self.optimizer = optimizer
    self.schedule = schedule
    self.maxGradNorm = maxGradNorm
    self.processGroup = processGroup
    if let processGroup, zeroStage > 0 {
      sharding = ShardedOptimizer(wrapping: optimizer, stage: zeroStage, group: processGroup)
    } else {
      sharding = nil
    }
  }

  /// Allocates the optimizer state now (this rank's blocks of it when sharded).
  public func allocateState() {
    if let sharding { sharding.allocateState() } else { optimizer.allocateState() }
  }

  public struct Result {
    public var gradNorm: Double
    public var learningRate: Double
    public var applied: Bool
    /// Seconds of the clipping (part of backward) and of the optimizer step.
    public var clipSeconds: Double
    public var optimizerSeconds: Double
  }

  /// `step(_:lossFinite:)` after averaging the gradients over `processGroup`'s ranks, so every rank
  /// clips the same gradient and takes the same step (and all skip it when one rank's loss was not
  /// finite). The all-reduce time counts as clipping time. Without a group it is `step` itself.
  public func synchronizedStep(_ step: Int, lossFinite: Bool = true) throws -> Result {
    guard let processGroup else { return self.step(step, lossFinite: lossFinite) }
    if let sharding { return try shardedStep(sharding, step, lossFinite: lossFinite) }
    let timer = Date()
    let allFinite = try processGroup.averageGradients(optimizer.parameters, lossFinite: lossFinite)
    var result = self.step(step, lossFinite: allFinite)
    result.clipSeconds += Date().timeIntervalSince(timer)
    return result
  }

  /// A ZeRO step: the reduction, clipping, update and gather all happen in `ShardedOptimizer.step`,
  /// timed as the optimizer step.
  func shardedStep(_ sharding: ShardedOptimizer, _ step: Int, lossFinite: Bool) throws -> Result {
    let timer = Date()
    let learningRate = schedule.rate(at: step)
    let (gradNorm, applied) = try sharding.step(step, learningRate: learningRate, maxGradNorm: maxGradNorm, lossFinite: lossFinite)
    if !applied { skippedNonFinite += 1 }
    return Result(gradNorm: gradNorm, learningRate: learningRate, applied: applied, clipSeconds: 0,
                  optimizerSeconds: Date().timeIntervalSince(timer))
  }

  /// One optimizer step at `step` (0-based) after the gradients are accumulated; `lossFinite` is
  /// false when a micro-batch's loss was not finite (its backward was not run).
  public func step(_ step: Int, lossFinite: Bool = true) -> Result {
    var timer = Date()
    let gradNorm = lossFinite ? clipGradNorm(optimizer.parameters, maxNorm: maxGradNorm) : .nan
    let clipSeconds = Date().timeIntervalSince(timer)
    timer = Date()
    let learningRate = schedule.rate(at: step)
    let applied = lossFinite && gradNorm.isFinite
    if applied { optimizer.step(learningRate: learningRate, index: step) } else { skippedNonFinite += 1 }
    optimizer.zeroGrad()
    return Result(gradNorm: gradNorm, learningRate: learningRate, applied: applied, clipSeconds: clipSeconds,
                  optimizerSeconds: Date().timeIntervalSince(timer))
  }
}
