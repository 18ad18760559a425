import Foundation
import Testing

/// A GRPO run killed midway, as a user's job killed by a scheduler: its log (stdout redirected to a
/// file) already holds the header and each "saved checkpoint" line, and the folder holds a report.
@Suite struct KilledRunTests {
  /// What a killed run left: its log as it stood at the kill, whether it was still running then,
  /// and its output folder (removed by `cleanUp`).
  struct Killed {
    var log: String
    var wasRunning: Bool
    var out: URL
    var cleanUp: () -> Void
  }

  /// Starts a long GRPO run of the tiny model with stdout and stderr in a file, waits until the
  /// file shows the first "saved checkpoint" line and kills the run (SIGKILL).
  static func killAfterFirstCheckpoint() throws -> Killed {
    let executable = try #require(
      Harness.executable(), "no vlmrl binary next to the test bundle: build it (swift build --build-tests) or set VLMRL=path")
    let work = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-killed-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    var keep = false
    defer { if !keep { try? FileManager.default.removeItem(at: work) } }
    try Harness.makeTinyModelAndData(executable, in: work)
    let config = """
      {"job_type": "grpo", "dataset": {"labeled_path": "data/single_box.json"}, "models": {"student": "model"},
       "training": {"reward_funcs": ["format"], "output_dir": "out", "per_device_train_batch_size": 2, "roll_out_num": 2,
                    "max_steps": 100000, "max_completion_length": 4, "save_steps": 1, "save_total_limit": 1,
                    "logging_steps": 100000, "max_pixels": 3136}}
      """
    // logging_steps past the run: no step summary flushes the output; only the line buffering can.
    try Data(config.utf8).write(to: work.appendingPathComponent("grpo.json"))

    let log = work.appendingPathComponent("train.log")
    FileManager.default.createFile(atPath: log.path, contents: nil)
    let handle = try FileHandle(forWritingTo: log)
    defer { try? handle.close() }
    let process = Process()
    process.executableURL = executable
    process.arguments = ["train", "--config", "grpo.json"]
    process.currentDirectoryURL = work
    process.standardOutput = handle
    process.standardError = handle
    process.standardInput = FileHandle.nullDevice
    try process.run()
    defer {
      if process.isRunning { kill(process.processIdentifier, SIGKILL) }
      process.waitUntilExit()
    }
    // Wait until the log shows the first checkpoint while the run is still going, then kill it.
    var seen = ""
    let deadline = Date().addingTimeInterval(300)
    while process.isRunning, Date() < deadline {
      seen = String(decoding: (try? Data(contentsOf: log)) ?? Data(), as: UTF8.self)
      if seen.contains("saved checkpoint-") { break }
      Thread.sleep(forTimeInterval: 0.05)
    }
    let wasRunning = process.isRunning
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    keep = true
    return Killed(log: seen, wasRunning: wasRunning, out: work.appendingPathComponent("out")) {
      try? FileManager.default.removeItem(at: work)
    }
  }

  @Test func aKilledRunsLogHoldsItsHeaderAndCheckpointLines() throws {
    let killed = try Self.killAfterFirstCheckpoint()
    defer { killed.cleanUp() }
    let seen = killed.log
    #expect(killed.wasRunning, "the run ended before its log showed a checkpoint:\n\(seen.suffix(2000))")
    #expect(seen.contains("GRPO: "), "no header line in the log of the running process:\n\(seen.suffix(2000))")
    // A block-buffered stdout (4 KiB) shows nothing for many steps and then a whole block at once.
    let checkpointLines = seen.components(separatedBy: "saved checkpoint-").count - 1
    #expect((1...5).contains(checkpointLines), "\(checkpointLines) checkpoint lines appeared at once:\n\(seen.suffix(2000))")
    let checkpoints = try FileManager.default.contentsOfDirectory(atPath: killed.out.path).filter { $0.hasPrefix("checkpoint-") }
    #expect(!checkpoints.isEmpty)
  }

  /// The trainers write the report at each checkpoint (before its "saved" line).
  @Test func aKilledRunHasAReportOfItsCheckpoints() throws {
    let killed = try Self.killAfterFirstCheckpoint()
    defer { killed.cleanUp() }
    let report = killed.out.appendingPathComponent("report.html")
    #expect(FileManager.default.fileExists(atPath: report.path), "no report.html after a checkpoint of a killed run")
    let html = (try? String(contentsOf: report, encoding: .utf8)) ?? ""
    // logging_steps is past the run, so no metrics rows exist yet: the report holds the resolved config.
    #expect(html.contains("<h2>Resolved config</h2>") && html.contains("per_device_train_batch_size"))
  }
}
