import Datasets
import Foundation
import NN
import Rewards
import Testing
@testable import Models
@testable import Torch
@testable import Training

/// Gradient accumulation, trainable parts (full, LM-only, LoRA), LoRA resume, num_iterations,
/// sync_ref_model and top_entropy_quantile on the tiny model.
extension TinyModelTests {
@Suite(.serialized) struct TrainerOptionsTests {
  func config(output: URL, data: URL, _ extra: String) throws -> TrainingConfig {
    let extra = extra.contains("learning_rate") ? extra : extra + #", "learning_rate": 0.001"#
    let json = """
    {"job_type": "grpo", "dataset": {"labeled_path": "\(data.path)"}, "models": {"student": "\(TinySetup.modelFolder.path)"},
     "training": {"reward_funcs": ["format"], "output_dir": "\(output.path)", "roll_out_num": 2, "max_completion_length": 4,
                  "logging_steps": 1, "seed": 11, "warmup_steps": 0,
                  "realtime_rollout_logging": false, "lr_scheduler_type": "constant", \(extra)}}
    """
    return try TrainingConfig.parse(Data(json.utf8), source: "test config")
  }

  func rewards() -> RewardRunner {
    RewardRunner(functions: [SampleReward(name: "length_parity") { Double($0.completion.unicodeScalars.count % 5) / 4 }])
  }

  func trainer(_ root: URL, _ name: String, _ extra: String) throws -> GRPOTrainer {
    let examples = try TinySetup.examples(root.appendingPathComponent("data"), count: 8)
    return try GRPOTrainer(config: try config(output: root.appendingPathComponent(name), data: root, extra),
                           modelDirectory: TinySetup.modelFolder, examples: examples, rewards: rewards())
  }

  func snapshot(_ parameters: [(String, Parameter)]) -> [(String, Tensor)] { parameters.map { ($0.0, $0.1.value.clone()) } }

