import CTorch

/// Neural-network kernels (the `torch.nn.functional` part the models need).
public enum F {
  public static func matmul(_ a: Tensor, _ b: Tensor) -> Tensor { Tensor.make(vt_matmul(a.handle, b.handle), "matmul \(a.shape) x \(b.shape)") }
  public static func bmm(_ a: Tensor, _ b: Tensor) -> Tensor { Tensor.make(vt_bmm(a.handle, b.handle), "bmm") }
  /// x W^T + b
  public static func linear(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil) -> Tensor {
    Tensor.make(vt_linear(x.handle, weight.handle, bias?.handle), "linear \(x.shape) x \(weight.shape)")
  }
  public static func embedding(_ weight: Tensor, _ indices: Tensor) -> Tensor {
    Tensor.make(vt_embedding(weight.handle, indices.handle), "embedding")
  }
  public static func layerNorm(_ x: Tensor, shape: [Int], weight: Tensor?, bias: Tensor?, eps: Double) -> Tensor {
    Tensor.make(withShape(shape) { vt_layer_norm(x.handle, $0, $1, weight?.handle, bias?.handle, eps) }, "layer_norm")
  }
  public static func rmsNorm(_ x: Tensor, shape: [Int], weight: Tensor?, eps: Double) -> Tensor {
    Tensor.make(withShape(shape) { vt_rms_norm(x.handle, $0, $1, weight?.handle, eps) }, "rms_norm")
  }
  public static func conv2d(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil, stride: [Int] = [1, 1],
                            padding: [Int] = [0, 0], dilation: [Int] = [1, 1], groups: Int = 1) -> Tensor {
    let s = stride.map(Int64.init), p = padding.map(Int64.init), d = dilation.map(Int64.init)
    return Tensor.make(vt_conv2d(x.handle, weight.handle, bias?.handle, s, p, d, Int64(groups)), "conv2d")
  }
  public static func conv3d(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil, stride: [Int] = [1, 1, 1],
                            padding: [Int] = [0, 0, 0], dilation: [Int] = [1, 1, 1], groups: Int = 1) -> Tensor {
    let s = stride.map(Int64.init), p = padding.map(Int64.init), d = dilation.map(Int64.init)
    return Tensor.make(vt_conv3d(x.handle, weight.handle, bias?.handle, s, p, d, Int64(groups)), "conv3d")
  }
  /// softmax(q k^T * scale + mask) v over [batch, heads, len, dim]; a bool mask is True where attending.
  /// `enableGQA` lets k/v have fewer heads than q.
  public static func scaledDotProductAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, mask: Tensor? = nil,
                                               isCausal: Bool = false, scale: Double? = nil,
                                               enableGQA: Bool = false) -> Tensor {
    Tensor.make(vt_sdpa(q.handle, k.handle, v.handle, mask?.handle, 0, isCausal, scale ?? -1, enableGQA), "sdpa")
  }
  /// Variable-length flash attention over packed sequences (CUDA only). q/k/v are
  /// `[totalTokens, heads, headDim]`; `cuSeqlens*` int32 `[sequences + 1]`; `sequsedK` (int32
  /// `[sequences]`) limits each sequence's keys (decode over a slot cache). K/V may have fewer heads (GQA).
  public static func flashAttentionVarlen(_ q: Tensor, _ k: Tensor, _ v: Tensor, cuSeqlensQ: Tensor, cuSeqlensK: Tensor,
                                          maxSeqlenQ: Int, maxSeqlenK: Int, isCausal: Bool, scale: Double? = nil,
                                          sequsedK: Tensor? = nil) -> Tensor {
    var out: OpaquePointer?
    let status = vt_flash_attention_varlen(q.handle, k.handle, v.handle, cuSeqlensQ.handle, cuSeqlensK.handle,
                                           Int64(maxSeqlenQ), Int64(maxSeqlenK), isCausal, scale ?? -1,
                                           sequsedK?.handle, &out, nil)
    check(status, "flash_attention_varlen")
    return Tensor(handle: out!)
  }
  /// Bicubic resize with antialiasing (torchvision's `antialias=True`), input `[N, C, H, W]` float.
  public static func resizeBicubicAntialiased(_ x: Tensor, height: Int, width: Int) -> Tensor {
    Tensor.make(vt_upsample_bicubic2d_aa(x.handle, Int64(height), Int64(width), false), "upsample_bicubic2d_aa")
  }
  public enum Reduction: Int32, Sendable { case none = 0, mean = 1, sum = 2 }
  public static func crossEntropy(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int = -100,
                                  reduction: Reduction = .mean) -> Tensor {
    Tensor.make(vt_cross_entropy(logits.handle, target.handle, Int64(ignoreIndex), reduction.rawValue), "cross_entropy")
  }
}
