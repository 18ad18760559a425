import CTorch

enum UnaryOp: Int32 {
  case neg = 0, abs, exp, log, sqrt, rsqrt, tanh, sigmoid, silu, gelu, geluTanh, relu, sin, cos, floor, ceil
  case round, sign, logicalNot, reciprocal, log1p, expm1, isnan, isinf, isfinite, erf, square, trunc, nanToNum
}

enum BinaryOp: Int32 {
  case add = 0, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge, and, or, remainder, atan2
  case floorDivide, xor
}

extension Tensor {
  @inline(__always) func unary(_ op: UnaryOp) -> Tensor { Tensor.make(vt_unary(op.rawValue, handle), "\(op)") }
  @inline(__always) func binary(_ op: BinaryOp, _ other: Tensor) -> Tensor {
    Tensor.make(vt_binary(op.rawValue, handle, other.handle), "\(op) \(shape) with \(other.shape)")
  }
  @inline(__always) func binary(_ op: BinaryOp, _ other: Double) -> Tensor {
    Tensor.make(vt_binary_scalar(op.rawValue, handle, other), "\(op) scalar")
  }

  // MARK: Unary

  public func neg() -> Tensor { unary(.neg) }
  public func abs() -> Tensor { unary(.abs) }
  public func exp() -> Tensor { unary(.exp) }
  public func log() -> Tensor { unary(.log) }
  public func sqrt() -> Tensor { unary(.sqrt) }
  public func rsqrt() -> Tensor { unary(.rsqrt) }
  public func tanh() -> Tensor { unary(.tanh) }
  public func sigmoid() -> Tensor { unary(.sigmoid) }
  public func silu() -> Tensor { unary(.silu) }
  /// GELU with the exact erf form.
  public func gelu() -> Tensor { unary(.gelu) }
  /// GELU with the tanh approximation (`gelu_pytorch_tanh`).
  public func geluTanh() -> Tensor { unary(.geluTanh) }
  public func relu() -> Tensor { unary(.relu) }
  public func sin() -> Tensor { unary(.sin) }
  public func cos() -> Tensor { unary(.cos) }
  public func floor() -> Tensor { unary(.floor) }
  public func ceil() -> Tensor { unary(.ceil) }
  /// Rounds half to even, as torch.round.
  public func round() -> Tensor { unary(.round) }
  public func sign() -> Tensor { unary(.sign) }
  public func logicalNot() -> Tensor { unary(.logicalNot) }
  public func reciprocal() -> Tensor { unary(.reciprocal) }
  public func log1p() -> Tensor { unary(.log1p) }
  public func expm1() -> Tensor { unary(.expm1) }
  public func isnan() -> Tensor { unary(.isnan) }
  public func isinf() -> Tensor { unary(.isinf) }
  public func isfinite() -> Tensor { unary(.isfinite) }
  public func erf() -> Tensor { unary(.erf) }
  public func square() -> Tensor { unary(.square) }
  public func trunc() -> Tensor { unary(.trunc) }
  /// NaN -> 0, +-inf -> the dtype's largest finite values.
  public func nanToNum() -> Tensor { unary(.nanToNum) }
  /// x * sigmoid(1.702 x), the "quick GELU" of CLIP / Qwen2-VL's vision MLP.
  public func quickGelu() -> Tensor { self * (self * 1.702).sigmoid() }

  // MARK: Binary

  public func pow(_ exponent: Double) -> Tensor { binary(.pow, exponent) }
  public func pow(_ exponent: Tensor) -> Tensor { binary(.pow, exponent) }
  public func maximum(_ other: Tensor) -> Tensor { binary(.maximum, other) }
  public func minimum(_ other: Tensor) -> Tensor { binary(.minimum, other) }
  public func remainder(_ other: Double) -> Tensor { binary(.remainder, other) }
  public func floorDivide(_ other: Double) -> Tensor { binary(.floorDivide, other) }
  public func atan2(_ other: Tensor) -> Tensor { binary(.atan2, other) }

  public func eq(_ other: Tensor) -> Tensor { binary(.eq, other) }
  public func eq(_ other: Double) -> Tensor { binary(.eq, other) }
  public func ne(_ other: Tensor) -> Tensor { binary(.ne, other) }
  public func ne(_ other: Double) -> Tensor { binary(.ne, other) }
  public func lt(_ other: Tensor) -> Tensor { binary(.lt, other) }
  public func lt(_ other: Double) -> Tensor { binary(.lt, other) }
  public func le(_ other: Tensor) -> Tensor { binary(.le, other) }
  public func le(_ other: Double) -> Tensor { binary(.le, other) }
  public func gt(_ other: Tensor) -> Tensor { binary(.gt, other) }
  public func gt(_ other: Double) -> Tensor { binary(.gt, other) }
  public func ge(_ other: Tensor) -> Tensor { binary(.ge, other) }
  public func ge(_ other: Double) -> Tensor { binary(.ge, other) }
  public func logicalAnd(_ other: Tensor) -> Tensor { binary(.and, other) }
  public func logicalOr(_ other: Tensor) -> Tensor { binary(.or, other) }
  public func logicalXor(_ other: Tensor) -> Tensor { binary(.xor, other) }

