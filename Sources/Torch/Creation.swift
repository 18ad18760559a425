import CTorch
import Foundation

/// Swift scalar types that map to a tensor dtype.
public protocol TensorElement: Sendable {
  static var dtype: DType { get }
}
extension Float: TensorElement { public static var dtype: DType { .float32 } }
extension Double: TensorElement { public static var dtype: DType { .float64 } }
extension Int64: TensorElement { public static var dtype: DType { .int64 } }
extension Int32: TensorElement { public static var dtype: DType { .int32 } }
extension Int16: TensorElement { public static var dtype: DType { .int16 } }
extension Int8: TensorElement { public static var dtype: DType { .int8 } }
extension UInt8: TensorElement { public static var dtype: DType { .uint8 } }
extension Bool: TensorElement { public static var dtype: DType { .bool } }

@inline(__always)
func withShape<R>(_ shape: [Int], _ body: (UnsafePointer<Int64>, Int32) -> R) -> R {
  let dims = shape.map(Int64.init)
  return dims.withUnsafeBufferPointer { body($0.baseAddress ?? UnsafePointer(bitPattern: 8)!, Int32(dims.count)) }
}

extension Tensor {
  // MARK: Factories

  public static func empty(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    let (t, i) = device.code
    return make(withShape(shape) { vt_empty($0, $1, dtype.rawValue, t, i) }, "empty")
  }
  public static func zeros(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    let (t, i) = device.code
    return make(withShape(shape) { vt_zeros($0, $1, dtype.rawValue, t, i) }, "zeros")
  }
  public static func ones(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    let (t, i) = device.code
    return make(withShape(shape) { vt_ones($0, $1, dtype.rawValue, t, i) }, "ones")
  }
  public static func full(_ shape: [Int], _ value: Double, dtype: DType = .float32, device: Device = .cpu) -> Tensor {
    let (t, i) = device.code
    return make(withShape(shape) { vt_full($0, $1, value, dtype.rawValue, t, i) }, "full")
  }
  /// Values start, start+step, ... below end (as torch.arange).
  public static func arange(_ start: Double = 0, _ end: Double, step: Double = 1, dtype: DType = .int64,
                            device: Device = .cpu) -> Tensor {
    let (t, i) = device.code
    return make(vt_arange(start, end, step, dtype.rawValue, t, i), "arange")
  }
  public static func arange(_ end: Int, dtype: DType = .int64, device: Device = .cpu) -> Tensor {
    arange(0, Double(end), dtype: dtype, device: device)
  }
  public static func linspace(_ start: Double, _ end: Double, steps: Int, dtype: DType = .float32,
                              device: Device = .cpu) -> Tensor {
    let (t, i) = device.code
    return make(vt_linspace(start, end, Int64(steps), dtype.rawValue, t, i), "linspace")
  }
  public static func randn(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu,
                           generator: Generator? = nil) -> Tensor {
    let (t, i) = device.code
    return make(withShape(shape) { vt_randn($0, $1, dtype.rawValue, t, i, generator?.handle) }, "randn")
  }
  public static func rand(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu,
                          generator: Generator? = nil) -> Tensor {
    let (t, i) = device.code
    return make(withShape(shape) { vt_rand($0, $1, dtype.rawValue, t, i, generator?.handle) }, "rand")
  }
  /// Integers uniformly in low..<high.
  public static func randint(_ low: Int, _ high: Int, _ shape: [Int], dtype: DType = .int64, device: Device = .cpu,
                             generator: Generator? = nil) -> Tensor {
    let (t, i) = device.code
    return make(withShape(shape) {
      vt_randint(Int64(low), Int64(high), $0, $1, dtype.rawValue, t, i, generator?.handle)
    }, "randint")
  }

  // MARK: From Swift values

  /// A tensor holding a copy of `values`, reshaped to `shape` (default: 1-D).
  public convenience init<T: TensorElement>(_ values: [T], shape: [Int]? = nil) {
    let shape = shape ?? [values.count]
    precondition(shape.reduce(1, *) == values.count,
                 "Tensor(values:shape:): \(values.count) values do not fill shape \(shape)")
    let handle = values.withUnsafeBytes { bytes in
      withShape(shape) { vt_from_data(bytes.baseAddress, bytes.count, $0, $1, T.dtype.rawValue) }
    }
    guard let handle else { torchFailure("from_data") }
    self.init(handle: handle)
  }

