import Common
import Foundation

extension DataTools {
  /// `vlmrl data prepare-aokvqa --input DIR|FILES --out DIR [--question-ids FILE] [--subset-size N]`
  /// (the seed's `prepare_aokvqa_for_trl.py`): reads A-OKVQA (original JSON or the Hugging Face
  /// Parquet copy), keeps the question ids listed in `questionIDs` (one per line) when given, then
  /// the first `subsetSize` records of each split, and writes `<out>/<split>.jsonl` with `image`
  /// (extracted to `<out>/images/`), `question`, `choices`, `label_idx`, `direct_answers` (a real
  /// list) and `rationales`. The split is taken from each file name (train, validation, test).
  public static func prepareAOKVQA(
    inputs: [String], outDirectory: URL, questionIDs: URL? = nil, subsetSize: Int? = nil
  ) throws -> [String] {
    let wantedIDs = try questionIDs.map(readQuestionIDs)
    let images = outDirectory.appendingPathComponent("images")
    try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
    var bySplit: [String: [JSONValue]] = [:]
    var summary = LoadSummary()
    let files = try inputs.flatMap { try DataFiles.files(at: $0) }
    for file in files {
      let split = splitName(file)
      let builder = ExampleBuilder(
        options: ParseOptions(probeImageSizes: false),
        resolver: PathResolver(dataFolder: file.deletingLastPathComponent()))
      try DataFiles.reader(forFile: file).forEach(.all) { _, item in
        if let subsetSize, bySplit[split, default: []].count >= subsetSize { return false }
        do {
          let raw = try item.record.get()
          let id = raw.fields["question_id"].flatMap { $0.stringValue ?? $0.intValue.map(String.init) }
          if let wantedIDs, !wantedIDs.contains(id ?? "") { return true }
          let example = try builder.build(raw, location: item.location, kind: .aokvqa)
          let record = try preparedRecord(raw, example: example, id: id, images: images)
          bySplit[split, default: []].append(record)
        } catch let problem as RecordProblem {
          summary.record(
            BadRecord(location: item.location, field: problem.field, reason: problem.reason, detail: problem.detail),
            listLimit: 20)
        }
        return true
      }
    }
    var lines: [String] = []
    for (split, records) in bySplit.sorted(by: { $0.key < $1.key }) {
      let file = outDirectory.appendingPathComponent("\(split).jsonl")
      try Data(records.map { $0.jsonString + "\n" }.joined().utf8).write(to: file)
      lines.append("\(split): \(records.count) records -> \(file.path)")
    }
    if summary.skipped > 0 {
      lines.append("skipped \(summary.skipped) record(s):")
      lines += summary.skippedByReason.sorted { $0.key < $1.key }.map { "  \($0.key.rawValue): \($0.value)" }
      lines += summary.badRecords.map { "  \($0)" }
    }
    return lines
  }

  private static func readQuestionIDs(_ url: URL) throws -> Set<String> {
    guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw DatasetError.fileNotFound(url.path) }
    return Set(text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
      .filter { !$0.isEmpty && !$0.hasPrefix("#") })
  }

  static func splitName(_ file: URL) -> String {
    let name = file.lastPathComponent.lowercased()
    if name.contains("train") { return "train" }
    if name.contains("val") { return "validation" }
    if name.contains("test") { return "test" }
    return "train"
  }

  private static func preparedRecord(_ raw: RawRecord, example: Example, id: String?, images: URL) throws -> JSONValue {
    guard let image = example.images.first?.source else {
      throw RecordProblem(.missingField, field: "image", "no image")
    }
    let imageValue: String
    switch image {
    case .file(let url): imageValue = url.path
    case .bytes(let data, _):
      let stem = (id ?? "record_\(example.source.index)").replacingOccurrences(of: "/", with: "_")
      let name = "\(stem).\(ImageLoader.fileExtension(of: data) ?? "bin")"
      do { try data.write(to: images.appendingPathComponent(name)) } catch {
        throw RecordProblem(.unreadableImage, field: "image", "cannot write \(name): \(writeProblem(error))")
      }
      imageValue = "images/\(name)"
    }
    var record: [String: JSONValue] = [
      "image": .string(imageValue),
      "question": raw.fields["question"] ?? .null,
      "choices": example.rewardFields["choices"] ?? .null,
      "label_idx": example.rewardFields["label_idx"] ?? .null,
      "direct_answers": example.rewardFields["direct_answers"] ?? .array([]),
    ]
    if let id { record["question_id"] = .string(id) }
    if let rationales = raw.fields["rationales"] { record["rationales"] = rationales }
    if let difficult = raw.fields["difficult_direct_answer"] { record["difficult_direct_answer"] = difficult }
    return .object(record)
  }
}
