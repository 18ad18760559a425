import Foundation
import Testing
@testable import Training

private final class Screen: @unchecked Sendable {
  var text = ""
  var now = 100.0
}

@Suite struct ConsoleLineTests {
  @Test func aMessageErasesTheBarAndTheNextBarStartsBelowIt() {
    let screen = Screen()
    let line = ConsoleLine(write: { screen.text += $0 })
    line.drawBar("[##..] step 1/2  tok/s 3716")
    line.message("saved checkpoint-1\n")
    line.drawBar("[####] step 2/2")
    line.message("partial")
    line.drawBar("[####] step 2/2")
    line.endBar()
    #expect(screen.text == "\r\u{1B}[2K[##..] step 1/2  tok/s 3716" + "\r\u{1B}[2Ksaved checkpoint-1\n"
      + "\r\u{1B}[2K[####] step 2/2" + "\r\u{1B}[2Kpartial" + "\n\r\u{1B}[2K[####] step 2/2" + "\n")
  }

  /// What a terminal shows: carriage returns and erase-line applied, one string per screen line.
  static func rendered(_ text: String) -> [String] {
    var lines: [String] = [""]
    var rest = Substring(text)
    while let character = rest.first {
      if rest.hasPrefix("\u{1B}[2K") {
        lines[lines.count - 1] = ""
        rest = rest.dropFirst(4)
        continue
      }
      switch character {
      case "\r": break  // the erase that follows every \r here clears the line
      case "\n": lines.append("")
      default: lines[lines.count - 1].append(character)
      }
      rest = rest.dropFirst()
    }
    return lines
  }

  @Test func runSinksKeepMessagesOffTheBarLineAndShowEachReward() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-sinks-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let screen = Screen()
    let progress = ConsoleProgress(totalSteps: 4, colorize: false, isTerminal: true, write: { screen.text += $0 },
                                   clock: { screen.now })
    let sinks = try RunSinks(outputDirectory: folder, totalSteps: 4, loggingSteps: 2, colorize: false, resumedAt: 0,
                             progress: progress)
    for step in 1...4 {
      try sinks.record(MetricsRow(step: step, values: [MetricName.reward: 1.5, MetricName.tokensPerSecond: 3716,
                                                       "rewards/format/mean": 1, "rewards/iou/mean": 0.5]))
      if step == 3 { sinks.log("saved checkpoint-3") }
    }
    try sinks.finish()
    let lines = Self.rendered(screen.text)
    #expect(lines.contains("saved checkpoint-3"))
    #expect(lines.contains("step 2  reward 1.5 (format 1, iou 0.5)"))
    #expect(lines.contains("step 4  reward 1.5 (format 1, iou 0.5)"))
    // The final bar stays, on its own line.
    #expect(lines.contains { $0.hasPrefix("[########################] step 4/4") })
  }

  @Test func plainSummaryListsRewardFunctionsSorted() {
    #expect(ConsoleProgress.rewardMeans(["rewards/z/mean": 0.25, "rewards/a/mean": 1, "rewards/a/std": 3, "reward": 2])
      == "(a 1, z 0.25)")
    #expect(ConsoleProgress.rewardMeans(["reward": 2]) == nil)
  }
}

@Suite struct TensorBoardRunTests {
  @Test func runFolderIsTransformersLoggingDirName() {
    // 1700000000 is 2023-11-14 22:13:20 UTC; transformers: datetime.now().strftime("%b%d_%H-%M-%S") + "_" + host.
    let name = TensorBoardWriter.runFolderName(date: Date(timeIntervalSince1970: 1_700_000_000), host: "node1",
                                               timeZone: TimeZone(identifier: "UTC")!)
    #expect(name == "Nov14_22-13-20_node1")
  }

  @Test func tagsGetTransformersSectionPrefixes() {
    #expect(TensorBoardWriter.tag(for: "loss") == "train/loss")
    #expect(TensorBoardWriter.tag(for: "rewards/format/mean") == "train/rewards/format/mean")
    #expect(TensorBoardWriter.tag(for: "eval_accuracy") == "eval/accuracy")
    #expect(TensorBoardWriter.tag(for: "eval/accuracy") == "eval/accuracy")
    #expect(TensorBoardWriter.tag(for: "test_loss") == "test/loss")
  }

  /// (step, tags) of each scalar event of every event file under `folder`, per file.
  static func events(under folder: URL) throws -> [String: [(step: Int, tags: [String])]] {
    var result: [String: [(step: Int, tags: [String])]] = [:]
    let names = try FileManager.default.subpathsOfDirectory(atPath: folder.path).filter { $0.contains("events.out.tfevents.") }
    for name in names {
      let bytes = [UInt8](try Data(contentsOf: folder.appendingPathComponent(name)))
      let records = try #require(TFRecord.records(bytes), "\(name) is not a framed event file")
      result[name] = records.dropFirst().map { record in
        // Tags are stored as plain UTF-8; each "loss"/"reward" must be part of a "train/" tag.
        let text = String(decoding: record, as: UTF8.self)
        let tags = ["loss", "reward"].map { name in
          text.components(separatedBy: name).count == text.components(separatedBy: "train/" + name).count ? "train/" + name : name
        }
        return (TensorBoardEvent.step(of: record) ?? -1, tags)
      }
    }
    return result
  }

