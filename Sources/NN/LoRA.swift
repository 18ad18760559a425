import Foundation
import SafeTensors
import Torch

/// Which linear layers get adapters, with peft's `target_modules` semantics.
public enum LoRATargets: Sendable, Equatable {
  /// A module matches when its name equals an entry or ends with `"." + entry` (peft's list form).
  case names([String])
  /// A regular expression that must match the whole module name (peft's string form).
  case pattern(String)
  /// Every linear layer except the output head `lm_head` (peft's `all-linear`).
  case allLinear

  /// peft's reading of `target_modules`: a list of names, or one string (`all-linear` or a regex).
  public init(_ names: [String]) {
    self = .names(names)
  }
  public init(string: String) {
    self = string == "all-linear" ? .allLinear : .pattern(string)
  }

  /// Whether the module called `name` (its Hugging Face name) gets an adapter.
  public func matches(_ name: String) -> Bool {
    switch self {
    case .names(let entries): return entries.contains { name == $0 || name.hasSuffix("." + $0) }
    case .pattern(let pattern):
      guard let regex = try? Regex(pattern) else { return false }
      return (try? regex.wholeMatch(in: name)) != nil
    case .allLinear: return name != "lm_head" && !name.hasSuffix(".lm_head")
    }
  }

  /// The `target_modules` value of `adapter_config.json`.
  var json: Any {
    switch self {
    case .names(let entries): return entries
    case .pattern(let pattern): return pattern
    case .allLinear: return "all-linear"
    }
  }
}

/// The settings of a LoRA adapter (peft's `LoraConfig` subset vlmrl trains with).
public struct LoRAConfig: Sendable, Equatable {
  public var rank: Int
  public var alpha: Double
  public var dropout: Double
  public var targets: LoRATargets
  /// peft's `use_rslora`: rank-stabilised scaling `alpha / sqrt(r)`.
  public var useRSLoRA: Bool
  public init(rank: Int = 16, alpha: Double = 32, dropout: Double = 0.05, targets: LoRATargets, useRSLoRA: Bool = false) {
    self.rank = rank
    self.alpha = alpha
    self.dropout = dropout
    self.targets = targets
    self.useRSLoRA = useRSLoRA
  }
  /// peft's `scaling`: `lora_alpha / r`, or `lora_alpha / sqrt(r)` with rsLoRA.
  public var scaling: Double { useRSLoRA ? alpha / Foundation.sqrt(Double(rank)) : alpha / Double(rank) }
}

/// `y += B(A(dropout(x))) * alpha / r` on top of a frozen linear layer, as peft's `lora.Linear`:
/// A `[r, in]` starts Kaiming-uniform (bound `1/sqrt(in)`), B `[out, r]` starts at zero. The factors
/// are float32 whatever the model dtype (peft's `autocast_adapter_dtype`): the input is cast to
/// float32 and the result back to the input's dtype.
public final class LoRAAdapter: Module, @unchecked Sendable {
  public let down: Linear
  public let up: Linear
  public let scaling: Double
  public let dropout: Double
  /// Off: the layer computes its base output only (the reference model of GRPO with LoRA).
  public var enabled = true
  /// Draws dropout masks (reseeded by the trainer per step so that runs and resumes repeat).
  public var dropoutGenerator: Generator?

  public init(inFeatures: Int, outFeatures: Int, config: LoRAConfig, device: Device, generator: Generator? = nil) {
    down = Linear(inFeatures, config.rank, bias: false, dtype: .float32, device: device)
    up = Linear(config.rank, outFeatures, bias: false, dtype: .float32, device: device)
    scaling = config.scaling
    dropout = config.dropout
    super.init()
    let bound = 1 / Foundation.sqrt(Double(inFeatures))
    down.weight.assign(Tensor.rand([config.rank, inFeatures], dtype: .float32, device: device, generator: generator) * (2 * bound) - bound)
    up.weight.assign(Tensor.zeros([outFeatures, config.rank], dtype: .float32, device: device))
  }

  public override var children: [(String, Module)] { [("lora_A", down), ("lora_B", up)] }

  /// The adapter's contribution for input `x`; dropout only in training mode.
  public func delta(_ x: Tensor, training: Bool) -> Tensor {
    var input = x.to(.float32)
    if training && dropout > 0 {
      let keep = Tensor.rand(input.shape, dtype: .float32, device: input.device, generator: dropoutGenerator).ge(dropout)
      input = input * keep.to(.float32) / (1 - dropout)
    }
    return (up(down(input)) * scaling).to(x.dtype)
  }
}

/// Errors of adapter handling; messages name the file, key or module at fault.
public enum LoRAError: Error, CustomStringConvertible, Sendable {
  case noTargets(String)
  case badAdapter(String)
  public var description: String {
    switch self {
    case .noTargets(let message), .badAdapter(let message): return message
    }
  }
}

