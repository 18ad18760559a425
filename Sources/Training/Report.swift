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

/// Geometry of a chart: the plot area inside the margins.
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
/// from the rows of `metrics.jsonl`.
public enum Report {
  static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

  /// The whole page: reward (total and per function), KL, completion length and the step-time split.
  public static func html(rows: [MetricsRow], title: String = "vlmrl training report") -> String {
    let rows = rows.sorted { $0.step < $1.step }
    let keys = Set(rows.flatMap(\.values.keys))
    let rewardKeys = keys.filter { $0.hasPrefix("rewards/") && $0.hasSuffix("/mean") }.sorted()
    let charts: [(String, [String])] = [
      ("Reward", [MetricName.reward] + rewardKeys),
      ("KL", [MetricName.kl]),
      ("Completion length (tokens)", [MetricName.meanLength, MetricName.minLength, MetricName.maxLength]),
      ("Step time split (s)", [MetricName.stepTime] + MetricName.timeSplit),
    ]
    var body = ""
    for (chartTitle, wanted) in charts {
      let present = wanted.filter(keys.contains)
      guard !present.isEmpty else { continue }
      let series = present.map { key in
        ChartSeries(name: displayName(key), points: rows.map { (Double($0.step), $0.values[key]) })
      }
      body += "<section>\n" + lineChart(title: chartTitle, series: series) + "</section>\n"
    }
    if body.isEmpty { body = "<p>No metrics were logged.</p>\n" }
    let lastStep = rows.last.map { "\($0.step)" } ?? "none"
    return """
      <!DOCTYPE html>
      <html lang="en">
      <head>
      <meta charset="utf-8">
      <title>\(escape(title))</title>
      <style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}section{margin-bottom:1.5em}\
      svg text{font-size:11px;fill:#444}</style>
      </head>
      <body>
      <h1>\(escape(title))</h1>
      <p>\(rows.count) logged steps; last step \(lastStep).</p>
      \(body)</body>
      </html>

      """
  }

  /// Writes `html(rows:)` to `url`.
  public static func write(rows: [MetricsRow], to url: URL, title: String = "vlmrl training report") throws {
    do {
      try Data(html(rows: rows, title: title).utf8).write(to: url, options: .atomic)
    } catch {
      throw TrainingError.io(path: url.path, reason: "cannot write the report (\(error.localizedDescription))")
    }
  }

  /// `rewards/format/mean` -> `format`; other keys unchanged.
  static func displayName(_ key: String) -> String {
    guard key.hasPrefix("rewards/"), key.hasSuffix("/mean") else { return key }
    return String(key.dropFirst("rewards/".count).dropLast("/mean".count))
  }

  /// One SVG chart: axes with min/max labels, one polyline per unbroken run of points (a lone
  /// point is a circle), a legend. x maps [minStep, maxStep] onto the plot width, y maps
  /// [minValue, maxValue] onto its height (a flat series is centered in a ±1 band).
  public static func lineChart(title: String, series: [ChartSeries], layout: ChartLayout = ChartLayout()) -> String {
    let xs = series.flatMap { $0.points.map(\.x) }
    let ys = series.flatMap { $0.points.compactMap(\.y) }.filter(\.isFinite)
    var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(fmt(layout.width))\" height=\"\(fmt(layout.height))\" "
      + "viewBox=\"0 0 \(fmt(layout.width)) \(fmt(layout.height))\" role=\"img\">\n"
      + "<title>\(escape(title))</title>\n"
      + "<text x=\"\(fmt(layout.left))\" y=\"16\" style=\"font-weight:bold\">\(escape(title))</text>\n"
    guard let minX = xs.min(), let maxX = xs.max(), let minY = ys.min(), let maxY = ys.max() else {
      return svg + "</svg>\n"
    }
    let (lowY, highY) = minY == maxY ? (minY - 1, maxY + 1) : (minY, maxY)
    let plotWidth = layout.width - layout.left - layout.right
    let plotHeight = layout.height - layout.top - layout.bottom
    let mapX = { (x: Double) in maxX == minX ? layout.left + plotWidth / 2 : layout.left + (x - minX) / (maxX - minX) * plotWidth }
    let mapY = { (y: Double) in layout.top + (highY - y) / (highY - lowY) * plotHeight }
    svg += axes(layout: layout, minX: minX, maxX: maxX, lowY: lowY, highY: highY)
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
      let legendX = layout.left + 8 + Double(index) * 120
      svg += "<rect x=\"\(fmt(legendX))\" y=\"\(fmt(layout.top - 4))\" width=\"10\" height=\"3\" fill=\"\(color)\"/>"
        + "<text x=\"\(fmt(legendX + 14))\" y=\"\(fmt(layout.top))\">\(escape(line.name))</text>\n"
    }
    return svg + "</svg>\n"
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

  private static func axes(layout: ChartLayout, minX: Double, maxX: Double, lowY: Double, highY: Double) -> String {
    let bottomY = layout.height - layout.bottom
    let rightX = layout.width - layout.right
    return "<path d=\"M\(fmt(layout.left)),\(fmt(layout.top)) V\(fmt(bottomY)) H\(fmt(rightX))\" "
      + "fill=\"none\" stroke=\"#888\"/>\n"
      + "<text x=\"\(fmt(layout.left - 4))\" y=\"\(fmt(layout.top + 4))\" text-anchor=\"end\">\(label(highY))</text>\n"
      + "<text x=\"\(fmt(layout.left - 4))\" y=\"\(fmt(bottomY))\" text-anchor=\"end\">\(label(lowY))</text>\n"
      + "<text x=\"\(fmt(layout.left))\" y=\"\(fmt(bottomY + 16))\">step \(label(minX))</text>\n"
      + "<text x=\"\(fmt(rightX))\" y=\"\(fmt(bottomY + 16))\" text-anchor=\"end\">step \(label(maxX))</text>\n"
  }

  /// Coordinates with two decimals (stable text for tests and diffs).
  static func fmt(_ value: Double) -> String { String(format: "%.2f", value) }

  static func label(_ value: Double) -> String { String(format: "%.4g", value) }

  static func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
  }
}