  @Test func eachRunWritesItsOwnFolderAndAResumeRepeatsNoStep() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-tbrun-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let quiet = ConsoleProgress(totalSteps: 6, colorize: false, isTerminal: false, write: { _ in })
    let first = try RunSinks(outputDirectory: folder, totalSteps: 6, loggingSteps: 1, colorize: false, resumedAt: 0,
                             progress: quiet)
    for step in 1...4 { try first.record(MetricsRow(step: step, values: ["loss": Double(step), "reward": 1])) }
    // Killed after step 4; the last checkpoint was step 2.
    let resumed = try RunSinks(outputDirectory: folder, totalSteps: 6, loggingSteps: 1, colorize: false, resumedAt: 2,
                               progress: quiet)
    for step in 3...6 { try resumed.record(MetricsRow(step: step, values: ["loss": Double(step), "reward": 1])) }
    try resumed.finish()

    #expect(first.tensorBoardFolder != resumed.tensorBoardFolder)
    #expect(first.tensorBoardFolder.deletingLastPathComponent().lastPathComponent == "runs")
    #expect(resumed.tensorBoardFolder.deletingLastPathComponent() == first.tensorBoardFolder.deletingLastPathComponent())
    let events = try Self.events(under: folder.appendingPathComponent("runs"))
    #expect(events.count == 2)
    let firstFile = try #require(events.first { $0.key.hasPrefix(first.tensorBoardFolder.lastPathComponent + "/") }?.value)
    let resumedFile = try #require(events.first { $0.key.hasPrefix(resumed.tensorBoardFolder.lastPathComponent + "/") }?.value)
    #expect(firstFile.map(\.step) == [1, 2])
    #expect(resumedFile.map(\.step) == [3, 4, 5, 6])
    for event in firstFile + resumedFile { #expect(event.tags == ["train/loss", "train/reward"]) }
    // metrics.jsonl agrees: each step once.
    #expect(try MetricsJSONL.read(folder.appendingPathComponent("metrics.jsonl")).map(\.step) == [1, 2, 3, 4, 5, 6])
  }

  @Test func droppingEventsKeepsTheVersionRecordAndSkipsForeignFiles() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-tbdrop-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let written = try TensorBoardTests.writeSample(to: folder.appendingPathComponent("a"), name: "events.out.tfevents.1.x")
    let foreign = folder.appendingPathComponent("b/events.out.tfevents.2.y")
    try FileManager.default.createDirectory(at: foreign.deletingLastPathComponent(), withIntermediateDirectories: true)
    try Data("not an event file".utf8).write(to: foreign)
    try TensorBoardWriter.dropEvents(after: 4, under: folder)
    let records = try #require(TFRecord.records([UInt8](try Data(contentsOf: written))))
    #expect(records.map { TensorBoardEvent.step(of: $0) } == [0, 4])
    #expect(try Data(contentsOf: foreign) == Data("not an event file".utf8))
  }
}

