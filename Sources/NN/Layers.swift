import Foundation
import Torch

/// Parameter initialisation shared by the layers (the values matter only for models built from
/// scratch: tests and benchmarks; real runs load checkpoints).
public enum Initializer {
  /// Set while building a model whose weights are about to be loaded: parameters are allocated
  /// but not filled (no random numbers drawn for weights that are overwritten at once).
  @TaskLocal public static var skipRandomInit = false

  /// Normal(0, std), as Hugging Face's `_init_weights` with `initializer_range`.
  public static func normal(_ shape: [Int], std: Double = 0.02, dtype: DType = .float32, device: Device = .cpu,
                            generator: Generator? = nil) -> Tensor {
    if skipRandomInit { return Tensor.empty(shape, dtype: dtype, device: device) }
    return Tensor.randn(shape, dtype: dtype, device: device, generator: generator) * std
  }
}

/// y = x W^T + b, weight `[out, in]`.
public final class Linear: Module, @unchecked Sendable {
  public let weight: Parameter
  public let bias: Parameter?
  public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, dtype: DType = .float32,
              device: Device = .cpu, generator: Generator? = nil) {
    weight = Parameter(Initializer.normal([outFeatures, inFeatures], dtype: dtype, device: device, generator: generator))
    self.bias = bias ? Parameter(Tensor.zeros([outFeatures], dtype: dtype, device: device)) : nil
  }
  /// A LoRA adapter added to this layer's output (`LoRA.apply`); kept out of `parameterSlots` so the
  /// base weights save and load in Hugging Face layout unchanged.
  public internal(set) var adapter: LoRAAdapter?
  public override var parameterSlots: [(String, Parameter)] {
    bias.map { [("weight", weight), ("bias", $0)] } ?? [("weight", weight)]
  }
  public func callAsFunction(_ x: Tensor) -> Tensor {
    let base = F.linear(x, weight.value, bias?.value)
    guard let adapter, adapter.enabled else { return base }
    return base + adapter.delta(x, training: isTraining)
  }
}

/// Token embedding table `[vocab, hidden]`.
public final class Embedding: Module, @unchecked Sendable {
  public let weight: Parameter
  public init(_ count: Int, _ dimension: Int, dtype: DType = .float32, device: Device = .cpu, generator: Generator? = nil) {
    weight = Parameter(Initializer.normal([count, dimension], dtype: dtype, device: device, generator: generator))
  }
  public override var parameterSlots: [(String, Parameter)] { [("weight", weight)] }
  public func callAsFunction(_ ids: Tensor) -> Tensor { F.embedding(weight.value, ids) }
}

/// RMSNorm as Qwen2 computes it: in float32, then cast back, then scaled by the weight
/// (`weight * (x.float() * rsqrt(mean(x^2) + eps)).to(dtype)`), as the same separate libtorch ops in the
/// same order as transformers' `Qwen2RMSNorm`. Not `F.rmsNorm`: on CUDA that is a fused kernel
/// (`_fused_rms_norm`) whose reduction rounds differently, and a one-ulp difference per norm is amplified
/// through the layers into the bf16 log-probs. On the CPU `F.rmsNorm` decomposes into these very ops.
public final class RMSNorm: Module, @unchecked Sendable {
  public let weight: Parameter
  public let eps: Double
  public init(_ dimension: Int, eps: Double = 1e-6, dtype: DType = .float32, device: Device = .cpu) {
    weight = Parameter(Tensor.ones([dimension], dtype: dtype, device: device))
    self.eps = eps
  }
  public override var parameterSlots: [(String, Parameter)] { [("weight", weight)] }
  public func callAsFunction(_ x: Tensor) -> Tensor {
    let hidden = x.to(.float32)
    let variance = hidden.pow(2).mean(dim: -1, keepDim: true)
    return weight.value * (hidden * (variance + eps).rsqrt()).to(x.dtype)
  }
}

/// LayerNorm with weight and bias (Qwen2-VL's vision blocks).
public final class LayerNorm: Module, @unchecked Sendable {
  public let weight: Parameter
  public let bias: Parameter
  public let eps: Double
  public init(_ dimension: Int, eps: Double = 1e-6, dtype: DType = .float32, device: Device = .cpu) {
    weight = Parameter(Tensor.ones([dimension], dtype: dtype, device: device))
    bias = Parameter(Tensor.zeros([dimension], dtype: dtype, device: device))
    self.eps = eps
  }
  public override var parameterSlots: [(String, Parameter)] { [("weight", weight), ("bias", bias)] }
  public func callAsFunction(_ x: Tensor) -> Tensor {
    F.layerNorm(x, shape: [x.size(-1)], weight: weight.value, bias: bias.value, eps: eps)
  }
}
