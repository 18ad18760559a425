import Foundation
import CTorch

extension Tensor {
  public var requiresGrad: Bool { vt_requires_grad(handle) != 0 }

  /// Marks a leaf for gradient tracking (in place); returns self for chaining.
  @discardableResult
  public func requiresGrad_(_ requires: Bool = true) -> Tensor {
    check(vt_set_requires_grad(handle, requires), "requires_grad_")
    return self
  }

  /// Back-propagates from this tensor (a scalar unless `gradient` is given).
  public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false) {
    check(vt_backward(handle, gradient?.handle, retainGraph), "backward")
  }

  /// The accumulated gradient, nil when none has been computed.
  public var grad: Tensor? {
    get {
      guard let g = vt_grad(handle) else {
        if vt_last_error() != nil { torchFailure("grad") }
        return nil
      }
      return Tensor(handle: g)
    }
    set { check(vt_set_grad(handle, newValue?.handle), "set grad") }
  }
}

public enum Autograd {
  /// Gradients of `outputs` with respect to `inputs` (nil where an input is unreachable).
  public static func grad(outputs: [Tensor], inputs: [Tensor], gradOutputs: [Tensor?]? = nil,
                          retainGraph: Bool = false, createGraph: Bool = false) -> [Tensor?] {
    let outs: [OpaquePointer?] = outputs.map(\.handle)
    let ins: [OpaquePointer?] = inputs.map(\.handle)
    let gos: [OpaquePointer?]? = gradOutputs?.map { $0?.handle }
    var result = [OpaquePointer?](repeating: nil, count: inputs.count)
    let status = withExtendedLifetime((outputs, inputs, gradOutputs)) {
      gos.withOptionalBuffer { goPointer in
        vt_autograd_grad(outs, goPointer, Int32(outs.count), ins, Int32(ins.count), retainGraph, createGraph, &result)
      }
    }
    check(status, "autograd.grad")
    return result.map { $0.map(Tensor.init(handle:)) }
  }

  public static var isGradEnabled: Bool { vt_grad_mode_enabled() != 0 }
}

extension Optional where Wrapped == [OpaquePointer?] {
  fileprivate func withOptionalBuffer<R>(_ body: (UnsafePointer<OpaquePointer?>?) -> R) -> R {
    switch self {
    case .none: return body(nil)
    case .some(let array): return array.withUnsafeBufferPointer { body($0.baseAddress) }
    }
  }
}

/// Runs `body` with gradient tracking off (thread-local, like torch.no_grad; keep `body` synchronous).
public func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
  let previous = vt_set_grad_mode(false)
  defer { _ = vt_set_grad_mode(previous != 0) }
  return try body()
}

/// Runs `body` with gradient tracking on (inside a no-grad region, e.g. checkpoint recompute).
public func withGrad<R>(_ body: () throws -> R) rethrows -> R {
  let previous = vt_set_grad_mode(true)
  defer { _ = vt_set_grad_mode(previous != 0) }
  return try body()
}

// MARK: - Gradient checkpointing

private final class CheckpointBox {
  let body: ([Tensor]) -> [Tensor]
  init(_ body: @escaping ([Tensor]) -> [Tensor]) { self.body = body }
}

/// Runs `body` without keeping its activations and recomputes it during backward (activation
/// checkpointing of a decoder layer). Parameters that `body` captures receive gradients. At least
/// one input must require grad for gradients to flow (as with PyTorch's reentrant checkpoint); when
/// none does, the first floating-point input is marked so that captured parameters still train.
public func checkpoint(_ inputs: [Tensor], outputCount: Int, _ body: @escaping ([Tensor]) -> [Tensor]) -> [Tensor] {
  guard Autograd.isGradEnabled else { return body(inputs) }
  var inputs = inputs
  if !inputs.contains(where: \.requiresGrad), let first = inputs.firstIndex(where: { $0.dtype.isFloatingPoint }) {
    inputs[first] = inputs[first].detach().requiresGrad_()
  }
  // The autograd node keeps only a raw pointer to the closure, so the registry keeps it alive
  // until the trainer calls `RecomputeRegistry.shared.releaseAll()` after backward.
  let box = CheckpointBox(body)
  RecomputeRegistry.shared.retain(box)
  let context = Unmanaged.passUnretained(box).toOpaque()
  let handles: [OpaquePointer?] = inputs.map(\.handle)
  var outputs = [OpaquePointer?](repeating: nil, count: outputCount)
  let status = withExtendedLifetime(inputs) {
    vt_checkpoint({ context, inputPointer, inputCount, outputPointer, outputCount in
      guard let context, let inputPointer, let outputPointer else { return -1 }
      let box = Unmanaged<CheckpointBox>.fromOpaque(context).takeUnretainedValue()
      let inputs = (0..<Int(inputCount)).map { Tensor(handle: vt_shallow_clone(inputPointer[$0])!) }
      let results = box.body(inputs)
      guard results.count == Int(outputCount) else { return -1 }
      for (i, result) in results.enumerated() { outputPointer[i] = vt_shallow_clone(result.handle) }
      return 0
    }, context, handles, Int32(handles.count), &outputs, Int32(outputCount))
  }
  check(status, "checkpoint")
  return outputs.map { Tensor(handle: $0!) }
}

/// Keeps checkpoint closures alive until `release` (the trainer clears it after each backward).
/// Each closure belongs to the thread whose forward made it: data-parallel ranks that train as
/// threads of one process (the tests) each release only their own, never a peer's whose backward
/// is still running.
public final class RecomputeRegistry: @unchecked Sendable {
  public static let shared = RecomputeRegistry()
  private var boxes: [(owner: pthread_t, box: AnyObject)] = []
  private let lock = NSLockShim()
  func retain(_ box: AnyObject) {
    let owner = pthread_self()
    lock.locked { boxes.append((owner, box)) }
  }
  /// Drops the closures of this thread's finished graphs. Call after backward, on the thread that
  /// ran the forward.
  public func releaseAll() {
    let owner = pthread_self()
    lock.locked { boxes.removeAll { pthread_equal($0.owner, owner) != 0 } }
  }
  public var count: Int { lock.locked { boxes.count } }
}

final class NSLockShim: @unchecked Sendable {
  private let lock = NSLock()
  func locked<R>(_ body: () -> R) -> R {
    lock.lock()
    defer { lock.unlock() }
    return body()
  }
}
