import Datasets
import Foundation
import Jinja
import ModelConfig
import Prompting
import Rewards
import SafeTensors
import Testing
@testable import Models
@testable import NN
@testable import Torch
@testable import Training

/// LoRA SFT (only the adapters train; checkpoints and `final/` are peft adapter folders; exact
/// resume; an SFT adapter starts a GRPO run) and multi-turn SFT (every assistant turn trained
/// against the conversation before it), on the tiny checkpoint.
extension TinyModelTests {
@Suite(.serialized) struct SFTLoRAMultiTurnTests {
  static let modelFolder = TinySetup.modelFolder
  static let lora = #""use_peft": true, "lora_r": 4, "lora_alpha": 8, "lora_target_modules": ["q_proj", "v_proj", "down_proj"]"#

  func config(_ root: URL, data: URL, output: String, steps: Int, _ extra: String) throws -> TrainingConfig {
    let json = """
    {"job_type": "sft", "dataset": {"labeled_path": "\(data.path)"}, "models": {"student": "\(Self.modelFolder.path)"},
     "training": {"output_dir": "\(root.appendingPathComponent(output).path)", "per_device_train_batch_size": 3, "save_steps": 2,
                  "max_steps": \(steps), "learning_rate": 0.02, "warmup_steps": 0, "logging_steps": 1, "seed": 2, \(extra)}}
    """
    return try TrainingConfig.parse(Data(json.utf8), source: "test config")
  }

  func trainer(_ root: URL, output: String = "sft", steps: Int, _ extra: String = Self.lora + #", "lora_dropout": 0"#) throws
    -> SFTTrainer {
    let data = try SyntheticTasks.write(task: .singleBox, count: 6, seed: 4, imageSize: 56, to: root.appendingPathComponent("data"))
    return try SFTTrainer(config: try config(root, data: data, output: output, steps: steps, extra), modelDirectory: Self.modelFolder,
                          examples: try DatasetLoader.load(path: data.path).examples)
  }

  func snapshot(_ parameters: [(String, Parameter)]) -> [(String, Tensor)] { parameters.map { ($0.0, $0.1.value.clone()) } }

  func tensors(_ url: URL) throws -> [String: Tensor] {
    let file = try SafeTensorsFile(url: url)
    return Dictionary(uniqueKeysWithValues: try file.names.map { name in
      let info = try file.info(name)
      return (name, Tensor(bytes: try file.bytes(name), shape: info.shape, dtype: try #require(DType(safeTensors: info.dtype))))
    })
  }

  // MARK: LoRA

  /// lora_r, lora_alpha and lora_target_modules take effect; a few steps lower the loss, move every
  /// adapter and leave every base weight bit-identical; each checkpoint and `final/` is a peft adapter
  /// folder (no weights of its own) naming the base, and `final/` loads with the trained logits.
  @Test func loraStepsLowerTheLossKeepTheBaseAndWriteAdapterFolders() throws {
    let root = TinySetup.temporaryFolder("sft-lora")
    defer { try? FileManager.default.removeItem(at: root) }
    let sft = try trainer(root, steps: 6)
    let adapters = LoRA.adapters(in: sft.model)
    #expect(Set(adapters.map { $0.0.components(separatedBy: ".").last! }) == ["q_proj", "v_proj", "down_proj"])
    for (name, adapter) in adapters {
      #expect(["q_proj", "v_proj", "down_proj"].contains { name.hasSuffix("." + $0) }, "\(name) is not a target")
      #expect(adapter.down.weight.value.shape[0] == 4 && adapter.scaling == 2, "\(name)")
    }
    let trainable = sft.model.namedTrainableParameters.map(\.0)
    #expect(trainable.count == 2 * adapters.count && trainable.allSatisfy { $0.contains(".lora_") }, "\(trainable)")
    #expect(sft.stepper.optimizer.parameters.count == trainable.count)
    let base = snapshot(sft.model.namedParameters())
    let initial = snapshot(LoRA.namedParameters(in: sft.model))
    let rows = try sft.run(log: { _ in })
    let losses = rows.compactMap { $0.values[MetricName.loss] }
    #expect(losses.count == 6 && losses.allSatisfy(\.isFinite) && losses.suffix(2).max()! < losses.prefix(2).min()!, "\(losses)")
    for ((name, old), (_, parameter)) in zip(base, sft.model.namedParameters()) {
      #expect(old.maxAbsDifference(parameter.value) == 0, "base weight \(name) changed")
    }
    for ((name, old), (_, parameter)) in zip(initial, LoRA.namedParameters(in: sft.model)) {
      #expect(old.maxAbsDifference(parameter.value) > 0, "\(name) did not train")
    }
    sft.model.eval()
    let ids = [3, 17, 250, 901, 33]
    let trained = try withNoGrad { try sft.model.logits(ids: ids) }
    for name in ["checkpoint-2", "checkpoint-4", "final"] {
      let folder = root.appendingPathComponent("sft/\(name)")
      for file in ["adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja"] {
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(file).path), "\(name)/\(file)")
      }
      for file in ["config.json", "model.safetensors"] {
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent(file).path), "\(name)/\(file)")
      }
      let saved = try LoRA.readConfig(directory: folder)
      #expect(saved.rank == 4 && saved.alpha == 8 && saved.targets == .names(["q_proj", "v_proj", "down_proj"]), "\(name)")
      #expect(try AdapterFolder.read(folder)?.base.path == Self.modelFolder.path, "\(name)")
    }
    #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("sft/checkpoint-4/optimizer.safetensors").path))
    let merged = try QwenVLModel.load(directory: root.appendingPathComponent("sft/final"))
    #expect(LoRA.adapters(in: merged).isEmpty)
    let logits = try withNoGrad { try merged.logits(ids: ids) }
    #expect(logits.maxAbsDifference(trained) <= 1e-4, "final/ merged logits differ from the trained model's")
  }

