import Common
import Foundation

/// What `vlmrl data convert` wrote.
public struct ConvertResult: Sendable {
  public var output: URL
  public var records: Int
  /// Embedded images written as files.
  public var imagesExtracted: Int
  public var imageFolder: URL
}

/// The `vlmrl data` commands' work, as functions that return text lines or results.
public enum DataTools {
  // MARK: inspect

  /// `vlmrl data inspect PATH`: files, record count, kinds, field names, a few rendered prompts (with
  /// their system turns) and the load summary, which names the columns chat and prompt records were
  /// read from per source. `path` is a data path or a dataset YAML.
  public static func inspect(path: String, options: LoadOptions = LoadOptions(), prompts: Int = 3) throws -> [String] {
    let isYAML = path.hasSuffix(".yaml") || path.hasSuffix(".yml")
    let config = isYAML
      ? try DatasetConfig.load(URL(fileURLWithPath: path))
      : DatasetConfig(entries: [DatasetEntry(path: path)])
    var lines: [String] = []
    for entry in config.entries {
      let files = try DataFiles.files(at: entry.path, relativeTo: config.baseFolder)
      lines.append("\(entry.path): \(files.count) file(s)")
      lines += files.prefix(5).map { "  \($0.path)" }
      if files.count > 5 { lines.append("  ... \(files.count - 5) more") }
      let fieldCounts = try fieldNames(entry.path, base: config.baseFolder)
      lines.append("records: \(fieldCounts.records)")
      lines.append("fields:")
      lines += fieldCounts.counts.sorted { $0.key < $1.key }.map { "  \($0.key): \($0.value)" }
    }
    let loaded = try DatasetLoader.load(config, options: options)
    let kinds = loaded.summary.kinds.sorted { $0.key.rawValue < $1.key.rawValue }
    lines.append("kinds: " + (kinds.isEmpty ? "none" : kinds.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ")))
    for example in loaded.examples.prefix(max(0, prompts)) {
      lines.append("--- \(example.source) [\(example.kind.rawValue)]")
      if let system = example.system { lines.append("system: \(system)") }
      lines.append("prompt: \(example.renderedPrompt)")
      for image in example.images {
        let size = image.width.flatMap { w in image.height.map { "\(w)x\($0)" } } ?? "size unknown"
        lines.append("image: \(image.source.name) (\(size))")
      }
      for turn in example.conversation { lines.append("\(turn.role): \(turn.text)") }
      for (key, value) in example.rewardFields.sorted(by: { $0.key < $1.key }) {
        lines.append("\(key): \(preview(value, limit: 200))")
      }
    }
    if loaded.summary.loaded == 0, loaded.summary.skipped == 0 {
      lines.append("no records: the dataset is empty")
    }
    return lines + loaded.summary.lines
  }

  private static func fieldNames(_ path: String, base: URL?) throws -> (records: Int, counts: [String: Int]) {
    var counts: [String: Int] = [:]
    var records = 0
    try DataFiles.reader(at: path, relativeTo: base).forEach(.all) { _, item in
      records += 1
      if case .success(let raw) = item.record {
        for key in raw.fields.keys { counts[key, default: 0] += 1 }
      }
      return true
    }
    return (records, counts)
  }

  // MARK: convert

  /// `vlmrl data convert IN OUT.jsonl`: every record as one JSON line; embedded images are written
  /// to `<OUT stem>_images/` and replaced by their relative path. An output that is one of the
  /// inputs is refused; an existing output (or image folder) is replaced only with `overwrite`.
  /// Both are written under temporary names and renamed into place when every record converted,
  /// so a failed or killed run leaves no partial output. Unreadable records stop the conversion
  /// (naming the first) rather than being dropped.
  public static func convert(input: String, output: URL, overwrite: Bool = false) throws -> ConvertResult {
    let output = output.standardizedFileURL
    try SafeOutput.refuseInputs(output, inputs: try DataFiles.files(at: input))
    let stem = output.deletingPathExtension().lastPathComponent
    let imageFolder = output.deletingLastPathComponent().appendingPathComponent("\(stem)_images")
    try SafeOutput.refuseInputs(imageFolder, inputs: try DataFiles.files(at: input))
    try SafeOutput.refuseExisting(output, overwrite: overwrite)
    try SafeOutput.refuseExisting(imageFolder, overwrite: overwrite)
    let reader = try DataFiles.reader(at: input)
    let temporaryFile = try SafeOutput.temporarySibling(of: output)
    let temporaryImages = try SafeOutput.temporarySibling(of: imageFolder)
    defer {
      try? FileManager.default.removeItem(at: temporaryFile)
      try? FileManager.default.removeItem(at: temporaryImages)
    }
    guard FileManager.default.createFile(atPath: temporaryFile.path, contents: nil),
      let handle = try? FileHandle(forWritingTo: temporaryFile)
    else { throw DatasetError.output(output.path, reason: "cannot create a file in \(output.deletingLastPathComponent().path)") }
    var result = ConvertResult(output: output, records: 0, imagesExtracted: 0, imageFolder: imageFolder)
    var problems: [BadRecord] = []
    do {
      defer { try? handle.close() }
      try reader.forEach(.all) { index, item in
        switch item.record {
        case .failure(let problem):
          problems.append(BadRecord(location: item.location, field: problem.field, reason: problem.reason, detail: problem.detail))
        case .success(let raw):
          var extracted = 0
          var fields: [String: JSONValue] = [:]
          for (key, value) in raw.fields {
            fields[key] = try extractImages(value, raw: raw, folder: temporaryImages, prefix: "\(index)_\(key)",
                                            relativeTo: stem + "_images", count: &extracted)
          }
          result.imagesExtracted += extracted
          do { try handle.write(contentsOf: Data((JSONValue.object(fields).jsonString + "\n").utf8)) } catch {
            throw DatasetError.output(output.path, reason: "write failed: \(writeProblem(error))")
          }
          result.records += 1
        }
        return true
      }
    }
    if let first = problems.first {
      throw DatasetError.badRecord(first)  // conversion must not lose records silently
    }
    if FileManager.default.fileExists(atPath: temporaryImages.path) {
      try SafeOutput.install(temporaryImages, at: imageFolder)
    }
    try SafeOutput.install(temporaryFile, at: output)
    return result
  }

  /// Replaces embedded byte strings (and `{bytes, path}` structs holding them) with file paths.
  private static func extractImages(
    _ value: JSONValue, raw: RawRecord, folder: URL, prefix: String, relativeTo: String, count: inout Int
  ) throws -> JSONValue {
    if let data = raw.blob(value) ?? value["bytes"].flatMap(raw.blob) {
      let name = "\(prefix)_\(count).\(ImageLoader.fileExtension(of: data) ?? "bin")"
      do {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try data.write(to: folder.appendingPathComponent(name))
      } catch {
        throw DatasetError.output(folder.path, reason: "cannot write \(name): \(writeProblem(error))")
      }
      count += 1
      return .string("\(relativeTo)/\(name)")
    }
    switch value {
    case .array(let items):
      return .array(try items.map {
        try extractImages($0, raw: raw, folder: folder, prefix: prefix, relativeTo: relativeTo, count: &count)
      })
    case .object(let object):
      if object["bytes"]?.isNull == true, let path = object["path"]?.stringValue, object.count == 2 {
        return .string(path)  // a Hugging Face Image struct that refers to a file
      }
      var converted: [String: JSONValue] = [:]
      for (key, item) in object {
        converted[key] = try extractImages(item, raw: raw, folder: folder, prefix: prefix, relativeTo: relativeTo, count: &count)
      }
      return .object(converted)
    default:
      return value
    }
  }
}
