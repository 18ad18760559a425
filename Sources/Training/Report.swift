import Common
import Foundation

/// One line of a chart: (step, value) points; a nil or non-finite value breaks the line.
public struct ChartSeries: Sendable, Equatable {
  public var name: String
  public var points: [(x: Double, y: Double?)]

  public init(name: String, points: [(x: Double, y: Double?)]) {
    self.name = name
    self.points = points
  }

  public static func == (a: ChartSeries, b: ChartSeries) -> Bool {
    a.name == b.name && a.points.map(\.x) == b.points.map(\.x) && a.points.map(\.y) == b.points.map(\.y)
  }
}

/// Geometry of a chart: the plot area inside the margins (the legend goes below it, in as many
/// rows as its entries need).
public struct ChartLayout: Sendable, Equatable {
  public var width = 640.0
  public var height = 240.0
  public var left = 64.0
  public var right = 16.0
  public var top = 28.0
  public var bottom = 32.0
  public init() {}
}

/// `report.html`: line charts drawn as inline SVG by this code (no script, no external assets)
/// from the rows of `metrics.jsonl`, then the resolved config and sample completions of the newest
/// rollout log.
public enum Report {
  public static let defaultTitle = "vlmrl training report"

  /// The charts of a run, each with the metric keys it draws (those present in the rows are drawn;
  /// `rewards/<name>/mean` and `/std`, and `memory/...`, are found by prefix).
  static func chartSpecs(keys: Set<String>) -> [(title: String, keys: [String])] {
    func matching(_ prefix: String, _ suffix: String = "") -> [String] {
      keys.filter { $0.hasPrefix(prefix) && $0.hasSuffix(suffix) }.sorted()
    }
    return [
      ("Reward", [MetricName.reward] + matching("rewards/", "/mean")),
      ("Reward std", [MetricName.rewardStd] + matching("rewards/", "/std")),
      ("Groups with zero reward std (fraction)", [MetricName.fracRewardZeroStd]),
      ("KL", [MetricName.kl]),
      ("Loss", [MetricName.loss]),
      ("Entropy", [MetricName.entropy]),
      ("Gradient norm", [MetricName.gradNorm]),
      ("Learning rate", [MetricName.learningRate]),
      ("Clip ratios", [MetricName.clipRatioLow, MetricName.clipRatioHigh, MetricName.clipRatioRegion]),
      ("Completion length (tokens)", [MetricName.meanLength, MetricName.minLength, MetricName.maxLength,
                                      MetricName.meanTerminatedLength]),
      ("Completions cut at max length (fraction)", [MetricName.clippedRatio]),
      ("Step time split (s)", [MetricName.stepTime] + MetricName.timeSplit),
      ("Throughput (tokens/s)", [MetricName.tokensPerSecond]),
      ("Memory (GiB)", matching("memory/")),
    ]
  }

  /// The page: the charts, then `config` (the resolved config's text) and `samples` when given.
  public static func html(rows: [MetricsRow], title: String = defaultTitle, config: String? = nil,
                          samples: ReportSamples? = nil) -> String {
    let rows = rows.sorted { $0.step < $1.step }
    let keys = Set(rows.flatMap(\.values.keys))
    var body = ""
    for spec in chartSpecs(keys: keys) {
      let present = spec.keys.filter(keys.contains)
      guard !present.isEmpty else { continue }
      let series = present.map { key in
        ChartSeries(name: displayName(key), points: rows.map { (Double($0.step), $0.values[key]) })
      }
      body += "<section class=\"chart\">\n" + lineChart(title: spec.title, series: series) + "</section>\n"
    }
    if body.isEmpty { body = "<p>No metrics were logged.</p>\n" }
    body = "<div class=\"charts\">\n" + body + "</div>\n"
    if let config { body += "<h2>Resolved config</h2>\n<pre class=\"config\">" + escape(config) + "</pre>\n" }
    if let samples { body += samples.html() }
    let lastStep = rows.last.map { "\($0.step)" } ?? "none"
    return """
      <!DOCTYPE html>
      <html lang="en">
      <head>
      <meta charset="utf-8">
      <title>\(escape(title))</title>
      <style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
      .charts{display:flex;flex-wrap:wrap;gap:1em}section.chart{flex:0 0 auto}\
      svg text{font-size:11px;fill:#444}svg text.title{font-size:13px;font-weight:bold;fill:#222}\
      pre{background:#f6f6f6;padding:.6em;overflow-x:auto;white-space:pre-wrap}\
      table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}\
      td.value{text-align:right;font-variant-numeric:tabular-nums}</style>
      </head>
      <body>
      <h1>\(escape(title))</h1>
      <p>\(rows.count) logged steps; last step \(lastStep).</p>
      \(body)</body>
      </html>

      """
  }

