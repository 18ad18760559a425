import Foundation
import Torch

/// A trainable (or frozen) tensor slot. Modules hold parameters by reference so that loading,
/// dtype conversion and optimizers can replace the tensor without rebuilding the module.
public final class Parameter: @unchecked Sendable {
  public var value: Tensor
  /// Frozen parameters get no gradient and are skipped by optimizers.
  public var trainable: Bool {
    didSet { value.requiresGrad_(trainable) }
  }
  public init(_ value: Tensor, trainable: Bool = true) {
    self.value = value
    self.trainable = trainable
    value.requiresGrad_(trainable && value.dtype.isFloatingPoint)
  }
  public var grad: Tensor? {
    get { value.grad }
    set { value.grad = newValue }
  }
  /// Replaces the tensor (e.g. after loading), keeping the trainable flag.
  public func assign(_ tensor: Tensor) {
    value = tensor.detach()
    value.requiresGrad_(trainable && tensor.dtype.isFloatingPoint)
  }
}

/// Base class of every layer. Subclasses declare their weight names beside the layer by overriding
/// `parameterSlots` and `children` (Hugging Face key segments, e.g. "q_proj", "weight").
open class Module: @unchecked Sendable {
  public private(set) var isTraining = true

  public init() {}

  /// This module's own parameters, by key segment.
  open var parameterSlots: [(String, Parameter)] { [] }
  /// Direct submodules, by key segment.
  open var children: [(String, Module)] { [] }

  /// Every parameter with its dotted name ("model.layers.0.self_attn.q_proj.weight").
  public func namedParameters(prefix: String = "") -> [(String, Parameter)] {
    var out: [(String, Parameter)] = []
    for (name, parameter) in parameterSlots { out.append((prefix + name, parameter)) }
    for (name, child) in children { out += child.namedParameters(prefix: prefix + name + ".") }
    return out
  }

  /// Every submodule with its dotted name (this module is "").
  public func namedModules(prefix: String = "") -> [(String, Module)] {
    var out: [(String, Module)] = [(prefix.isEmpty ? "" : String(prefix.dropLast()), self)]
    for (name, child) in children { out += child.namedModules(prefix: prefix + name + ".") }
    return out
  }

  public var parameters: [Parameter] { namedParameters().map(\.1) }
  public var trainableParameters: [Parameter] { parameters.filter(\.trainable) }
  public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

  /// Sets training mode here and below (dropout-style behaviour; LoRA dropout uses it).
  public func train(_ training: Bool = true) {
    for (_, module) in namedModules() { module.isTraining = training }
  }
  public func eval() { train(false) }

  /// Marks every parameter here and below frozen (false) or trainable (true).
  public func setTrainable(_ trainable: Bool) {
    for parameter in parameters { parameter.trainable = trainable }
  }

  /// Converts every floating-point parameter to `dtype` and/or moves it to `device`.
  public func to(dtype: DType? = nil, device: Device? = nil) {
    for parameter in parameters {
      let converted = parameter.value.to(parameter.value.dtype.isFloatingPoint ? dtype : nil, device: device)
      parameter.assign(converted)
    }
  }

  /// The tensors by dotted name (shared with the module, not copied).
  public func stateDict() -> [String: Tensor] {
    Dictionary(uniqueKeysWithValues: namedParameters().map { ($0.0, $0.1.value) })
  }

  /// Assigns tensors by dotted name. Strict: every missing, unused or mis-shaped key is reported, all at
  /// once, before anything is assigned. Tensors are converted to each parameter's dtype and device
  /// unless `dtype`/`device` say otherwise.
  public func load(_ tensors: [String: Tensor], dtype: DType? = nil, device: Device? = nil,
                   ignoring ignoredKeys: (String) -> Bool = { _ in false }) throws {
    let slots = namedParameters()
    var problems = StateDictProblems()
    for (name, parameter) in slots {
      guard let tensor = tensors[name] else { problems.missing.append(name); continue }
      if tensor.shape != parameter.value.shape {
        problems.misshaped.append((name, expected: parameter.value.shape, found: tensor.shape))
      }
    }
    let known = Set(slots.map(\.0))
    problems.unused = tensors.keys.filter { !known.contains($0) && !ignoredKeys($0) }.sorted()
    if !problems.isEmpty { throw problems }
    for (name, parameter) in slots {
      let source = tensors[name]!
      let targetDType = source.dtype.isFloatingPoint ? (dtype ?? parameter.value.dtype) : source.dtype
      // Always a copy the module owns: sources may be read-only memory maps of a checkpoint.
      parameter.assign(source.to(targetDType, device: device ?? parameter.value.device, copy: true))
    }
  }
}

/// Everything wrong with a state dict, reported at once.
public struct StateDictProblems: Error, CustomStringConvertible, Sendable {
  public var missing: [String] = []
  public var unused: [String] = []
  public var misshaped: [(String, expected: [Int], found: [Int])] = []
  public var isEmpty: Bool { missing.isEmpty && unused.isEmpty && misshaped.isEmpty }

  public var description: String {
    var lines = ["state dict does not match the model:"]
    func list(_ title: String, _ keys: [String]) {
      guard !keys.isEmpty else { return }
      lines.append("  \(title) (\(keys.count)):")
      for key in keys.prefix(20) { lines.append("    \(key)") }
      if keys.count > 20 { lines.append("    ... and \(keys.count - 20) more") }
    }
    list("missing keys", missing.sorted())
    list("unused keys", unused)
    if !misshaped.isEmpty {
      lines.append("  mis-shaped keys (\(misshaped.count)):")
      for (key, expected, found) in misshaped.prefix(20) { lines.append("    \(key): model \(expected), checkpoint \(found)") }
    }
    return lines.joined(separator: "\n")
  }
}

/// A list of modules named "0", "1", ... (Hugging Face `nn.ModuleList`).
public final class ModuleList<Element: Module>: Module, @unchecked Sendable {
  public let items: [Element]
  public init(_ items: [Element]) { self.items = items }
  public override var children: [(String, Module)] { items.enumerated().map { (String($0.offset), $0.element) } }
  public subscript(index: Int) -> Element { items[index] }
  public var count: Int { items.count }
}
