import Common
import Foundation

/// The outputs of a run: the console table, eval.json, samples.jsonl and eval.md.
public enum EvalOutput {
  public static let reportFile = "eval.json"
  public static let samplesFile = "samples.jsonl"
  public static let markdownFile = "eval.md"

  /// Writes eval.json, samples.jsonl and eval.md into `directory` (created when missing).
  public static func write(_ run: EvalRun, to directory: URL, failuresPerSet: Int = 10) throws {
    let fm = FileManager.default
    try fm.createDirectory(at: directory, withIntermediateDirectories: true)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try encoder.encode(run.report).write(to: directory.appendingPathComponent(reportFile), options: .atomic)
    let lineEncoder = JSONEncoder()
    lineEncoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    var lines = Data()
    for sample in run.samples {
      lines.append(try lineEncoder.encode(sample))
      lines.append(UInt8(ascii: "\n"))
    }
    try lines.write(to: directory.appendingPathComponent(samplesFile), options: .atomic)
    try Data(markdown(run, failuresPerSet: failuresPerSet).utf8)
      .write(to: directory.appendingPathComponent(markdownFile), options: .atomic)
  }

  /// Rows of sets (plus `all` when there are several) and columns of metrics.
  public static func table(_ report: EvalReport) -> (header: [String], rows: [[String]]) {
    let names = report.overall.map(\.name)
    let header = ["set", "n"] + names
    var rows = report.sets.map { set in
      [set.name, "\(set.evaluated)"] + names.map { set.metric($0)?.formatted ?? "-" }
    }
    if report.sets.count > 1 {
      rows.append(["all", "\(report.sets.reduce(0) { $0 + $1.evaluated })"] + report.overall.map(\.formatted))
    }
    return (header, rows)
  }

  /// The console summary: settings line, table, and a last line with the pooled numbers
  /// (`64 examples: format 0.9531, ...`, which scripts read with `tail -n 1`).
  public static func console(_ report: EvalReport) -> [String] {
    let s = report.settings
    var lines = ["task \(s.task.rawValue), model \(s.model) (\(report.modelFamily)), greedy, max \(s.maxNewTokens) new tokens"
      + (s.task == .rec ? ", method \(s.method.rawValue), boxes read as \(report.boxFrame ?? "-")" : "")]
    let (header, rows) = table(report)
    lines += alignedTable(header: header, rows: rows)
    for set in report.sets where set.skipped > 0 { lines.append("\(set.name): \(set.skipped) records skipped (see eval.json)") }
    lines += report.notes
    lines.append(summaryLine(report))
    return lines
  }

  /// `N examples: name value, ...` over every sample.
  public static func summaryLine(_ report: EvalReport) -> String {
    let count = report.sets.reduce(0) { $0 + $1.evaluated }
    return "\(count) examples: " + report.overall.map { "\($0.name) \($0.formatted)" }.joined(separator: ", ")
  }

  /// Columns padded to their widest cell, the first left-aligned and the rest right-aligned.
  static func alignedTable(header: [String], rows: [[String]]) -> [String] {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
    func line(_ cells: [String]) -> String {
      cells.enumerated().map { column, cell in
        let pad = String(repeating: " ", count: max(0, widths[column] - cell.count))
        return column == 0 ? cell + pad : pad + cell
      }.joined(separator: "  ")
    }
    return [line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")] + rows.map(line)
  }

  // MARK: eval.md

  /// The settings, the table and, per set, the first `failuresPerSet` wrong (or, for grounding,
  /// lowest-scoring) samples.
  public static func markdown(_ run: EvalRun, failuresPerSet: Int = 10) -> String {
    let report = run.report
    let s = report.settings
    var lines = ["# Evaluation: \(s.task.rawValue)", "", "| setting | value |", "|---|---|"]
    let settings: [(String, String)] = [
      ("model", "\(s.model) (\(report.modelFamily))"), ("data", s.data.joined(separator: ", ")),
      ("method", s.method.rawValue), ("sample_num", s.sampleNum.map(String.init) ?? "all"), ("seed", "\(s.seed)"),
      ("batch_size", "\(s.batchSize)"), ("max_new_tokens", "\(s.maxNewTokens)"), ("device", "\(s.device), \(s.dtype)"),
      ("box_frame", report.boxFrame ?? "-"), ("finished", report.finishedAt),
    ]
    lines += settings.map { "| \($0.0) | \(cell($0.1)) |" }
    let (header, rows) = table(report)
    lines += ["", "## Results", "", "| " + header.joined(separator: " | ") + " |",
              "|" + header.map { _ in "---" }.joined(separator: "|") + "|"]
    lines += rows.map { "| " + $0.map(cell).joined(separator: " | ") + " |" }
    lines += report.notes.map { "\n> \($0)" }
    for set in report.sets {
      let failures = failuresOf(set.name, in: run.samples, task: s.task).prefix(failuresPerSet)
      lines += ["", "## Failures: \(set.name) (\(failures.count) shown)"]
      for sample in failures {
        lines += ["", "### \(sample.source)", "", "- prompt: \(cell(sample.prompt))",
                  "- output: \(cell(sample.output))", "- extracted: \(cell(sample.extracted?.jsonString ?? "none"))",
                  "- ground truth: \(cell(sample.groundTruth?.jsonString ?? "-"))"]
        if !sample.values.isEmpty {
          lines.append("- " + sample.values.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4f", $0.value))" }
            .joined(separator: ", "))
        }
      }
    }
    return lines.joined(separator: "\n") + "\n"
  }