  /// Writes `html(rows:...)` to `url`.
  public static func write(rows: [MetricsRow], to url: URL, title: String = defaultTitle, config: String? = nil,
                           samples: ReportSamples? = nil) throws {
    do {
      try Data(html(rows: rows, title: title, config: config, samples: samples).utf8).write(to: url, options: .atomic)
    } catch {
      throw TrainingError.io(path: url.path, reason: "cannot write the report (\(error.localizedDescription))")
    }
  }

  /// `report.html` of a run folder, from what the folder holds: `metrics.jsonl`,
  /// `resolved_config.json` and the newest rollout log (`training.rollout_log_path`, else `rollouts/`).
  public static func writeRun(outputDirectory: URL, title: String = defaultTitle, sampleCount: Int = 4) throws {
    let metricsFile = outputDirectory.appendingPathComponent("metrics.jsonl")
    let rows = FileManager.default.fileExists(atPath: metricsFile.path) ? try MetricsJSONL.read(metricsFile) : []
    let configText = FileManager.default.contents(atPath: outputDirectory.appendingPathComponent("resolved_config.json").path)
      .map { String(decoding: $0, as: UTF8.self) }
    let rolloutFolder = configText.flatMap { try? JSONValue.parse($0) }?["training"]?["rollout_log_path"]?.stringValue
      .map { URL(fileURLWithPath: $0) } ?? outputDirectory.appendingPathComponent("rollouts")
    let samples = ReportSamples.newest(in: rolloutFolder, count: sampleCount)
    try write(rows: rows, to: outputDirectory.appendingPathComponent("report.html"), title: title, config: configText,
              samples: samples)
  }

  // MARK: Charts

  static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

  /// `rewards/format/mean` -> `format`, `rewards/format/std` -> `format std`; other keys unchanged.
  static func displayName(_ key: String) -> String {
    guard key.hasPrefix("rewards/") else { return key }
    let name = key.dropFirst("rewards/".count)
    if name.hasSuffix("/mean") { return String(name.dropLast("/mean".count)) }
    if name.hasSuffix("/std") { return name.dropLast("/std".count) + " std" }
    return key
  }

