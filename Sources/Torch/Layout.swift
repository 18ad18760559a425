import CTorch

extension Tensor {
  // MARK: Conversion

  /// Converts dtype and/or device (no copy when nothing changes, unless `copy`).
  public func to(_ dtype: DType? = nil, device: Device? = nil, nonBlocking: Bool = false, copy: Bool = false) -> Tensor {
    let target = device ?? self.device
    let (t, i) = target.code
    if target.isCUDA { Torch.loadCUDA() }
    return Tensor.make(vt_to(handle, (dtype ?? self.dtype).rawValue, t, i, nonBlocking, copy), "to")
  }
  public func to(_ device: Device) -> Tensor { to(nil, device: device) }
  public func contiguous() -> Tensor { Tensor.make(vt_contiguous(handle), "contiguous") }
  public func clone() -> Tensor { Tensor.make(vt_clone(handle), "clone") }
  /// The same data, cut from the autograd graph.
  public func detach() -> Tensor { Tensor.make(vt_detach(handle), "detach") }
  /// Another handle to the same tensor (shares data and autograd identity).
  public func alias() -> Tensor { Tensor.make(vt_shallow_clone(handle), "shallow_clone") }

  // MARK: Shape

  /// `-1` infers one dimension.
  public func reshape(_ shape: [Int]) -> Tensor {
    Tensor.make(withShape(shape) { vt_reshape(handle, $0, $1) }, "reshape \(self.shape) -> \(shape)")
  }
  public func reshape(_ shape: Int...) -> Tensor { reshape(shape) }
  public func view(_ shape: [Int]) -> Tensor {
    Tensor.make(withShape(shape) { vt_view(handle, $0, $1) }, "view \(self.shape) -> \(shape)")
  }
  public func view(_ shape: Int...) -> Tensor { view(shape) }
  /// Reinterprets the bytes as another dtype of the same size.
  public func view(as dtype: DType) -> Tensor { Tensor.make(vt_view_dtype(handle, dtype.rawValue), "view(dtype)") }
  public func permute(_ dims: [Int]) -> Tensor {
    Tensor.make(withShape(dims) { vt_permute(handle, $0, $1) }, "permute \(dims)")
  }
  public func permute(_ dims: Int...) -> Tensor { permute(dims) }
  public func transpose(_ dim0: Int, _ dim1: Int) -> Tensor {
    Tensor.make(vt_transpose(handle, Int64(dim0), Int64(dim1)), "transpose")
  }
  /// Transpose of the last two dimensions.
  public var mT: Tensor { transpose(-2, -1) }
  public func expand(_ shape: [Int]) -> Tensor {
    Tensor.make(withShape(shape) { vt_expand(handle, $0, $1) }, "expand \(self.shape) -> \(shape)")
  }
  public func expand(_ shape: Int...) -> Tensor { expand(shape) }
  public func unsqueeze(_ dim: Int) -> Tensor { Tensor.make(vt_unsqueeze(handle, Int64(dim)), "unsqueeze") }
  public func squeeze(_ dim: Int) -> Tensor { Tensor.make(vt_squeeze(handle, Int64(dim)), "squeeze") }
  public func squeeze() -> Tensor { Tensor.make(vt_squeeze_all(handle), "squeeze") }
  public func flatten(_ start: Int = 0, _ end: Int = -1) -> Tensor {
    Tensor.make(vt_flatten(handle, Int64(start), Int64(end)), "flatten")
  }
  public func narrow(_ dim: Int, start: Int, length: Int) -> Tensor {
    Tensor.make(vt_narrow(handle, Int64(dim), Int64(start), Int64(length)), "narrow")
  }
  public func slice(_ dim: Int, _ start: Int, _ end: Int, step: Int = 1) -> Tensor {
    Tensor.make(vt_slice(handle, Int64(dim), Int64(start), Int64(end), Int64(step)), "slice")
  }
  public func select(_ dim: Int, _ index: Int) -> Tensor {
    Tensor.make(vt_select(handle, Int64(dim), Int64(index)), "select")
  }
  public func indexSelect(_ dim: Int, _ index: Tensor) -> Tensor {
    Tensor.make(vt_index_select(handle, Int64(dim), index.handle), "index_select")
  }
  public func gather(_ dim: Int, _ index: Tensor) -> Tensor {
    Tensor.make(vt_gather(handle, Int64(dim), index.handle), "gather")
  }
  public func scatter(_ dim: Int, _ index: Tensor, _ source: Tensor) -> Tensor {
    Tensor.make(vt_scatter(handle, Int64(dim), index.handle, source.handle), "scatter")
  }
  public func scatterAdd(_ dim: Int, _ index: Tensor, _ source: Tensor) -> Tensor {
    Tensor.make(vt_scatter_add(handle, Int64(dim), index.handle, source.handle), "scatter_add")
  }
  public func maskedFill(_ mask: Tensor, _ value: Double) -> Tensor {
    Tensor.make(vt_masked_fill(handle, mask.handle, value), "masked_fill")
  }
  public func maskedSelect(_ mask: Tensor) -> Tensor {
    Tensor.make(vt_masked_select(handle, mask.handle), "masked_select")
  }
  /// Indices of non-zero elements, `[n, rank]` int64.
  public func nonzero() -> Tensor { Tensor.make(vt_nonzero(handle), "nonzero") }
  public func repeated(_ repeats: [Int]) -> Tensor {
    Tensor.make(withShape(repeats) { vt_repeat(handle, $0, $1) }, "repeat")
  }
  public func repeatInterleave(_ repeats: Int, dim: Int) -> Tensor {
    Tensor.make(vt_repeat_interleave(handle, Int64(repeats), Int64(dim)), "repeat_interleave")
  }
  /// `repeat_interleave(repeats)` for a 1-D count tensor: [0]*r0 + [1]*r1 + ...
  public static func repeatInterleave(counts: Tensor) -> Tensor {
    make(vt_repeat_interleave_tensor(counts.handle), "repeat_interleave")
  }
  public func flip(_ dims: [Int]) -> Tensor { Tensor.make(withShape(dims) { vt_flip(handle, $0, $1) }, "flip") }
  public func roll(_ shift: Int, dim: Int) -> Tensor { Tensor.make(vt_roll(handle, Int64(shift), Int64(dim)), "roll") }
  public func triu(_ diagonal: Int = 0) -> Tensor { Tensor.make(vt_triu(handle, Int64(diagonal)), "triu") }
  public func tril(_ diagonal: Int = 0) -> Tensor { Tensor.make(vt_tril(handle, Int64(diagonal)), "tril") }
  public func oneHot(_ classes: Int) -> Tensor { Tensor.make(vt_one_hot(handle, Int64(classes)), "one_hot") }
  /// Constant padding; `pad` lists (before, after) pairs starting from the last dimension.
  public func pad(_ pad: [Int], value: Double = 0) -> Tensor {
    Tensor.make(withShape(pad) { vt_pad(handle, $0, $1, value) }, "pad")
  }

