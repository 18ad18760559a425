import ArgumentParser
import Foundation
import Generation
import Models
import NN
import Torch

/// `vlmrl bench`: measurements that bench/ scripts run on the GPU machine next to their peers.
struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Timing workloads (run by the scripts in bench/).",
                                                  subcommands: [TrainStep.self, Rollout.self, Collectives.self])

  /// The rollout engine on synthetic prompts (issue workload: ~380-token prompts with a 448x448 image,
  /// 256 new tokens, EOS ignored).
  struct Rollout: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Rollout engine throughput on synthetic prompts.")
    @Option(help: "Model folder.") var model: String
    @Option(help: "Prompts.") var prompts = 8
    @Option(help: "Samples per prompt.") var samples = 8
    @Option(help: "New tokens per sequence.") var newTokens = 256
    @Option(help: "Prompt tokens (including the image tokens).") var promptTokens = 380
    @Option(help: "Image side in pixels.") var imageSize = 448
    @Option(help: "cpu or cuda[:i].") var device = "cuda"
    @Option(help: "Parameter dtype.") var dtype = "bfloat16"
    @Flag(help: "Decode without CUDA graphs.") var noCudaGraphs = false
    @Option(help: "Stop-check interval in steps.") var checkEvery: Int?
    @Flag(help: "Instead of timing: compare greedy engine tokens with the single-prompt path.") var verifyGreedy = false
    @Flag(help: "Instead of timing: compare the fused decode kernels with the plain libtorch decode (greedy).") var verifyFused = false
    @Flag(help: "Instead of timing: compare the attention diagnostics of the fused decode-attention variant and of the separate kernel with the ops reference, per recorded layer (greedy).")
    var verifyAttentionMass = false
    @Flag(help: "Decode with the plain libtorch ops instead of the fused kernels.") var noFusedKernels = false
    @Option(help: "Treat this many ordinary token ids as EOS, so that sequences stop at different steps (0: none, every sequence runs the full length).")
    var stopIds = 0
    @Flag(help: "Keep decoding all slots to the end (no compaction into smaller batch buckets).") var noBuckets = false
    @Flag(help: "Record attention diagnostics as training does with compute_attention_metrics (thin layer groups).")
    var recordAttention = false
    func run() throws {
      let device = try usableDevice(device)
      guard let dtype = DType(name: dtype) else { throw ValidationError("--dtype: unknown dtype '\(self.dtype)'") }
      if verifyFused {
        print(try RolloutBench.verifyFused(modelDirectory: URL(fileURLWithPath: model), switches: KernelSwitches.fromEnvironment(), prompts: prompts, samples: samples,
                                           newTokens: newTokens, device: device))
        return
      }
      if verifyAttentionMass {
        print(try RolloutBench.verifyAttentionMass(modelDirectory: URL(fileURLWithPath: model), switches: KernelSwitches.fromEnvironment(),
                                                   prompts: prompts, samples: samples, newTokens: newTokens, device: device))
        return
      }
      if verifyGreedy {
        print(try RolloutBench.verifyGreedy(modelDirectory: URL(fileURLWithPath: model), switches: KernelSwitches.fromEnvironment(), prompts: prompts, newTokens: newTokens,
                                            dtype: dtype, device: device))
        return
      }
      print(try RolloutBench.run(modelDirectory: URL(fileURLWithPath: model), switches: KernelSwitches.fromEnvironment(), prompts: prompts, samples: samples,
                                 promptTokens: promptTokens, imageSide: imageSize, newTokens: newTokens, dtype: dtype,
                                 device: device, checkEvery: checkEvery, useCUDAGraphs: !noCudaGraphs,
                                 useFusedKernels: !noFusedKernels, stopIds: stopIds, useBuckets: !noBuckets,
                                 recordAttention: recordAttention))
    }
  }

  /// Forward + backward of a batch of equal-length sequences, each with one square image, through the
  /// chunked log-prob path (the GRPO policy pass), timed after a warm-up.
  struct TrainStep: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train-step",
                                                    abstract: "Forward+backward time and peak memory of one batch.")
    @Option(help: "Model folder.") var model: String
    @Option(help: "Sequences in the batch.") var batch = 8
    @Option(help: "Tokens per sequence.") var length = 1024
    @Option(help: "Image side in pixels (a multiple of 28).") var imageSize = 448
    @Option(help: "Tokens after the image that are scored (the completion).") var completion = 256
    @Option(help: "Timed iterations after one warm-up.") var iterations = 3
    @Option(help: "cpu or cuda[:i].") var device = "cuda"
    @Option(help: "Parameter dtype.") var dtype = "bfloat16"
    @Flag(help: "Recompute decoder layers in backward.") var gradientCheckpointing = false

    func run() throws {
      let device = try usableDevice(device)
      guard let dtype = DType(name: dtype) else { throw ValidationError("--dtype: unknown dtype '\(self.dtype)'") }
      let qwen = try QwenVLModel.load(directory: URL(fileURLWithPath: model), dtype: dtype, device: device)
      qwen.switches = KernelSwitches.fromEnvironment()
      let grid = imageSize / 14
      let imageTokens = grid * grid / 4
      let generator = Generator(seed: 0)
      // Ordinary text ids, below the special tokens.
      let maxID = Swift.min(qwen.config.visionStartTokenId - 10, qwen.config.text.vocabSize)
      var sequences: [SequenceInput] = []
      for _ in 0..<batch {
        let prefix = Tensor.randint(0, maxID, [16], generator: generator).ints()
        let textLength = length - 16 - imageTokens - 2
        let text = Tensor.randint(0, maxID, [textLength], generator: generator).ints()
        let ids = prefix + [qwen.config.visionStartTokenId] + Array(repeating: qwen.config.imageTokenId, count: imageTokens)
          + [qwen.config.visionEndTokenId] + text
        sequences.append(SequenceInput(ids: ids, promptLength: length - completion, grids: [[1, grid, grid]]))
      }
      let pixels = Tensor.randn([batch * grid * grid, 1176], device: device, generator: Generator(seed: 1, device: device))
      func step() throws {
        let hidden = try qwen.batchHiddenStates(sequences, pixelValues: pixels, checkpointLayers: gradientCheckpointing)
        let scored = hidden.narrow(1, start: length - completion - 1, length: completion).reshape(-1, hidden.size(-1))
        let targets = Tensor(sequences.flatMap { Array($0.ids.suffix(completion)) }).to(device)
        let loss = -qwen.tokenLogProbs(hidden: scored, targets: targets).mean()
        loss.backward()
        RecomputeRegistry.shared.releaseAll()
        for parameter in qwen.parameters { parameter.grad = nil }
      }
      try step()
      if device.isCUDA { CUDA.synchronize(); CUDA.resetPeakMemory() }
      var times: [Double] = []
      for _ in 0..<iterations {
        let start = DispatchTime.now().uptimeNanoseconds
        try step()
        if device.isCUDA { CUDA.synchronize() }
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
      }
      let median = times.sorted()[times.count / 2]
      let peak = device.isCUDA ? Double(CUDA.memoryStats().peakAllocated) / 1_073_741_824 : 0
      print(String(format: "vlmrl train-step: %d x %d tokens (image %dx%d, %d scored), %@: median %.3f s, %.0f tokens/s, peak %.1f GiB",
                   batch, length, imageSize, imageSize, completion, gradientCheckpointing ? "checkpointing" : "no checkpointing",
                   median, Double(batch * length) / median, peak))
    }
  }
}
