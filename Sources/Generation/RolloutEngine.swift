import Foundation
import Models
import Torch

/// Batched generation of GRPO rollouts: every request's G completions, with the vision tower and the
/// prompt prefill run once per request, a preallocated slot KV cache refilled as sequences finish,
/// and token choice on the device (see docs/generation.md).
public final class RolloutEngine: @unchecked Sendable {
  public let model: QwenVLModel
  /// Upper bound on concurrent sequences; nil = as many as fit (CUDA: derived from free memory).
  public let maxSlots: Int?
  /// Decode steps between host stop checks (1 on CPU; 8 on CUDA, where every check is a
  /// device-to-host synchronisation). Tokens after a stop are discarded on the host.
  public let checkEvery: Int
  /// Capture the decode step as a CUDA graph and replay it (CUDA only).
  public let useCUDAGraphs: Bool
  /// Share of free GPU memory the slot cache and sampling buffers may take.
  public let memoryFraction: Double
  /// Run the decode step with the fused bfloat16 CUDA kernels (`FusedDecoder`) when they apply;
  /// false keeps the plain libtorch ops (the reference the fused path is checked against).
  public let useFusedKernels: Bool
  /// Prefill the prompts admitted together in one packed pass (`QwenVLModel.packedPrefill`); nil =
  /// where it runs on varlen flash attention (CUDA, half precision). Per-prompt prefill otherwise.
  public let packedPrefill: Bool?
  /// Once no sequence waits, compact the running ones into the first slots and decode only the
  /// smallest batch bucket that holds them (halvings of the slot count, down to 64 on CUDA).
  public let useBuckets: Bool
  /// The fast-path switches (the model's unless given; `packedPrefill` and `useBuckets` override theirs).
  public let switches: KernelSwitches

  public init(model: QwenVLModel, maxSlots: Int? = nil, checkEvery: Int? = nil, useCUDAGraphs: Bool = true,
              memoryFraction: Double = 0.85, useFusedKernels: Bool = true, packedPrefill: Bool? = nil,
              useBuckets: Bool? = nil, switches: KernelSwitches? = nil) {
    let switches = switches ?? model.switches
    self.switches = switches
    self.model = model
    self.maxSlots = maxSlots
    self.checkEvery = Swift.max(1, checkEvery ?? (model.device.isCUDA ? 8 : 1))
    self.useCUDAGraphs = useCUDAGraphs
    self.memoryFraction = memoryFraction
    self.useFusedKernels = useFusedKernels
    self.packedPrefill = packedPrefill ?? switches.packedPrefill
    self.useBuckets = useBuckets ?? switches.slotBuckets
  }

  /// Stage-by-stage progress on standard error when `switches.trace` is on (for locating a failure
  /// on a remote GPU machine).
  func trace(_ message: @autoclosure () -> String) {
    guard switches.trace else { return }
    FileHandle.standardError.write(Data("[engine] \(message())\n".utf8))
  }

  /// The model's vision special tokens (suppressed unless the settings say otherwise).
  public var visionSpecialTokens: [Int] {
    let c = model.config
    return [c.visionStartTokenId, c.visionEndTokenId, c.imageTokenId, c.videoTokenId] + (c.visionTokenId.map { [$0] } ?? [])
  }

  /// Generates `samples` completions for every request. Completions come back in request order,
  /// then sample order.
  public func generate(_ requests: [RolloutRequest], settings: SamplingSettings) throws
    -> (completions: [Completion], timings: RolloutTimings) {
    try validate(requests, settings)
    let sequenceCount = requests.reduce(0) { $0 + $1.samples }
    guard sequenceCount > 0 else { return ([], RolloutTimings()) }
    let maxPrompt = requests.map(\.promptIDs.count).max() ?? 0
    let (maxLength, overflow) = (maxPrompt + checkEvery).addingReportingOverflow(settings.maxNewTokens)
    guard !overflow else { throw RolloutError.invalidSettings("maxNewTokens \(settings.maxNewTokens) is beyond any memory") }
    // Made before planning: its packed weights are part of what the free memory has to hold.
    let fused: (decoder: FusedDecoder?, reason: String?) = useFusedKernels && model.device.isCUDA
      ? withNoGrad { FusedDecoder.make(model.language) } : (nil, useFusedKernels ? nil : "disabled")
    trace("fused decoder: \(fused.decoder != nil ? "yes" : "no") \(fused.reason ?? "")")
    let slots = try plannedSlots(sequences: sequenceCount, maxLength: maxLength, maxPrompt: maxPrompt,
                                 columns: maxLength - maxPrompt,
                                 recordedLayers: Set(settings.recordAttentionLayers).count)
    trace("\(sequenceCount) sequences, \(slots) slots, max length \(maxLength)")
    let run = RolloutRun(engine: self, requests: requests, settings: settings, slots: slots, maxLength: maxLength,
                         fused: fused.decoder)
    run.timings.fusedKernels = fused.decoder != nil
    run.timings.fusedUnavailableReason = fused.reason
    return try withNoGrad { try run.run() }
  }