  /// One SVG chart: axes with ticks and grid lines at round values, one polyline per unbroken run
  /// of points (a lone point is a circle), and a legend below the plot in as many rows as it needs.
  /// x maps the step ticks' span onto the plot width, y the value ticks' span onto its height (a
  /// flat series is centered in a ±1 band).
  public static func lineChart(title: String, series: [ChartSeries], layout: ChartLayout = ChartLayout()) -> String {
    let xs = series.flatMap { $0.points.map(\.x) }.filter(\.isFinite)
    let ys = series.flatMap { $0.points.compactMap(\.y) }.filter(\.isFinite)
    let legend = legendRows(series.map(\.name), width: layout.width - layout.left - layout.right)
    let legendHeight = Double(legend.count) * 16
    let height = layout.height + legendHeight
    var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(fmt(layout.width))\" height=\"\(fmt(height))\" "
      + "viewBox=\"0 0 \(fmt(layout.width)) \(fmt(height))\" role=\"img\">\n"
      + "<title>\(escape(title))</title>\n"
      + "<text class=\"title\" x=\"\(fmt(layout.left))\" y=\"16\">\(escape(title))</text>\n"
    guard let minX = xs.min(), let maxX = xs.max(), let minY = ys.min(), let maxY = ys.max() else {
      return svg + "<text x=\"\(fmt(layout.left))\" y=\"\(fmt(layout.top + 16))\">no values</text>\n</svg>\n"
    }
    // A flat series (a constant learning rate of 2e-4) gets a band of its own scale around it, so its
    // value stays readable; a flat zero gets -1...1.
    let pad = minY == 0 ? 1 : abs(minY) / 2
    let yTicks = minY == maxY ? ticks(low: minY - pad, high: maxY + pad) : ticks(low: minY, high: maxY)
    let xTicks = maxX == minX ? [minX] : ticks(low: minX, high: maxX, integers: true)
    let (lowY, highY) = (yTicks.first ?? minY, yTicks.last ?? maxY)
    let (lowX, highX) = (min(minX, xTicks.first ?? minX), max(maxX, xTicks.last ?? maxX))
    let plotWidth = layout.width - layout.left - layout.right
    let plotHeight = layout.height - layout.top - layout.bottom
    let mapX = { (x: Double) in highX == lowX ? layout.left + plotWidth / 2 : layout.left + (x - lowX) / (highX - lowX) * plotWidth }
    let mapY = { (y: Double) in layout.top + (highY - y) / (highY - lowY) * plotHeight }
    svg += axes(layout: layout, xTicks: xTicks.map { ($0, mapX($0)) }, yTicks: yTicks.map { ($0, mapY($0)) })
    for (index, line) in series.enumerated() {
      let color = palette[index % palette.count]
      for run in runs(line.points) {
        let coordinates = run.map { (mapX($0.x), mapY($0.y)) }
        if coordinates.count == 1, let point = coordinates.first {
          svg += "<circle cx=\"\(fmt(point.0))\" cy=\"\(fmt(point.1))\" r=\"2.5\" fill=\"\(color)\"/>\n"
        } else {
          let text = coordinates.map { "\(fmt($0.0)),\(fmt($0.1))" }.joined(separator: " ")
          svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(text)\"/>\n"
        }
      }
    }
    for (row, entries) in legend.enumerated() {
      let y = layout.height + Double(row) * 16 + 4
      for entry in entries {
        let color = palette[entry.index % palette.count]
        let x = layout.left + entry.offset
        svg += "<rect x=\"\(fmt(x))\" y=\"\(fmt(y - 5))\" width=\"12\" height=\"3\" fill=\"\(color)\"/>"
          + "<text x=\"\(fmt(x + 16))\" y=\"\(fmt(y))\">\(escape(series[entry.index].name))</text>\n"
      }
    }
    return svg + "</svg>\n"
  }

  /// Legend entries laid out left to right, wrapping to a new row before an entry would cross
  /// `width`; entry widths are estimated from the name's length (11 px text, ~6.5 px a character).
  static func legendRows(_ names: [String], width: Double) -> [[(index: Int, offset: Double)]] {
    var rows: [[(index: Int, offset: Double)]] = []
    var current: [(index: Int, offset: Double)] = []
    var offset = 0.0
    for (index, name) in names.enumerated() {
      let entryWidth = 16 + Double(name.count) * 6.5 + 18
      if !current.isEmpty, offset + entryWidth > width {
        rows.append(current)
        current = []
        offset = 0
      }
      current.append((index, offset))
      offset += entryWidth
    }
    if !current.isEmpty { rows.append(current) }
    return rows
  }

