import Common
import Datasets
import Foundation
import Rewards

extension TrainingConfig {
  /// Reads a JSON or YAML (`.yaml`, `.yml`) config file, in the nested layout or a flat TRL
  /// `GRPOConfig` layout (`ConfigFormats`), applies `--set` overrides (`training.learning_rate=2e-6`), fills the
  /// defaults, resolves the ZeRO stage and checks the result. Relative `deepspeed` paths are tried in
  /// the current directory, then beside the config file.
  public static func load(_ url: URL, overrides: [String] = []) throws -> TrainingConfig {
    let source = url.path
    guard let data = FileManager.default.contents(atPath: url.path) else {
      let problem = fileProblem(url.path)
      throw TrainingError.io(path: source, reason: "cannot read the config file: "
        + (problem == "no such file" ? "file not found" : problem))
    }
    let lower = url.pathExtension.lowercased()
    guard lower == "yaml" || lower == "yml" else {
      return try parse(data, source: source, overrides: overrides, baseFolder: url.deletingLastPathComponent())
    }
    let raw = try ConfigFormats.yamlValue(String(decoding: data, as: UTF8.self), source: source)
    return try parse(raw, source: source, overrides: overrides, baseFolder: url.deletingLastPathComponent())
  }

  /// Parses config JSON (see `load`).
  public static func parse(_ data: Data, source: String = "<config>", overrides: [String] = [],
                           baseFolder: URL? = nil) throws -> TrainingConfig {
    let raw: JSONValue
    do { raw = try JSONValue.parse(data) } catch {
      let problem = JSONSyntax.describe(data, fallback: "a value cannot be decoded")
      throw TrainingError.invalidConfig(source: source, path: "", reason: "not valid JSON: \(problem)")
    }
    return try parse(raw, source: source, overrides: overrides, baseFolder: baseFolder)
  }

  /// Checks a config tree from a JSON or YAML file (see `load`).
  static func parse(_ tree: JSONValue, source: String, overrides: [String], baseFolder: URL?) throws -> TrainingConfig {
    guard tree.objectValue != nil else {
      throw TrainingError.invalidConfig(source: source, path: "", reason: "the config must be a mapping of keys to values")
    }
    var raw = try ConfigFormats.nested(tree, source: source)
    for override in overrides { raw = try applyOverride(override, to: raw) }
    do {
      let ignored = stripIgnoredKeys(&raw)
      var normalized = try normalize(raw, source: source)
      applyMaxLength(raw: raw, to: &normalized)
      try resolveZeroStage(&normalized, source: source, baseFolder: baseFolder)
      var config = try decodeNormalized(normalized, source: source)
      config.ignoredKeys = ignored
      try config.checkIgnoredValues(source: source)
      try config.validate(source: source)
      return config
    } catch TrainingError.invalidConfig(let file, let path, let reason) {
      // A key an override set is the override's fault, not the file's.
      throw TrainingError.invalidConfig(source: overrideSetting(path, overrides: overrides) ?? file, path: path, reason: reason)
    }
  }

  /// The `--set` assignment that set the key at `path` (the last one, as it wins), if any.
  static func overrideSetting(_ path: String, overrides: [String]) -> String? {
    guard !path.isEmpty else { return nil }
    return overrides.last { assignment in
      var key = String(assignment.prefix { $0 != "=" })
      if !key.contains("."), key != "job_type", ConfigSchema.fields(ofSection: key) == nil { key = ConfigFormats.nestedPath(key) }
      guard key == path || path.hasPrefix(key + ".") || key.hasPrefix(path + ".") else {
        // An alias sets the canonical key that later checks name (`roll_out_num` -> `num_generations`).
        let parts = key.split(separator: ".").map(String.init)
        guard parts.count >= 2, let field = ConfigSchema.fields(ofSection: parts[0])?.first(where: { $0.aliases.contains(parts[1]) })
        else { return false }
        return path == "\(parts[0]).\(field.key)"
      }
      return true
    }.map { "--set \($0)" }
  }

