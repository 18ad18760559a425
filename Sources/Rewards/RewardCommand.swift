// `vlmrl reward --funcs a,b --data FILE.jsonl [--weights ...] [--json]`: score recorded completions.
import Common
import Foundation

/// Scores JSON-lines records with the configured rewards so users can debug their reward setup.
///
/// Each record carries `completion` (required), optionally `prompt`, and image sizes as
/// `image_size: [width, height]` or `images: [{"width", "height", "resized_width", "resized_height"}]`;
/// every other key is a record field (`solution`, `bbox`, `abs_box`, ...), and `attention`
/// (`{"text_mass", "vision_mass", "text_tokens", "vision_tokens"}`) feeds `mdi`.
public enum RewardCommand {
  /// Returns the output lines: one per record (text, or JSON objects with `--json`), then a summary.
  /// `parameters` holds shared parameters (each function gets the keys it reads; a key no selected
  /// function reads is an error); an object under a function's name overrides them for that
  /// function.
  public static func run(
    funcs: [String], weights: [Double]?, parameters: [String: JSONValue], dataFile: URL, json: Bool
  ) async throws -> [String] {
    let functions = try RewardRegistry.make(funcs, parameters: parameters)
    let runner = try RewardRunner.validated(functions: functions, weights: weights)
    // Columns by metric key: a `name` parameter, labels (`command:length`) and repeated names
    // (`command#2`) each get their own.
    let keys = runner.metricKeys
    let samples = try readSamples(dataFile)
    var lines: [String] = []
    var sums: [String: (total: Double, count: Int)] = [:]
    var errors: [String: Int] = [:]
    var messages: [String: String] = [:]
    for start in stride(from: 0, to: samples.count, by: 64) {
      let batch = Array(samples[start..<min(samples.count, start + 64)])
      let scores = await runner.score(batch)
      errors.merge(scores.errorCounts, uniquingKeysWith: +)
      messages.merge(scores.errorMessages) { old, _ in old }
      for offset in batch.indices {
        let values = keys.map { scores.perFunction[$0]?[offset] ?? nil }
        for (name, value) in zip(keys, values) {
          if let value { sums[name, default: (0, 0)].total += value; sums[name, default: (0, 0)].count += 1 }
        }
        lines.append(format(index: start + offset, names: keys, values: values, total: scores.total[offset], json: json))
      }
    }
    if json {
      if !errors.isEmpty { lines.append(JSONValue.object(["errors": .object(errors.mapValues(JSONValue.int))]).jsonString) }
      return lines
    }
    let means = keys.map { name in
      sums[name].map { "\(name)=\(decimal($0.total / Double($0.count)))" } ?? "\(name)=nil"
    }
    lines.append("mean over \(samples.count) records: " + means.joined(separator: "  "))
    for (name, count) in errors.sorted(by: { $0.key < $1.key }) {
      lines.append("errors in \(name): \(count) batch(es); first: \(messages[name] ?? "")")
    }
    return lines
  }

  static func format(index: Int, names: [String], values: [Double?], total: Double?, json: Bool) -> String {
    if json {
      var rewards: [String: JSONValue] = [:]
      for (name, value) in zip(names, values) { rewards[name] = value.map(JSONValue.double) ?? .null }
      return JSONValue.object([
        "index": .int(index), "rewards": .object(rewards), "total": total.map(JSONValue.double) ?? .null,
      ]).jsonString
    }
    let parts = zip(names, values).map { "\($0)=\($1.map(decimal) ?? "nil")" }
    return "#\(index)  " + parts.joined(separator: "  ") + "  total=\(total.map(decimal) ?? "nil")"
  }

  static func decimal(_ value: Double) -> String { String(format: "%.4f", value) }

  /// Reads the records; a bad line is an error naming the file, line and problem.
  public static func readSamples(_ file: URL) throws -> [RewardSample] {
    let text = try String(contentsOf: file, encoding: .utf8)
    var samples: [RewardSample] = []
    for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let trimmed = line.trimmed
      if trimmed.isEmpty { continue }
      let bad = { (message: String) in RewardError.badData(file: file.path, line: number + 1, message: message) }
      guard let value = try? JSONValue.parse(trimmed), var record = value.objectValue else {
        throw bad("not a JSON object")
      }
      guard let completion = record.removeValue(forKey: "completion")?.stringValue else {
        throw bad("missing string field 'completion'")
      }
      let prompt = record.removeValue(forKey: "prompt")?.stringValue ?? ""
      let images = try imageSizes(&record, bad)
      let attention = record.removeValue(forKey: "attention").flatMap(attentionDiagnostics)
      samples.append(RewardSample(prompt: prompt, completion: completion, images: images, fields: record, attention: attention))
    }
    return samples
  }

  static func imageSizes(_ record: inout [String: JSONValue], _ bad: (String) -> RewardError) throws -> [ImageGeometry] {
    if let size = record.removeValue(forKey: "image_size") {
      guard let pair = size.arrayValue?.compactMap(\.intValue), pair.count == 2 else {
        throw bad("'image_size' must be [width, height]")
      }
      return [ImageGeometry(width: pair[0], height: pair[1])]
    }
    guard let list = record["images"]?.arrayValue, list.allSatisfy({ $0["width"]?.intValue != nil }) else { return [] }
    record.removeValue(forKey: "images")
    return list.compactMap { item in
      guard let width = item["width"]?.intValue, let height = item["height"]?.intValue else { return nil }
      return ImageGeometry(
        originalWidth: width, originalHeight: height,
        resizedWidth: item["resized_width"]?.intValue ?? width, resizedHeight: item["resized_height"]?.intValue ?? height)
    }
  }

  static func attentionDiagnostics(_ value: JSONValue) -> AttentionDiagnostics? {
    guard let text = value["text_mass"]?.doubleValue, let vision = value["vision_mass"]?.doubleValue,
      let textTokens = value["text_tokens"]?.intValue, let visionTokens = value["vision_tokens"]?.intValue
    else { return nil }
    return AttentionDiagnostics(textMass: text, visionMass: vision, textTokens: textTokens, visionTokens: visionTokens)
  }
}