  /// Round tick values covering [low, high]: a step of 1, 2 or 5 times a power of ten giving about
  /// `target` intervals, the first tick at or below `low` and the last at or above `high`.
  static func ticks(low: Double, high: Double, target: Int = 5, integers: Bool = false) -> [Double] {
    guard high > low, low.isFinite, high.isFinite else { return [low] }
    let rough = (high - low) / Double(target)
    let magnitude = pow(10, (log10(rough)).rounded(.down))
    var step = ([1.0, 2, 5, 10].first { $0 * magnitude >= rough } ?? 10) * magnitude
    if integers { step = max(1, step.rounded(.up)) }
    let first = (low / step).rounded(.down), last = (high / step).rounded(.up)
    guard last - first <= 1000 else { return [low, high] }
    return stride(from: first, through: last, by: 1).map { $0 * step }
  }

  /// A tick label: plain decimals with as many places as the tick spacing needs, `%.3g` for very
  /// small or large values (learning rates, token counts).
  static func tickLabel(_ value: Double, spacing: Double) -> String {
    if value == 0 { return "0" }
    if abs(value) < 1e-3 || abs(value) >= 1e6 { return String(format: "%.3g", value) }
    let places = spacing > 0 ? max(0, Int((-log10(spacing)).rounded(.up))) : 0
    return String(format: "%.\(min(places, 6))f", value)
  }

  private static func axes(layout: ChartLayout, xTicks: [(value: Double, at: Double)],
                           yTicks: [(value: Double, at: Double)]) -> String {
    let bottomY = layout.height - layout.bottom
    let rightX = layout.width - layout.right
    var svg = ""
    let ySpacing = yTicks.count > 1 ? yTicks[1].value - yTicks[0].value : 0
    for tick in yTicks {
      svg += "<line x1=\"\(fmt(layout.left))\" y1=\"\(fmt(tick.at))\" x2=\"\(fmt(rightX))\" y2=\"\(fmt(tick.at))\" stroke=\"#e4e4e4\"/>"
        + "<text x=\"\(fmt(layout.left - 6))\" y=\"\(fmt(tick.at + 4))\" text-anchor=\"end\">"
        + "\(tickLabel(tick.value, spacing: ySpacing))</text>\n"
    }
    let xSpacing = xTicks.count > 1 ? xTicks[1].value - xTicks[0].value : 1
    for tick in xTicks {
      svg += "<line x1=\"\(fmt(tick.at))\" y1=\"\(fmt(bottomY))\" x2=\"\(fmt(tick.at))\" y2=\"\(fmt(bottomY + 4))\" stroke=\"#888\"/>"
        + "<text x=\"\(fmt(tick.at))\" y=\"\(fmt(bottomY + 16))\" text-anchor=\"middle\">"
        + "\(tickLabel(tick.value, spacing: xSpacing))</text>\n"
    }
    svg += "<path d=\"M\(fmt(layout.left)),\(fmt(layout.top)) V\(fmt(bottomY)) H\(fmt(rightX))\" fill=\"none\" stroke=\"#888\"/>\n"
      + "<text x=\"\(fmt(rightX))\" y=\"\(fmt(bottomY + 28))\" text-anchor=\"end\">step</text>\n"
    return svg
  }

  /// Consecutive points with finite values.
  static func runs(_ points: [(x: Double, y: Double?)]) -> [[(x: Double, y: Double)]] {
    var result: [[(x: Double, y: Double)]] = []
    var current: [(x: Double, y: Double)] = []
    for point in points {
      if let y = point.y, y.isFinite, point.x.isFinite {
        current.append((point.x, y))
      } else if !current.isEmpty {
        result.append(current)
        current = []
      }
    }
    if !current.isEmpty { result.append(current) }
    return result
  }

  /// Coordinates with two decimals (stable text for tests and diffs).
  static func fmt(_ value: Double) -> String { String(format: "%.2f", value) }

  static func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
  }
}

