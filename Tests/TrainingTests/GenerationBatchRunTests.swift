import Foundation
import Testing
@testable import Training

extension TinyModelTests.TrainerOptionsTests {
  /// `steps_per_generation 2` (accumulation 1): one generation batch of 4 prompts x 2 serves two
  /// optimizer steps of one 4-completion micro-batch each, as TRL's buffered generation batch does.
  /// The first step is on-policy (whole groups, beta 0: loss exactly 0); the second trains on
  /// completions the first step's policy did not sample, against their recorded log-probs (loss != 0;
  /// with `logp.detach()` as the old log-probs it would be 0 again). `generation_batch_size 8` is the
  /// same run, and the batch of one step with `per_device_train_batch_size 8` scores the same rollouts.
  @Test func stepsPerGenerationServesSeveralOptimizerSteps() async throws {
    let root = TinySetup.temporaryFolder("steps-per-generation")
    defer { try? FileManager.default.removeItem(at: root) }
    let common = #""per_device_train_batch_size": 4, "max_steps": 2, "beta": 0, "learning_rate": 0.01, "#
    let stepped = try trainer(root, "stepped", common + #""steps_per_generation": 2"#)
    let sized = try trainer(root, "sized", common + #""generation_batch_size": 8"#)
    #expect(stepped.settings.layout == sized.settings.layout)
    let lines = LogLines()
    let rows = try await stepped.run(log: { lines.append($0) })
    #expect(lines.all.contains("batch: 4 prompts x 2 generations = 8 completions per generation batch, 2 micro-batches "
      + "of 4 completions, 2 optimizer steps per generation batch (gradient_accumulation_steps 1, num_iterations 1)"),
      "\(lines.all)")
    #expect(rows.map(\.step) == [1, 2])
    #expect(stepped.state.examplesSeen == 4, "one generation batch of 4 prompts for both steps")
    #expect(Swift.abs(rows[0].values["loss"]!) < 1e-6)
    #expect(Swift.abs(rows[1].values["loss"]!) > 1e-7)
    #expect(rows[0].values["reward"] == rows[1].values["reward"] && rows[1].values["time/generate"] == 0)
    let sizedRows = try await sized.run(log: { _ in })
    #expect(sizedRows.map { $0.values["loss"] } == rows.map { $0.values["loss"] })
    let single = try await trainer(root, "single", #""per_device_train_batch_size": 8, "max_steps": 1, "beta": 0, "learning_rate": 0.01"#)
      .run(log: { _ in })
    #expect(single[0].values["reward"] == rows[0].values["reward"])
  }
}
