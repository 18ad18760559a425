import Datasets
import Foundation
import ModelConfig
import NN
import Prompting
import Rewards
import SafeTensors
import Testing
@testable import Models
@testable import Torch
@testable import Training

/// Every checkpoint folder loads wherever a model folder does (companion files inside; a LoRA
/// run's folders are peft adapter folders naming their base), and training starts from a peft
/// adapter folder: with use_peft its adapters continue, without it they are merged.
extension TinyModelTests {
@Suite(.serialized) struct CheckpointFolderTests {
  static let peftAdapter = PeftAdapterTests.adapterFolder.standardizedFileURL

  func config(output: URL, data: URL, student: URL, _ extra: String) throws -> TrainingConfig {
    let json = """
    {"job_type": "grpo", "dataset": {"labeled_path": "\(data.path)"}, "models": {"student": "\(student.path)"},
     "training": {"reward_funcs": ["format"], "output_dir": "\(output.path)", "roll_out_num": 2, "max_completion_length": 4,
                  "per_device_train_batch_size": 4, "max_steps": 1, "save_steps": 1, "logging_steps": 1, "seed": 5,
                  "warmup_steps": 0, "learning_rate": 0.01, "realtime_rollout_logging": false, "lr_scheduler_type": "constant"
                  \(extra)}}
    """
    return try TrainingConfig.parse(Data(json.utf8), source: "test config")
  }

  func trainer(_ root: URL, student: URL, _ extra: String = "") throws -> GRPOTrainer {
    let examples = try TinySetup.examples(root.appendingPathComponent("data"), count: 4)
    let rewards = RewardRunner(functions: [SampleReward(name: "length_parity") { Double($0.completion.unicodeScalars.count % 5) / 4 }])
    return try GRPOTrainer(config: try config(output: root.appendingPathComponent("run"), data: root, student: student, extra),
                           modelDirectory: try ModelLocator.resolve(student.path), examples: examples, rewards: rewards)
  }

  /// The committed peft adapter in a temporary folder, its base named by absolute path.
  func adapterCopy(_ root: URL) throws -> URL {
    let folder = root.appendingPathComponent("adapter")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    for name in ["adapter_config.json", "adapter_model.safetensors"] {
      try FileManager.default.copyItem(at: Self.peftAdapter.appendingPathComponent(name), to: folder.appendingPathComponent(name))
    }
    let url = folder.appendingPathComponent("adapter_config.json")
    var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    config["base_model_name_or_path"] = TinySetup.modelFolder.path
    try JSONSerialization.data(withJSONObject: config).write(to: url)
    return folder
  }

  func tensors(_ url: URL) throws -> [String: Tensor] {
    let file = try SafeTensorsFile(url: url)
    return Dictionary(uniqueKeysWithValues: try file.names.map { name in
      let info = try file.info(name)
      return (name, Tensor(bytes: try file.bytes(name), shape: info.shape, dtype: try #require(DType(safeTensors: info.dtype))))
    })
  }

  /// A folder a run wrote reads as a model folder on its own: its own tokenizer, template, processor
  /// and generation config (the student's, byte for byte), a prompt builds, and the model loads.
  func expectSelfContained(_ folder: URL) throws -> ModelFolder {
    let model = try ModelFolder(resolving: folder.path)
    #expect(model.filesDirectory.path == folder.path, "\(folder.lastPathComponent) borrows its files from \(model.filesDirectory.path)")
    for name in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "preprocessor_config.json", "generation_config.json"] {
      let copy = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path)
      #expect(copy != nil && copy == FileManager.default.contents(atPath: TinySetup.modelFolder.appendingPathComponent(name).path),
              "\(folder.lastPathComponent)/\(name)")
    }
    let builder = try PromptBuilder(folder: model)
    let example = try TinySetup.examples(FileManager.default.temporaryDirectory.appendingPathComponent("vlmrl-ckpt-\(UUID())"), count: 1)[0]
    #expect(try builder.prepare(example).ids.count > 10)
    return model
  }

