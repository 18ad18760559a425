import Foundation

/// Where a rollout's time went.
public struct RolloutTimings: Sendable {
  /// Vision tower, prompt prefill and first-token sampling, all prompts.
  public var prefillSeconds: Double = 0
  /// Batched decode steps, including admissions of waiting sequences and stop checks.
  public var decodeSeconds: Double = 0
  public var decodeSteps: Int = 0
  public var generatedTokens: Int = 0
  public var slots: Int = 0
  /// Decode steps replayed from a captured CUDA graph.
  public var graphReplays: Int = 0
  /// Decode steps run over fewer slots than allocated (after compaction into a smaller bucket).
  public var bucketSteps: Int = 0
  /// Whether the decode step ran the fused bf16 CUDA kernels, and if not (on CUDA), why not.
  public var fusedKernels = false
  public var fusedUnavailableReason: String? = nil
  public var totalSeconds: Double { prefillSeconds + decodeSeconds }
  public var tokensPerSecond: Double { totalSeconds > 0 ? Double(generatedTokens) / totalSeconds : 0 }
  public var millisecondsPerStep: Double { decodeSteps > 0 ? decodeSeconds * 1000 / Double(decodeSteps) : 0 }
}

/// Rollout inputs or resources that cannot work; the message says which request or setting.
public enum RolloutError: Error, CustomStringConvertible, Sendable {
  case invalidRequest(index: Int, reason: String)
  case invalidSettings(String)
  case insufficientMemory(String)

  public var description: String {
    switch self {
    case .invalidRequest(let index, let reason): return "rollout request \(index): \(reason)"
    case .invalidSettings(let message): return "sampling settings: \(message)"
    case .insufficientMemory(let message): return "rollout memory: \(message)"
    }
  }
}
