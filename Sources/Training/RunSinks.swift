import Foundation

/// Where a run's step metrics go, shared by every trainer: `metrics.jsonl`, TensorBoard events
/// (`runs/`), the console (progress bar or plain status lines, and a summary line per logging step)
/// and `report.html` (written at the end from the whole metrics file).
public final class RunSinks: @unchecked Sendable {
  public let outputDirectory: URL
  public let metrics: MetricsJSONL
  let board: TensorBoardWriter
  let progress: ConsoleProgress
  let loggingSteps: Int
  let totalSteps: Int

  /// `resumedAt`: the step a resumed run continues from (later rows of the interrupted run are dropped).
  public init(outputDirectory: URL, totalSteps: Int, loggingSteps: Int, colorize: Bool, resumedAt: Int?) throws {
    self.outputDirectory = outputDirectory
    metrics = try MetricsJSONL(url: outputDirectory.appendingPathComponent("metrics.jsonl"), keepingThrough: resumedAt)
    board = try TensorBoardWriter(directory: outputDirectory.appendingPathComponent("runs"))
    progress = ConsoleProgress(totalSteps: totalSteps, colorize: colorize)
    self.loggingSteps = max(1, loggingSteps)
    self.totalSteps = totalSteps
  }

  /// Records step `row.step` (1-based): written to the files every `logging_steps` and at the last step.
  public func record(_ row: MetricsRow) throws {
    if row.step % loggingSteps == 0 || row.step == totalSteps {
      try metrics.append(row)
      try board.add(row.values, step: row.step)
      progress.summary(step: row.step, metrics: row.values)
    }
    progress.update(step: row.step, reward: row.values[MetricName.reward], tokensPerSecond: row.values[MetricName.tokensPerSecond])
  }

  /// Ends the console line, closes the event file and writes `report.html`.
  public func finish(title: String = "vlmrl training report") throws {
    progress.finish()
    board.close()
    let all = try MetricsJSONL.read(outputDirectory.appendingPathComponent("metrics.jsonl"))
    try Report.write(rows: all, to: outputDirectory.appendingPathComponent("report.html"), title: title)
  }
}
