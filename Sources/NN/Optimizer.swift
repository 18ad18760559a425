import Foundation
import Torch

/// AdamW (decoupled weight decay, Loshchilov & Hutter) through libtorch's fused kernel
/// `_fused_adamw_`, which runs on CUDA and CPU. How a half-precision (bf16/fp16) parameter keeps its
/// state is the `Precision`:
/// - `.master`: a float32 master copy and float32 moments; the update runs on the master (with the
///   gradient cast to float32) and the parameter receives the rounded master after each step — mixed
///   precision as in PyTorch AMP / accelerate, so that updates far below a bf16 weight's spacing
///   (lr 1e-6) accumulate instead of vanishing. 12 bytes of state per parameter.
/// - `.stochastic` (bf16 only): moments in bf16, and the updated weight written back with stochastic
///   rounding, so that a small update moves the weight by one spacing with the matching probability
///   and accumulates in expectation. 4 bytes per parameter, as TRL's pure-bf16 AdamW.
/// - `.kahan`: moments in the parameter's dtype plus a compensation buffer that holds what rounding
///   the weight dropped, added back before the next update (Kahan summation). 6 bytes per parameter.
/// - `.plain`: moments in the parameter's dtype, the weight rounded to nearest (small updates are
///   lost in bf16: what TRL does with `bf16=True`; kept for comparison).
/// float32 parameters always train in float32. The update runs in chunks of at most `chunkElements`
/// elements, so float32 temporaries (gradients cast for the master, or widened half-precision state)
/// stay a bounded size however large the model.
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

  /// How half-precision parameters keep their optimizer state (see the type's comment).
  public enum Precision: String, Sendable, Codable, CaseIterable {
    case master, stochastic, kahan, plain

    /// Bytes of optimizer state per half-precision parameter.
    public var stateBytesPerHalfParameter: Int {
      switch self {
      case .master: return 12
      case .stochastic, .plain: return 4
      case .kahan: return 6
      }
    }
  }

  /// Per-parameter state: first and second moments and the step count (a float32 scalar tensor,
  /// as the fused kernel wants).
  public final class State: @unchecked Sendable {
    public let expAvg: Tensor
    public let expAvgSq: Tensor
    public let step: Tensor
    /// The float32 master copy of a half-precision parameter (`.master`), nil otherwise.
    public let master: Tensor?
    /// What rounding dropped from a half-precision parameter (`.kahan`), nil otherwise.
    public let compensation: Tensor?
    init(like value: Tensor, precision: Precision) {
      let half = value.dtype == .bfloat16 || value.dtype == .float16
      let keepMaster = half && precision == .master
      let dtype: DType = keepMaster ? .float32 : value.dtype
      expAvg = Tensor.zeros(value.shape, dtype: dtype, device: value.device)
      expAvgSq = Tensor.zeros(value.shape, dtype: dtype, device: value.device)
      step = Tensor.zeros([], dtype: .float32, device: value.device)
      master = keepMaster ? value.detach().to(.float32, copy: true) : nil
      compensation = half && precision == .kahan ? Tensor.zeros(value.shape, dtype: value.dtype, device: value.device) : nil
    }
    init(expAvg: Tensor, expAvgSq: Tensor, step: Tensor, master: Tensor?, compensation: Tensor?) {
      self.expAvg = expAvg
      self.expAvgSq = expAvgSq
      self.step = step
      self.master = master
      self.compensation = compensation
    }
  }

  public let parameters: [Parameter]
  public var hyper: Hyperparameters
  public private(set) var states: [State?]
  public let precision: Precision
  /// Float32 master weights and moments for half-precision parameters (`.master`).
  public var masterWeights: Bool { precision == .master }
  /// Largest number of elements updated by one fused call (bounds the float32 temporaries).
  public var chunkElements = 1 << 26
  /// Seeds `.stochastic`'s rounding: update `index` draws from a generator seeded with this seed and
  /// the index, so a run (and its resume) rounds the same way every time.
  public var roundingSeed: UInt64 = 0
  private var updatesTaken = 0

  public init(_ parameters: [Parameter], _ hyper: Hyperparameters = Hyperparameters(), precision: Precision) {
    self.parameters = parameters
    self.hyper = hyper
    self.precision = precision
    self.states = Array(repeating: nil, count: parameters.count)
  }

  public convenience init(_ parameters: [Parameter], _ hyper: Hyperparameters = Hyperparameters(), masterWeights: Bool = false) {
    self.init(parameters, hyper, precision: masterWeights ? .master : .plain)
  }

  /// Bytes of optimizer state for these parameters under `precision` (moments, masters,
  /// compensation; the step counters are negligible): the memory plan's figure.
  public static func stateBytes(_ parameters: [Parameter], precision: Precision) -> Int {
    parameters.filter(\.trainable).reduce(0) { total, parameter in
      let value = parameter.value
      let half = value.dtype == .bfloat16 || value.dtype == .float16
      return total + value.count * (half ? precision.stateBytesPerHalfParameter : 2 * value.dtype.byteSize)
    }
  }

  /// Allocates the state of every trainable parameter now (it is otherwise made at the first step),
  /// so that memory planned after this call (the rollout engine's) sees what training holds.
  public func allocateState() {
    for (i, parameter) in parameters.enumerated() where parameter.trainable && states[i] == nil {
      states[i] = State(like: parameter.value, precision: precision)
    }
  }

  /// One update of every parameter that has a gradient, at `learningRate` (default: the configured
  /// one). `index` numbers the update for `.stochastic`'s rounding (trainers pass their global step,
  /// which a resume restores); without it the optimizer counts its own updates.
  public func step(learningRate: Double? = nil, index: Int? = nil) {
    let updateIndex = index ?? updatesTaken
    updatesTaken = updateIndex + 1
    var generators: [String: Generator] = [:]
    var groups: [String: [Int]] = [:]
    for (i, parameter) in parameters.enumerated() where parameter.trainable && parameter.grad != nil {
      if states[i] == nil { states[i] = State(like: parameter.value, precision: precision) }
      let dtype = states[i]!.master != nil ? DType.float32 : parameter.value.dtype
      // The weight's own dtype too: a float32 weight and a bf16 one with a float32 master update
      // through different paths.
      groups["\(parameter.value.device)/\(dtype)/\(parameter.value.dtype)", default: []].append(i)
    }
    let lr = learningRate ?? hyper.learningRate
    for key in groups.keys.sorted() {
      for chunk in Self.chunks(groups[key]!, sizes: { parameters[$0].value.count }, limit: chunkElements) {
        var generator: Generator?
        if precision == .stochastic {
          let device = parameters[chunk[0]].value.device
          generator = generators["\(device)"]
            ?? Generator(seed: roundingSeed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(updateIndex), device: device)
          generators["\(device)"] = generator
        }
        withNoGrad { update(chunk, learningRate: lr, generator: generator) }
      }
    }
  }

  /// `indices` in order, cut into runs whose element counts add up to at most `limit` (a larger
  /// tensor is a run of its own).
  static func chunks(_ indices: [Int], sizes: (Int) -> Int, limit: Int) -> [[Int]] {
    var runs: [[Int]] = [], current: [Int] = [], total = 0
    for index in indices {
      let size = sizes(index)
      if !current.isEmpty && total + size > limit {
        runs.append(current)
        current = []
        total = 0
      }
      current.append(index)
      total += size
    }
    if !current.isEmpty { runs.append(current) }
    return runs
  }

  private func update(_ indices: [Int], learningRate lr: Double, generator: Generator?) {
    let state = indices.map { states[$0]! }
    let values = indices.map { parameters[$0].value }
    let half = values[0].dtype == .bfloat16 || values[0].dtype == .float16
    func fused(_ params: [Tensor], _ grads: [Tensor], _ m: [Tensor], _ v: [Tensor]) {
      Torch.Optim.fusedAdamW(parameters: params, grads: grads, expAvgs: m, expAvgSqs: v, steps: state.map(\.step),
                             learningRate: lr, beta1: hyper.beta1, beta2: hyper.beta2, weightDecay: hyper.weightDecay,
                             eps: hyper.eps)
    }
    let grads = indices.map { parameters[$0].grad! }
    if !half || precision == .plain {
      fused(values, grads, state.map(\.expAvg), state.map(\.expAvgSq))
    } else if precision == .master {
      let masters = state.map { $0.master! }
      fused(masters, grads.map { $0.to(.float32) }, state.map(\.expAvg), state.map(\.expAvgSq))
      for (value, master) in zip(values, masters) { value.copy_(master) }
    } else {
      // `.stochastic` and `.kahan`: the update in float32 on widened copies, written back into half
      // precision (moments to nearest; the weight stochastically or with its rounding error kept).
      let wide = zip(values, state).map { value, s in
        s.compensation.map { value.to(.float32) + $0.to(.float32) } ?? value.to(.float32)
      }
      let m = state.map { $0.expAvg.to(.float32) }, v = state.map { $0.expAvgSq.to(.float32) }
      fused(wide, grads.map { $0.to(.float32) }, m, v)
      for (i, s) in state.enumerated() {
        s.expAvg.copy_(m[i])
        s.expAvgSq.copy_(v[i])
        if let compensation = s.compensation {
          values[i].copy_(wide[i])
          compensation.copy_(wide[i] - values[i].to(.float32))
        } else {
          Torch.Optim.stochasticRound(wide[i], into: values[i], generator: generator)
        }
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
  public static func makeState(expAvg: Tensor, expAvgSq: Tensor, step: Tensor, master: Tensor? = nil,
                               compensation: Tensor? = nil) -> State {
    State(expAvg: expAvg, expAvgSq: expAvgSq, step: step, master: master, compensation: compensation)
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
