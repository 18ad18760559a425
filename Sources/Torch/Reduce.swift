import CTorch

enum ReduceOp: Int32 { case sum = 0, mean, amax, amin, prod, all, any, logsumexp, norm2 }

extension Tensor {
  private func reduce(_ op: ReduceOp, _ dims: [Int], keepDim: Bool, dtype: DType? = nil) -> Tensor {
    Tensor.make(withShape(dims) { vt_reduce(op.rawValue, handle, $0, $1, keepDim, dtype?.rawValue ?? -1) }, "\(op)")
  }

  /// Sum over `dims` (all when empty).
  public func sum(_ dims: [Int] = [], keepDim: Bool = false, dtype: DType? = nil) -> Tensor {
    reduce(.sum, dims, keepDim: keepDim, dtype: dtype)
  }
  public func sum(dim: Int, keepDim: Bool = false, dtype: DType? = nil) -> Tensor { sum([dim], keepDim: keepDim, dtype: dtype) }
  public func mean(_ dims: [Int] = [], keepDim: Bool = false, dtype: DType? = nil) -> Tensor {
    reduce(.mean, dims, keepDim: keepDim, dtype: dtype)
  }
  public func mean(dim: Int, keepDim: Bool = false) -> Tensor { mean([dim], keepDim: keepDim) }
  public func max(_ dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(.amax, dims, keepDim: keepDim) }
  public func min(_ dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(.amin, dims, keepDim: keepDim) }
  public func prod(_ dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(.prod, dims, keepDim: keepDim) }
  public func all(_ dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(.all, dims, keepDim: keepDim) }
  public func any(_ dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(.any, dims, keepDim: keepDim) }
  public func logsumexp(_ dims: [Int], keepDim: Bool = false) -> Tensor { reduce(.logsumexp, dims, keepDim: keepDim) }
  /// L2 norm over `dims` (all when empty).
  public func norm(_ dims: [Int] = [], keepDim: Bool = false, dtype: DType? = nil) -> Tensor {
    reduce(.norm2, dims, keepDim: keepDim, dtype: dtype)
  }
  /// Variance with `correction` (1 = Bessel, torch's default).
  public func variance(_ dims: [Int] = [], correction: Double = 1, keepDim: Bool = false) -> Tensor {
    Tensor.make(withShape(dims) { vt_var(handle, $0, $1, correction, keepDim) }, "var")
  }
  public func std(_ dims: [Int] = [], correction: Double = 1, keepDim: Bool = false) -> Tensor {
    Tensor.make(withShape(dims) { vt_std(handle, $0, $1, correction, keepDim) }, "std")
  }
  public func argmax(dim: Int, keepDim: Bool = false) -> Tensor {
    Tensor.make(vt_argmax(handle, Int64(dim), keepDim), "argmax")
  }
  public func argmin(dim: Int, keepDim: Bool = false) -> Tensor {
    Tensor.make(vt_argmin(handle, Int64(dim), keepDim), "argmin")
  }
  /// Values and indices of the maximum along `dim`.
  public func max(dim: Int, keepDim: Bool = false) -> (values: Tensor, indices: Tensor) {
    var values: OpaquePointer?
    var indices: OpaquePointer?
    check(vt_max_dim(handle, Int64(dim), keepDim, &values, &indices), "max(dim)")
    return (Tensor(handle: values!), Tensor(handle: indices!))
  }
  public func min(dim: Int, keepDim: Bool = false) -> (values: Tensor, indices: Tensor) {
    var values: OpaquePointer?
    var indices: OpaquePointer?
    check(vt_min_dim(handle, Int64(dim), keepDim, &values, &indices), "min(dim)")
    return (Tensor(handle: values!), Tensor(handle: indices!))
  }
  public func softmax(dim: Int, dtype: DType? = nil) -> Tensor {
    Tensor.make(vt_softmax(handle, Int64(dim), dtype?.rawValue ?? -1), "softmax")
  }
  public func logSoftmax(dim: Int, dtype: DType? = nil) -> Tensor {
    Tensor.make(vt_log_softmax(handle, Int64(dim), dtype?.rawValue ?? -1), "log_softmax")
  }
  public func cumsum(dim: Int, dtype: DType? = nil) -> Tensor {
    Tensor.make(vt_cumsum(handle, Int64(dim), dtype?.rawValue ?? -1), "cumsum")
  }
  public func sort(dim: Int = -1, descending: Bool = false, stable: Bool = false) -> (values: Tensor, indices: Tensor) {
    var values: OpaquePointer?
    var indices: OpaquePointer?
    check(vt_sort(handle, Int64(dim), descending, stable, &values, &indices), "sort")
    return (Tensor(handle: values!), Tensor(handle: indices!))
  }
  public func topk(_ k: Int, dim: Int = -1, largest: Bool = true, sorted: Bool = true) -> (values: Tensor, indices: Tensor) {
    var values: OpaquePointer?
    var indices: OpaquePointer?
    check(vt_topk(handle, Int64(k), Int64(dim), largest, sorted, &values, &indices), "topk")
    return (Tensor(handle: values!), Tensor(handle: indices!))
  }
  /// Samples indices from each row of a probability tensor.
  public func multinomial(_ samples: Int, replacement: Bool = false, generator: Generator? = nil) -> Tensor {
    Tensor.make(vt_multinomial(handle, Int64(samples), replacement, generator?.handle), "multinomial")
  }
  /// max |a - b| computed in float64 (a check helper).
  public func maxAbsDifference(_ other: Tensor) -> Double {
    Tensor.make(vt_allclose_max_abs_diff(handle, other.handle), "max_abs_diff").item()
  }
}