  /// Splits into pieces of the given sizes along `dim`.
  public func split(sizes: [Int], dim: Int = 0) -> [Tensor] {
    var out = [OpaquePointer?](repeating: nil, count: sizes.count)
    let status = withShape(sizes) { vt_split_with_sizes(handle, $0, $1, Int64(dim), &out) }
    check(status, "split_with_sizes \(sizes) of \(shape) at dim \(dim)")
    return out.map { Tensor(handle: $0!) }
  }
  /// Splits into pieces of `size` (the last may be smaller).
  public func split(_ size: Int, dim: Int = 0) -> [Tensor] {
    let total = self.size(dim)
    var sizes: [Int] = []
    var done = 0
    while done < total { sizes.append(Swift.min(size, total - done)); done += size }
    return split(sizes: sizes, dim: dim)
  }
  /// `chunks` pieces of (nearly) equal size, as torch.chunk.
  public func chunk(_ chunks: Int, dim: Int = 0) -> [Tensor] {
    let total = size(dim)
    return split((total + chunks - 1) / chunks, dim: dim)
  }

  public static func cat(_ tensors: [Tensor], dim: Int = 0) -> Tensor {
    let handles: [OpaquePointer?] = tensors.map(\.handle)
    return withExtendedLifetime(tensors) { make(vt_cat(handles, Int32(handles.count), Int64(dim)), "cat") }
  }
  public static func stack(_ tensors: [Tensor], dim: Int = 0) -> Tensor {
    let handles: [OpaquePointer?] = tensors.map(\.handle)
    return withExtendedLifetime(tensors) { make(vt_stack(handles, Int32(handles.count), Int64(dim)), "stack") }
  }
  /// Element-wise choice: `condition ? a : b`.
  public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    make(vt_where(condition.handle, a.handle, b.handle), "where")
  }
}

// MARK: - Indexing

/// One component of a subscript: an integer, a range, a tensor of indices or a mask, a new axis, or
/// an ellipsis. Negative integers count from the end, as in Python.
public enum TensorIndex: Sendable {
  case index(Int)
  case range(Int?, Int?, step: Int)
  case tensor(Tensor)
  case newAxis
  case ellipsis
  public static let all = TensorIndex.range(nil, nil, step: 1)
}