  /// Integer convenience: `Tensor([1, 2, 3])` holds int64.
  public convenience init(_ values: [Int], shape: [Int]? = nil) {
    self.init(values.map(Int64.init), shape: shape)
  }

  /// A 0-d tensor.
  public convenience init<T: TensorElement>(scalar: T) {
    self.init([scalar], shape: [])
  }

  /// A CPU tensor copied from raw bytes of the given dtype.
  public convenience init(bytes: UnsafeRawBufferPointer, shape: [Int], dtype: DType) {
    let handle = withShape(shape) { vt_from_data(bytes.baseAddress, bytes.count, $0, $1, dtype.rawValue) }
    guard let handle else { torchFailure("from_data") }
    self.init(handle: handle)
  }

  /// Wraps external CPU memory without copying. `owner` is retained until libtorch frees the
  /// storage (memory-mapped safetensors stay mapped while any tensor views them).
  public static func wrapping(_ pointer: UnsafeRawPointer, shape: [Int], dtype: DType, owner: AnyObject) -> Tensor {
    let context = Unmanaged.passRetained(owner as AnyObject).toOpaque()
    let handle = withShape(shape) {
      vt_from_blob(UnsafeMutableRawPointer(mutating: pointer), $0, $1, dtype.rawValue, { context in
        if let context { Unmanaged<AnyObject>.fromOpaque(context).release() }
      }, context)
    }
    guard let handle else {
      Unmanaged<AnyObject>.fromOpaque(context).release()
      torchFailure("from_blob")
    }
    return Tensor(handle: handle)
  }

  // MARK: To Swift values

  /// The elements in row-major order, converted to `T`'s dtype first if needed.
  public func toArray<T: TensorElement>(_ type: T.Type = T.self) -> [T] {
    let source = dtype == T.dtype && device == .cpu ? self : to(T.dtype, device: .cpu)
    let n = source.count
    return [T](unsafeUninitializedCapacity: n) { buffer, initialized in
      let status = vt_copy_to_host(source.handle, buffer.baseAddress, n * MemoryLayout<T>.stride)
      check(status, "copy_to_host")
      initialized = n
    }
  }

  public func floats() -> [Float] { toArray(Float.self) }
  public func doubles() -> [Double] { toArray(Double.self) }
  public func ints() -> [Int] { toArray(Int64.self).map(Int.init) }
  public func bools() -> [Bool] { toArray(Bool.self) }

  /// The single value of a one-element tensor.
  public func item() -> Double {
    let value = vt_item_double(handle)
    if vt_last_error() != nil { torchFailure("item") }
    return value
  }
  public func itemInt() -> Int {
    let value = vt_item_int(handle)
    if vt_last_error() != nil { torchFailure("item") }
    return Int(value)
  }

  /// Copies the elements' bytes (contiguous, on CPU) into `destination`.
  public func copyBytes(to destination: UnsafeMutableRawBufferPointer) {
    check(vt_copy_to_host(handle, destination.baseAddress, destination.count), "copy_to_host")
  }
}

// MARK: - Generator

/// A seedable random-number generator (CPU or CUDA).
public final class Generator: @unchecked Sendable {
  let handle: OpaquePointer
  public let device: Device

  public init(seed: UInt64, device: Device = .cpu) {
    if device.isCUDA { Torch.loadCUDA() }
    let (t, i) = device.code
    guard let handle = vt_generator_new(seed, t, i) else { torchFailure("generator") }
    self.handle = handle
    self.device = device
  }
  deinit { vt_generator_free(handle) }

  public func seed(_ seed: UInt64) {
    vt_generator_set_seed(handle, seed)
    if vt_last_error() != nil { torchFailure("generator seed") }
  }

  /// The full generator state (for checkpoints).
  public var state: Tensor {
    get { Tensor.make(vt_generator_get_state(handle), "generator get_state") }
    set { check(vt_generator_set_state(handle, newValue.handle), "generator set_state") }
  }

  /// State of the process's default generator for `device`.
  public static func defaultState(_ device: Device = .cpu) -> Tensor {
    let (t, i) = device.code
    return Tensor.make(vt_default_generator_state(t, i), "default generator state")
  }
  public static func setDefaultState(_ state: Tensor, device: Device = .cpu) {
    let (t, i) = device.code
    check(vt_default_generator_set_state(t, i, state.handle), "default generator set_state")
  }
}