/// Adding, switching, saving and loading LoRA adapters in peft's layout.
public enum LoRA {
  /// Freezes every parameter of `model` and attaches a trainable adapter to each matching linear
  /// layer. `hubName` maps vlmrl's module names to the Hugging Face model's (what peft matches and
  /// saves). Returns the adapters by vlmrl module name; throws when nothing matches (as peft).
  @discardableResult
  public static func apply(to model: Module, config: LoRAConfig, hubName: (String) -> String = { $0 },
                           seed: UInt64 = 0) throws -> [(String, LoRAAdapter)] {
    guard config.rank >= 1 else { throw LoRAError.noTargets("LoRA: lora_r must be at least 1, got \(config.rank)") }
    model.setTrainable(false)
    var added: [(String, LoRAAdapter)] = []
    var generator: Generator?
    for (name, module) in model.namedModules() {
      guard let linear = module as? Linear, linear.adapter == nil, !name.isEmpty, config.targets.matches(hubName(name)) else { continue }
      let device = linear.weight.value.device
      if generator == nil || generator?.device != device { generator = Generator(seed: seed, device: device) }
      let adapter = LoRAAdapter(inFeatures: linear.weight.value.size(1), outFeatures: linear.weight.value.size(0),
                                config: config, device: device, generator: generator)
      linear.adapter = adapter
      added.append((name, adapter))
    }
    guard !added.isEmpty else {
      throw LoRAError.noTargets("LoRA: target modules \(config.targets.json) match no linear layer of the model")
    }
    return added
  }

  /// The adapters of `model`, by vlmrl module name.
  public static func adapters(in model: Module) -> [(String, LoRAAdapter)] {
    model.namedModules().compactMap { name, module in
      guard let linear = module as? Linear, let adapter = linear.adapter else { return nil }
      return (name, adapter)
    }
  }

  /// The adapter parameters under peft's safetensors names
  /// (`base_model.model.<hub module name>.lora_A.weight` / `lora_B.weight`).
  public static func namedParameters(in model: Module, hubName: (String) -> String = { $0 }) -> [(String, Parameter)] {
    adapters(in: model).flatMap { name, adapter in
      adapter.namedParameters(prefix: "base_model.model.\(hubName(name)).")
    }
  }

  /// Runs `body` with every adapter of `model` switched off (the base model), then back on.
  public static func withAdaptersDisabled<R>(_ model: Module, _ body: () throws -> R) rethrows -> R {
    let all = adapters(in: model).map(\.1)
    let previous = all.map(\.enabled)
    for adapter in all { adapter.enabled = false }
    defer { for (adapter, state) in zip(all, previous) { adapter.enabled = state } }
    return try body()
  }

  /// Folds every adapter into its linear layer and removes it, as peft's `merge_and_unload`:
  /// `W += scaling * (B @ A)` (`fan_in_fan_out` is always false for linear layers, as peft forces it),
  /// the product in float32 and the sum rounded once to the weight's dtype. Each parameter keeps its
  /// trainable flag. Returns how many layers were merged.
  @discardableResult
  public static func merge(into model: Module) -> Int {
    var merged = 0
    withNoGrad {
      for (_, module) in model.namedModules() {
        guard let linear = module as? Linear, let adapter = linear.adapter else { continue }
        let weight = linear.weight.value
        let delta = F.matmul(adapter.up.weight.value.to(.float32), adapter.down.weight.value.to(.float32)) * adapter.scaling
        linear.weight.assign((weight.to(.float32) + delta.to(weight.device)).to(weight.dtype))
        linear.adapter = nil
        merged += 1
      }
    }
    return merged
  }

  /// Gives every adapter a dropout generator seeded from `seed` and its position.
  public static func reseedDropout(in model: Module, seed: UInt64) {
    for (index, (_, adapter)) in adapters(in: model).enumerated() where adapter.dropout > 0 {
      adapter.dropoutGenerator = Generator(seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15, device: adapter.up.weight.value.device)
    }
  }

  // MARK: peft files

  /// Writes `adapter_config.json` and `adapter_model.safetensors` (float32) as peft's `save_pretrained`.
  public static func save(model: Module, config: LoRAConfig, baseModel: String?, hubName: (String) -> String = { $0 },
                          to directory: URL) throws {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    var tensors: [TensorToWrite] = []
    for (name, parameter) in namedParameters(in: model, hubName: hubName) {
      let cpu = parameter.value.detach().to(.float32, device: .cpu).contiguous()
      tensors.append(TensorToWrite(name: name, dtype: .float32, shape: cpu.shape, byteCount: cpu.byteCount) { sink in
        try sink(UnsafeRawBufferPointer(start: cpu.dataPointer, count: cpu.byteCount))
      })
    }
    try SafeTensorsWriter.write(tensors, to: directory.appendingPathComponent("adapter_model.safetensors"))
    let json: [String: Any] = [
      "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": config.rank, "lora_alpha": config.alpha,
      "lora_dropout": config.dropout, "target_modules": config.targets.json, "bias": "none", "fan_in_fan_out": false,
      "inference_mode": true, "init_lora_weights": true, "use_rslora": config.useRSLoRA, "use_dora": false,
      "modules_to_save": NSNull(), "base_model_name_or_path": baseModel.map { $0 as Any } ?? NSNull(),
      "rank_pattern": [String: Any](), "alpha_pattern": [String: Any](),
    ]
    let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
    try data.write(to: directory.appendingPathComponent("adapter_config.json"), options: .atomic)
  }