  public func clamp(min: Double? = nil, max: Double? = nil) -> Tensor {
    Tensor.make(vt_clamp(handle, min ?? 0, max ?? 0, min != nil, max != nil), "clamp")
  }
  public func clamp(min: Tensor?, max: Tensor?) -> Tensor {
    Tensor.make(vt_clamp_tensor(handle, min?.handle, max?.handle), "clamp")
  }

  // MARK: Operators

  public static func + (a: Tensor, b: Tensor) -> Tensor { a.binary(.add, b) }
  public static func - (a: Tensor, b: Tensor) -> Tensor { a.binary(.sub, b) }
  public static func * (a: Tensor, b: Tensor) -> Tensor { a.binary(.mul, b) }
  public static func / (a: Tensor, b: Tensor) -> Tensor { a.binary(.div, b) }
  public static func + (a: Tensor, b: Double) -> Tensor { a.binary(.add, b) }
  public static func - (a: Tensor, b: Double) -> Tensor { a.binary(.sub, b) }
  public static func * (a: Tensor, b: Double) -> Tensor { a.binary(.mul, b) }
  public static func / (a: Tensor, b: Double) -> Tensor { a.binary(.div, b) }
  public static func + (a: Double, b: Tensor) -> Tensor { b.binary(.add, a) }
  public static func * (a: Double, b: Tensor) -> Tensor { b.binary(.mul, a) }
  public static func - (a: Double, b: Tensor) -> Tensor {
    Tensor.make(vt_scalar_binary(BinaryOp.sub.rawValue, a, b.handle), "rsub")
  }
  public static func / (a: Double, b: Tensor) -> Tensor {
    Tensor.make(vt_scalar_binary(BinaryOp.div.rawValue, a, b.handle), "rdiv")
  }
  public static prefix func - (a: Tensor) -> Tensor { a.neg() }

  // MARK: In place

  private func inplace(_ op: BinaryOp, _ other: Tensor) {
    check(vt_inplace_binary(op.rawValue, handle, other.handle), "\(op)_")
  }
  private func inplace(_ op: BinaryOp, _ other: Double) {
    check(vt_inplace_binary_scalar(op.rawValue, handle, other), "\(op)_")
  }
  public func add_(_ other: Tensor) { inplace(.add, other) }
  public func add_(_ other: Double) { inplace(.add, other) }
  public func sub_(_ other: Tensor) { inplace(.sub, other) }
  public func mul_(_ other: Tensor) { inplace(.mul, other) }
  public func mul_(_ other: Double) { inplace(.mul, other) }
  public func div_(_ other: Double) { inplace(.div, other) }
  public func copy_(_ source: Tensor, nonBlocking: Bool = false) {
    check(vt_copy_(handle, source.handle, nonBlocking), "copy_ \(source.shape) into \(shape)")
  }
  public func zero_() { check(vt_zero_(handle), "zero_") }
  public func fill_(_ value: Double) { check(vt_fill_(handle, value), "fill_") }
  public func uniform_(_ from: Double = 0, _ to: Double = 1, generator: Generator? = nil) {
    check(vt_uniform_(handle, from, to, generator?.handle), "uniform_")
  }
  public func normal_(mean: Double = 0, std: Double = 1, generator: Generator? = nil) {
    check(vt_normal_(handle, mean, std, generator?.handle), "normal_")
  }
  public func exponential_(_ lambda: Double = 1, generator: Generator? = nil) {
    check(vt_exponential_(handle, lambda, generator?.handle), "exponential_")
  }
  /// self += weight * (end - self)
  public func lerp_(_ end: Tensor, weight: Double) { check(vt_lerp_(handle, end.handle, weight), "lerp_") }
  /// self = self * alpha + other * beta
  public func mulAdd_(alpha: Double, _ other: Tensor, beta: Double) {
    check(vt_mul_add_(handle, alpha, other.handle, beta), "mul_add_")
  }
}

extension Tensor {
  /// `base ** exponent` element-wise (torch.pow(scalar, tensor)).
  public static func pow(_ base: Double, _ exponent: Tensor) -> Tensor {
    make(vt_scalar_binary(BinaryOp.pow.rawValue, base, exponent.handle), "pow(scalar, tensor)")
  }
}