/// Sample completions for the report, read back from a rollout log (`rollouts/step_<n>.md`, the
/// format `RolloutLog` writes).
public struct ReportSamples: Sendable, Equatable {
  public struct Sample: Sendable, Equatable {
    public var prompt: String
    public var completion: String
    /// Header notes (`12 tokens, truncated`).
    public var notes: String
    /// The reward table's rows as written (`format` -> `1.0000`, `**total**` -> ...).
    public var rewards: [[String]]
  }

  public var step: Int
  public var samples: [Sample]

  /// The first `count` samples of the highest-numbered `step_<n>.md` in `folder`; nil when none.
  public static func newest(in folder: URL, count: Int) -> ReportSamples? {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
    let steps = names.compactMap { name -> Int? in
      guard name.hasPrefix("step_"), name.hasSuffix(".md") else { return nil }
      return Int(name.dropFirst("step_".count).dropLast(".md".count))
    }
    guard let step = steps.max(),
      let data = FileManager.default.contents(atPath: folder.appendingPathComponent("step_\(step).md").path)
    else { return nil }
    return ReportSamples(step: step, samples: Array(parse(String(decoding: data, as: UTF8.self)).prefix(count)))
  }

  /// The samples of a rollout log's Markdown: each `### Completion` with the prompt above it, its
  /// fenced completion and its reward table.
  static func parse(_ markdown: String) -> [Sample] {
    let lines = markdown.components(separatedBy: "\n")
    var samples: [Sample] = []
    var prompt = ""
    var index = 0
    /// The fenced block starting at `index` (skipping blank lines), and the index after it.
    func fenced(from start: Int) -> (String, Int)? {
      var position = start
      while position < lines.count, lines[position].isEmpty { position += 1 }
      guard position < lines.count, lines[position].hasPrefix("```") else { return nil }
      let fence = String(lines[position].prefix { $0 == "`" })
      var body: [String] = []
      position += 1
      while position < lines.count, lines[position] != fence {
        body.append(lines[position])
        position += 1
      }
      return (body.joined(separator: "\n"), position + 1)
    }
    while index < lines.count {
      let line = lines[index]
      if line.hasPrefix("## Prompt "), let (text, next) = fenced(from: index + 1) {
        prompt = text
        index = next
      } else if line.hasPrefix("### Completion"), let (text, next) = fenced(from: index + 1) {
        let notes = line.dropFirst("### Completion".count).trimmingCharacters(in: CharacterSet(charactersIn: " ()"))
        var rewards: [[String]] = []
        index = next
        while index < lines.count, lines[index].isEmpty { index += 1 }
        while index < lines.count, lines[index].hasPrefix("|") {
          let cells = lines[index].split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
          if cells.count == 2, cells != ["reward", "value"], !cells[0].hasPrefix("---") { rewards.append(cells) }
          index += 1
        }
        samples.append(Sample(prompt: prompt, completion: text, notes: notes, rewards: rewards))
      } else {
        index += 1
      }
    }
    return samples
  }

  /// The samples as HTML: prompt (folded), completion and reward table.
  func html() -> String {
    var text = "<h2>Sample completions (step \(step))</h2>\n"
    if samples.isEmpty { return text + "<p>The rollout log of this step has no completions.</p>\n" }
    for (number, sample) in samples.enumerated() {
      text += "<div class=\"sample\">\n<h3>Sample \(number + 1)\(sample.notes.isEmpty ? "" : " (\(Report.escape(sample.notes)))")</h3>\n"
        + "<details><summary>prompt</summary><pre>\(Report.escape(sample.prompt))</pre></details>\n"
        + "<pre class=\"completion\">\(Report.escape(sample.completion))</pre>\n<table>\n"
      for cells in sample.rewards {
        let name = cells[0].replacingOccurrences(of: "**", with: "")
        text += "<tr><th>\(Report.escape(name))</th><td class=\"value\">\(Report.escape(cells[1]))</td></tr>\n"
      }
      text += "</table>\n</div>\n"
    }
    return text
  }
}