  /// Removes the keys of `ConfigSchema.ignoredTRLKeys` from the `training` section, returning them
  /// (sorted) with their values.
  static func stripIgnoredKeys(_ raw: inout JSONValue) -> [String: JSONValue] {
    guard case .object(var top) = raw, case .object(var training)? = top["training"] else { return [:] }
    var ignored: [String: JSONValue] = [:]
    for key in training.keys.sorted() where ConfigSchema.ignoredReason(key) != nil {
      ignored[key] = training.removeValue(forKey: key)
    }
    top["training"] = .object(training)
    raw = .object(top)
    return ignored
  }

  /// EasyDistill's `max_length` is its limit on prompt tokens: it sets `max_prompt_length` unless the
  /// file gives `max_prompt_length` too (then that one rules). Image tokens count in both.
  static func applyMaxLength(raw: JSONValue, to normalized: inout JSONValue) {
    guard let given = raw["training"]?.objectValue, let maxLength = given["max_length"], !maxLength.isNull,
      given["max_prompt_length"] == nil, case .object(var top) = normalized, case .object(var training)? = top["training"]
    else { return }
    training["max_prompt_length"] = maxLength
    top["training"] = .object(training)
    normalized = .object(top)
  }

  // MARK: Normalizing

  /// Checks keys and types section by section and fills defaults; aliases become canonical names.
  static func normalize(_ raw: JSONValue, source: String) throws -> JSONValue {
    let top = raw.objectValue ?? [:]
    if let unknown = top.keys.sorted().first(where: { !ConfigSchema.topLevelKeys.contains($0) }) {
      // A flat (TRL-style) key in a file that also has sections.
      let flat = ConfigFormats.flatKeys[unknown] != nil || ConfigSchema.training.contains { $0.key == unknown }
      throw TrainingError.invalidConfig(source: source, path: unknown, reason: flat
        ? "unknown key at the top of a file with sections; write it as \(ConfigFormats.nestedPath(unknown)), or write every key flat"
        : ConfigSchema.unknownKeyReason(unknown, known: ConfigSchema.topLevelKeys))
    }
    var result: [String: JSONValue] = ["job_type": .string(try jobType(top["job_type"], source: source))]
    for section in ["dataset", "models", "training"] {
      let fields = ConfigSchema.fields(ofSection: section) ?? []
      let value = top[section] ?? .object([:])
      guard let object = value.objectValue else {
        throw TrainingError.invalidConfig(source: source, path: section, reason: "must be an object")
      }
      result[section] = .object(try normalizeSection(object, fields: fields, section: section, source: source))
    }
    return .object(result)
  }

  private static func jobType(_ value: JSONValue?, source: String) throws -> String {
    guard let value else { return "grpo" }
    let known = ConfigSchema.jobTypes + ConfigSchema.jobTypeAliases.keys.sorted()
    guard let name = value.stringValue, let canonical = ConfigSchema.jobTypes.contains(name)
      ? name : ConfigSchema.jobTypeAliases[name] else {
      throw TrainingError.invalidConfig(source: source, path: "job_type",
                                        reason: "\(value) is not a job type; known: \(known.joined(separator: ", "))")
    }
    return canonical
  }

  private static func normalizeSection(_ object: [String: JSONValue], fields: [ConfigField], section: String,
                                       source: String) throws -> [String: JSONValue] {
    var byName: [String: ConfigField] = [:]
    for field in fields {
      byName[field.key] = field
      for alias in field.aliases { byName[alias] = field }
    }
    if let unknown = object.keys.sorted().first(where: { byName[$0] == nil }) {
      throw TrainingError.invalidConfig(source: source, path: "\(section).\(unknown)",
                                        reason: ConfigSchema.unknownKeyReason(unknown, known: byName.keys.sorted()))
    }
    var result: [String: JSONValue] = [:]
    for field in fields {
      let present = ([field.key] + field.aliases).filter { object[$0] != nil }
      if present.count > 1 {
        throw TrainingError.invalidConfig(source: source, path: "\(section).\(field.key)",
                                          reason: "set twice (as \(present.joined(separator: " and ")))")
      }
      let path = "\(section).\(present.first ?? field.key)"
      guard let key = present.first, let value = object[key], !value.isNull else {
        result[field.key] = field.defaultValue
        continue
      }
      result[field.key] = try coerce(value, to: field.kind) { reason in
        TrainingError.invalidConfig(source: source, path: path, reason: reason)
      }
    }
    return result
  }