  @Test func fullRunCheckpointsAreSelfContainedModelFolders() async throws {
    let root = TinySetup.temporaryFolder("self-contained")
    defer { try? FileManager.default.removeItem(at: root) }
    let run = try trainer(root, student: TinySetup.modelFolder, #", "beta": 0"#)
    _ = try await run.run(log: { _ in })
    let trained = run.model.namedParameters()
    for name in ["checkpoint-1", "final"] {
      let folder = root.appendingPathComponent("run/\(name)")
      let model = try expectSelfContained(folder)
      #expect(model.adapter == nil && model.weightsDirectory.path == folder.path)
      let loaded = try QwenVLModel.load(folder: model)
      for ((key, a), (_, b)) in zip(trained, loaded.namedParameters()) { #expect(a.value.maxAbsDifference(b.value) == 0, "\(key)") }
    }
  }

  @Test func loraRunCheckpointsAreAdapterFoldersNamingTheirBase() async throws {
    let root = TinySetup.temporaryFolder("self-contained-lora")
    defer { try? FileManager.default.removeItem(at: root) }
    let run = try trainer(root, student: TinySetup.modelFolder, #", "use_peft": true, "lora_r": 2, "lora_alpha": 4, "lora_dropout": 0"#)
    _ = try await run.run(log: { _ in })
    let ids = [3, 17, 250, 901, 33]
    run.model.eval()
    let expected = try withNoGrad { try run.model.logits(ids: ids) }
    for name in ["checkpoint-1", "final"] {
      let folder = root.appendingPathComponent("run/\(name)")
      let model = try expectSelfContained(folder)
      #expect(model.adapter?.base.path == TinySetup.modelFolder.path)
      #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("config.json").path))
      let merged = try QwenVLModel.load(folder: model)
      #expect(LoRA.adapters(in: merged).isEmpty)
      let logits = try withNoGrad { try merged.logits(ids: ids) }
      #expect(logits.maxAbsDifference(expected) <= 1e-4, "\(name): merged logits differ from the trained model's")
    }
  }

  /// models.student = a peft adapter folder with use_peft: the adapter's own tensors (not new
  /// ones, and its rank 4, not the config's lora_r 2) train on, and the saved adapter names the base.
  @Test func trainingFromAPeftAdapterContinuesItsAdapters() async throws {
    let root = TinySetup.temporaryFolder("from-adapter")
    defer { try? FileManager.default.removeItem(at: root) }
    let adapter = try adapterCopy(root)
    let run = try trainer(root, student: adapter, #", "use_peft": true, "lora_r": 2, "lora_alpha": 4, "lora_dropout": 0, "beta": 0.04"#)
    let fixture = try tensors(adapter.appendingPathComponent("adapter_model.safetensors"))
    let initial = LoRA.namedParameters(in: run.model, hubName: QwenModuleNames.hub)
    #expect(initial.count == fixture.count && fixture.count == 32)
    for (name, parameter) in initial {
      let saved = try #require(fixture[name], "\(name) is not in the adapter file")
      #expect(parameter.value.maxAbsDifference(saved) == 0, "\(name) does not start from the adapter")
      #expect(parameter.trainable)
    }
    #expect(!run.model.namedParameters().contains { $0.1.trainable })
    _ = try await run.run(log: { _ in })
    let final = root.appendingPathComponent("run/final")
    let written = try tensors(final.appendingPathComponent("adapter_model.safetensors"))
    #expect(Set(written.keys) == Set(fixture.keys))
    let moved = try fixture.filter { name, value in try #require(written[name]).maxAbsDifference(value) > 0 }.count
    #expect(moved > 0, "no adapter tensor changed in a step")
    let config = try LoRA.readConfig(directory: final)
    #expect(config.rank == 4 && config.alpha == 8)
    #expect(try AdapterFolder.read(final)?.base.path == TinySetup.modelFolder.path)
  }

  /// use_peft false: the adapter is merged into its base and the whole model trains.
  @Test func trainingFromAPeftAdapterWithoutPeftTrainsTheMergedModel() throws {
    let root = TinySetup.temporaryFolder("from-adapter-merged")
    defer { try? FileManager.default.removeItem(at: root) }
    let adapter = try adapterCopy(root)
    let run = try trainer(root, student: adapter, #", "beta": 0"#)
    #expect(LoRA.adapters(in: run.model).isEmpty)
    #expect(run.model.namedParameters().allSatisfy { $0.1.trainable })
    let merged = try QwenVLModel.load(directory: adapter)
    let base = try QwenVLModel.load(directory: TinySetup.modelFolder)
    let name = "model.layers.0.self_attn.q_proj.weight"
    func weight(_ model: QwenVLModel) throws -> Tensor { try #require(model.namedParameters().first { $0.0 == name }).1.value }
    #expect(try weight(run.model).maxAbsDifference(try weight(merged)) == 0)
    #expect(try weight(run.model).maxAbsDifference(try weight(base)) > 1e-3)
  }
}
}