  /// With lora_dropout (reseeded from the step) a run stopped after step 2 and resumed from its
  /// adapter checkpoint repeats the uninterrupted run: step 3 needs the adapter, step 4 the AdamW
  /// moments too; the final adapters agree.
  @Test func loraResumeReproducesAnUninterruptedRun() throws {
    let root = TinySetup.temporaryFolder("sft-lora-resume")
    defer { try? FileManager.default.removeItem(at: root) }
    let extra = Self.lora + #", "lora_dropout": 0.1"#
    let straight = try trainer(root, output: "straight", steps: 4, extra).run(log: { _ in })
    _ = try trainer(root, output: "resumed", steps: 4, extra).run(stopAfterStep: 2, log: { _ in })
    let checkpoint = root.appendingPathComponent("resumed/checkpoint-2")
    #expect(FileManager.default.fileExists(atPath: checkpoint.appendingPathComponent("adapter_config.json").path))
    let resumedTrainer = try trainer(root, output: "resumed", steps: 4, extra)
    let resumed = try resumedTrainer.run(resume: true, log: { _ in })
    #expect(resumed.map(\.step) == [3, 4])
    #expect(straight.count == 4)
    for (a, b) in zip(straight.suffix(2), resumed) {
      for key in [MetricName.loss, MetricName.gradNorm, MetricName.learningRate, MetricName.numTokens] {
        let x = try #require(a.values[key]), y = try #require(b.values[key])
        #expect(Swift.abs(x - y) <= 1e-6 * Swift.max(1, Swift.abs(x)), "\(key) at step \(a.step): \(x) vs \(y)")
      }
    }
    let one = try tensors(root.appendingPathComponent("straight/final/adapter_model.safetensors"))
    let two = try tensors(root.appendingPathComponent("resumed/final/adapter_model.safetensors"))
    #expect(Set(one.keys) == Set(two.keys) && !one.isEmpty)
    for (name, value) in one { #expect(try #require(two[name]).maxAbsDifference(value) <= 1e-6, "\(name)") }
  }

  /// An SFT run's adapter folder is a GRPO run's `models.student`: with use_peft the GRPO policy starts
  /// from the SFT adapter's own tensors (its rank 4, not the GRPO config's lora_r 2), trains a step,
  /// and its adapter names the same base.
  @Test func anSFTAdapterFolderStartsAGRPORun() async throws {
    let root = TinySetup.temporaryFolder("sft-lora-grpo")
    defer { try? FileManager.default.removeItem(at: root) }
    let sft = try trainer(root, steps: 2)
    try sft.run(log: { _ in })
    let final = root.appendingPathComponent("sft/final")
    let json = """
    {"job_type": "grpo", "dataset": {"labeled_path": "\(root.path)"}, "models": {"student": "\(final.path)"},
     "training": {"reward_funcs": ["format"], "output_dir": "\(root.appendingPathComponent("grpo").path)", "roll_out_num": 2,
                  "max_completion_length": 4, "per_device_train_batch_size": 4, "max_steps": 1, "save_steps": 1, "seed": 5,
                  "learning_rate": 0.01, "realtime_rollout_logging": false, "use_peft": true, "lora_r": 2, "lora_dropout": 0}}
    """
    let rewards = RewardRunner(functions: [SampleReward(name: "length_parity") { Double($0.completion.unicodeScalars.count % 5) / 4 }])
    let grpo = try GRPOTrainer(config: try TrainingConfig.parse(Data(json.utf8), source: "test config"),
                               modelDirectory: try ModelLocator.resolve(final.path),
                               examples: try TinySetup.examples(root.appendingPathComponent("grpo-data"), count: 4), rewards: rewards)
    let fromSFT = LoRA.namedParameters(in: sft.model, hubName: QwenModuleNames.hub)
    let start = LoRA.namedParameters(in: grpo.model, hubName: QwenModuleNames.hub)
    #expect(start.map(\.0) == fromSFT.map(\.0) && !start.isEmpty)
    for ((name, a), (_, b)) in zip(start, fromSFT) {
      #expect(a.value.maxAbsDifference(b.value) == 0, "\(name) does not start from the SFT adapter")
      #expect(a.trainable)
    }
    #expect(LoRA.adapters(in: grpo.model).allSatisfy { $0.1.down.weight.value.shape[0] == 4 })
    _ = try await grpo.run(log: { _ in })
    #expect(try AdapterFolder.read(root.appendingPathComponent("grpo/final"))?.base.path == Self.modelFolder.path)
  }

  // MARK: Multi-turn

  /// Two records with the image `images/single_box_00000.png`: a two-turn conversation and a one-turn one.
  func conversations(_ root: URL) throws -> (twoTurn: Example, oneTurn: Example) {
    let folder = root.appendingPathComponent("chat")
    try SyntheticTasks.write(task: .singleBox, count: 1, seed: 4, imageSize: 56, to: folder)
    let image = folder.appendingPathComponent("images/single_box_00000.png").path
    let records = """
    {"image": "\(image)", "conversations": [{"from": "human", "value": "<image>\\nWhat shape is there?"}, {"from": "gpt", "value": "A red circle."}, {"from": "human", "value": "Where is it?"}, {"from": "gpt", "value": "[3, 14, 27, 40]"}]}
    {"image": "\(image)", "conversations": [{"from": "human", "value": "<image>\\nName its colour."}, {"from": "gpt", "value": "Red."}]}

    """
    let file = folder.appendingPathComponent("chat.jsonl")
    try Data(records.utf8).write(to: file)
    let examples = try DatasetLoader.load(path: file.path).examples
    try #require(examples.count == 2 && examples.allSatisfy { $0.kind == .sftConversation })
    return (examples[0], examples[1])
  }

  /// The mean NLL of `answer` + `<|im_end|>` after the template's render of `prefix` (one forward of
  /// its own), and its token count.
  func turnLoss(_ sft: SFTTrainer, _ example: Example, prefix: [ChatMessage], answer: String) throws -> (Double, Int) {
    let prompt = try sft.builder.prepare(example, messages: prefix)
    let ids = sft.builder.tokenizer.encode(answer + "<|im_end|>")
    let hidden = try sft.model.hiddenStates(ids: prompt.ids + ids, promptLength: prompt.ids.count, pixelValues: prompt.pixelValues,
                                            grids: prompt.grids)[0]
    let logp = sft.model.tokenLogProbs(hidden: hidden.narrow(0, start: prompt.ids.count - 1, length: ids.count), targets: Tensor(ids))
    return (-logp.mean().item(), ids.count)
  }

  /// A two-turn conversation trains both answers, each against the conversation before it: the
  /// trained tokens are the two answers' (with their `<|im_end|>`), the loss is the token-weighted mean
  /// of the two turns' losses computed apart, the sequence is the template's render of the whole
  /// conversation; a one-turn record is trained as before, and a batch of both is the mean of the two.
  @Test func aTwoTurnConversationTrainsBothAnswers() throws {
    let root = TinySetup.temporaryFolder("sft-multi-turn")
    defer { try? FileManager.default.removeItem(at: root) }
    let (twoTurn, oneTurn) = try conversations(root)
    let sft = try trainer(root, steps: 1, #""shuffle_dataset": false"#)
    let user = PromptBuilder.messages(for: twoTurn)
    let secondPrefix = user + [ChatMessage(role: "assistant", text: "A red circle."), ChatMessage(role: "user", text: "Where is it?")]
    try withNoGrad {
      let (first, firstCount) = try turnLoss(sft, twoTurn, prefix: user, answer: "A red circle.")
      let (second, secondCount) = try turnLoss(sft, twoTurn, prefix: secondPrefix, answer: "[3, 14, 27, 40]")
      let (loss, tokens) = try #require(try sft.batchLoss([twoTurn]))
      #expect(tokens == firstCount + secondCount)
      let expected = (first * Double(firstCount) + second * Double(secondCount)) / Double(firstCount + secondCount)
      #expect(Swift.abs(loss.item() - expected) <= 1e-5 * Swift.max(1, Swift.abs(expected)), "\(loss.item()) vs \(expected)")
      #expect(Swift.abs(expected - second) > 1e-3, "the turns' losses are too close for the test to tell them apart")

      // One sequence: the template's render of both turns, the user turn between the answers masked.
      let dialogue = try #require(try sft.dialogue(twoTurn))
      let whole = try sft.builder.prepare(twoTurn, messages: secondPrefix).ids + sft.builder.tokenizer.encode("[3, 14, 27, 40]<|im_end|>")
      #expect(dialogue.prompt.ids + dialogue.tokens == whole)
      #expect(dialogue.answerTokenCounts == [firstCount, secondCount])
      #expect(dialogue.trained.prefix(firstCount).allSatisfy { $0 } && dialogue.trained.suffix(secondCount).allSatisfy { $0 })
      #expect(dialogue.trained.filter { !$0 }.count == dialogue.tokens.count - firstCount - secondCount)
      #expect(dialogue.tokens.count - firstCount - secondCount > 5, "the second user turn and its template tokens")

      let (single, singleCount) = try turnLoss(sft, oneTurn, prefix: PromptBuilder.messages(for: oneTurn), answer: "Red.")
      let (oneLoss, oneTokens) = try #require(try sft.batchLoss([oneTurn]))
      #expect(oneTokens == singleCount && Swift.abs(oneLoss.item() - single) <= 1e-5 * Swift.max(1, single))
      let (both, bothTokens) = try #require(try sft.batchLoss([twoTurn, oneTurn]))
      #expect(bothTokens == firstCount + secondCount + singleCount)
      #expect(Swift.abs(both.item() - (expected + single) / 2) <= 1e-5 * Swift.max(1, Swift.abs(both.item())))
    }
  }

  /// An image in a turn after the first answer cannot sit in the prompt: refused, naming the record.
  @Test func anImageAfterTheFirstAnswerIsRefused() throws {
    let root = TinySetup.temporaryFolder("sft-late-image")
    defer { try? FileManager.default.removeItem(at: root) }
    let (twoTurn, _) = try conversations(root)
    var late = twoTurn
    late.conversation[2].text = "<image>\nAnd here?"
    let messages = try #require(SFTTrainer.messages(for: late))
    #expect(messages.map(\.role) == ["user", "assistant", "user", "assistant"])
    let builder = try PromptBuilder(folder: try ModelFolder(directory: Self.modelFolder))
    #expect(throws: PromptError.self) { try builder.prepareDialogue(late, messages: messages) }
    do {
      _ = try builder.prepareDialogue(late, messages: messages)
    } catch {
      #expect("\(error)".contains("\(late.source)") && "\(error)".contains("images must come before the first assistant turn"), "\(error)")
    }
    #expect(try builder.prepareDialogue(twoTurn, messages: try #require(SFTTrainer.messages(for: twoTurn))).answerTokenCounts.count == 2)
  }
}
}
