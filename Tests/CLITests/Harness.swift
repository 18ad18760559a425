import Foundation

/// Runs the built `vlmrl` binary on generated bad input and sorts each run into an outcome class
/// (docs/reliability.md): handled (exit 0), clear error (exit 1, 2 or the argument parser's 64
/// with the culprit named on stderr), crash (a signal, exit >= 128, "Fatal error", a backtrace or
/// a libtorch dump), hang (past the time limit), or unclear error (an error exit that names
/// nothing a user can act on).
enum Harness {
  enum Outcome: String, CaseIterable, Sendable {
    case handled, clearError = "clear error", unclearError = "unclear error", crash, hang
  }

  struct Run: Sendable {
    var arguments: [String]
    var status: Int32
    var signaled: Bool
    var timedOut: Bool
    var stdout: String
    var stderr: String

    /// The outcome, where a clear error must mention every string of `culprits` on stderr.
    func outcome(culprits: [String]) -> Outcome {
      outcome(culprits: culprits, reported: nil)
    }

    /// As `outcome(culprits:)`; a successful run must also mention every string of `reported`
    /// (else it is an unclear result: a bad record skipped without being named).
    func outcome(culprits: [String], reported: [String]?) -> Outcome {
      if timedOut { return .hang }
      let text = stdout + stderr
      let crashMarks = ["Fatal error", "Stack dump", "Backtrace", "backtrace", "Exception raised from", "terminate called",
                        "Illegal instruction", "Segmentation fault", "NSCocoaErrorDomain"]
      if signaled || status >= 128 || crashMarks.contains(where: text.contains) { return .crash }
      if status == 0 { return (reported ?? []).allSatisfy(text.contains) ? .handled : .unclearError }
      guard [1, 2, 64].contains(status) else { return .unclearError }
      return culprits.allSatisfy(stderr.contains) ? .clearError : .unclearError
    }
  }

  /// The `vlmrl` executable: `$VLMRL`, else the one next to the test bundle (SwiftPM puts both in
  /// the build folder), else nil.
  static func executable() -> URL? {
    if let path = ProcessInfo.processInfo.environment["VLMRL"], !path.isEmpty { return URL(fileURLWithPath: path) }
    var candidates: [URL] = []
    for base in [Bundle.main.bundleURL, URL(fileURLWithPath: CommandLine.arguments[0])] {
      var folder = base.resolvingSymlinksInPath()
      for _ in 0..<3 {
        folder = folder.deletingLastPathComponent()
        candidates.append(folder.appendingPathComponent("vlmrl"))
      }
    }
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) && !isFolder($0) }
  }

  /// A setup step of a test (making its model or data) that failed, with that command's stderr.
  struct SetupFailure: Error, CustomStringConvertible {
    var description: String
  }

  /// A tiny model (`vlmrl model init`) in `folder/model` and 16 synthetic records with 32-pixel images
  /// (`vlmrl data synth`) in `folder/data`: what the training runs of these tests train on.
  static func makeTinyModelAndData(_ executable: URL, in folder: URL) throws {
    let tokenizer = Catalog.root.appendingPathComponent("assets/tokenizer")
    let made = try run(executable, [
      "model", "init", "--out", "model", "--tokenizer", tokenizer.path, "--hidden", "32", "--layers", "1", "--heads", "2",
      "--kv-heads", "1", "--vision-hidden", "32", "--vision-depth", "1",
    ], in: folder, timeout: 120)
    guard made.status == 0 else { throw SetupFailure(description: "model init failed: \(made.stderr)") }
    let synth = try run(executable, ["data", "synth", "--count", "16", "--image-size", "32", "--out", "data"], in: folder, timeout: 120)
    guard synth.status == 0 else { throw SetupFailure(description: "data synth failed: \(synth.stderr)") }
  }

  static func isFolder(_ url: URL) -> Bool {
    var flag: ObjCBool = false
    return FileManager.default.fileExists(atPath: url.path, isDirectory: &flag) && flag.boolValue
  }

  /// Runs `vlmrl arguments` in `folder` with a wall-clock limit; stdout and stderr go through files
  /// so a chatty run cannot block on a full pipe.
  static func run(_ executable: URL, _ arguments: [String], in folder: URL, timeout: Double = 60,
                  environment: [String: String] = [:]) throws -> Run {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.currentDirectoryURL = folder
    var env = ProcessInfo.processInfo.environment
    env.merge(environment) { $1 }
    process.environment = env
    let outURL = folder.appendingPathComponent(".out-\(UUID().uuidString)")
    let errURL = folder.appendingPathComponent(".err-\(UUID().uuidString)")
    FileManager.default.createFile(atPath: outURL.path, contents: nil)
    FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let outHandle = try FileHandle(forWritingTo: outURL)
    let errHandle = try FileHandle(forWritingTo: errURL)
    process.standardOutput = outHandle
    process.standardError = errHandle
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    var timedOut = false
    while process.isRunning {
      if Date() > deadline {
        timedOut = true
        kill(process.processIdentifier, SIGKILL)
        break
      }
      Thread.sleep(forTimeInterval: 0.02)
    }
    process.waitUntilExit()
    try? outHandle.close()
    try? errHandle.close()
    defer {
      try? FileManager.default.removeItem(at: outURL)
      try? FileManager.default.removeItem(at: errURL)
    }
    let stdout = String(decoding: (try? Data(contentsOf: outURL)) ?? Data(), as: UTF8.self)
    let stderr = String(decoding: (try? Data(contentsOf: errURL)) ?? Data(), as: UTF8.self)
    return Run(arguments: arguments, status: process.terminationStatus,
               signaled: process.terminationReason == .uncaughtSignal, timedOut: timedOut, stdout: stdout, stderr: stderr)
  }
}
