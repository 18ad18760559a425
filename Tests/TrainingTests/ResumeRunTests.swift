import Foundation
import Testing
@testable import Training

extension TinyModelTests.TrainerOptionsTests {
  /// Resuming with a changed config: refused with the changed key named (learning rate 50x),
  /// accepted for keys that only move logging, accepted with `allow_config_change`; and
  /// `resume_from_checkpoint: PATH` continues from that folder into another output_dir exactly as
  /// the uninterrupted run.
  @Test func resumeChecksTheConfigAndTakesACheckpointPath() async throws {
    let root = TinySetup.temporaryFolder("resume-config")
    defer { try? FileManager.default.removeItem(at: root) }
    let base = #""per_device_train_batch_size": 4, "max_steps": 3, "save_steps": 2, "beta": 0"#
    let straight = try await trainer(root, "straight", base).run(log: { _ in })
    _ = try await trainer(root, "first", base).run(stopAfterStep: 2, log: { _ in })
    let changed = try trainer(root, "first", base + #", "learning_rate": 0.05"#)
    let refusal = await Self.failure { try await changed.run(resume: true, log: { _ in }) }
    #expect(refusal.contains("checkpoint-2") && refusal.contains("training.learning_rate (0.001 -> 0.05)"), "\(refusal)")
    let allowed = try trainer(root, "first", base + #", "learning_rate": 0.05, "allow_config_change": true"#)
    #expect(try await allowed.run(resume: true, stopAfterStep: 3, log: { _ in }).map(\.step) == [3])

    let checkpoint = root.appendingPathComponent("first/checkpoint-2").path
    let lines = LogLines()
    let moved = try await trainer(root, "second", base + #", "logging_steps": 2, "resume_from_checkpoint": "\#(checkpoint)""#)
      .run(log: { lines.append($0) })
    #expect(lines.all.contains("resumed from checkpoint-2 at step 2"), "\(lines.all)")
    #expect(moved.map(\.step) == [3])
    for key in ["loss", "grad_norm", "reward"] {
      let a = try #require(straight[2].values[key]), b = try #require(moved[0].values[key])
      #expect(a == b || Swift.abs(a - b) <= 1e-9 * Swift.max(1, Swift.abs(a)), "\(key): \(a) vs \(b)")
    }
    let missing = await Self.failure {
      try await trainer(root, "third", base + #", "resume_from_checkpoint": "\#(root.path)/nowhere""#).run(log: { _ in })
    }
    #expect(missing.contains("training.resume_from_checkpoint") && missing.contains("not a checkpoint folder"), "\(missing)")
  }

  static func failure(_ body: () async throws -> Void) async -> String {
    do { try await body() } catch { return "\(error)" }
    return "accepted"
  }
}
