import Foundation

/// Where a run's step metrics go, shared by every trainer: `metrics.jsonl`, TensorBoard events
/// (one sub-folder per run under `runs/`, tags `train/<metric>`), the console (progress bar or plain
/// status lines, and a summary line per logging step) and `report.html` (written at each
/// checkpoint through `writeReport` and at the end).
public final class RunSinks: @unchecked Sendable {
  public let outputDirectory: URL
  public let metrics: MetricsJSONL
  /// This run's TensorBoard folder, `runs/<Mon DD_HH-MM-SS>_<host>`.
  public let tensorBoardFolder: URL
  let board: TensorBoardWriter
  let progress: ConsoleProgress
  let loggingSteps: Int
  let totalSteps: Int
  let resumedAt: Int

  /// `resumedAt`: the step a resumed run continues from (later rows and events of the interrupted
  /// run are dropped, so no step is shown twice).
  public init(outputDirectory: URL, totalSteps: Int, loggingSteps: Int, colorize: Bool, resumedAt: Int?,
              progress: ConsoleProgress? = nil) throws {
    self.outputDirectory = outputDirectory
    metrics = try MetricsJSONL(url: outputDirectory.appendingPathComponent("metrics.jsonl"), keepingThrough: resumedAt)
    let logFolder = outputDirectory.appendingPathComponent("runs")
    if let resumedAt { try TensorBoardWriter.dropEvents(after: resumedAt, under: logFolder) }
    tensorBoardFolder = TensorBoardWriter.freshFolder(TensorBoardWriter.runFolderName(), in: logFolder)
    board = try TensorBoardWriter(directory: tensorBoardFolder)
    self.progress = progress ?? ConsoleProgress(totalSteps: totalSteps, colorize: colorize)
    self.loggingSteps = max(1, loggingSteps)
    self.totalSteps = totalSteps
    self.resumedAt = resumedAt ?? 0
  }

  /// Records step `row.step` (1-based): written to the files every `logging_steps` and at the last step.
  public func record(_ row: MetricsRow) throws {
    // A row with evaluation results is always written (eval_steps need not be a multiple of logging_steps).
    if row.step % loggingSteps == 0 || row.step == totalSteps || row.values.keys.contains(where: { $0.hasPrefix("eval/") }) {
      try metrics.append(row)
      if row.step > resumedAt {
        let tagged = row.values.map { (tag: TensorBoardWriter.tag(for: $0.key), value: $0.value) }.sorted { $0.tag < $1.tag }
        try board.add(tagged, step: row.step)
      }
      progress.summary(step: row.step, metrics: row.values)
    }
    progress.update(step: row.step, reward: row.values[MetricName.reward], tokensPerSecond: row.values[MetricName.tokensPerSecond])
  }

  /// A message on a line of its own, never on the progress bar's line.
  public func log(_ message: String) { progress.message(message) }

  /// Writes `report.html` from everything the output folder holds so far (metrics, resolved config,
  /// rollout samples). Trainers call it after each checkpoint, so an interrupted run has a report.
  public func writeReport(title: String = Report.defaultTitle) throws {
    try Report.writeRun(outputDirectory: outputDirectory, title: title)
  }

  /// Ends the console line, closes the event file and writes `report.html`.
  public func finish(title: String = Report.defaultTitle) throws {
    progress.finish()
    board.close()
    try writeReport(title: title)
  }
}
