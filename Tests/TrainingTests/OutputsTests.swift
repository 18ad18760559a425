import Foundation
import Testing
@testable import Training

private func temporaryFolder() -> URL {
  FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-out-\(UUID().uuidString)")
}

@Suite struct MetricsTests {
  @Test func jsonLinesAreSortedAndReadBack() throws {
    let row = MetricsRow(step: 4, epoch: 0.5, values: ["reward": 1.5, "loss": -0.25, "kl": .nan])
    #expect(row.jsonLine == #"{"epoch":0.5,"kl":null,"loss":-0.25,"reward":1.5,"step":4}"#)
    let back = try MetricsRow(jsonLine: row.jsonLine, location: "x")
    #expect(back == MetricsRow(step: 4, epoch: 0.5, values: ["reward": 1.5, "loss": -0.25]))
    #expect(throws: TrainingError.self) { try MetricsRow(jsonLine: #"{"loss": 1}"#, location: "x") }
  }

  @Test func fileAppendsAndTruncatesOnResume() throws {
    let folder = temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let url = folder.appendingPathComponent("metrics.jsonl")
    let file = try MetricsJSONL(url: url)
    for step in [4, 8, 12] { try file.append(MetricsRow(step: step, values: ["loss": Double(step)])) }
    #expect(try MetricsJSONL.read(url).map(\.step) == [4, 8, 12])
    // Resuming from the checkpoint at step 8 drops the row the interrupted run wrote after it.
    let resumed = try MetricsJSONL(url: url, keepingThrough: 8)
    try resumed.append(MetricsRow(step: 12, values: ["loss": 1]))
    let rows = try MetricsJSONL.read(url)
    #expect(rows.map(\.step) == [4, 8, 12] && rows.last?.values["loss"] == 1)
    try Data("{\"step\": 1}\nnot json\n".utf8).write(to: url)
    #expect(throws: TrainingError.io(path: url.path + ":2", reason: "not a metrics row (a JSON object with an integer 'step')")) {
      try MetricsJSONL.read(url)
    }
  }

  @Test func averagerMeansEachKeyOverItsSteps() {
    var averager = MetricsAverager()
    averager.add(["loss": 1, "kl": 0.5])
    averager.add(["loss": 3, "kl": .nan])
    averager.add(["loss": 5])
    #expect(averager.flush() == ["loss": 3, "kl": 0.5])
    #expect(averager.isEmpty)
  }
}

