import Foundation
import Testing

/// Drives the built `vlmrl` binary with generated bad inputs (Cases.swift) and checks the outcome
/// class of each: handled or a clear error naming the culprit, never a crash, a hang, a silent
/// result or a lost input. `VLMRL_BAD_INPUT=full` (scripts/bad-input) runs the larger generated set.
@Suite struct BadInputTests {
  struct Tally {
    var counts: [Harness.Outcome: Int] = [:]
    var silent = 0
    var dataLossPaths = 0
    var lost = 0
    var cases = 0

    var lines: [String] {
      let order: [Harness.Outcome] = [.clearError, .handled, .unclearError, .crash, .hang]
      return ["bad-input: \(cases) cases"] + order.map { "bad-input: \($0.rawValue): \(counts[$0, default: 0])" }
        + ["bad-input: silent results: \(silent)", "bad-input: data-loss paths: \(dataLossPaths) checked, \(lost) lost"]
    }
  }

  @Test func everyBadInputIsHandledOrAClearError() throws {
    let environment = ProcessInfo.processInfo.environment
    let executable = try #require(
      Harness.executable(), "no vlmrl binary next to the test bundle: build it (swift build --build-tests) or set VLMRL=path")
    let full = environment["VLMRL_BAD_INPUT"] == "full"
    let timeout = Double(environment["VLMRL_BAD_INPUT_TIMEOUT"] ?? "") ?? 60
    let work = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-bad-input-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: work) }

    // The tiny model every model case corrupts a copy of.
    let tokenizer = Catalog.root.appendingPathComponent("assets/tokenizer")
    let made = try Harness.run(executable, [
      "model", "init", "--out", "base", "--tokenizer", tokenizer.path, "--hidden", "32", "--layers", "1", "--heads", "2",
      "--kv-heads", "1", "--vision-hidden", "32", "--vision-depth", "1",
    ], in: work, timeout: 120)
    try #require(made.status == 0, "model init failed: \(made.stderr)")
    let fixtures = Fixtures(model: work.appendingPathComponent("base"), tokenizer: tokenizer)
    // The good model must generate, or every model case would pass for the wrong reason.
    let good = try Harness.run(executable, Catalog.generate("base"), in: work, timeout: timeout)
    try #require(good.status == 0, "the untouched model does not generate: \(good.stderr)")

    var tally = Tally()
    for (index, item) in Catalog.cases(full: full).enumerated() {
      let folder = work.appendingPathComponent("case-\(index)")
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      let arguments = try item.setup(folder, fixtures)
      var before: [String: Data] = [:]
      for path in item.preserved { before[path] = try Data(contentsOf: folder.appendingPathComponent(path)) }
      let run = try Harness.run(executable, arguments, in: folder, timeout: timeout)
      let outcome = run.outcome(culprits: item.culprits, reported: item.reported)
      tally.cases += 1
      tally.counts[outcome, default: 0] += 1
      let label = "[\(item.category)] \(item.name): vlmrl \(arguments.joined(separator: " "))"
      let output = "exit \(run.status)\nstdout: \(run.stdout.suffix(600))\nstderr: \(run.stderr.suffix(1500))"
      switch outcome {
      case .handled where item.expect == .error:
        tally.silent += 1
        Issue.record("silent result (exit 0 where an error was due) for \(label)\n\(output)")
      case .handled, .clearError:
        break
      case .unclearError, .crash, .hang:
        Issue.record("\(outcome.rawValue) for \(label)\n\(output)")
      }
      for (path, data) in before {
        tally.dataLossPaths += 1
        let after = try? Data(contentsOf: folder.appendingPathComponent(path))
        if after != data {
          tally.lost += 1
          Issue.record("\(path) changed or vanished: \(label)")
        }
      }
      try? FileManager.default.removeItem(at: folder)
    }
    tally.lines.forEach { print($0) }
    #expect(tally.cases >= 40)
    #expect(tally.counts[.crash, default: 0] == 0 && tally.counts[.hang, default: 0] == 0)
  }

  /// The harness itself: a crash, a hang and an unnamed error are told apart from clear errors.
  @Test func harnessClassifiesOutcomes() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-harness-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let shell = URL(fileURLWithPath: "/bin/sh")
    func outcome(_ script: String, culprits: [String] = ["f.json"], timeout: Double = 5) throws -> Harness.Outcome {
      try Harness.run(shell, ["-c", script], in: folder, timeout: timeout).outcome(culprits: culprits)
    }
    #expect(try outcome("exit 0") == .handled)
    #expect(try outcome("echo 'Error: f.json: bad' >&2; exit 1") == .clearError)
    #expect(try outcome("echo 'Error: something' >&2; exit 1") == .unclearError)
    #expect(try outcome("kill -SEGV $$") == .crash)
    #expect(try outcome("echo 'Fatal error: f.json' >&2; exit 1") == .crash)
    #expect(try outcome("exit 132") == .crash)
    let start = Date()
    #expect(try outcome("exec sleep 600", timeout: 0.5) == .hang)
    #expect(Date().timeIntervalSince(start) < 300, "the hung process was not stopped at its time limit")
  }
}