  /// The value in the field's canonical JSON type, or an error saying what was expected.
  static func coerce(_ value: JSONValue, to kind: ConfigField.Kind,
                     error: (String) -> TrainingError) throws -> JSONValue {
    switch kind {
    case .int(let minimum):
      guard let number = value.intValue else { throw error("expected an integer, got \(value)") }
      if let minimum, number < minimum { throw error("must be at least \(minimum), got \(number)") }
      return .int(number)
    case .double(let minimum):
      guard let number = value.doubleValue, number.isFinite else { throw error("expected a number, got \(value)") }
      if let minimum, number < minimum { throw error("must be at least \(minimum), got \(number)") }
      return .double(number)
    case .bool:
      guard value.boolValue != nil else { throw error("expected true or false, got \(value)") }
      return value
    case .string:
      guard value.stringValue != nil else { throw error("expected a string, got \(value)") }
      return value
    case .choice(let choices):
      guard let text = value.stringValue, choices.contains(text) else {
        throw error("\(value) is not one of: \(choices.joined(separator: ", "))")
      }
      return value
    case .choiceOrBool(let choices, let whenTrue, let whenFalse):
      // A boolean, or its text from `--set` (taken verbatim), stands for one of the names.
      let flag = value.boolValue ?? ["true": true, "false": false][value.stringValue ?? ""]
      if let flag { return .string(flag ? whenTrue : whenFalse) }
      guard let text = value.stringValue, choices.contains(text) else {
        throw error("\(value) is not one of: \(choices.joined(separator: ", ")), true (\(whenTrue)), false (\(whenFalse))")
      }
      return value
    case .stringList:
      guard let items = value.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
        throw error("expected a list of strings, got \(value)")
      }
      return value
    case .doubleList:
      guard let items = value.arrayValue, items.allSatisfy({ $0.doubleValue != nil }) else {
        throw error("expected a list of numbers, got \(value)")
      }
      return .array(items.compactMap(\.doubleValue).map(JSONValue.double))
    case .object:
      guard value.objectValue != nil else { throw error("expected an object, got \(value)") }
      return value
    case .stringOrObject:
      guard value.stringValue != nil || value.objectValue != nil else {
        throw error("expected a file path or an object, got \(value)")
      }
      return value
    case .stringOrBool:
      guard value.stringValue != nil || value.boolValue != nil else {
        throw error("expected a checkpoint path or true/false, got \(value)")
      }
      return value
    case .stringOrStringList:
      let isList = value.arrayValue?.allSatisfy { $0.stringValue != nil } ?? false
      guard value.stringValue != nil || isList else { throw error("expected a string or a list of strings, got \(value)") }
      return value
    }
  }

  static func decodeNormalized(_ normalized: JSONValue, source: String) throws -> TrainingConfig {
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    do {
      return try decoder.decode(TrainingConfig.self, from: JSONEncoder().encode(normalized))
    } catch {
      throw TrainingError.invalidConfig(source: source, path: "", reason: "internal schema mismatch: \(error)")
    }
  }

  // MARK: Writing back

  /// The resolved config as a JSON value: every known key, canonical names, nulls where unset.
  public func resolvedJSON() -> JSONValue {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    guard let data = try? encoder.encode(self), case .object(var top)? = try? JSONValue.parse(data) else {
      return .null
    }
    for section in ["dataset", "models", "training"] {
      var object = top[section]?.objectValue ?? [:]
      for field in ConfigSchema.fields(ofSection: section) ?? [] where object[field.key] == nil {
        object[field.key] = .null
      }
      top[section] = .object(object)
    }
    return .object(top)
  }

  /// Pretty JSON with sorted keys, as written to `<output_dir>/config.json`; it loads back to an
  /// equal config.
  public func resolvedJSONText() -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    guard let data = try? encoder.encode(resolvedJSON()) else { return "{}" }
    return String(decoding: data, as: UTF8.self) + "\n"
  }

  /// Writes the resolved config to `url` (creating folders).
  public func write(to url: URL) throws {
    do {
      try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      try Data(resolvedJSONText().utf8).write(to: url, options: .atomic)
    } catch {
      throw TrainingError.io(path: url.path, reason: "cannot write the resolved config (\(error.localizedDescription))")
    }
  }

  // MARK: Checks across keys

  /// Ranges and relations the types alone do not express.
  public func validate(source: String = "<config>") throws {
    func fail(_ path: String, _ reason: String) -> TrainingError {
      .invalidConfig(source: source, path: path, reason: reason)
    }
    let t = training
    let unitRanges: [(String, Double?, ClosedRange<Double>)] = [
      ("top_p", t.topP, 0...1), ("min_p", t.minP, 0...1), ("warmup_ratio", t.warmupRatio, 0...1),
      ("lora_dropout", t.loraDropout, 0...0.999_999), ("adam_beta1", t.adamBeta1, 0...0.999_999),
      ("adam_beta2", t.adamBeta2, 0...0.999_999), ("ref_model_mixup_alpha", t.refModelMixupAlpha, 0...1),
      ("epsilon", t.epsilon, 0...0.999_999),
    ]
    for (key, value, range) in unitRanges {
      if let value, !range.contains(value) { throw fail("training.\(key)", "must be in [\(range.lowerBound), 1], got \(value)") }
    }
    guard t.temperature > 0 else { throw fail("training.temperature", "must be positive") }
    guard t.topP > 0 else { throw fail("training.top_p", "must be positive") }
    guard t.topEntropyQuantile > 0, t.topEntropyQuantile <= 1 else {
      throw fail("training.top_entropy_quantile", "must be in (0, 1], got \(t.topEntropyQuantile)")
    }
    guard t.minPixels <= t.maxPixels else { throw fail("training.min_pixels", "exceeds max_pixels") }
    if let stage = t.zeroStage, stage > 3 { throw fail("training.zero_stage", "must be 0, 1, 2 or 3, got \(stage)") }
    if jobType == .grpo { try validateRewards(fail) }
    if jobType == .cycle { try validateCycle(fail) }
    if jobType != .sft {
      guard t.numGenerations >= 2 else {
        throw fail("training.num_generations", "GRPO needs at least 2 generations per prompt, got \(t.numGenerations)")
      }
    }
    try checkBatchLayout(source: source)
  }

  /// Keys the seeds' configs carry that no trainer here implements yet, or that contradict each
  /// other: refused (with the reason) when a trainer is built, never accepted and ignored. Parsing
  /// accepts them, so a resolved config round-trips and `vlmrl data`/`eval` tools can read it.
  public func checkImplemented(source: String = "<config>") throws {
    func fail(_ path: String, _ reason: String) -> TrainingError {
      .invalidConfig(source: source, path: path, reason: reason)
    }
    let t = training
    try checkEvaluation(fail)
    if models.teacher != nil {
      throw fail("models.teacher", "no vlmrl trainer uses a teacher model (GRPO and SFT train the student alone)")
    }
    if jobType == .sft {
      if !t.packing { throw fail("training.packing", "SFT always packs sequences without padding (one packed pass per batch)") }
      if !t.assistantOnlyLoss { throw fail("training.assistant_only_loss", "SFT always trains on the assistant tokens only") }
      if models.reference != nil { throw fail("models.reference", "SFT has no reference model") }
    }
    if models.reference != nil && t.beta == 0 {
      throw fail("models.reference", "unused with beta 0 (no KL term); set beta > 0 or drop the reference")
    }
    if models.reference != nil && t.usePeft {
      throw fail("models.reference", "with use_peft the reference is the base model with the adapters off")
    }
    try checkCycleKeysUnused(fail)
  }

  /// `dataset.eval_path` and the eval keys (docs/training.md, "Evaluation during training"): the
  /// keys need the path, `eval_strategy` agrees with it, and SFT has no in-training evaluation.
  private func checkEvaluation(_ fail: (String, String) -> TrainingError) throws {
    let t = training
    if dataset.evalPath == nil {
      if t.evalStrategy == "steps" {
        throw fail("training.eval_strategy", "\"steps\" needs dataset.eval_path (the held-out records to evaluate)")
      }
      let given = [("eval_steps", t.evalSteps != nil), ("eval_task", t.evalTask != nil), ("eval_sample_num", t.evalSampleNum != nil),
                   ("eval_max_new_tokens", t.evalMaxNewTokens != nil)].filter(\.1).map(\.0)
      if let key = given.first { throw fail("training.\(key)", "has no effect without dataset.eval_path") }
      return
    }
    if t.evalStrategy == "no" {
      throw fail("training.eval_strategy", "\"no\" contradicts dataset.eval_path; drop one of them")
    }
    if jobType == .sft {
      throw fail("dataset.eval_path", "SFT does not evaluate during training; run `vlmrl eval` on its checkpoints")
    }
  }

  /// The cycle trainer's rewards are fixed by its loops (region IoU, METEOR + judge); their
  /// parameters go under `reward_parameters`.
  private func validateCycle(_ fail: (String, String) -> TrainingError) throws {
    let t = training
    guard t.rewardFuncs.isEmpty else {
      throw fail("training.reward_funcs", "job_type cycle scores loop 1 by region IoU and loop 2 by METEOR + judge "
        + "(cycle_meteor_weight, cycle_judge_weight); set their parameters under reward_parameters, not reward_funcs")
    }
    guard t.emaDecay <= 1 else { throw fail("training.ema_decay", "must be in [0, 1], got \(t.emaDecay)") }
    guard t.cycleCaptionPrompt.contains("{region}") else {
      throw fail("training.cycle_caption_prompt", "must contain {region} (where the region is named)")
    }
    guard t.cycleGroundingPrompt.contains("{caption}") else {
      throw fail("training.cycle_grounding_prompt", "must contain {caption} (where the caption goes)")
    }
    guard t.cycleMeteorWeight + t.cycleJudgeWeight > 0 else {
      throw fail("training.cycle_judge_weight", "cycle_meteor_weight and cycle_judge_weight are both 0: loop 2 would score nothing")
    }
    if t.computeAttentionMetrics { throw fail("training.compute_attention_metrics", "not recorded by the cycle trainer") }
    if t.numIterations != 1 { throw fail("training.num_iterations", "the cycle trainer takes one optimizer step per generation batch") }
  }

  /// Cycle keys changed from their defaults in a config whose job type does not read them.
  private func checkCycleKeysUnused(_ fail: (String, String) -> TrainingError) throws {
    guard jobType != .cycle else { return }
    let resolved = resolvedJSON()["training"]?.objectValue ?? [:]
    for field in ConfigSchema.cycle {
      let value = resolved[field.key] ?? .null
      let same = value == field.defaultValue
        || (value.doubleValue != nil && value.doubleValue == field.defaultValue.doubleValue)
      if !same { throw fail("training.\(field.key)", "only job_type cycle reads it (this config is \(jobType.rawValue))") }
    }
  }

  private func validateRewards(_ fail: (String, String) -> TrainingError) throws {
    let t = training
    guard !t.rewardFuncs.isEmpty else { throw fail("training.reward_funcs", "a GRPO run needs at least one reward") }
    let known = Set(RewardRegistry.names)
    if let unknown = t.rewardFuncs.first(where: { !known.contains($0) }) {
      throw fail("training.reward_funcs", "unknown reward '\(unknown)'; known: \(RewardRegistry.names.joined(separator: ", "))")
    }
    if let weights = t.rewardWeights, weights.count != t.rewardFuncs.count {
      throw fail("training.reward_weights", "\(weights.count) weights for \(t.rewardFuncs.count) reward functions")
    }
  }
}
