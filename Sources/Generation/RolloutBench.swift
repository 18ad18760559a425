import Foundation
import Models
import Torch

/// The rollout benchmark of the issue (GPU): synthetic prompts of `promptTokens` tokens with one
/// square image each, `samples` completions per prompt of exactly `newTokens` tokens (no EOS), on a
/// model folder (random weights with the real config will do). Returns a printable report; the
/// transformers peer is timed by a separate script on the same workload.
public enum RolloutBench {
  public static func run(modelDirectory: URL, switches: KernelSwitches = KernelSwitches(), prompts: Int, samples: Int, promptTokens: Int = 380, imageSide: Int = 448,
                         newTokens: Int = 256, dtype: DType = .bfloat16, device: Device = .cuda(0),
                         maxSlots: Int? = nil, checkEvery: Int? = nil, useCUDAGraphs: Bool = true,
                         useFusedKernels: Bool = true, stopIds: Int = 0, useBuckets: Bool = true,
                         recordAttention: Bool = false, bandwidthBytesPerSecond: Double? = nil) throws -> String {
    let model = try QwenVLModel.load(directory: modelDirectory, dtype: dtype, device: device)
    model.switches = switches
    let engine = RolloutEngine(model: model, maxSlots: maxSlots, checkEvery: checkEvery, useCUDAGraphs: useCUDAGraphs,
                               useFusedKernels: useFusedKernels, useBuckets: useBuckets)
    let requests = try syntheticRequests(model: model, prompts: prompts, samples: samples, promptTokens: promptTokens,
                                         imageSide: imageSide)
    // With `stopIds`, the first that many token ids end a sequence: on a random-weight model each
    // step stops with probability about stopIds / vocabulary, a spread of lengths like real rollouts.
    var settings = SamplingSettings(maxNewTokens: newTokens, temperature: 1)
    if stopIds > 0 { settings.eosTokenIds = Set(0..<stopIds) }
    // Attention diagnostics as training records them by default (the thin early/middle/late groups).
    if recordAttention {
      settings.recordAttentionLayers = AttentionLayerGroups.thin(layers: model.config.text.numHiddenLayers).allLayers
    }
    let card: String
    if case .cuda(let index) = device { card = CUDA.deviceName(index) } else { card = "cpu" }
    let bandwidth = bandwidthBytesPerSecond ?? Self.memoryBandwidth(card: card)
    // Warm-up on the same requests with 8 new tokens (as the transformers peer is warmed up in
    // bench/rollout.py): kernels, cuBLAS heuristics, allocator pools for these shapes, and the graph
    // capture path. A GRPO run calls `generate` every step with shapes like these, so the timed call
    // is its steady state.
    var warmUp = settings
    warmUp.maxNewTokens = 8
    _ = try engine.generate(requests, settings: warmUp)
    if device.isCUDA { CUDA.synchronize(); CUDA.resetPeakMemory() }
    let (completions, timings) = try engine.generate(requests, settings: settings)
    if device.isCUDA { CUDA.synchronize() }
    let peak = device.isCUDA ? CUDA.memoryStats().peakAllocated : 0

    let text = model.config.text
    let weightBytes = (model.language.parameterCount + (model.config.tieWordEmbeddings ? 0 : text.vocabSize * text.hiddenSize))
      * dtype.byteSize
    let kvBytesPerToken = 2 * text.numHiddenLayers * text.numKeyValueHeads * text.headDim * dtype.byteSize
    // Average keys read per sequence per step: the prompt plus half the completion.
    let keysPerStep = Double(completions.count) * (Double(promptTokens) + Double(newTokens) / 2)
    let bytesPerStep = Double(weightBytes) + keysPerStep * Double(kvBytesPerToken)
    let secondsPerStep = timings.millisecondsPerStep / 1000
    let roofline = secondsPerStep > 0 ? bytesPerStep / secondsPerStep / bandwidth : 0
    func f(_ value: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", value) }
    return """
      rollout: \(prompts) prompts x \(samples) samples = \(completions.count) sequences, \(promptTokens)-token prompts with a \
      \(imageSide)x\(imageSide) image, \(newTokens) new tokens, \(dtype) on \(device) (\(card))
      attention diagnostics \(recordAttention ? "recorded (\(switches.attentionMass.rawValue)), layers \(settings.recordAttentionLayers)" : "off")
      slots \(timings.slots), decode steps \(timings.decodeSteps) (\(timings.graphReplays) graph replays, \(timings.bucketSteps) over fewer slots)\
      \(stopIds > 0 ? ", \(stopIds) stop ids: \(completions.filter(\.finished).count) of \(completions.count) stopped early" : "")
      decode path        \(timings.fusedKernels ? "fused bf16 kernels" : "libtorch ops" + (timings.fusedUnavailableReason.map { " (\($0))" } ?? ""))
      vision + prefill   \(f(timings.prefillSeconds, 3)) s
      decode             \(f(timings.decodeSeconds, 3)) s   (\(f(timings.millisecondsPerStep)) ms per step)
      total              \(f(timings.totalSeconds, 3)) s   \(f(timings.tokensPerSecond, 0)) output tokens/s
      peak memory        \(f(Double(peak) / 1_073_741_824)) GiB
      roofline           \(f(roofline * 100, 1))% of \(f(bandwidth / 1e12, 2)) TB/s \
      (\(f(bytesPerStep / 1e9)) GB per step: weights + keys/values read)
      """ + (recordAttention ? "\n" + massSummary(completions) : "")
  }

  /// Per recorded layer, the mean attention mass on text and on image keys over every recorded entry
  /// of every completion (the same tokens give the same figures whichever way they are computed:
  /// the attention-mass kernel against the ops it replaces).
  static func massSummary(_ completions: [Completion]) -> String {
    let masses = completions.compactMap(\.attention)
    guard let layers = masses.first?.layers else { return "attention mass     none recorded" }
    let parts = layers.indices.map { l -> String in
      let text = masses.flatMap { $0.layerTextMass[l] }, vision = masses.flatMap { $0.layerVisionMass[l] }
      func mean(_ values: [Float]) -> Double { values.reduce(0.0) { $0 + Double($1) } / Double(Swift.max(1, values.count)) }
      return String(format: "layer %d text %.6f image %.6f", layers[l], mean(text), mean(vision))
    }
    return "attention mass     " + parts.joined(separator: "; ")
  }

  /// Peak memory bandwidth of the card by its name (the roofline's denominator): H100 SXM 3.35 TB/s,
  /// H100 PCIe 2.0, H200 4.8, A100 80GB 2.0 (40GB 1.56); other cards 4.8 (say so with the explicit argument).
  public static func memoryBandwidth(card: String) -> Double {
    let name = card.uppercased()
    if name.contains("H200") { return 4.8e12 }
    if name.contains("H100") { return name.contains("PCIE") ? 2.0e12 : 3.35e12 }
    if name.contains("A100") { return name.contains("40GB") ? 1.555e12 : 2.0e12 }
    return 4.8e12
  }

  /// Prompts of `promptTokens` ids: a short text head, `<|vision_start|>`, the image's pad tokens,
  /// `<|vision_end|>` and text up to the length; random patches; distinct seeds.
  static func syntheticRequests(model: QwenVLModel, prompts: Int, samples: Int, promptTokens: Int,
                                imageSide: Int) throws -> [RolloutRequest] {
    let config = model.config
    let patch = config.vision.patchSize, merge = config.vision.spatialMergeSize
    let side = imageSide / patch
    let grid = [1, side, side]
    let imageTokens = side * side / (merge * merge)
    guard promptTokens >= imageTokens + 16 else {
      throw RolloutError.invalidSettings("promptTokens \(promptTokens) leaves no room around \(imageTokens) image tokens")
    }
    let rowWidth = 3 * config.vision.temporalPatchSize * patch * patch
    // Ordinary text ids stay below the special tokens (Qwen's start at 151643).
    let textLimit = Swift.min(config.text.vocabSize, 151_643)
    return (0..<prompts).map { index in
      let generator = Generator(seed: UInt64(index) + 1)
      let head = Tensor.randint(0, textLimit, [14], generator: generator).ints()
      let tail = Tensor.randint(0, textLimit, [promptTokens - imageTokens - 16], generator: generator).ints()
      let ids = head + [config.visionStartTokenId] + Array(repeating: config.imageTokenId, count: imageTokens)
        + [config.visionEndTokenId] + tail
      let pixels = Tensor.randn([side * side, rowWidth], generator: generator).to(model.dtype, device: model.device)
      return RolloutRequest(promptIDs: ids, pixelValues: pixels, grids: [grid], samples: samples, seed: UInt64(index))
    }
  }
}

extension RolloutBench {
  /// Greedy agreement check on the device: the engine's batched greedy tokens against the
  /// single-prompt KV-cache path (`QwenVLModel.generate`) for the same synthetic prompts. In bf16 the
  /// two paths use different attention kernels, so late tokens may part where two logits are within
  /// rounding; the report gives the first divergence per sequence.
  public static func verifyGreedy(modelDirectory: URL, switches: KernelSwitches = KernelSwitches(), prompts: Int, newTokens: Int, dtype: DType, device: Device) throws -> String {
    let model = try QwenVLModel.load(directory: modelDirectory, dtype: dtype, device: device)
    model.switches = switches
    let requests = try syntheticRequests(model: model, prompts: prompts, samples: 2, promptTokens: 380, imageSide: 448)
    let engine = RolloutEngine(model: model)
    let (completions, _) = try engine.generate(requests, settings: .greedy(maxNewTokens: newTokens))
    var lines: [String] = []
    var identical = 0
    for completion in completions.sorted(by: { ($0.requestIndex, $0.sampleIndex) < ($1.requestIndex, $1.sampleIndex) }) {
      let request = requests[completion.requestIndex]
      var options = GenerationOptions()
      options.maxNewTokens = newTokens
      options.suppressedTokenIds = RolloutEngine(model: model).visionSpecialTokens
      let reference = try model.generate(promptIDs: request.promptIDs, pixelValues: request.pixelValues, grids: request.grids,
                                         options: options).tokens
      let firstDifference = zip(completion.tokens, reference).enumerated().first { $0.element.0 != $0.element.1 }?.offset
      if firstDifference == nil && completion.tokens.count == reference.count { identical += 1 }
      lines.append("prompt \(completion.requestIndex) sample \(completion.sampleIndex): "
        + (firstDifference.map { "first difference at token \($0)" } ?? "identical (\(reference.count) tokens)"))
    }
    lines.append("greedy engine vs single-prompt path: \(identical)/\(completions.count) sequences identical over \(newTokens) tokens")
    return lines.joined(separator: "\n")
  }