  /// Wrong samples in file order; for grounding, samples by ascending mean reward.
  static func failuresOf(_ set: String, in samples: [SampleRecord], task: EvalTask) -> [SampleRecord] {
    let mine = samples.filter { $0.set == set }
    if task == .grounding {
      func mean(_ sample: SampleRecord) -> Double {
        sample.values.isEmpty ? 0 : sample.values.values.reduce(0, +) / Double(sample.values.count)
      }
      return mine.filter { mean($0) < 1 }.sorted { mean($0) < mean($1) }
    }
    return mine.filter { $0.correct == false || ($0.correct == nil && ($0.values["da_accuracy"] ?? 1) < 1) }
  }

  /// One line of Markdown table / list text (pipes escaped, newlines shown as ⏎).
  static func cell(_ text: String) -> String {
    text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\r\n", with: " ⏎ ")
      .replacingOccurrences(of: "\n", with: " ⏎ ")
  }
}

/// `vlmrl eval compare A/eval.json B/eval.json`: both runs side by side, per set and metric, with the
/// difference B - A (percentage points for rates).
public enum EvalComparison {
  public static func render(_ a: EvalReport, _ b: EvalReport, labels: (String, String) = ("A", "B")) -> [String] {
    var lines = ["A: \(labels.0) (\(a.settings.model), task \(a.settings.task.rawValue))",
                 "B: \(labels.1) (\(b.settings.model), task \(b.settings.task.rawValue))"]
    lines += settingDifferences(a.settings, b.settings).map { "note: \($0)" }
    var rows: [[String]] = []
    let setNames = a.sets.map(\.name) + b.sets.map(\.name).filter { name in !a.sets.contains { $0.name == name } }
    for name in setNames {
      let left = a.sets.first { $0.name == name }
      let right = b.sets.first { $0.name == name }
      let metricNames = (left?.metrics ?? []).map(\.name)
        + (right?.metrics ?? []).map(\.name).filter { name in !(left?.metrics ?? []).contains { $0.name == name } }
      for metric in metricNames {
        rows.append(row(set: name, metric: metric, left?.metric(metric), right?.metric(metric)))
      }
    }
    if a.sets.count > 1 || b.sets.count > 1 {
      for metric in a.overall where b.overall.contains(where: { $0.name == metric.name }) {
        rows.append(row(set: "all", metric: metric.name, metric, b.overall.first { $0.name == metric.name }))
      }
    }
    return lines + EvalOutput.alignedTable(header: ["set", "metric", "A", "B", "B - A"], rows: rows)
  }

  static func row(set: String, metric: String, _ left: Metric?, _ right: Metric?) -> [String] {
    var difference = "-"
    if let left, let right {
      let delta = right.value - left.value
      difference = left.isRate ? String(format: "%+.2f pp", delta * 100) : String(format: "%+.4f", delta)
    }
    return [set, metric, left?.formatted ?? "-", right?.formatted ?? "-", difference]
  }

  /// Settings that make two runs not directly comparable.
  static func settingDifferences(_ a: EvalSettings, _ b: EvalSettings) -> [String] {
    var notes: [String] = []
    func check(_ name: String, _ left: String, _ right: String) {
      if left != right { notes.append("\(name) differs: \(left) vs \(right)") }
    }
    check("task", a.task.rawValue, b.task.rawValue)
    check("data", a.data.joined(separator: ","), b.data.joined(separator: ","))
    check("method", a.method.rawValue, b.method.rawValue)
    check("sample_num", a.sampleNum.map(String.init) ?? "all", b.sampleNum.map(String.init) ?? "all")
    check("seed", "\(a.seed)", "\(b.seed)")
    check("max_new_tokens", "\(a.maxNewTokens)", "\(b.maxNewTokens)")
    return notes
  }
}
