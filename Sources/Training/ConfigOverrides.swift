import Common
import Foundation

extension TrainingConfig {
  /// Applies one `--set path=value` to a raw config tree. The path names a section key
  /// (`training.learning_rate`), a top-level key (`job_type`), or a key inside an object-valued
  /// key (`training.reward_parameters.box_frame`). The value is read as JSON when it parses
  /// (numbers, `true`, `null`, `[1, 2]`, `{"a": 1}`), else as text; string-typed keys always take
  /// the text as written, so `output_dir=2024` stays a string.
  static func applyOverride(_ assignment: String, to raw: JSONValue) throws -> JSONValue {
    let source = "--set \(assignment)"
    guard let equals = assignment.firstIndex(of: "=") else {
      throw TrainingError.invalidConfig(source: source, path: "", reason: "expected key=value")
    }
    let path = assignment[..<equals].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    let text = String(assignment[assignment.index(after: equals)...])
    guard let head = path.first, !path.contains(where: \.isEmpty) else {
      throw TrainingError.invalidConfig(source: source, path: "", reason: "empty key")
    }
    if path.count == 1, head != "job_type", ConfigSchema.fields(ofSection: head) == nil {
      // A flat TRL-style key (`learning_rate=2e-6`, `model_name_or_path=...`) names its nested place.
      do { return try applyOverride("\(ConfigFormats.nestedPath(head))=\(text)", to: raw) } catch TrainingError.invalidConfig(_, let at, let reason) {
        throw TrainingError.invalidConfig(source: source, path: at, reason: reason)
      }
    }
    var top = raw.objectValue ?? [:]
    if head == "job_type" {
      guard path.count == 1 else { throw TrainingError.invalidConfig(source: source, path: head, reason: "job_type has no keys") }
      top[head] = .string(text)
      return .object(top)
    }
    guard let fields = ConfigSchema.fields(ofSection: head) else {
      throw TrainingError.invalidConfig(source: source, path: head,
                                        reason: ConfigSchema.unknownKeyReason(head, known: ConfigSchema.topLevelKeys))
    }
    guard path.count >= 2 else {
      throw TrainingError.invalidConfig(source: source, path: head, reason: "name a key inside \(head), e.g. \(head).\(fields[0].key)=...")
    }
    var section = top[head]?.objectValue ?? [:]
    if head == "training", path.count == 2, ConfigSchema.ignoredReason(path[1]) != nil {
      section[path[1]] = overrideValue(text, rawText: false)
      top[head] = .object(section)
      return .object(top)
    }
    guard let field = fields.first(where: { $0.key == path[1] || $0.aliases.contains(path[1]) }) else {
      let known = fields.flatMap { [$0.key] + $0.aliases }.sorted()
      throw TrainingError.invalidConfig(source: source, path: "\(head).\(path[1])",
                                        reason: ConfigSchema.unknownKeyReason(path[1], known: known))
    }
    // An override given under an alias replaces whichever spelling the file used.
    for name in [field.key] + field.aliases where name != path[1] { section[name] = nil }
    if path.count == 2 {
      section[path[1]] = overrideValue(text, rawText: field.takesRawText)
    } else {
      guard case .object = field.kind else {
        throw TrainingError.invalidConfig(source: source, path: path.joined(separator: "."),
                                          reason: "\(head).\(field.key) is not an object")
      }
      let nested = section[path[1]] ?? .object([:])
      section[path[1]] = try setNested(nested, path: Array(path.dropFirst(2)), value: overrideValue(text, rawText: false),
                                       source: source)
    }
    top[head] = .object(section)
    return .object(top)
  }

  static func overrideValue(_ text: String, rawText: Bool) -> JSONValue {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    if rawText {
      // A JSON-quoted string (or null) is still read as JSON.
      if trimmed.hasPrefix("\"") || trimmed == "null", let value = try? JSONValue.parse(trimmed) { return value }
      return .string(text)
    }
    return (try? JSONValue.parse(trimmed)) ?? .string(text)
  }

  private static func setNested(_ value: JSONValue, path: [String], value newValue: JSONValue,
                                source: String) throws -> JSONValue {
    guard let key = path.first else { return newValue }
    guard var object = value.objectValue else {
      throw TrainingError.invalidConfig(source: source, path: key, reason: "cannot set a key inside a non-object value")
    }
    object[key] = try setNested(object[key] ?? .object([:]), path: Array(path.dropFirst()), value: newValue, source: source)
    return .object(object)
  }

  // MARK: ZeRO stage

  /// Fills `training.zero_stage` from `training.deepspeed` (file contents when the file exists,
  /// else its name); an explicit `zero_stage` that disagrees is an error.
  static func resolveZeroStage(_ normalized: inout JSONValue, source: String, baseFolder: URL?) throws {
    guard case .object(var top) = normalized, var training = top["training"]?.objectValue,
          let deepspeed = training["deepspeed"], !deepspeed.isNull else { return }
    let stage = try zeroStage(of: deepspeed, baseFolder: baseFolder, source: source)
    if let explicit = training["zero_stage"]?.intValue, explicit != stage {
      throw TrainingError.invalidConfig(source: source, path: "training.zero_stage",
                                        reason: "\(explicit) disagrees with the deepspeed config's stage \(stage)")
    }
    training["zero_stage"] = .int(stage)
    top["training"] = .object(training)
    normalized = .object(top)
  }

  /// The ZeRO stage a DeepSpeed setting asks for: `zero_optimization.stage` of an inline object or
  /// a JSON file, `zero_stage:` of an accelerate YAML file, else a stage in the file name
  /// (`stage3.json`, `deepspeed_zero2.yaml`, `ds_z3_config.json`).
  public static func zeroStage(of deepspeed: JSONValue, baseFolder: URL? = nil, source: String = "<config>") throws -> Int {
    let error = { (reason: String) in TrainingError.invalidConfig(source: source, path: "training.deepspeed", reason: reason) }
    if let object = deepspeed.objectValue {
      guard let stage = object["zero_optimization"]?["stage"]?.intValue else {
        throw error("the inline DeepSpeed config has no zero_optimization.stage")
      }
      return stage
    }
    guard let path = deepspeed.stringValue else { throw error("expected a file path or an object") }
    let candidates = [URL(fileURLWithPath: path)] + (baseFolder.map { [$0.appendingPathComponent(path)] } ?? [])
    if let file = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }),
       let data = FileManager.default.contents(atPath: file.path) {
      if let json = try? JSONValue.parse(data), let stage = json["zero_optimization"]?["stage"]?.intValue { return stage }
      if let stage = firstDigit(after: #"zero_stage\s*:\s*"#, in: String(decoding: data, as: UTF8.self)) { return stage }
    }
    let name = URL(fileURLWithPath: path).lastPathComponent.lowercased()
    if let stage = firstDigit(after: #"(?:stage|zero)[_-]?"#, in: name) ?? firstDigit(after: #"(?:^|[_-])z"#, in: name) {
      return stage
    }
    throw error("cannot tell the ZeRO stage of '\(path)': the file is missing or has no stage, and its name has none "
                + "(set training.zero_stage)")
  }

  private static func firstDigit(after prefix: String, in text: String) -> Int? {
    guard let regex = try? NSRegularExpression(pattern: prefix + "([0-3])") else { return nil }
    let range = NSRange(text.startIndex..., in: text)
    guard let match = regex.firstMatch(in: text, range: range), let digits = Range(match.range(at: 1), in: text) else {
      return nil
    }
    return Int(text[digits])
  }
}