  /// The fused decode kernels against the plain libtorch decode step, both through the engine on the
  /// same synthetic prompts: greedy tokens (first divergence per sequence) and the greedy log-probs of
  /// the tokens before any divergence (max |difference|).
  public static func verifyFused(modelDirectory: URL, switches: KernelSwitches = KernelSwitches(), prompts: Int, samples: Int, newTokens: Int, device: Device) throws -> String {
    let model = try QwenVLModel.load(directory: modelDirectory, dtype: .bfloat16, device: device)
    model.switches = switches
    let requests = try syntheticRequests(model: model, prompts: prompts, samples: samples, promptTokens: 380, imageSide: 448)
    let settings = SamplingSettings.greedy(maxNewTokens: newTokens)
    func ordered(_ c: [Completion]) -> [Completion] { c.sorted { ($0.requestIndex, $0.sampleIndex) < ($1.requestIndex, $1.sampleIndex) } }
    let (fused, fusedTimings) = try RolloutEngine(model: model, useFusedKernels: true).generate(requests, settings: settings)
    let (plain, _) = try RolloutEngine(model: model, useFusedKernels: false).generate(requests, settings: settings)
    guard fusedTimings.fusedKernels else { return "fused kernels unavailable: \(fusedTimings.fusedUnavailableReason ?? "?")" }
    var identical = 0, maxLogProbDifference = 0.0, firstDifferences: [Int] = []
    for (a, b) in zip(ordered(fused), ordered(plain)) {
      let first = zip(a.tokens, b.tokens).enumerated().first { $0.element.0 != $0.element.1 }?.offset
      if first == nil && a.tokens.count == b.tokens.count { identical += 1 } else { firstDifferences.append(first ?? Swift.min(a.tokens.count, b.tokens.count)) }
      for i in 0..<(first ?? Swift.min(a.tokens.count, b.tokens.count)) {
        maxLogProbDifference = Swift.max(maxLogProbDifference, Double(abs(a.logProbs[i] - b.logProbs[i])))
      }
    }
    return "fused vs plain decode, greedy, \(fused.count) sequences x \(newTokens) tokens: \(identical) identical; "
      + "first differences at \(firstDifferences.sorted()); max |log-prob difference| before divergence "
      + String(format: "%.4f", maxLogProbDifference)
  }

