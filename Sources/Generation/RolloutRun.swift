import Foundation
import Models
import Torch

/// The state of one `RolloutEngine.generate` call. Sequence `s` is sample `s - first[r]` of
/// request `r` (request-major order); its tokens, log-probs and uniforms live in row `s` of
/// `[sequences + 1, columns]` device buffers whose last row absorbs the writes of idle slots.
final class RolloutRun {
  let engine: RolloutEngine
  let model: QwenVLModel
  let requests: [RolloutRequest]
  let settings: SamplingSettings
  let checkEvery: Int
  let useGraphs: Bool
  let packedPrefill: Bool
  let device: Device
  let sampler: TokenSampler
  let cache: SlotKVCache
  let slots: Int
  let sequenceRequest: [Int]
  let firstSequence: [Int]
  let columns: Int
  var dummyRow: Int { sequenceRequest.count }

  // Device buffers.
  let uniforms: Tensor
  let outTokens: Tensor
  let outLogProbs: Tensor
  let outTextMass: Tensor?
  let outVisionMass: Tensor?
  let seen: Tensor?
  let trueRow: Tensor
  let frequencies: Tensor
  // Per-slot device state, updated in place (the inputs of a captured decode step).
  let slotTokens: Tensor
  let slotLengths: Tensor
  let slotDelta: Tensor
  let slotSequence: Tensor
  let slotStep: Tensor

  // Host bookkeeping.
  var prompts: [Int: PrefilledPrompt] = [:]
  var nextSequence = 0
  var slotOwner: [Int?]
  var hostLengths: [Int]
  var hostSteps: [Int]
  var results: [Int: (count: Int, finished: Bool)] = [:]
  var timings = RolloutTimings()
  /// Batch sizes the decode step runs at: all slots, then halvings down to 64 on CUDA (1 on the
  /// CPU). Once no sequence waits, the running ones are compacted into the first slots and the step
  /// runs over the smallest bucket that holds them (`shrink`), each bucket with its own graph. On
  /// CUDA a step of 64 rows or fewer costs about the same at any row count (the GEMMs are bound by
  /// the weights' bytes), while a new bucket costs an eager step and a graph capture (~20 ms): on the
  /// H200, buckets below 64 made a 64-sequence rollout with early stops 7% slower, and buckets down
  /// from 256 made a 256-sequence one 17% faster (docs/benchmarks.md).
  let buckets: [Int]
  var bucket: Int
  var views: [Int: StepView] = [:]
  var graphs: [Int: CUDA.Graph] = [:]
  /// The fused bf16 CUDA decode step, when it applies (else the plain decoder layers run), and its
  /// per-step inputs (`CUDA.FusedKernels.stepInputs`): residual `[slots, hidden]`, cos and sin.
  let fused: FusedDecoder?
  let fusedInputs: (residual: Tensor, cos: Tensor, sin: Tensor)?
  /// Padded vision MLP weights for the packed prefill (`AlignedVisionMLP`; CUDA half precision,
  /// `KernelSwitches.alignedVision` off), made once per `generate` call.
  let alignedVision: [AlignedVisionMLP]?

