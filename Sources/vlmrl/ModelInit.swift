import ArgumentParser
import Datasets
import Foundation
import Jinja
import ModelConfig
import Models
import Tokenizers
import Torch

/// `vlmrl model init`: a new Qwen2.5-VL-architecture model with random weights and a given tokenizer,
/// written as a Hugging Face folder (the demo's starting point; tests and benchmarks use it too).
struct ModelCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "model", abstract: "Create model folders.",
                                                  subcommands: [Init.self])

  struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A small random Qwen2.5-VL-architecture model folder.")
    @Option(help: "Output folder.") var out: String
    @Option(help: "Tokenizer folder (tokenizer.json with Qwen's added tokens).") var tokenizer = "assets/tokenizer"
    @Option(help: "Decoder width.") var hidden = 128
    @Option(help: "Decoder layers.") var layers = 2
    @Option(help: "Attention heads (head_dim = hidden / heads).") var heads = 4
    @Option(help: "Key/value heads.") var kvHeads = 2
    @Option(help: "Vision tower width.") var visionHidden = 64
    @Option(help: "Vision blocks (the last uses full attention).") var visionDepth = 2
    @Option(help: "Largest image in pixels (max_pixels of the processor).") var maxPixels = 112 * 112
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func run() throws {
      let tokenizerFolder = URL(fileURLWithPath: tokenizer)
      let tok = try Tokenizer(directory: tokenizerFolder)
      func id(_ token: String) throws -> Int {
        guard let value = tok.tokenToId(token) else { throw ValidationError("\(tokenizer): no token \(token)") }
        return value
      }
      let headDim = hidden / heads
      guard headDim % 4 == 0, hidden % heads == 0 else { throw ValidationError("hidden / heads must be a multiple of 4") }
      let quarter = headDim / 2
      let section = [quarter - 2 * (quarter / 3), quarter / 3, quarter / 3]
      let vocab = (tok.vocabularySize + 63) / 64 * 64
      let json = """
      {"architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl", "attention_dropout": 0.0,
       "bos_token_id": \(try id("<|endoftext|>")), "eos_token_id": \(try id("<|im_end|>")), "hidden_act": "silu",
       "hidden_size": \(hidden), "image_token_id": \(try id("<|image_pad|>")), "initializer_range": 0.02,
       "intermediate_size": \(hidden * 2), "max_position_embeddings": 32768, "max_window_layers": \(layers),
       "num_attention_heads": \(heads), "num_hidden_layers": \(layers), "num_key_value_heads": \(kvHeads),
       "rms_norm_eps": 1e-06, "rope_scaling": {"mrope_section": \(section), "type": "mrope"}, "rope_theta": 1000000.0,
       "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "float32", "use_sliding_window": false,
       "video_token_id": \(try id("<|video_pad|>")),
       "vision_config": {"depth": \(visionDepth), "fullatt_block_indexes": [\(visionDepth - 1)], "hidden_act": "silu",
         "hidden_size": \(visionHidden), "in_chans": 3, "intermediate_size": \(visionHidden * 2), "num_heads": 2,
         "out_hidden_size": \(hidden), "patch_size": 14, "spatial_merge_size": 2, "spatial_patch_size": 14,
         "temporal_patch_size": 2, "tokens_per_second": 2, "window_size": 112},
       "vision_end_token_id": \(try id("<|vision_end|>")), "vision_start_token_id": \(try id("<|vision_start|>")),
       "vision_token_id": \(try id("<|vision_pad|>")), "vocab_size": \(vocab)}
      """
      let config = try QwenVLConfig(jsonText: json, file: "model init")
      Torch.manualSeed(seed)
      let model = QwenVLModel(config: config)
      let folder = URL(fileURLWithPath: out)
      try model.save(to: folder)
      let fm = FileManager.default
      for name in ["tokenizer.json", "tokenizer_config.json"] {
        let target = folder.appendingPathComponent(name)
        try? fm.removeItem(at: target)
        try fm.copyItem(at: tokenizerFolder.appendingPathComponent(name), to: target)
      }
      try Jinja.ChatTemplate.qwenVLInstructSource.write(to: folder.appendingPathComponent("chat_template.jinja"), atomically: true,
                                                        encoding: .utf8)
      let processor = """
      {"do_convert_rgb": true, "do_normalize": true, "do_rescale": true, "do_resize": true,
       "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_processor_type": "Qwen2VLImageProcessor",
       "image_std": [0.26862954, 0.26130258, 0.27577711], "max_pixels": \(maxPixels), "merge_size": 2, "min_pixels": 3136,
       "patch_size": 14, "resample": 3, "rescale_factor": 0.00392156862745098, "temporal_patch_size": 2}
      """
      try processor.write(to: folder.appendingPathComponent("preprocessor_config.json"), atomically: true, encoding: .utf8)
      print("wrote \(folder.path): Qwen2.5-VL architecture, \(model.parameterCount) parameters, vocab \(vocab)")
    }
  }
}

/// `vlmrl data synth`: deterministic synthetic tasks in the seeds' file formats.
struct Synth: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Write a synthetic dataset (shapes on backgrounds).")
  @Option(help: "single_box, multi_box, counting or multiple_choice.") var task = "single_box"
  @Option(help: "Records.") var count = 100
  @Option(help: "Image side in pixels.") var imageSize = 112
  @Option(help: "Random seed.") var seed: UInt64 = 0
  @Option(help: "Output folder.") var out: String
  func run() throws {
    guard let kind = SyntheticTask(rawValue: task) else {
      throw ValidationError("--task: unknown task '\(task)' (single_box, multi_box, counting, multiple_choice)")
    }
    let file = try SyntheticTasks.write(task: kind, count: count, seed: seed, imageSize: imageSize, to: URL(fileURLWithPath: out))
    print("wrote \(count) \(task) records to \(file.path)")
  }
}
