import Foundation
import Yams

/// One `datasets:` entry of a dataset YAML.
public struct DatasetEntry: Sendable, Equatable {
  /// `json_path`: a file, a folder or a glob pattern (JSON, JSON lines, Parquet, Arrow).
  public var path: String
  /// `sampling_strategy` (default `all`).
  public var sampling: SamplingStrategy
  /// `image_root`: folder that relative image paths are resolved against.
  public var imageRoot: String?
  /// `kind`: the record kind, when it should not be detected from the fields.
  public var kind: RecordKind?
  /// `prompt_key`, `image_key`, `answer_key`, `solution_key`, `system_prompt` (over `LoadOptions.columns`).
  public var columns: ColumnMapping

  public init(
    path: String, sampling: SamplingStrategy = .all, imageRoot: String? = nil, kind: RecordKind? = nil,
    columns: ColumnMapping = ColumnMapping()
  ) {
    self.path = path
    self.sampling = sampling
    self.imageRoot = imageRoot
    self.kind = kind
    self.columns = columns
  }
}

/// A dataset YAML (mmkd / VLM-R1 shape):
/// ```yaml
/// data_seed: 42            # optional
/// datasets:
///   - json_path: data/multi_box_grounding_RL_sample.json
///     sampling_strategy: random:12.5%
///     image_root: data/images   # optional
///     kind: multi_box           # optional
///     prompt_key: problem       # optional column mapping (also image_key, answer_key,
///     system_prompt: You are... #   solution_key) and system turn
/// ```
public struct DatasetConfig: Sendable, Equatable {
  public var entries: [DatasetEntry]
  /// `data_seed` when the YAML sets one (the training config's value wins otherwise).
  public var dataSeed: UInt64?
  /// The YAML's folder: relative `json_path`s are tried there first, then in the current directory.
  public var baseFolder: URL?

  public init(entries: [DatasetEntry], dataSeed: UInt64? = nil, baseFolder: URL? = nil) {
    self.entries = entries
    self.dataSeed = dataSeed
    self.baseFolder = baseFolder
  }

  static let topKeys = ["datasets", "data_seed"]
  static let entryKeys = ["json_path", "sampling_strategy", "image_root", "kind"] + ColumnMapping.yamlKeys

  /// Reads a dataset YAML file.
  public static func load(_ url: URL) throws -> DatasetConfig {
    guard let text = String(data: try readFile(url), encoding: .utf8) else {
      throw DatasetError.invalidConfig(url.path, reason: "not UTF-8 text")
    }
    return try parse(text, name: url.path, baseFolder: url.deletingLastPathComponent())
  }

  /// Parses dataset YAML text; unknown keys are errors that list the known ones.
  public static func parse(_ text: String, name: String = "<yaml>", baseFolder: URL? = nil) throws -> DatasetConfig {
    let document: Node?
    do { document = try Yams.compose(yaml: text) } catch {
      throw DatasetError.invalidConfig(name, reason: "not valid YAML (\(error))")
    }
    guard let document, let top = try mapping(document, name: name) else {
      throw DatasetError.invalidConfig(name, reason: "expected a mapping with a 'datasets' list")
    }
    try checkKeys(top, known: topKeys, name: name, context: "top level")
    guard let list = top["datasets"]?.sequence, !list.isEmpty else {
      throw DatasetError.invalidConfig(name, reason: "'datasets' must be a non-empty list")
    }
    var seed: UInt64?
    if let value = top["data_seed"] {
      guard let number = value.int, number >= 0 else {
        throw DatasetError.invalidConfig(name, reason: "data_seed must be a non-negative integer")
      }
      seed = UInt64(number)
    }
    let entries = try list.enumerated().map { try entry($1, index: $0, name: name) }
    return DatasetConfig(entries: entries, dataSeed: seed, baseFolder: baseFolder)
  }

  /// A YAML mapping with string keys (nil for other nodes). A key written twice is an error
  /// naming it and both lines: YAML parsers differ on which copy wins, so none is guessed.
  private static func mapping(_ node: Node, name: String) throws -> [String: Node]? {
    guard let pairs = node.mapping else { return nil }
    var map: [String: Node] = [:]
    var lines: [String: Int] = [:]
    for (key, value) in pairs {
      guard let keyName = key.string else { return nil }
      let line = key.mark?.line ?? 0
      if map[keyName] != nil {
        let first = lines[keyName].map { " (first at line \($0))" } ?? ""
        throw DatasetError.invalidConfig(name, reason: "duplicate key '\(keyName)' at line \(line)\(first)")
      }
      map[keyName] = value
      lines[keyName] = line
    }
    return map
  }

  private static func entry(_ node: Node, index: Int, name: String) throws -> DatasetEntry {
    let context = "datasets[\(index)]"
    guard let map = try mapping(node, name: name) else {
      throw DatasetError.invalidConfig(name, reason: "\(context) must be a mapping")
    }
    try checkKeys(map, known: entryKeys, name: name, context: context)
    guard let path = map["json_path"]?.string, !path.isEmpty else {
      throw DatasetError.invalidConfig(name, reason: "\(context).json_path is missing")
    }
    var entry = DatasetEntry(path: path)
    if let strategy = map["sampling_strategy"] {
      guard let text = strategy.string else {
        throw DatasetError.invalidConfig(name, reason: "\(context).sampling_strategy must be a string")
      }
      do { entry.sampling = try SamplingStrategy(parsing: text) } catch {
        var reason = "\(error)"
        if case DatasetError.invalidConfig(_, let inner) = error { reason = inner }
        throw DatasetError.invalidConfig(name, reason: "\(context).sampling_strategy: \(reason)")
      }
    }
    if let root = map["image_root"] {
      guard let root = root.string else {
        throw DatasetError.invalidConfig(name, reason: "\(context).image_root must be a string")
      }
      entry.imageRoot = root
    }
    if let kindNode = map["kind"] {
      guard let kindName = kindNode.string, let kind = RecordKind(name: kindName) else {
        let known = RecordKind.allCases.map(\.rawValue).joined(separator: ", ")
        throw DatasetError.invalidConfig(name, reason: "\(context).kind is not one of: \(known)")
      }
      entry.kind = kind
    }
    entry.columns = try columnMapping(map, context: context, name: name)
    return entry
  }

  private static func columnMapping(_ map: [String: Node], context: String, name: String) throws -> ColumnMapping {
    func text(_ key: String) throws -> String? {
      guard let node = map[key] else { return nil }
      guard let value = node.string, node.scalar != nil else {
        throw DatasetError.invalidConfig(name, reason: "\(context).\(key) must be a string")
      }
      return value
    }
    let columns = ColumnMapping(
      promptKey: try text("prompt_key"), imageKey: try text("image_key"), answerKey: try text("answer_key"),
      solutionKey: try text("solution_key"), systemPrompt: try text("system_prompt"))
    try columns.validate(source: "\(name) \(context)")
    return columns
  }

  private static func checkKeys(_ map: [String: Node], known: [String], name: String, context: String) throws {
    let unknown = map.keys.filter { !known.contains($0) }.sorted()
    guard unknown.isEmpty else {
      throw DatasetError.invalidConfig(
        name, reason: "\(context): unknown key(s) \(unknown.joined(separator: ", ")); known: \(known.joined(separator: ", "))")
    }
  }
}