  init(engine: RolloutEngine, requests: [RolloutRequest], settings: SamplingSettings, slots: Int, maxLength: Int,
       fused: FusedDecoder? = nil) {
    self.engine = engine
    model = engine.model
    self.fused = fused
    self.requests = requests
    self.settings = settings
    checkEvery = engine.checkEvery
    device = engine.model.device
    useGraphs = engine.useCUDAGraphs && device.isCUDA
    packedPrefill = engine.packedPrefill ?? engine.model.supportsPackedPrefill
    self.slots = slots
    let text = model.config.text
    sampler = TokenSampler(settings: settings, suppressed: settings.suppressedTokenIds ?? engine.visionSpecialTokens,
                           vocabSize: text.vocabSize, device: device)
    cache = SlotKVCache(layers: text.numHiddenLayers, slots: slots, maxLength: maxLength, heads: text.numAttentionHeads,
                        kvHeads: text.numKeyValueHeads, headDim: text.headDim, dtype: model.dtype, device: device,
                        recordedLayers: Set(settings.recordAttentionLayers), fusedDecode: fused != nil,
                        decodeAttentionKernel: engine.switches.decodeAttentionKernel,
                        attentionMass: engine.switches.attentionMass)
    var owner: [Int] = [], first: [Int] = []
    for (index, request) in requests.enumerated() {
      first.append(owner.count)
      owner += Array(repeating: index, count: request.samples)
    }
    sequenceRequest = owner
    firstSequence = first
    columns = settings.maxNewTokens + checkEvery
    var noise: [Float] = []
    for (sequence, request) in owner.enumerated() {
      noise += NoiseStream.uniforms(seed: requests[request].seed, sample: sequence - first[request], count: columns)
    }
    noise += [Float](repeating: 0.5, count: columns)
    let rows = owner.count + 1
    uniforms = Tensor(noise, shape: [rows, columns]).to(device)
    outTokens = Tensor.zeros([rows, columns], dtype: .int64, device: device)
    outLogProbs = Tensor.zeros([rows, columns], device: device)
    let recorded = Set(settings.recordAttentionLayers).count
    outTextMass = recorded > 0 ? Tensor.zeros([rows, columns, recorded], device: device) : nil
    outVisionMass = recorded > 0 ? Tensor.zeros([rows, columns, recorded], device: device) : nil
    seen = sampler.usesHistory ? Tensor.zeros([slots, text.vocabSize], dtype: .bool, device: device) : nil
    trueRow = Tensor.ones([slots], dtype: .bool, device: device)
    frequencies = model.language.ropeInverseFrequencies.to(.float32, device: device)
    slotTokens = Tensor.zeros([slots], dtype: .int64, device: device)
    slotLengths = Tensor.zeros([slots], dtype: .int64, device: device)
    slotDelta = Tensor.zeros([slots], dtype: .int64, device: device)
    slotSequence = Tensor.full([slots], Double(owner.count), dtype: .int64, device: device)
    slotStep = Tensor.zeros([slots], dtype: .int64, device: device)
    let visual = engine.model.visual
    alignedVision = device.isCUDA && engine.model.dtype != .float32 && engine.switches.alignedVision && packedPrefill
      ? withNoGrad { visual.alignedMLPs() } : nil
    if fused != nil {
      fusedInputs = (Tensor.empty([slots, text.hiddenSize], dtype: model.dtype, device: device),
                     Tensor.empty([slots, text.headDim], dtype: model.dtype, device: device),
                     Tensor.empty([slots, text.headDim], dtype: model.dtype, device: device))
    } else {
      fusedInputs = nil
    }
    var sizes = [slots]
    let smallest = device.isCUDA ? 64 : 1
    while engine.useBuckets, let last = sizes.last, (last + 1) / 2 >= smallest, (last + 1) / 2 < last { sizes.append((last + 1) / 2) }
    buckets = sizes
    bucket = slots
    slotOwner = Array(repeating: nil, count: slots)
    hostLengths = Array(repeating: 0, count: slots)
    hostSteps = Array(repeating: 0, count: slots)
    timings.slots = slots
  }

  // MARK: Loop

  func run() throws -> (completions: [Completion], timings: RolloutTimings) {
    try admitWaiting()
    let decodeStart = DispatchTime.now().uptimeNanoseconds
    let prefillBeforeDecode = timings.prefillSeconds
    while slotOwner.contains(where: { $0 != nil }) {
      for _ in 0..<checkEvery { step() }
      checkStops()
      try admitWaiting()
      shrink()
    }
    let elapsed = Double(DispatchTime.now().uptimeNanoseconds - decodeStart) / 1e9
    // Only the prefills run inside the loop (later admissions) are part of `elapsed`.
    timings.decodeSeconds = Swift.max(0, elapsed - (timings.prefillSeconds - prefillBeforeDecode))
    return (collect(), timings)
  }

  /// The per-slot device state of the first `count` slots (views of the full buffers), the input of
  /// a decode step over `count` slots.
  struct StepView {
    let count: Int
    let cache: SlotKVCache
    let tokens: Tensor, lengths: Tensor, delta: Tensor, sequence: Tensor, step: Tensor
    let seen: Tensor?
    let trueRow: Tensor
    let fusedInputs: (residual: Tensor, cos: Tensor, sin: Tensor)?
  }

  func stepView(_ count: Int) -> StepView {
    if let view = views[count] { return view }
    func head(_ t: Tensor) -> Tensor { count == slots ? t : t.narrow(0, start: 0, length: count) }
    let view = StepView(
      count: count, cache: count == slots ? cache : SlotKVCache(prefixOf: cache, count: count), tokens: head(slotTokens),
      lengths: head(slotLengths), delta: head(slotDelta), sequence: head(slotSequence), step: head(slotStep),
      seen: seen.map(head), trueRow: head(trueRow),
      fusedInputs: fusedInputs.map { (head($0.residual), head($0.cos), head($0.sin)) })
    views[count] = view
    return view
  }

