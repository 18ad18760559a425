import ArgumentParser
import Foundation
import Training

/// `vlmrl report OUTPUT_DIR`: writes a run's report.html again from its metrics.jsonl,
/// resolved_config.json and rollout logs (as the trainer does at each checkpoint), e.g. for a run
/// that was killed between checkpoints.
struct ReportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "report", abstract: "Write a run's report.html from its output folder (metrics.jsonl, config, rollouts).")
  @Argument(help: "The run's output_dir.") var outputDir: String

  func run() throws {
    let folder = URL(fileURLWithPath: outputDir)
    let metrics = folder.appendingPathComponent("metrics.jsonl")
    guard FileManager.default.fileExists(atPath: metrics.path) else {
      throw ValidationError("\(outputDir): no metrics.jsonl (not a training output folder)")
    }
    try Report.writeRun(outputDirectory: folder)
    print("wrote \(folder.appendingPathComponent("report.html").path)")
  }
}