  /// Reads `adapter_config.json` (LoRA, also rsLoRA; not rank/alpha patterns or DoRA).
  public static func readConfig(directory: URL) throws -> LoRAConfig {
    let url = directory.appendingPathComponent("adapter_config.json")
    let data: Data
    do { data = try Data(contentsOf: url) } catch { throw LoRAError.badAdapter("\(url.path): cannot read (\(error))") }
    guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
      throw LoRAError.badAdapter("\(url.path): not a JSON object")
    }
    func fail(_ what: String) -> LoRAError { .badAdapter("\(url.path): \(what)") }
    guard (json["peft_type"] as? String) == "LORA" else { throw fail("peft_type must be \"LORA\"") }
    guard let rank = (json["r"] as? NSNumber)?.intValue, rank >= 1 else { throw fail("r must be a positive integer") }
    guard let alpha = (json["lora_alpha"] as? NSNumber)?.doubleValue else { throw fail("lora_alpha must be a number") }
    if (json["use_dora"] as? Bool) == true { throw fail("use_dora is not supported") }
    for key in ["rank_pattern", "alpha_pattern"] where !((json[key] as? [String: Any])?.isEmpty ?? true) {
      throw fail("\(key) is not supported")
    }
    let targets: LoRATargets
    if let list = json["target_modules"] as? [String] {
      targets = .names(list)
    } else if let one = json["target_modules"] as? String {
      targets = LoRATargets(string: one)
    } else {
      throw fail("target_modules must be a list of names or a string")
    }
    return LoRAConfig(rank: rank, alpha: alpha, dropout: (json["lora_dropout"] as? NSNumber)?.doubleValue ?? 0, targets: targets,
                      useRSLoRA: (json["use_rslora"] as? Bool) ?? false)
  }

  /// Loads a peft adapter folder into `model`: attaches adapters where its config says (when the
  /// model has none yet) and assigns the factors strictly (every missing, unused or mis-shaped key
  /// reported). `hubName` maps module names as for `apply`; saved names in either of peft's
  /// layouts are accepted through `canonicalName` (hub name -> vlmrl name).
  @discardableResult
  public static func load(directory: URL, into model: Module, hubName: (String) -> String = { $0 },
                          canonicalName: (String) -> String = { $0 }) throws -> LoRAConfig {
    let config = try readConfig(directory: directory)
    if adapters(in: model).isEmpty { try apply(to: model, config: config, hubName: hubName) }
    let url = directory.appendingPathComponent("adapter_model.safetensors")
    let file = try SafeTensorsFile(url: url)
    var tensors: [String: Tensor] = [:]
    for name in file.names {
      guard name.hasPrefix("base_model.model.") else { throw LoRAError.badAdapter("\(url.path): unexpected key \(name)") }
      let info = try file.info(name)
      guard let dtype = DType(adapterDType: info.dtype) else {
        throw LoRAError.badAdapter("\(url.path): \(name) has dtype \(info.dtype.rawValue)")
      }
      let module = String(name.dropFirst("base_model.model.".count))
      // peft without an adapter name in the key; older peft wrote ".lora_A.default.weight".
      let key = module.replacingOccurrences(of: ".default.weight", with: ".weight")
      let suffixStart = key.range(of: ".lora_", options: .backwards)?.lowerBound ?? key.endIndex
      let canonical = canonicalName(String(key[..<suffixStart])) + key[suffixStart...]
      tensors[canonical] = Tensor(bytes: try file.bytes(name), shape: info.shape, dtype: dtype)
    }
    let slots = adapters(in: model).flatMap { name, adapter in adapter.namedParameters(prefix: name + ".") }
    let holder = AdapterSlots(slots)
    do {
      try holder.load(tensors)
    } catch let problems as StateDictProblems {
      throw LoRAError.badAdapter("\(url.path): \(problems)")
    }
    return config
  }
}

/// A module view of adapter parameters by name, to reuse the strict loader.
private final class AdapterSlots: Module, @unchecked Sendable {
  let slots: [(String, Parameter)]
  init(_ slots: [(String, Parameter)]) { self.slots = slots }
  override var parameterSlots: [(String, Parameter)] { slots }
}

extension DType {
  init?(adapterDType: TensorDType) {
    switch adapterDType {
    case .float32: self = .float32
    case .float16: self = .float16
    case .bfloat16: self = .bfloat16
    case .float64: self = .float64
    default: return nil
    }
  }
}