public protocol TensorIndexConvertible { var tensorIndex: TensorIndex { get } }
extension Int: TensorIndexConvertible { public var tensorIndex: TensorIndex { .index(self) } }
extension Range<Int>: TensorIndexConvertible { public var tensorIndex: TensorIndex { .range(lowerBound, upperBound, step: 1) } }
extension ClosedRange<Int>: TensorIndexConvertible {
  public var tensorIndex: TensorIndex { .range(lowerBound, upperBound == -1 ? nil : upperBound + 1, step: 1) }
}
extension PartialRangeFrom<Int>: TensorIndexConvertible { public var tensorIndex: TensorIndex { .range(lowerBound, nil, step: 1) } }
extension PartialRangeUpTo<Int>: TensorIndexConvertible { public var tensorIndex: TensorIndex { .range(nil, upperBound, step: 1) } }
extension PartialRangeThrough<Int>: TensorIndexConvertible {
  public var tensorIndex: TensorIndex { .range(nil, upperBound == -1 ? nil : upperBound + 1, step: 1) }
}
extension Tensor: TensorIndexConvertible { public var tensorIndex: TensorIndex { .tensor(self) } }
extension TensorIndex: TensorIndexConvertible { public var tensorIndex: TensorIndex { self } }

extension Tensor {
  /// Basic indexing returns a view; tensor indices (integer or boolean) gather, as in PyTorch.
  public subscript(_ items: any TensorIndexConvertible...) -> Tensor {
    get { indexed(items.map(\.tensorIndex)) }
    set { assign(items.map(\.tensorIndex), newValue) }
  }

  /// Applies ints / ranges / new axes / ellipsis as a view; returns it and the tensor indices with
  /// the dimension each applies to in the view.
  private func basicIndex(_ items: [TensorIndex]) -> (Tensor, [(Int, Tensor)]) {
    var result = self
    var dim = 0
    var advanced: [(Int, Tensor)] = []
    // Dimensions of `self` consumed by the items (an ellipsis stands for the rest).
    let consumed = items.reduce(0) { total, item in
      switch item {
      case .index, .range: return total + 1
      case .tensor(let t): return total + (t.dtype == .bool ? t.rank : 1)
      case .newAxis, .ellipsis: return total
      }
    }
    for item in items {
      switch item {
      case .index(let i):
        let n = result.size(dim)
        let resolved = i < 0 ? i + n : i
        precondition(resolved >= 0 && resolved < n, "index \(i) out of range for dimension \(dim) of size \(n)")
        result = result.select(dim, resolved)
      case .range(let lower, let upper, let step):
        let n = result.size(dim)
        let start = Swift.max(0, Swift.min(n, lower.map { $0 < 0 ? $0 + n : $0 } ?? 0))
        let end = Swift.max(start, Swift.min(n, upper.map { $0 < 0 ? $0 + n : $0 } ?? n))
        if start != 0 || end != n || step != 1 { result = result.slice(dim, start, end, step: step) }
        dim += 1
      case .tensor(let t):
        advanced.append((dim, t))
        dim += t.dtype == .bool ? t.rank : 1
      case .newAxis:
        result = result.unsqueeze(dim)
        dim += 1
      case .ellipsis:
        dim += rank - consumed
      }
    }
    return (result, advanced)
  }

  private func indexed(_ items: [TensorIndex]) -> Tensor {
    let (view, advanced) = basicIndex(items)
    if advanced.isEmpty { return view }
    return view.index(advanced)
  }

  private func assign(_ items: [TensorIndex], _ value: Tensor) {
    let (view, advanced) = basicIndex(items)
    if advanced.isEmpty {
      view.copy_(value)
    } else {
      view.indexPut_(advanced, value)
    }
  }

  private func indexList(_ advanced: [(Int, Tensor)]) -> [OpaquePointer?] {
    let last = advanced.map(\.0).max() ?? 0
    var list = [OpaquePointer?](repeating: nil, count: last + 1)
    for (dim, t) in advanced { list[dim] = t.handle }
    return list
  }

  /// Advanced indexing with (dimension, index tensor) pairs.
  public func index(_ advanced: [(Int, Tensor)]) -> Tensor {
    let list = indexList(advanced)
    return withExtendedLifetime(advanced) { Tensor.make(vt_index(handle, list, Int32(list.count)), "index") }
  }

  public func indexPut_(_ advanced: [(Int, Tensor)], _ values: Tensor, accumulate: Bool = false) {
    let list = indexList(advanced)
    withExtendedLifetime(advanced) {
      check(vt_index_put_(handle, list, Int32(list.count), values.handle, accumulate), "index_put_")
    }
  }
}
