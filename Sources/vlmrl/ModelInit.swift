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
    @Option(help: "Output folder (refused when it exists and is not empty, unless --overwrite).") var out: String
    @Option(help: "Tokenizer folder (tokenizer.json with Qwen's added tokens; default: the checkout's assets/tokenizer).")
    var tokenizer: String?
    @Option(help: "Decoder width.") var hidden = 128
    @Option(help: "Decoder layers.") var layers = 2
    @Option(help: "Attention heads (head_dim = hidden / heads).") var heads = 4
    @Option(help: "Key/value heads.") var kvHeads = 2
    @Option(help: "Vision tower width.") var visionHidden = 64
    @Option(help: "Vision blocks (the last uses full attention).") var visionDepth = 2
    @Option(help: "Largest image in pixels (max_pixels of the processor).") var maxPixels = 112 * 112
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Flag(help: "Replace an existing output folder.") var overwrite = false

    /// Largest model `init` draws: it makes small test and demo models (the 3B is 3.8e9).
    static let maxParameters = 4_000_000_000

    /// `assets/tokenizer` of the checkout the binary was built in (`.build*/CONFIG/vlmrl`), or next
    /// to a `make dist` binary; nil when neither exists.
    static func defaultTokenizer() -> URL? {
      let executable = (Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])).resolvingSymlinksInPath()
      var folder = executable.deletingLastPathComponent()
      for _ in 0..<4 {
        let candidate = folder.appendingPathComponent("assets/tokenizer")
        if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("tokenizer.json").path) { return candidate }
        folder = folder.deletingLastPathComponent()
      }
      return nil
    }

    /// Checks the flags before any arithmetic on them.
    func checkFlags() throws {
      for (flag, value, range) in [("--hidden", hidden, 8...16_384), ("--layers", layers, 1...256), ("--heads", heads, 1...256),
                                   ("--kv-heads", kvHeads, 1...256), ("--vision-hidden", visionHidden, 8...8_192),
                                   ("--vision-depth", visionDepth, 1...128), ("--max-pixels", maxPixels, 3136...16_777_216)] {
        guard range.contains(value) else {
          throw CLIError("\(flag) \(value) is outside \(range.lowerBound)...\(range.upperBound)")
        }
      }
      guard hidden % heads == 0, (hidden / heads) % 4 == 0 else {
        throw CLIError("--hidden \(hidden) / --heads \(heads) must be a whole multiple of 4 (the head width)")
      }
      guard heads % kvHeads == 0 else { throw CLIError("--heads \(heads) must be a multiple of --kv-heads \(kvHeads)") }
      guard visionHidden % 2 == 0, (visionHidden / 2) % 4 == 0 else {
        throw CLIError("--vision-hidden \(visionHidden) must be a multiple of 8 (2 heads of a width divisible by 4)")
      }
      // Decoder: embeddings (a Qwen-sized vocabulary) + per layer attention and MLP; vision: per
      // block attention and MLP.
      let decoder = 152_064 * hidden + layers * (4 * hidden * hidden + 3 * hidden * hidden * 2)
      let vision = visionDepth * (4 * visionHidden * visionHidden + 3 * visionHidden * visionHidden * 2)
      guard decoder + vision <= Self.maxParameters else {
        throw CLIError("the requested model has about \(decoder + vision) parameters, over the \(Self.maxParameters) that model init makes")
      }
    }

    func run() throws {
      try checkFlags()
      let folder = URL(fileURLWithPath: out)
      try SafeOutput.refuseExisting(folder, overwrite: overwrite)
      guard let tokenizerFolder = tokenizer.map({ URL(fileURLWithPath: $0) }) ?? Self.defaultTokenizer() else {
        throw CLIError("--tokenizer is required: no assets/tokenizer found next to this vlmrl binary")
      }
      let tokenizerFile = tokenizerFolder.appendingPathComponent("tokenizer.json")
      guard FileManager.default.fileExists(atPath: tokenizerFile.path) else {
        throw CLIError("--tokenizer \(tokenizerFolder.path): no tokenizer.json there")
      }
      let tok = try Tokenizer(directory: tokenizerFolder)
      func id(_ token: String) throws -> Int {
        guard let value = tok.tokenToId(token) else { throw CLIError("\(tokenizerFile.path): no token \(token)") }
        return value
      }
      let headDim = hidden / heads
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
      // Written into a temporary folder next to --out and renamed into place when complete.
      try SafeOutput.writeFolder(folder, overwrite: overwrite) { staging in
        try model.save(to: staging)
        for name in ["tokenizer.json", "tokenizer_config.json"] {
          try FileManager.default.copyItem(at: tokenizerFolder.appendingPathComponent(name), to: staging.appendingPathComponent(name))
        }
        try Jinja.ChatTemplate.qwenVLInstructSource.write(to: staging.appendingPathComponent("chat_template.jinja"), atomically: true,
                                                          encoding: .utf8)
        let processor = """
        {"do_convert_rgb": true, "do_normalize": true, "do_rescale": true, "do_resize": true,
         "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_processor_type": "Qwen2VLImageProcessor",
         "image_std": [0.26862954, 0.26130258, 0.27577711], "max_pixels": \(maxPixels), "merge_size": 2, "min_pixels": 3136,
         "patch_size": 14, "resample": 3, "rescale_factor": 0.00392156862745098, "temporal_patch_size": 2}
        """
        try processor.write(to: staging.appendingPathComponent("preprocessor_config.json"), atomically: true, encoding: .utf8)
      }
      print("wrote \(folder.path): Qwen2.5-VL architecture, \(model.parameterCount) parameters, vocab \(vocab)")
    }
  }
}