  func validate(_ requests: [RolloutRequest], _ settings: SamplingSettings) throws {
    guard settings.maxNewTokens >= 1 else { throw RolloutError.invalidSettings("maxNewTokens must be at least 1, got \(settings.maxNewTokens)") }
    guard settings.topP > 0 && settings.topP <= 1 else { throw RolloutError.invalidSettings("topP must be in (0, 1], got \(settings.topP)") }
    guard settings.topK >= 0 else { throw RolloutError.invalidSettings("topK must be >= 0, got \(settings.topK)") }
    guard settings.minP >= 0 && settings.minP <= 1 else { throw RolloutError.invalidSettings("minP must be in [0, 1], got \(settings.minP)") }
    guard settings.repetitionPenalty > 0 else {
      throw RolloutError.invalidSettings("repetitionPenalty must be > 0, got \(settings.repetitionPenalty)")
    }
    let layers = model.config.text.numHiddenLayers
    if let bad = settings.recordAttentionLayers.first(where: { $0 < 0 || $0 >= layers }) {
      throw RolloutError.invalidSettings("recordAttentionLayers has \(bad); the model has layers 0..<\(layers)")
    }
    let vocab = model.config.text.vocabSize
    for (index, request) in requests.enumerated() {
      guard !request.promptIDs.isEmpty else { throw RolloutError.invalidRequest(index: index, reason: "empty prompt") }
      guard request.samples >= 0 else { throw RolloutError.invalidRequest(index: index, reason: "samples is \(request.samples)") }
      if let bad = request.promptIDs.first(where: { $0 < 0 || $0 >= vocab }) {
        throw RolloutError.invalidRequest(index: index, reason: "token id \(bad) outside the vocabulary 0..<\(vocab)")
      }
      if request.grids.contains(where: { $0.count != 3 || $0.contains { $0 <= 0 } }) {
        throw RolloutError.invalidRequest(index: index, reason: "each image grid must be three positive numbers (t, h, w)")
      }
      if !request.grids.isEmpty && request.pixelValues == nil {
        throw RolloutError.invalidRequest(index: index, reason: "image grids given without pixel values")
      }
    }
  }

  /// Slots for this call, from a memory plan made before anything is allocated: the per-sequence
  /// output buffers (tokens, log-probs, sampling noise and attention masses over `maxNewTokens`
  /// columns) must fit, and the slots (keys/values of `maxLength` tokens plus sampling buffers over
  /// the vocabulary) are capped by `maxSlots` and by what fits in free memory (CUDA: the device's free
  /// memory; CPU: the machine's available memory). What cannot fit is a clear error naming the plan,
  /// never a failed allocation inside libtorch.
  func plannedSlots(sequences: Int, maxLength: Int, maxPrompt: Int, columns: Int = 0, recordedLayers: Int = 0) throws -> Int {
    var slots = Swift.min(sequences, maxSlots ?? sequences)
    guard slots >= 1 else { throw RolloutError.invalidSettings("maxSlots must be at least 1") }
    let text = model.config.text
    // In Double: absurd settings (a billion new tokens) must give the error below, not an overflow.
    let kvBytes = 2.0 * Double(text.numHiddenLayers) * Double(maxLength) * Double(text.numKeyValueHeads)
      * Double(text.headDim) * Double(model.dtype.byteSize)
    // float32 logits and about ten same-sized temporaries of the sampler (sort values + indices for top-p).
    let samplingBytes = Double(text.vocabSize * 48 + text.intermediateSize * 8)
    let perSlot = kvBytes + samplingBytes
    // Per sequence (and one spare row): int64 tokens, float32 log-probs and noise, recorded masses.
    let outputBytes = Double(sequences + 1) * Double(columns) * Double(16 + 8 * recordedLayers)
    let free: Int, what: String
    if case .cuda(let index) = model.device {
      // Blocks the caching allocator holds but no tensor uses (freed gradients, activations of the
      // last backward) are free for the slot cache too: the allocator hands them out first.
      let stats = CUDA.memoryStats(index)
      free = CUDA.memoryInfo(index).free + Swift.max(0, stats.reserved - stats.allocated)
      what = "free on the GPU (cached blocks included)"
    } else {
      free = Self.availableHostMemory()
      what = "available on this machine"
    }
    // Room for one prompt's prefill (activations and the prompt's keys/values).
    let prefillReserve = Double(maxPrompt) * Double(text.hiddenSize * 24 + text.intermediateSize * 6) + Double(512 << 20)
    let budget = Double(free) * memoryFraction - prefillReserve
    func mib(_ bytes: Double) -> String { String(format: "%.0f", bytes / 1_048_576) }
    func plan() -> String {
      "\(sequences) sequences of up to \(maxLength) tokens: \(mib(outputBytes)) MiB of per-sequence buffers, "
        + "\(mib(perSlot)) MiB per slot (keys/values + sampling) and \(mib(prefillReserve)) MiB for prefill, "
        + "against \(free >> 20) MiB \(what) (fraction \(memoryFraction))"
    }
    guard outputBytes < budget else {
      throw RolloutError.insufficientMemory("\(plan()); the per-sequence buffers alone do not fit: lower max_completion_length "
        + "or the number of sequences")
    }
    let fitting = ((budget - outputBytes) / perSlot).rounded(.down)
    guard fitting >= 1 else {
      throw RolloutError.insufficientMemory("\(plan()); not one slot fits: shorten the prompt or max_completion_length")
    }
    // The CPU path runs every sequence at once when it fits; on CUDA the slot count adapts to memory.
    slots = Swift.min(slots, Int(Swift.min(fitting, Double(Int32.max))))
    return slots
  }

  /// `MemAvailable` of /proc/meminfo (bytes); a large value where it cannot be read.
  static func availableHostMemory() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
      let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
      let kib = line.split(separator: " ").compactMap({ Int($0) }).first
    else { return Int.max / 4 }
    return kib * 1024
  }

}
