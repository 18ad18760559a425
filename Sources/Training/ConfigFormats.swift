import Common
import Foundation
import Yams

/// The two other ways a config file may be written, both turned into the nested JSON tree the
/// schema checks: YAML instead of JSON, and the flat layout of a TRL `GRPOConfig` file (every key at
/// the top, the model as `model_name_or_path`).
enum ConfigFormats {
  // MARK: YAML

  /// The YAML document as a JSON tree. Plain scalars that read as numbers are numbers (so `1e-6` is
  /// a number, as in JSON, although YAML 1.1 readers disagree), `true`/`false`/`null`/`~` as YAML
  /// 1.2's core schema reads them; quoted scalars stay strings. A key written twice is an error naming it and its
  /// lines.
  static func yamlValue(_ text: String, source: String) throws -> JSONValue {
    let document: Node?
    do { document = try Yams.compose(yaml: text) } catch {
      throw TrainingError.invalidConfig(source: source, path: "", reason: "not valid YAML: \(error)")
    }
    guard let document else { return .object([:]) }
    return try value(document, path: "", source: source)
  }

  private static func value(_ node: Node, path: String, source: String) throws -> JSONValue {
    switch node {
    case .scalar(let scalar):
      let text = scalar.string
      guard scalar.style == .plain || scalar.style == .any else { return .string(text) }
      // YAML 1.2's core schema (so `yes`/`on` stay strings, as in JSON-minded TRL configs).
      if ["null", "Null", "NULL", "~", ""].contains(text) { return .null }
      if ["true", "True", "TRUE"].contains(text) { return .bool(true) }
      if ["false", "False", "FALSE"].contains(text) { return .bool(false) }
      if let number = Int(text) { return .int(number) }
      if let number = Double(text), number.isFinite { return .double(number) }
      return .string(text)
    case .sequence(let items):
      return .array(try items.enumerated().map { try value($1, path: "\(path)[\($0)]", source: source) })
    case .mapping(let pairs):
      var object: [String: JSONValue] = [:]
      var lines: [String: Int] = [:]
      for (keyNode, valueNode) in pairs {
        let line = keyNode.mark?.line ?? 0
        guard let key = keyNode.string else {
          throw TrainingError.invalidConfig(source: source, path: path, reason: "line \(line): keys must be strings")
        }
        let keyPath = path.isEmpty ? key : "\(path).\(key)"
        if object[key] != nil {
          throw TrainingError.invalidConfig(source: source, path: keyPath,
                                            reason: "written twice (lines \(lines[key] ?? 0) and \(line))")
        }
        object[key] = try value(valueNode, path: keyPath, source: source)
        lines[key] = line
      }
      return .object(object)
    }
  }

  // MARK: Flat TRL layout

  /// Top-level keys of a flat file that belong outside `training`; every other key (but `job_type`)
  /// is a `training` key.
  static let flatKeys: [String: String] = [
    "model_name_or_path": "models.student",
    "dataset_name": "dataset.labeled_path",
    "train_file": "dataset.labeled_path",
    "eval_file": "dataset.eval_path",
    "image_root": "dataset.image_root",
    "prompt_key": "dataset.prompt_key",
    "image_key": "dataset.image_key",
    "answer_key": "dataset.answer_key",
    "solution_key": "dataset.solution_key",
    "system_prompt": "dataset.system_prompt",
  ]

  /// A flat file has no `dataset`, `models` or `training` section and at least one key of the flat
  /// layout (a `training` key, one of `flatKeys`, or an ignored TRL key); a file of unknown keys
  /// only is read as nested, so its errors suggest section names.
  static func isFlat(_ top: [String: JSONValue]) -> Bool {
    guard !top.keys.contains(where: { ["dataset", "models", "training"].contains($0) }) else { return false }
    let trainingKeys = Set(ConfigSchema.training.flatMap { [$0.key] + $0.aliases })
    return top.keys.contains { flatKeys[$0] != nil || trainingKeys.contains($0) || ConfigSchema.ignoredReason($0) != nil }
  }

  /// The nested path a flat key stands for (`learning_rate` -> `training.learning_rate`).
  static func nestedPath(_ key: String) -> String { flatKeys[key] ?? "training.\(key)" }

  /// A flat config as the nested tree; a nested one unchanged.
  static func nested(_ raw: JSONValue, source: String) throws -> JSONValue {
    guard let top = raw.objectValue, isFlat(top) else { return raw }
    var sections: [String: [String: JSONValue]] = [:]
    var spelled: [String: String] = [:]
    var result: [String: JSONValue] = [:]
    for key in top.keys.sorted() {
      guard let value = top[key] else { continue }
      if key == "job_type" { result[key] = value; continue }
      let path = nestedPath(key)
      let parts = path.split(separator: ".", maxSplits: 1).map(String.init)
      if let earlier = spelled[path] {
        throw TrainingError.invalidConfig(source: source, path: path, reason: "set twice (as \(earlier) and \(key))")
      }
      spelled[path] = key
      sections[parts[0], default: [:]][parts[1]] = value
    }
    for (name, object) in sections { result[name] = .object(object) }
    return .object(result)
  }
}