@Suite struct RunReportTests {
  @Test func aReportExistsBeforeTheRunFinishes() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-report-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let sinks = try RunSinks(outputDirectory: folder, totalSteps: 10, loggingSteps: 1, colorize: false, resumedAt: 0,
                             progress: ConsoleProgress(totalSteps: 10, colorize: false, isTerminal: false, write: { _ in }))
    for step in 1...3 { try sinks.record(MetricsRow(step: step, values: [MetricName.loss: 0.5, MetricName.reward: Double(step)])) }
    let report = folder.appendingPathComponent("report.html")
    #expect(!FileManager.default.fileExists(atPath: report.path))
    try sinks.writeReport()  // what a trainer does after saving checkpoint-3; the run then dies
    let html = try String(contentsOf: report, encoding: .utf8)
    #expect(html.contains("last step 3"))
  }

  /// A run folder as a GRPO run leaves it after checkpoint-3: metrics, resolved config, rollout log.
  static func runFolder() throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-runreport-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let metrics = try MetricsJSONL(url: folder.appendingPathComponent("metrics.jsonl"))
    for step in 1...3 {
      let x = Double(step)
      try metrics.append(MetricsRow(step: step, values: [
        MetricName.reward: x, MetricName.rewardStd: 0.5, "rewards/format/mean": 1, "rewards/iou/mean": x / 4,
        "rewards/format/std": 0, MetricName.kl: 0.01 * x, MetricName.loss: 0.2, MetricName.entropy: 1.5,
        MetricName.gradNorm: 3, MetricName.learningRate: 2e-6 * x, MetricName.clipRatioLow: 0, MetricName.clipRatioHigh: 0.1,
        MetricName.meanLength: 20, MetricName.stepTime: 2, MetricName.timeGenerate: 1.2, "memory/peak_allocated_gib": 11,
      ]))
    }
    try Data("{\n  \"training\": {\n    \"learning_rate\": 2e-06\n  }\n}\n".utf8)
      .write(to: folder.appendingPathComponent("resolved_config.json"))
    let log = RolloutLog(directory: folder.appendingPathComponent("rollouts"))
    try log.append(step: 1, samples: [RolloutSample(promptIndex: 0, prompt: "old", completion: "old answer",
                                                    rewards: [("format", 0)], total: 0, advantage: 0)])
    try log.append(step: 3, samples: [
      RolloutSample(promptIndex: 0, prompt: "Locate the <red> circle.", completion: "[1, 2, 30, 40]",
                    rewards: [("format", 1), ("iou", 0.75)], total: 1.75, advantage: 0.5, completionTokens: 12),
      RolloutSample(promptIndex: 0, prompt: "Locate the <red> circle.", completion: "```\nno box\n```",
                    rewards: [("format", 0), ("iou", nil)], total: 0, advantage: -0.5, truncated: true),
    ])
    return folder
  }

  @Test func reportHasEveryChartTicksConfigAndSamples() throws {
    let folder = try Self.runFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    try Report.writeRun(outputDirectory: folder)
    let html = try String(contentsOf: folder.appendingPathComponent("report.html"), encoding: .utf8)
    for title in ["Reward", "Reward std", "KL", "Loss", "Entropy", "Gradient norm", "Learning rate", "Clip ratios",
                  "Completion length (tokens)", "Step time split (s)", "Memory (GiB)"] {
      #expect(html.contains("<title>\(title)</title>"), "no chart \(title)")
    }
    #expect(!html.contains("<title>Throughput (tokens/s)</title>"), "a chart without values was drawn")
    // Per-function legends, and ticks between the ends: reward 1...3 has ticks 1.0, 1.5, ..., 3.0;
    // steps 1...3 have 1, 2, 3; the learning rate 2e-6...6e-6 is labelled in exponent form.
    #expect(html.contains(">iou</text>") && html.contains(">format std</text>"))
    for label in [">1.5</text>", ">2.5</text>", ">2</text>", ">3e-06</text>"] { #expect(html.contains(label), "no tick \(label)") }
    // The config as written, escaped.
    #expect(html.contains("<h2>Resolved config</h2>") && html.contains("&quot;learning_rate&quot;: 2e-06"))
    // The newest rollout step's samples with their rewards; the old step is not shown.
    #expect(html.contains("Sample completions (step 3)") && !html.contains("old answer"))
    #expect(html.contains("<pre class=\"completion\">[1, 2, 30, 40]</pre>"))
    #expect(html.contains("<pre class=\"completion\">```\nno box\n```</pre>"))
    #expect(html.contains("Locate the &lt;red&gt; circle."))
    #expect(html.contains("<tr><th>iou</th><td class=\"value\">0.7500</td></tr>"))
    #expect(html.contains("<tr><th>total</th><td class=\"value\">1.7500</td></tr>"))
    #expect(html.contains("(12 tokens)") && html.contains("(truncated)"))
    #expect(!html.contains("<script"))
  }

  @Test func legendWrapsInsteadOfOverlapping() {
    let names = (1...8).map { "rewards/a_rather_long_reward_name_\($0)" }
    let rows = Report.legendRows(names, width: 560)
    #expect(rows.count > 1)
    for row in rows {
      for (entry, next) in zip(row, row.dropFirst()) {
        #expect(next.offset >= entry.offset + 16 + Double(names[entry.index].count) * 6.5)
      }
      if let last = row.last { #expect(last.offset + 16 + Double(names[last.index].count) * 6.5 <= 560) }
    }
    #expect(rows.flatMap { $0.map(\.index) } == Array(0..<8))
    // The SVG grows by the legend's rows so the plot keeps its size.
    let svg = Report.lineChart(title: "Reward", series: names.map { ChartSeries(name: $0, points: [(1, 1), (2, 2)]) })
    #expect(svg.contains("height=\"\(Report.fmt(240 + Double(rows.count) * 16))\""))
  }

  @Test func ticksAreRoundAndCoverTheRange() {
    let ticks = Report.ticks(low: 0.13, high: 0.87)
    #expect(ticks.first! <= 0.13 && ticks.last! >= 0.87 && (4...10).contains(ticks.count))
    #expect(Report.ticks(low: 1, high: 1000, integers: true) == [0, 200, 400, 600, 800, 1000])
    #expect(Report.ticks(low: 1, high: 3, integers: true) == [1, 2, 3])
    #expect(Report.tickLabel(0.25, spacing: 0.05) == "0.25")
    #expect(Report.tickLabel(400, spacing: 200) == "400")
    #expect(Report.tickLabel(2e-6, spacing: 1e-6) == "2e-06")
  }
}

