import CTorch

// Multi-tensor kernels for optimizers: one call updates a whole list of tensors (libtorch's
// `_fused_adamw_` and `_foreach_*` ops), so the optimizer in NN needs no access to the C shim.

extension Torch {
  /// Optimizer kernels over lists of tensors.
  public enum Optim {
    /// One AdamW step (decoupled weight decay) over parallel lists, in place, through libtorch's
    /// fused kernel (CPU and CUDA). Entry `i` of every list belongs to one parameter; all tensors must
    /// share a device and the moments the parameters' dtype. `steps` are float32 scalar tensors: each
    /// is advanced by one before the update reads it (the bias corrections use the new count).
    public static func fusedAdamW(parameters: [Tensor], grads: [Tensor], expAvgs: [Tensor], expAvgSqs: [Tensor],
                                  steps: [Tensor], learningRate: Double, beta1: Double, beta2: Double,
                                  weightDecay: Double, eps: Double) {
      let count = parameters.count
      precondition([grads.count, expAvgs.count, expAvgSqs.count, steps.count].allSatisfy { $0 == count },
                   "fusedAdamW: lists of different lengths")
      guard count > 0 else { return }
      let status = withExtendedLifetime((parameters, grads, expAvgs, expAvgSqs, steps)) {
        vt_fused_adamw(handles(parameters), handles(grads), handles(expAvgs), handles(expAvgSqs), handles(steps),
                       Int32(count), learningRate, beta1, beta2, weightDecay, eps)
      }
      check(status, "_fused_adamw_")
    }

    /// Writes float32 `source` into bfloat16 `destination` (same shape) with stochastic rounding:
    /// each value rounds up with probability equal to its distance from the lower bfloat16 neighbour
    /// over their spacing, so that the expected stored value is the exact one (`generator`, on the
    /// tensors' device, or the default generator).
    public static func stochasticRound(_ source: Tensor, into destination: Tensor, generator: Generator? = nil) {
      check(withExtendedLifetime((source, destination, generator)) {
        vt_stochastic_round_bf16_(destination.handle, source.handle, generator?.handle)
      }, "stochastic rounding")
    }

    static func handles(_ tensors: [Tensor]) -> [OpaquePointer?] { tensors.map(\.handle) }
  }
}

extension Tensor {
  /// The L2 norm of all elements of `tensors` taken together (as one flat vector): a float32 scalar
  /// on the first tensor's device. Not recorded by autograd.
  public static func globalNorm(_ tensors: [Tensor]) -> Tensor {
    precondition(!tensors.isEmpty, "globalNorm of no tensors")
    let handles = Torch.Optim.handles(tensors)
    return withExtendedLifetime(tensors) { make(vt_global_norm(handles, Int32(handles.count)), "global_norm") }
  }

  /// Multiplies every tensor of `tensors` in place by the scalar tensor `scale` (`_foreach_mul_`).
  /// Not recorded by autograd.
  public static func foreachMul_(_ tensors: [Tensor], by scale: Tensor) {
    guard !tensors.isEmpty else { return }
    let handles = Torch.Optim.handles(tensors)
    let status = withExtendedLifetime((tensors, scale)) { vt_mul_list_(handles, Int32(handles.count), scale.handle) }
    check(status, "_foreach_mul_")
  }
}