/// `vlmrl data synth`: deterministic synthetic tasks in the seeds' file formats.
struct Synth: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Write a synthetic dataset (shapes on backgrounds).")
  @Option(help: "single_box, multi_box, counting, multiple_choice or region_caption.") var task = "single_box"
  @Option(help: "Records.") var count = 100
  @Option(help: "Image side in pixels.") var imageSize = 112
  @Option(help: "Random seed.") var seed: UInt64 = 0
  @Option(help: "single_box background: gradient (random light colors) or coordinates (fixed two-axis gradient).")
  var background = "gradient"
  @Option(help: "single_box: centre each shape in a cell of its own of this many pixels (default: anywhere).") var cell: Int?
  @Option(help: "single_box: shape sides MIN-MAX in pixels (default: image size / 8 to / 4).") var sides: String?
  @Option(help: "single_box: sides are MIN plus a multiple of this many pixels.") var sideStep = 1
  @Option(help: "single_box: most distractors beside the target (0...2).") var distractors = 2
  @Flag(help: "single_box: distractors never share the target's color.") var distinctColors = false
  @Option(help: "single_box: move each corner of the recorded box by up to this many pixels (label noise; the shape stays).")
  var labelJitter = 0
  @Option(help: "Output folder (refused when it exists and is not empty, unless --overwrite).") var out: String
  @Flag(help: "Replace an existing output folder.") var overwrite = false

  /// The single-box layout the flags ask for.
  func layout() throws -> SyntheticLayout {
    guard let paint = SyntheticLayout.Background(rawValue: background) else {
      throw CLIError("--background: '\(background)' is not one of \(SyntheticLayout.Background.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    var range: ClosedRange<Int>?
    if let sides {
      let bounds = sides.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
      guard bounds.count == 2, let low = bounds[0], let high = bounds[1], low <= high else {
        throw CLIError("--sides '\(sides)' is not MIN-MAX (e.g. 14-28)")
      }
      range = low...high
    }
    var layout = SyntheticLayout(background: paint, cell: cell, sides: range, sideStep: sideStep, maxDistractors: distractors,
                                 distinctColors: distinctColors)
    layout.labelJitter = labelJitter
    if let problem = layout.problem(imageSize: imageSize) { throw CLIError("single_box layout: \(problem)") }
    return layout
  }

  func run() throws {
    guard let kind = SyntheticTask(rawValue: task) else {
      throw CLIError("--task: unknown task '\(task)' (\(SyntheticTask.allCases.map(\.rawValue).joined(separator: ", ")))")
    }
    guard (0...1_000_000).contains(count) else { throw CLIError("--count \(count) is outside 0...1000000") }
    guard (32...SyntheticTasks.maxImageSize).contains(imageSize) else {
      throw CLIError("--image-size \(imageSize) is outside 32...\(SyntheticTasks.maxImageSize)")
    }
    let layout = try layout()
    if layout != .standard && kind != .singleBox {
      throw CLIError("--background, --cell, --sides, --side-step, --distractors, --distinct-colors and --label-jitter apply to --task single_box only")
    }
    let folder = URL(fileURLWithPath: out)
    // Written into a temporary folder next to --out and renamed into place when complete.
    let name = try SafeOutput.writeFolder(folder, overwrite: overwrite) { staging in
      try SyntheticTasks.write(task: kind, count: count, seed: seed, imageSize: imageSize, layout: layout, to: staging)
        .lastPathComponent
    }
    print("wrote \(count) \(task) records to \(folder.appendingPathComponent(name).path)")
  }
}