  /// When no sequence waits for a slot: moves the running sequences into the lowest slots and
  /// steps only the smallest bucket that holds them (one gather and scatter per layer's keys and
  /// values, at a stop check).
  func shrink() {
    guard nextSequence == sequenceRequest.count else { return }
    let running = slotOwner.prefix(bucket).filter { $0 != nil }.count
    guard running > 0, let target = buckets.last(where: { $0 >= running }), target < bucket else { return }
    let movers = (target..<bucket).filter { slotOwner[$0] != nil }
    let holes = (0..<target).filter { slotOwner[$0] == nil }.prefix(movers.count)
    if !movers.isEmpty {
      let from = Tensor(movers).to(device), to = Tensor(Array(holes)).to(device)
      cache.move(from: from, to: to)
      for tensor in [slotTokens, slotLengths, slotDelta, slotSequence, slotStep] + (seen.map { [$0] } ?? []) {
        tensor.indexPut_([(0, to)], tensor.indexSelect(0, from))
      }
      for (source, destination) in zip(movers, holes) {
        slotOwner[destination] = slotOwner[source]
        hostLengths[destination] = hostLengths[source]
        hostSteps[destination] = hostSteps[source]
        slotOwner[source] = nil
      }
    }
    engine.trace("\(running) running: decode over \(target) of \(slots) slots (\(movers.count) moved)")
    bucket = target
  }

  /// One decode step over the current bucket of slots: eager, or replayed from the graph captured
  /// after its first eager step (capture records the kernels without running them).
  func step() {
    let view = stepView(bucket)
    if let graph = graphs[bucket] {
      graph.replay()
      timings.graphReplays += 1
    } else {
      view.cache.hostKeySpan = (0..<bucket).filter { slotOwner[$0] != nil }.map { hostLengths[$0] + 1 }.max() ?? 1
      engine.trace("eager decode step \(timings.decodeSteps) over \(bucket) slots (fused: \(fused != nil))")
      decodeStep(view)
      if useGraphs {
        CUDA.synchronize()
        engine.trace("capturing the decode step over \(bucket) slots")
        graphs[bucket] = CUDA.Graph { decodeStep(view) }
        engine.trace("captured")
      }
    }
    for slot in 0..<bucket { hostLengths[slot] += 1; hostSteps[slot] += 1 }
    timings.decodeSteps += 1
    if bucket < slots { timings.bucketSteps += 1 }
  }

  /// Embeds each slot's last token, runs the decoder over the slot cache, chooses the next token
  /// and records it. Only device work: no host reads, fixed shapes.
  func decodeStep(_ view: StepView) {
    if let fused, let inputs = view.fusedInputs {
      fusedDecodeStep(fused, view, inputs)
      return
    }
    let cache = view.cache
    let maxLength = cache.maxLength
    cache.writePositions.copy_(view.lengths.clamp(max: Double(maxLength - 1)))
    cache.keyLengths.copy_(cache.writePositions + 1)
    cache.keyLengths32.copy_(cache.keyLengths.to(.int32))
    cache.stepTextMass?.zero_()
    cache.stepVisionMass?.zero_()
    let positions = (view.lengths + view.delta).view(1, view.count, 1).expand(3, view.count, 1)
    let language = model.language
    let embeddings = language.embed(view.tokens.unsqueeze(1))
    let rotary = language.rotary(positions: positions, dtype: embeddings.dtype, frequencies: frequencies)
    let hidden = language(embeddings: embeddings, rotary: rotary, attention: cache).squeeze(1)
    choose(view, logits: F.linear(hidden, model.headWeight), fusedSampler: false)
  }

