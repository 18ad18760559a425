import Foundation
import Models
import NN
import Torch

/// The cycle trainer's partner: an exponential moving average of the policy's trained weights
/// (docs/cycle.md, "The EMA partner"). Every `updateSteps` optimizer steps
/// `partner = decay * partner + (1 - decay) * policy` over what trains (all trainable parameters, or
/// the LoRA adapters only), in the model's dtype on the policy's device.
///
/// - decay 0 with updates every step: the partner is the policy itself (no copy).
/// - LoRA: the EMA holds the adapter tensors only; the partner runs as the policy with the EMA
///   adapters swapped in for the duration of its rollouts (memory: one copy of the adapters).
/// - Otherwise: a second model (memory: one more copy of the weights in the model's dtype, e.g.
///   7.5 GB for a 3B model in bf16); decay 1 keeps it at the initial weights (a frozen partner).
final class EMAPartner {
  enum Storage {
    case policy
    case model(QwenVLModel)
    case adapters([Tensor])
  }

  let policy: QwenVLModel
  let decay: Double
  let updateSteps: Int
  private(set) var storage: Storage
  /// The adapter settings when the policy trains LoRA (the partner folder is then a peft adapter).
  let adapter: LoRAConfig?

  /// The partner's own device memory (the memory plan's line).
  var memoryEntry: MemoryPlan.Entry? {
    switch storage {
    case .policy: return nil
    case .model(let copy): return MemoryPlan.Entry(name: "EMA partner", bytes: MemoryPlan.bytes(copy.parameters))
    case .adapters(let tensors):
      return MemoryPlan.Entry(name: "EMA adapters", bytes: tensors.reduce(0) { $0 + $1.count * $1.dtype.byteSize })
    }
  }

  init(policy: QwenVLModel, modelDirectory: URL, decay: Double, updateSteps: Int, adapter: LoRAConfig?) throws {
    self.policy = policy
    self.decay = decay
    self.updateSteps = max(1, updateSteps)
    self.adapter = adapter
    if decay == 0 && updateSteps <= 1 {
      storage = .policy
    } else if adapter != nil {
      storage = .adapters(withNoGrad { policy.namedTrainableParameters.map { $0.1.value.clone() } })
    } else {
      let copy = try QwenVLModel.load(directory: modelDirectory, dtype: policy.dtype, device: policy.device)
      copy.switches = policy.switches
      withNoGrad {
        let current = Dictionary(uniqueKeysWithValues: policy.namedParameters().map { ($0.0, $0.1.value) })
        for (name, parameter) in copy.namedParameters() {
          if let value = current[name] { parameter.value.copy_(value) }
        }
      }
      copy.setTrainable(false)
      copy.eval()
      storage = .model(copy)
    }
  }

  /// The trained tensors of the partner, in the order of the policy's `namedTrainableParameters`.
  var trainedTensors: [Tensor] {
    switch storage {
    case .policy: return policy.namedTrainableParameters.map(\.1.value)
    case .adapters(let tensors): return tensors
    case .model(let model):
      let byName = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.0, $0.1.value) })
      return policy.namedTrainableParameters.compactMap { byName[$0.0] }
    }
  }

  /// Bytes the partner holds beyond the policy.
  var extraBytes: Int {
    switch storage {
    case .policy: return 0
    case .adapters(let tensors): return tensors.reduce(0) { $0 + $1.count * $1.elementSize }
    case .model(let model): return model.parameters.reduce(0) { $0 + $1.value.count * $1.value.elementSize }
    }
  }

  /// After optimizer step `step`: moves the partner towards the policy every `updateSteps` steps.
  func update(step: Int) {
    guard step % updateSteps == 0 else { return }
    let weight = 1 - decay
    withNoGrad {
      switch storage {
      case .policy: return
      case .adapters(let tensors):
        for (target, (_, source)) in zip(tensors, policy.namedTrainableParameters) {
          target.lerp_(source.value.to(target.dtype), weight: weight)
        }
      case .model:
        for (target, (_, source)) in zip(trainedTensors, policy.namedTrainableParameters) {
          target.lerp_(source.value.to(target.dtype), weight: weight)
        }
      }
    }
  }

  /// Runs `body` with the partner's weights: the partner model, or the policy with the EMA adapters
  /// swapped in (and swapped back afterwards, also on error).
  func withPartner<T>(_ body: (QwenVLModel) throws -> T) rethrows -> T {
    switch storage {
    case .policy: return try body(policy)
    case .model(let model): return try body(model)
    case .adapters(let tensors):
      let live = policy.namedTrainableParameters.map(\.1.value)
      let saved = withNoGrad { live.map { $0.clone() } }
      withNoGrad { for (target, ema) in zip(live, tensors) { target.copy_(ema) } }
      defer { withNoGrad { for (target, value) in zip(live, saved) { target.copy_(value) } } }
      return try body(policy)
    }
  }

  /// Writes the partner under `folder/partner` (a model folder, or a peft adapter with LoRA).
  func save(into folder: URL) throws {
    let target = folder.appendingPathComponent("partner")
    switch storage {
    case .policy: return
    case .model(let model): try model.save(to: target)
    case .adapters:
      guard let adapter else { return }
      try withPartner { try $0.saveAdapter(adapter, baseModel: nil, to: target) }
    }
  }

  /// Restores what `save` wrote (call after the policy itself was restored). A checkpoint without a
  /// partner folder is an error unless the partner is the policy.
  func restore(from folder: URL) throws {
    let source = folder.appendingPathComponent("partner")
    switch storage {
    case .policy: return
    case .model(let model):
      guard FileManager.default.fileExists(atPath: source.path) else { throw missing(source) }
      let weights = try QwenVLModel.load(directory: source, dtype: model.dtype, device: model.device)
      try model.load(weights.stateDict())
    case .adapters(let tensors):
      guard FileManager.default.fileExists(atPath: source.path) else { throw missing(source) }
      let live = policy.namedTrainableParameters.map(\.1.value)
      let saved = withNoGrad { live.map { $0.clone() } }
      try policy.loadAdapter(directory: source)
      withNoGrad {
        for (ema, value) in zip(tensors, policy.namedTrainableParameters.map(\.1.value)) { ema.copy_(value) }
        for (target, value) in zip(live, saved) { target.copy_(value) }
      }
    }
  }

  private func missing(_ url: URL) -> TrainingError {
    .invalidArgument("\(url.path): the checkpoint has no EMA partner (was it written by a cycle run with the same ema settings?)")
  }
}