  /// TRL's invariant: per-device batch 1 x accumulation 8 gives the update of batch 8 x accumulation 1
  /// (same 4 prompts x 2 completions, same rollouts; with one completion per micro-batch each
  /// micro-batch holds half a group). `grpo` and `dr_grpo` divide each micro-batch by the accumulation
  /// steps, `dapo` by the generation batch's tokens. The gradient norm is compared too (Adam's first
  /// step is nearly scale-free, the norm is not).
  @Test(arguments: ["grpo", "dr_grpo", "dapo"])
  func accumulationEightOfOneEqualsOneOfEight(lossType: String) async throws {
    let root = TinySetup.temporaryFolder("accumulation")
    defer { try? FileManager.default.removeItem(at: root) }
    // adam_epsilon 1 makes the first update lr * g / (|g| + 1), nearly linear in the gradient, so a
    // wrong accumulation scale shows (with the default epsilon the first Adam step is ~lr * sign(g)).
    let common = #""max_steps": 1, "beta": 0.04, "max_grad_norm": 1000, "adam_epsilon": 1, "learning_rate": 1, "loss_type": ""#
      + lossType + "\""
    let micro = try trainer(root, "micro", #""per_device_train_batch_size": 1, "gradient_accumulation_steps": 8, "# + common)
    let whole = try trainer(root, "whole", #""per_device_train_batch_size": 8, "gradient_accumulation_steps": 1, "# + common)
    #expect(micro.settings.layout.promptsPerGeneration == 4 && whole.settings.layout.promptsPerGeneration == 4)
    #expect(micro.settings.layout.stepsPerGeneration == 8 && whole.settings.layout.stepsPerGeneration == 1)
    let start = snapshot(micro.model.namedParameters())
    let microRows = try await micro.run(log: { _ in })
    let wholeRows = try await whole.run(log: { _ in })
    let a = microRows[0].values, b = wholeRows[0].values
    #expect(a["completions/mean_length"] == b["completions/mean_length"] && a["reward"] == b["reward"])
    let normA = try #require(a["grad_norm"]), normB = try #require(b["grad_norm"])
    #expect(normA > 0 && Swift.abs(normA - normB) <= 1e-4 * normB, "\(normA) vs \(normB)")
    #expect(Swift.abs(a["loss"]! - b["loss"]!) < 1e-6)
    var moved = 0
    for ((name, initial), ((_, p), (_, q))) in zip(start, zip(micro.model.namedParameters(), whole.model.namedParameters())) {
      let update = p.value - initial
      let scale = Swift.max(1e-12, update.abs().max().item())
      if scale > 1e-12 { moved += 1 }
      #expect((p.value - q.value).abs().max().item() <= 1e-4 * scale + 1e-12, "\(name)")
    }
    #expect(moved > 10)
  }

  /// A few steps change every parameter that trains and none that is frozen.
  @Test(arguments: ["full", "lm_only", "lora"])
  func stepsChangeTrainableAndOnlyTrainableParameters(mode: String) async throws {
    let root = TinySetup.temporaryFolder("parts-\(mode)")
    defer { try? FileManager.default.removeItem(at: root) }
    let extra = mode == "lora" ? #""use_peft": true, "lora_r": 2, "lora_alpha": 4, "lora_dropout": 0.1, "beta": 0.04"#
      : mode == "lm_only" ? #""freeze_vision_tower": true, "beta": 0"# : #""beta": 0"#
    let run = try trainer(root, "run", #""per_device_train_batch_size": 4, "max_steps": 2, "# + extra)
    let base = snapshot(run.model.namedParameters())
    let adapters = snapshot(LoRA.namedParameters(in: run.model))
    _ = try await run.run(log: { _ in })
    for ((name, old), (_, parameter)) in zip(base, run.model.namedParameters()) {
      let changed = old.maxAbsDifference(parameter.value) > 0
      let trains = mode == "full" || (mode == "lm_only" && !name.hasPrefix("visual."))
      #expect(changed == trains, "\(name): changed \(changed), trains \(trains)")
    }
    #expect(adapters.isEmpty == (mode != "lora"))
    for ((name, old), (_, parameter)) in zip(adapters, LoRA.namedParameters(in: run.model)) {
      #expect(old.maxAbsDifference(parameter.value) > 0, "\(name) did not change")
    }
    let final = root.appendingPathComponent("run/final")
    let adapterFile = final.appendingPathComponent("adapter_model.safetensors").path
    #expect(FileManager.default.fileExists(atPath: adapterFile) == (mode == "lora"))
  }

  /// LoRA: stop after step 2, resume from the adapter checkpoint, equal metrics at step 3.
  @Test func loraResumeEqualsAnUninterruptedRun() async throws {
    let root = TinySetup.temporaryFolder("lora-resume")
    defer { try? FileManager.default.removeItem(at: root) }
    let extra = #""per_device_train_batch_size": 4, "max_steps": 3, "save_steps": 2, "use_peft": true, "lora_r": 2, "lora_dropout": 0.1"#
    let straight = try await trainer(root, "straight", extra).run(log: { _ in })
    _ = try await trainer(root, "resumed", extra).run(stopAfterStep: 2, log: { _ in })
    #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("resumed/checkpoint-2/adapter_config.json").path))
    let resumed = try await trainer(root, "resumed", extra).run(resume: true, log: { _ in })
    #expect(resumed.map(\.step) == [3])
    for key in ["loss", "grad_norm", "kl", "reward", "entropy", "completions/mean_length"] {
      let a = try #require(straight[2].values[key]), b = try #require(resumed[0].values[key])
      #expect(a == b || Swift.abs(a - b) <= 1e-9 * Swift.max(1, Swift.abs(a)), "\(key): \(a) vs \(b)")
    }
  }

  /// num_iterations 2 with beta 0: the first pass is on-policy (ratio 1, so the group-centred
  /// advantages give a loss of exactly 0), the second reuses the generation batch against the
  /// recorded old log-probs (ratio != 1, loss != 0); both rows carry the batch's rewards.
  @Test func numIterationsReusesTheGenerationBatch() async throws {
    let root = TinySetup.temporaryFolder("iterations")
    defer { try? FileManager.default.removeItem(at: root) }
    let run = try trainer(root, "run", #""per_device_train_batch_size": 4, "num_iterations": 2, "num_train_epochs": 0.5, "beta": 0, "learning_rate": 0.01"#)
    #expect(run.totalSteps == 4)  // 8 examples x 0.5 epoch / (4 completions / 2 generations) = 2 generation batches, x 2 iterations
    let rows = try await run.run(log: { _ in })
    #expect(rows.map(\.step) == [1, 2, 3, 4])
    #expect(Swift.abs(rows[0].values["loss"]!) < 1e-6 && Swift.abs(rows[2].values["loss"]!) < 1e-6)
    #expect(Swift.abs(rows[1].values["loss"]!) > 1e-7)
    #expect(rows[0].values["reward"] == rows[1].values["reward"])
    #expect(rows[1].values["time/generate"] == 0)
  }

  /// sync_ref_model every step with alpha 0.6: ref_k = 0.6 * policy_k + 0.4 * ref_{k-1}.
  @Test func syncRefModelMixesThePolicyIn() async throws {
    let root = TinySetup.temporaryFolder("sync")
    defer { try? FileManager.default.removeItem(at: root) }
    let run = try trainer(root, "run", #""per_device_train_batch_size": 2, "max_steps": 2, "sync_ref_model": true, "ref_model_sync_steps": 1, "ref_model_mixup_alpha": 0.6"#)
    let reference = try #require(run.reference)
    var previous = snapshot(reference.namedParameters())
    for step in 1...2 {
      _ = try await run.run(stopAfterStep: step, log: { _ in })
      for (((name, old), (_, ref)), (_, policy)) in zip(zip(previous, reference.namedParameters()), run.model.namedParameters()) {
        let expected = policy.value * 0.6 + old * 0.4
        #expect(ref.value.maxAbsDifference(expected) < 1e-6, "\(name) at step \(step)")
      }
      #expect(reference.namedParameters().contains { $0.1.value.maxAbsDifference(run.model.stateDict()[$0.0]!) > 0 })
      previous = snapshot(reference.namedParameters())
    }
  }

  /// top_entropy_quantile 0.5: the trainer's micro-batch loss equals the on-policy GRPO loss
  /// computed by hand over the tokens whose entropy is at least the median (torch.quantile).
  @Test func topEntropyQuantileMasksLowEntropyTokens() throws {
    let root = TinySetup.temporaryFolder("entropy-q")
    defer { try? FileManager.default.removeItem(at: root) }
    let run = try trainer(root, "run", #""per_device_train_batch_size": 6, "max_steps": 1, "beta": 0, "top_entropy_quantile": 0.5"#)
    let prompts = try TinySetup.prompts(root)
    let completions = TinySetup.completions
    let advantages = [1.0, -1.0, 0.5, -0.5, 2.0, -2.0]
    let inputs = UpdateInputs(prompts: prompts, records: completions, advantages: advantages, microBatches: [Array(0..<6)],
                              features: nil, fixed: BatchLogProbs(old: [nil], reference: [nil]), activeTokens: 16)
    let (loss, metrics) = try run.update.microBatchLoss(inputs, members: Array(0..<6), old: nil, reference: nil)
    let pass = try withNoGrad { try PolicyPass.logProbs(model: run.model, prompts: prompts, completions: completions, temperature: 1) }
    var entropies: [Double] = []
    for (row, completion) in completions.enumerated() {
      entropies += (0..<completion.tokens.count).map { pass.entropies[row, $0].item() }
    }
    let sorted = entropies.sorted()
    let position = 0.5 * Double(sorted.count - 1)
    let lower = Int(position)
    let cutoff = sorted[lower] + (sorted[lower + 1] - sorted[lower]) * (position - Double(lower))
    var total = 0.0
    var offset = 0
    for (row, completion) in completions.enumerated() {
      let count = completion.tokens.count
      let kept = entropies[offset..<(offset + count)].filter { $0 >= cutoff }.count
      total += count == 0 ? 0 : -advantages[row] * Double(kept) / Double(count)
      offset += count
    }
    #expect(Swift.abs(loss.item() - total / 6) < 1e-6, "\(loss.item()) vs \(total / 6)")
    #expect(Swift.abs(metrics.entropy! - entropies.reduce(0, +) / 16) < 1e-5)
  }
}
}