@Suite struct RolloutLogTests {
  @Test func markdownPerStepAppended() throws {
    let folder = temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let log = RolloutLog(directory: folder.appendingPathComponent("rollouts"))
    let rewards: [(name: String, value: Double?)] = [("format", 1), ("iou", nil)]
    let first = RolloutSample(promptIndex: 0, prompt: "Find the cat.", completion: "[1, 2, 3, 4]", rewards: rewards,
                              total: 1, advantage: 0.70710678, completionTokens: 9)
    let second = RolloutSample(promptIndex: 0, prompt: "Find the cat.", completion: "use ``` fences", rewards: rewards,
                               total: nil, advantage: 0, truncated: true)
    try log.append(step: 3, samples: [first])
    let url = try log.append(step: 3, samples: [second], after: first)
    #expect(url.lastPathComponent == "step_3.md")
    let text = try String(contentsOf: url, encoding: .utf8)
    #expect(text == """
      # Step 3

      ## Prompt 1

      ```text
      Find the cat.
      ```

      ### Completion (9 tokens)

      ```text
      [1, 2, 3, 4]
      ```

      | reward | value |
      | --- | ---: |
      | format | 1.0000 |
      | iou | n/a |
      | **total** | 1.0000 |
      | **advantage** | 0.7071 |

      ### Completion (truncated)

      ````text
      use ``` fences
      ````

      | reward | value |
      | --- | ---: |
      | format | 1.0000 |
      | iou | n/a |
      | **total** | n/a |
      | **advantage** | 0.0000 |

      """)
  }
}

@Suite struct ReportTests {
  @Test func polylinePointsForASmallSeries() {
    // Plot area x 64...624, y 28...208. Steps 0, 1, 2 -> x 64, 344, 624; values 0, 1, 2 -> y 208, 118, 28.
    let svg = Report.lineChart(title: "Reward", series: [
      ChartSeries(name: "reward", points: [(0, 0), (1, 1), (2, 2)]),
      ChartSeries(name: "format", points: [(0, 1), (1, nil), (2, 1)]),
    ])
    #expect(svg.contains(##"<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="64.00,208.00 344.00,118.00 624.00,28.00"/>"##))
    // A gap splits the second series into two lone points, drawn as circles.
    #expect(svg.contains(##"<circle cx="64.00" cy="118.00" r="2.5" fill="#d62728"/>"##))
    #expect(svg.contains(##"<circle cx="624.00" cy="118.00" r="2.5" fill="#d62728"/>"##))
    #expect(svg.components(separatedBy: "<polyline").count == 2)
    #expect(svg.contains(">format</text>") && svg.contains(">2</text>") && svg.contains(">step</text>"))
  }

  @Test func flatSeriesIsCenteredAndReportHasTheCharts() throws {
    let svg = Report.lineChart(title: "KL", series: [ChartSeries(name: "kl", points: [(1, 5), (3, 5)])])
    #expect(svg.contains(#"points="64.00,118.00 624.00,118.00""#))
    // A flat small value (a constant learning rate) keeps an axis of its own scale: its label shows.
    let lr = Report.lineChart(title: "Learning rate", series: [ChartSeries(name: "learning_rate", points: [(1, 2e-4), (9, 2e-4)])])
    #expect(lr.contains(">0.0002</text>") && !lr.contains(">-1</text>"))
    let rows = (1...3).map { step in
      MetricsRow(step: step, values: ["reward": Double(step), "rewards/iou/mean": 0.5, "kl": 0.01,
                                      "completions/mean_length": 20, "time/generate": 1, "time/backward": 0.5])
    }
    let html = Report.html(rows: rows, title: "run <1>")
    #expect(html.contains("<title>run &lt;1&gt;</title>"))
    for title in ["Reward", "KL", "Completion length (tokens)", "Step time split (s)"] { #expect(html.contains(">\(title)</text>")) }
    #expect(html.contains(">iou</text>") && html.contains(">time/backward</text>"))
    #expect(html.components(separatedBy: "<svg").count == 5)
    #expect(Report.html(rows: []).contains("No metrics were logged."))
  }
}

private final class Captured: @unchecked Sendable {
  var text = ""
  var now = 100.0
}

@Suite struct ConsoleProgressTests {
  @Test func plainLinesWhenNotATerminal() {
    let captured = Captured()
    let progress = ConsoleProgress(totalSteps: 10, colorize: true, isTerminal: false,
                                   write: { captured.text += $0 }, clock: { captured.now })
    progress.update(step: 1, reward: 0.5, tokensPerSecond: 1234.4)
    captured.now += 30  // steps 2 and 3 take 30 s: 15 s per step, 7 steps left
    progress.update(step: 3, reward: 0.75)
    progress.summary(step: 3, metrics: ["loss": 0.125, "reward": -0.5, "kl": 0.01])
    captured.now += 5  // within 10 s of the last line: no status line
    progress.update(step: 4)
    captured.now += 1  // the last step always gets one
    progress.update(step: 10)
    #expect(captured.text == """
      step 1/10 (10%)  eta --  reward 0.5  tok/s 1234
      step 3/10 (30%)  eta 1m45s  reward 0.75
      step 3  loss 0.125  reward -0.5  kl 0.01
      step 10/10 (100%)  eta 0s

      """)
  }

  @Test func barAndColorsOnATerminal() {
    let captured = Captured()
    let progress = ConsoleProgress(totalSteps: 4, colorize: true, isTerminal: true,
                                   write: { captured.text += $0 }, clock: { captured.now })
    progress.update(step: 2)
    #expect(captured.text == "\r\u{1B}[2K[############............] step 2/4 (50%)  eta --")
    captured.text = ""
    progress.summary(step: 2, metrics: ["reward": 1])
    #expect(captured.text == "\r\u{1B}[2Kstep 2  \u{1B}[32mreward 1\u{1B}[0m\n")
    let plain = ConsoleProgress(totalSteps: 4, colorize: false, isTerminal: true, write: { captured.text = $0 })
    plain.summary(step: 2, metrics: ["reward": -1])
    #expect(captured.text == "step 2  reward -1\n")
  }

  @Test func durations() {
    #expect(ConsoleProgress.duration(45) == "45s")
    #expect(ConsoleProgress.duration(185) == "3m05s")
    #expect(ConsoleProgress.duration(7620) == "2h07m")
  }
}