  /// The attention diagnostics of the three paths (`AttentionMassPath`: the decode-attention kernel's
  /// fused variant, the separate kernel, the ops reference) through the engine on the same synthetic
  /// prompts, greedy, recording the thin layer groups as `--record-attention` does: per recorded
  /// layer each path's mean text and image mass and the max |difference| from the ops over the
  /// entries whose tokens agree (entry `i` is compared while tokens `0...i` are the same).
  public static func verifyAttentionMass(modelDirectory: URL, switches: KernelSwitches = KernelSwitches(), prompts: Int,
                                         samples: Int, newTokens: Int, device: Device) throws -> String {
    let model = try QwenVLModel.load(directory: modelDirectory, dtype: .bfloat16, device: device)
    model.switches = switches
    let requests = try syntheticRequests(model: model, prompts: prompts, samples: samples, promptTokens: 380, imageSide: 448)
    var settings = SamplingSettings.greedy(maxNewTokens: newTokens)
    settings.recordAttentionLayers = AttentionLayerGroups.thin(layers: model.config.text.numHiddenLayers).allLayers
    var runs: [AttentionMassPath: [Completion]] = [:]
    for path in AttentionMassPath.allCases {
      var pathSwitches = switches
      pathSwitches.attentionMass = path
      let (completions, timings) = try RolloutEngine(model: model, switches: pathSwitches).generate(requests, settings: settings)
      guard timings.fusedKernels else { return "fused kernels unavailable: \(timings.fusedUnavailableReason ?? "?")" }
      runs[path] = completions.sorted { ($0.requestIndex, $0.sampleIndex) < ($1.requestIndex, $1.sampleIndex) }
    }
    guard let reference = runs[.ops], let layers = reference.first?.attention?.layers else { return "attention mass: none recorded" }
    func mean(_ path: AttentionMassPath, _ layer: Int, image: Bool) -> Double {
      let values = (runs[path] ?? []).compactMap(\.attention).flatMap { image ? $0.layerVisionMass[layer] : $0.layerTextMass[layer] }
      return values.reduce(0.0) { $0 + Double($1) } / Double(Swift.max(1, values.count))
    }
    // Max |path - ops| of one layer over the comparable entries, and how many entries that was.
    func difference(_ path: AttentionMassPath, _ layer: Int) -> (max: Double, entries: Int) {
      var largest = 0.0, entries = 0
      for (a, b) in zip(runs[path] ?? [], reference) {
        guard let x = a.attention, let y = b.attention else { continue }
        let agree = zip(a.tokens, b.tokens).prefix { $0 == $1 }.count
        let count = Swift.min(agree, x.layerTextMass[layer].count, y.layerTextMass[layer].count)
        for i in 0..<count {
          largest = Swift.max(largest, Double(abs(x.layerTextMass[layer][i] - y.layerTextMass[layer][i])),
                              Double(abs(x.layerVisionMass[layer][i] - y.layerVisionMass[layer][i])))
        }
        entries += count
      }
      return (largest, entries)
    }
    var lines = ["attention mass, greedy, \(reference.count) sequences x \(newTokens) tokens, layers \(layers): "
      + "fused (inside the decode-attention kernel), separate (kernel of its own), ops (reference)"]
    var worst: [AttentionMassPath: Double] = [:]
    for (l, layer) in layers.enumerated() {
      let means = AttentionMassPath.allCases.map { path in
        "\(path.rawValue) " + String(format: "text %.6f image %.6f", mean(path, l, image: false), mean(path, l, image: true))
      }
      let fused = difference(.fused, l), separate = difference(.separate, l)
      worst[.fused] = Swift.max(worst[.fused] ?? 0, fused.max)
      worst[.separate] = Swift.max(worst[.separate] ?? 0, separate.max)
      lines.append("layer \(layer): " + means.joined(separator: "; ")
        + String(format: "; max |fused - ops| %.2e, max |separate - ops| %.2e over %d entries", fused.max, separate.max, fused.entries))
    }
    lines.append(String(format: "attention mass vs ops, all layers: max |fused - ops| %.2e, max |separate - ops| %.2e",
                        worst[.fused] ?? 0, worst[.separate] ?? 0))
    return lines.joined(separator: "\n")
  }
}
