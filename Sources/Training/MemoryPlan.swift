import Foundation
import Models
import NN
import Torch

/// What a training run holds on its device for the whole run — weights, the frozen reference, the
/// optimizer state, and the gradients during each backward — from parameter counts and dtypes.
/// Activations, the log-prob chunks and the rollout engine's slot cache come on top and are sized
/// from what is left (the engine plans from free memory after the optimizer state is allocated).
/// Logged at the start of a GPU run and printed with an out-of-memory error, with what would lower it.
public struct MemoryPlan: Sendable, CustomStringConvertible {
  public struct Entry: Sendable {
    public var name: String
    public var bytes: Int
  }
  public var entries: [Entry]
  /// The device's total memory (nil on the CPU).
  public var deviceTotal: Int?
  /// What would lower the figure, most effective first.
  public var advice: [String]

  public var totalBytes: Int { entries.reduce(0) { $0 + $1.bytes } }

  static func gib(_ bytes: Int) -> String { String(format: "%.1f GiB", Double(bytes) / 1_073_741_824) }

  public var description: String {
    let parts = entries.map { "\($0.name) \(Self.gib($0.bytes))" }.joined(separator: ", ")
    let of = deviceTotal.map { " of the device's \(Self.gib($0))" } ?? ""
    let lower = advice.isEmpty ? "" : "; to lower it: " + advice.joined(separator: "; ")
    return "Memory plan: \(parts); \(Self.gib(totalBytes))\(of) before activations and rollouts\(lower)."
  }

  static func bytes(_ parameters: [Parameter]) -> Int {
    parameters.reduce(0) { $0 + $1.value.count * $1.value.dtype.byteSize }
  }

  /// The plan of a trainer holding `model` (adapters included), an optional frozen `reference`, the
  /// optimizer over `trainable` with `precision`, and `extra` named holdings (the cycle trainer's
  /// EMA partner).
  public static func training(model: QwenVLModel, reference: QwenVLModel?, trainable: [Parameter],
                              optim: TrainingConfig.Optimizer, usePeft: Bool, checkpointLayers: Bool,
                              sharding: ShardedOptimizer? = nil, extra: [Entry] = []) -> MemoryPlan {
    let precision = optim.precision
    var entries = [Entry(name: "weights", bytes: bytes(model.parameters + LoRA.namedParameters(in: model).map(\.1)))]
    if let reference { entries.append(Entry(name: "reference", bytes: bytes(reference.parameters))) }
    let state = AdamW.stateBytes(trainable, precision: precision)
    if let sharding {
      // This rank's blocks: their AdamW state and the block of the weights AdamW updates.
      entries.append(Entry(name: "optimizer state (\(optim.rawValue), ZeRO-\(sharding.stage), 1/\(sharding.group.worldSize) per rank)",
                           bytes: sharding.stateBytesPerRank))
    } else {
      entries.append(Entry(name: "optimizer state (\(optim.rawValue))", bytes: state))
    }
    entries.append(Entry(name: "gradients", bytes: bytes(trainable.filter(\.trainable))))
    entries += extra
    var advice: [String] = []
    let half = trainable.contains { $0.value.dtype == .bfloat16 }
    if half && precision == .master {
      let saved = state - AdamW.stateBytes(trainable, precision: .stochastic)
      advice.append("optim adamw_bf16 (bf16 moments, stochastic rounding; saves \(gib(saved)))")
    }
    if !usePeft { advice.append("use_peft (LoRA: the optimizer state and gradients of the adapters only, no reference copy)") }
    if !checkpointLayers { advice.append("gradient_checkpointing true") }
    let total: Int?
    if case .cuda(let index) = model.device { total = CUDA.memoryInfo(index).total } else { total = nil }
    return MemoryPlan(entries: entries, deviceTotal: total, advice: advice)
  }
}
