import Foundation
import Torch

/// AdamW (decoupled weight decay, Loshchilov & Hutter) through libtorch's fused kernel
/// `_fused_adamw_`, which runs on CUDA and CPU. Tensors are grouped by (device, dtype) as the kernel
/// requires. Optimizer state is kept in the parameter's dtype, except with `masterWeights`: then a
/// half-precision parameter gets a float32 master copy and float32 moments, the update runs on the
/// master (with the gradient cast to float32), and the parameter receives the rounded master after
/// each step — mixed precision as in PyTorch AMP / accelerate, so that updates far below a bf16
/// weight's spacing (lr 1e-6) accumulate instead of vanishing.
public final class AdamW: @unchecked Sendable {
  public struct Hyperparameters: Sendable, Codable, Equatable {
    public var learningRate: Double
    public var beta1: Double
    public var beta2: Double
    public var eps: Double
    public var weightDecay: Double
    public init(learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8,
                weightDecay: Double = 0.01) {
      self.learningRate = learningRate
      self.beta1 = beta1
      self.beta2 = beta2
      self.eps = eps
      self.weightDecay = weightDecay
    }
  }

  /// Per-parameter state: first and second moments and the step count (a float32 scalar tensor,
  /// as the fused kernel wants).
  public final class State: @unchecked Sendable {
    public let expAvg: Tensor
    public let expAvgSq: Tensor
    public let step: Tensor
    /// The float32 master copy of a half-precision parameter (`masterWeights`), nil otherwise.
    public let master: Tensor?
    init(like value: Tensor, masterWeights: Bool) {
      let keepMaster = masterWeights && (value.dtype == .bfloat16 || value.dtype == .float16)
      let dtype: DType = keepMaster ? .float32 : value.dtype
      expAvg = Tensor.zeros(value.shape, dtype: dtype, device: value.device)
      expAvgSq = Tensor.zeros(value.shape, dtype: dtype, device: value.device)
      step = Tensor.zeros([], dtype: .float32, device: value.device)
      master = keepMaster ? value.detach().to(.float32, copy: true) : nil
    }
    init(expAvg: Tensor, expAvgSq: Tensor, step: Tensor, master: Tensor?) {
      self.expAvg = expAvg
      self.expAvgSq = expAvgSq
      self.step = step
      self.master = master
    }
  }

  public let parameters: [Parameter]
  public var hyper: Hyperparameters
  public private(set) var states: [State?]
  /// Float32 master weights and moments for half-precision parameters (see the type's comment).
  public let masterWeights: Bool

  public init(_ parameters: [Parameter], _ hyper: Hyperparameters = Hyperparameters(), masterWeights: Bool = false) {
    self.parameters = parameters
    self.hyper = hyper
    self.masterWeights = masterWeights
    self.states = Array(repeating: nil, count: parameters.count)
  }

  /// One update of every parameter that has a gradient, at `learningRate` (default: the configured one).
  public func step(learningRate: Double? = nil) {
    var groups: [String: [Int]] = [:]
    for (i, parameter) in parameters.enumerated() where parameter.trainable && parameter.grad != nil {
      if states[i] == nil { states[i] = State(like: parameter.value, masterWeights: masterWeights) }
      let dtype = states[i]!.master != nil ? DType.float32 : parameter.value.dtype
      groups["\(parameter.value.device)/\(dtype)", default: []].append(i)
    }
    let lr = learningRate ?? hyper.learningRate
    for key in groups.keys.sorted() {
      let indices = groups[key]!
      let state = indices.map { states[$0]! }
      let values = indices.map { states[$0]!.master ?? parameters[$0].value }
      let grads = indices.map { states[$0]!.master != nil ? parameters[$0].grad!.to(.float32) : parameters[$0].grad! }
      Torch.Optim.fusedAdamW(parameters: values, grads: grads, expAvgs: state.map(\.expAvg),
                             expAvgSqs: state.map(\.expAvgSq), steps: state.map(\.step), learningRate: lr,
                             beta1: hyper.beta1, beta2: hyper.beta2, weightDecay: hyper.weightDecay, eps: hyper.eps)
      withNoGrad {
        for index in indices { if let master = states[index]!.master { parameters[index].value.copy_(master) } }
      }
    }
  }

  /// Clears every parameter's gradient.
  public func zeroGrad() {
    for parameter in parameters { parameter.grad = nil }
  }

  /// Replaces the state (checkpoint resume); `nil` entries mean "no step taken yet".
  public func restore(states: [State?]) {
    precondition(states.count == parameters.count, "AdamW.restore: \(states.count) states for \(parameters.count) parameters")
    self.states = states
  }
  public static func makeState(expAvg: Tensor, expAvgSq: Tensor, step: Tensor, master: Tensor? = nil) -> State {
    State(expAvg: expAvg, expAvgSq: expAvgSq, step: step, master: master)
  }
}

/// Scales gradients so that their global L2 norm is at most `maxNorm`; returns the norm before
/// clipping (as torch.nn.utils.clip_grad_norm_, with its 1e-6 guard). Non-finite norms leave the
/// gradients untouched so the caller can skip the step.
@discardableResult
public func clipGradNorm(_ parameters: [Parameter], maxNorm: Double) -> Double {
  let grads = parameters.compactMap { $0.trainable ? $0.grad : nil }
  guard !grads.isEmpty else { return 0 }
  let value = Tensor.globalNorm(grads).item()
  guard value.isFinite, maxNorm > 0 else { return value }
  let scale = Swift.min(1.0, maxNorm / (value + 1e-6))
  if scale < 1 { Tensor.foreachMul_(grads, by: Tensor.full([], scale, dtype: .float64, device: grads[0].device)) }
  return value
}

// MARK: - Learning-rate schedules

/// Linear warm-up followed by a constant, linear or cosine decay (towards `minRatio * peak`), as
/// transformers' `get_*_schedule_with_warmup`.
public struct LRSchedule: Sendable, Codable, Equatable {
  public enum Kind: String, Sendable, Codable { case constant, linear, cosine }
  public var kind: Kind
  public var peak: Double
  public var warmupSteps: Int
  public var totalSteps: Int
  public var minRatio: Double

  public init(kind: Kind, peak: Double, warmupSteps: Int = 0, totalSteps: Int, minRatio: Double = 0) {
    self.kind = kind
    self.peak = peak
    self.warmupSteps = warmupSteps
    self.totalSteps = totalSteps
    self.minRatio = minRatio
  }

  /// The learning rate for optimizer step `step` (0-based), exactly as transformers' lambdas: the
  /// first warm-up step runs at 0 (`step / warmup`), then the decay starts from the peak.
  public func rate(at step: Int) -> Double {
    if step < warmupSteps { return peak * Double(step) / Double(Swift.max(1, warmupSteps)) }
    let decaySteps = Double(Swift.max(1, totalSteps - warmupSteps))
    let progress = Double(step - warmupSteps) / decaySteps
    let factor: Double
    switch kind {
    case .constant: factor = 1
    case .linear: factor = Swift.max(0, Double(totalSteps - step) / decaySteps)
    case .cosine: factor = Swift.max(0, 0.5 * (1 + Foundation.cos(Double.pi * Swift.min(1, progress))))
    }
    return peak * (minRatio + (1 - minRatio) * factor)
  }
}