  /// The decode step of the fused bf16 kernels: one kernel for the step's inputs (embeddings,
  /// write positions, rotary tables), the fused decoder, the LM head, and the sampler kernel that
  /// also records the token and advances the slots (when the settings allow it).
  func fusedDecodeStep(_ fused: FusedDecoder, _ view: StepView, _ inputs: (residual: Tensor, cos: Tensor, sin: Tensor)) {
    let cache = view.cache
    CUDA.FusedKernels.stepInputs(tokens: view.tokens, lengths: view.lengths, deltas: view.delta,
                                 embedding: model.language.embeddingWeight.value, inverseFrequencies: frequencies,
                                 maxLength: cache.maxLength, residual: inputs.residual, writePositions: cache.writePositions,
                                 keyLengths: cache.keyLengths, keyLengths32: cache.keyLengths32, cos: inputs.cos, sin: inputs.sin)
    let direct = cache.writesMassDirectly
    if direct, let outTextMass, let outVisionMass {
      cache.massTarget = (outTextMass, outVisionMass, view.sequence, view.step)
    } else {
      cache.stepTextMass?.zero_()
      cache.stepVisionMass?.zero_()
    }
    let hidden = fused(residual: inputs.residual, cos: inputs.cos, sin: inputs.sin, store: cache)
    let logits = F.linear(hidden, model.headWeight)
    let fusedSampler = sampler.fusable && engine.switches.fusedSampler
    // The sampler kernel records the token and advances the slots; masses are then already written.
    if fusedSampler && (outTextMass == nil || direct) {
      CUDA.FusedKernels.sampleStep(logits: logits, bias: sampler.suppressionBias, uniforms: uniforms, temperature: sampler.temperature,
                                   slotSequence: view.sequence, slotStep: view.step, slotTokens: view.tokens,
                                   slotLengths: view.lengths, tokens: outTokens, logProbs: outLogProbs)
      return
    }
    choose(view, logits: logits, fusedSampler: fusedSampler)
  }

  /// Chooses each slot's next token from `logits` `[slots, vocab]` and records it (token, log-prob,
  /// attention mass), then advances the slots.
  func choose(_ view: StepView, logits: Tensor, fusedSampler: Bool) {
    let column = view.step.clamp(max: Double(columns - 1)).to(.int64)  // a float bound promotes to float
    let target: [(Int, Tensor)] = [(0, view.sequence), (1, column)]
    let (tokens, logProbs) = fusedSampler
      ? CUDA.FusedKernels.sample(logits: logits, bias: sampler.suppressionBias, uniforms: uniforms.index(target),
                                 temperature: sampler.temperature)
      : sampler.choose(logits.to(.float32), seen: view.seen, uniforms: uniforms.index(target))
    outTokens.indexPut_(target, tokens)
    outLogProbs.indexPut_(target, logProbs)
    if !view.cache.writesMassDirectly, let outTextMass, let outVisionMass, let text = view.cache.stepTextMass,
      let vision = view.cache.stepVisionMass {
      outTextMass.indexPut_(target, text)
      outVisionMass.indexPut_(target, vision)
    }
    view.seen?.indexPut_([(0, view.cache.slotIndex), (1, tokens)], view.trueRow)
    view.tokens.copy_(tokens)
    view.lengths.add_(1)
    view.step.add_(1)
  }

  /// Reads the tokens of occupied slots and frees those whose sequence emitted an EOS id or reached
  /// `maxNewTokens` (the only device-to-host synchronisation of the loop).
  func checkStops() {
    let occupied = (0..<slots).filter { slotOwner[$0] != nil }
    guard !occupied.isEmpty else { return }
    let rows = outTokens.indexSelect(0, slotSequence).ints()
    for slot in occupied {
      guard let sequence = slotOwner[slot] else { continue }
      let produced = Swift.min(hostSteps[slot], settings.maxNewTokens)
      let row = rows[(slot * columns)..<(slot * columns + produced)]
      if let eos = row.firstIndex(where: settings.eosTokenIds.contains) {
        finish(sequence: sequence, slot: slot, count: eos - slot * columns + 1, finished: true)
      } else if produced >= settings.maxNewTokens {
        finish(sequence: sequence, slot: slot, count: produced, finished: false)
      }
    }
  }

  func finish(sequence: Int, slot: Int?, count: Int, finished: Bool) {
    results[sequence] = (count, finished)
    timings.generatedTokens += count
    if let slot { slotOwner[slot] = nil }
  }

  // MARK: Results

  func collect() -> [Completion] {
    let tokens = outTokens.ints(), logProbs = outLogProbs.floats()
    let text = outTextMass?.floats(), vision = outVisionMass?.floats()
    let layers = cache.recordedOrder
    return sequenceRequest.enumerated().map { sequence, request in
      let (count, finished) = results[sequence] ?? (0, false)
      let range = (sequence * columns)..<(sequence * columns + count)
      let attention = text.flatMap { text in
        vision.map { AttentionMass(layers: layers, text: text, vision: $0, steps: range.dropFirst()) }
      }
      return Completion(requestIndex: request, sampleIndex: sequence - firstSequence[request], tokens: Array(tokens[range]),
                        finished: finished, logProbs: Array(logProbs[range]), attention: attention)
    }
  }
}
