import Foundation
import Models
import Torch

extension RolloutRun {
  /// Fills free slots with waiting sequences, in order. A request's vision tower and prefill run
  /// when its first sample is admitted, and its first tokens for all samples are chosen then in one
  /// batch; its keys and values are dropped once its last sample has a slot. Sequences of one
  /// request that enter together are placed with one copy per layer.
  func admitWaiting() throws {
    var free = (0..<slots).filter { slotOwner[$0] == nil }[...]
    try prefillAhead(slotsFree: free.count)
    var groups: [(prompt: PrefilledPrompt, slots: [Int], sequences: [Int])] = []
    while nextSequence < sequenceRequest.count, let slot = free.first {
      let sequence = nextSequence
      let request = sequenceRequest[sequence]
      let prompt = try prefilled(request)
      nextSequence += 1
      prompt.samplesLeft -= 1
      if prompt.samplesLeft == 0 { prompts[request] = nil }
      let firstToken = prompt.firstTokens[sequence - firstSequence[request]]
      if settings.eosTokenIds.contains(firstToken) || settings.maxNewTokens == 1 {
        finish(sequence: sequence, slot: nil, count: 1, finished: settings.eosTokenIds.contains(firstToken))
        continue
      }
      free.removeFirst()
      if let last = groups.last, last.prompt === prompt {
        groups[groups.count - 1].slots.append(slot)
        groups[groups.count - 1].sequences.append(sequence)
      } else {
        groups.append((prompt, [slot], [sequence]))
      }
    }
    for group in groups { place(prompt: group.prompt, slots: group.slots, sequences: group.sequences) }
    if !groups.isEmpty { StageTrace.mark("placed \(groups.count) prompt(s) in slots", device: device) }
  }

  /// Puts sequences of one prompt in slots: the prompt's keys and values, length, rope delta,
  /// history, and each sequence's first token.
  func place(prompt: PrefilledPrompt, slots targets: [Int], sequences: [Int]) {
    let request = sequenceRequest[sequences[0]]
    let index = Tensor(targets).to(device)
    cache.load(slots: index, count: targets.count, prompt: prompt)
    func set(_ tensor: Tensor, _ values: [Int]) { tensor.indexPut_([(0, index)], Tensor(values).to(device)) }
    let firstTokens = sequences.map { prompt.firstTokens[$0 - firstSequence[request]] }
    set(slotTokens, firstTokens)
    set(slotLengths, Array(repeating: prompt.length, count: targets.count))
    set(slotDelta, Array(repeating: prompt.delta, count: targets.count))
    set(slotSequence, sequences)
    set(slotStep, Array(repeating: 1, count: targets.count))
    if let seen, let promptSeen = prompt.seen {
      seen.indexPut_([(0, index)], promptSeen.unsqueeze(0).expand(targets.count, promptSeen.size(0)))
      seen.indexPut_([(0, index), (1, Tensor(firstTokens).to(device))], Tensor.ones([targets.count], dtype: .bool, device: device))
    }
    for (slot, sequence) in zip(targets, sequences) {
      slotOwner[slot] = sequence
      hostLengths[slot] = prompt.length
      hostSteps[slot] = 1
    }
  }

  /// The request's prefilled prompt, computing it (vision tower, prefill, first tokens) on first use.
  func prefilled(_ request: Int) throws -> PrefilledPrompt {
    if let prompt = prompts[request] { return prompt }
    let start = DispatchTime.now().uptimeNanoseconds
    defer { timings.prefillSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
    let input = requests[request]
    let ids = input.promptIDs
    engine.trace("prefill of request \(request)")
    let kv = KVCache(layers: model.config.text.numHiddenLayers)
    let positions = model.ropePositions(promptIDs: ids, imageGrids: input.grids)
    let embeddings = try model.embed(ids: ids, pixelValues: input.pixelValues, grids: input.grids)
    let positionTensor = Tensor(positions.channels.flatMap { $0 }, shape: [3, 1, ids.count]).to(device)
    let hidden = model.language(embeddings: embeddings, positions: positionTensor, cache: kv)
    let logits = F.linear(hidden[0, -1].unsqueeze(0), model.headWeight).to(.float32)
    let seenRow = sampler.usesHistory ? promptSeen(ids) : nil
    let (firstTokens, firstLogProbs) = chooseFirstTokens(request: request, logits: logits, seen: seenRow)
    let masks = settings.recordAttentionLayers.isEmpty ? nil : promptMasks(ids)
    let prompt = PrefilledPrompt(keys: kv.keys.map { $0! }, values: kv.values.map { $0! }, length: ids.count,
                                 delta: positions.delta, firstTokens: firstTokens, seen: seenRow,
                                 textMask: masks?.text, visionMask: masks?.vision, samples: input.samples)
    let rows = Tensor((0..<input.samples).map { firstSequence[request] + $0 }).to(device)
    outTokens.indexPut_([(0, rows), (1, Tensor.zeros([input.samples], dtype: .int64, device: device))],
                        Tensor(firstTokens).to(device))
    outLogProbs.indexPut_([(0, rows), (1, Tensor.zeros([input.samples], dtype: .int64, device: device))], firstLogProbs)
    prompts[request] = prompt
    return prompt
  }

  /// On CUDA in half precision, prefills together (one packed pass: `QwenVLModel.packedPrefill`) the
  /// requests whose sequences are next in line for the free slots, so that admitting a batch of
  /// prompts costs one vision + prefill launch sequence instead of one per prompt. A request needed
  /// later than predicted (sequences that stop at their first token free their slot at once) is
  /// prefilled alone by `prefilled`.
  func prefillAhead(slotsFree: Int) throws {
    guard slotsFree > 0, packedPrefill else { return }
    let upcoming = sequenceRequest[nextSequence..<Swift.min(sequenceRequest.count, nextSequence + slotsFree)]
    var pending: [Int] = []
    for request in upcoming where prompts[request] == nil && pending.last != request { pending.append(request) }
    guard pending.count > 1 else { return }
    let start = DispatchTime.now().uptimeNanoseconds
    defer { timings.prefillSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
    let inputs = pending.map { PrefillPrompt(ids: requests[$0].promptIDs, pixelValues: requests[$0].pixelValues, grids: requests[$0].grids) }
    StageTrace.mark("packed prefill of requests \(pending) starts", device: device)
    let result = try model.packedPrefill(inputs, alignedVision: alignedVision)
    StageTrace.mark("vision + packed prefill", device: device)
    let logits = F.linear(result.lastHidden, model.headWeight).to(.float32)
    // First tokens of every sample of every pending request in one batch (one host read).
    var rows: [Int] = [], sequences: [Int] = []
    for (index, request) in pending.enumerated() {
      rows += Array(repeating: index, count: requests[request].samples)
      sequences += (0..<requests[request].samples).map { firstSequence[request] + $0 }
    }
    let seenRows = sampler.usesHistory ? pending.map { promptSeen(requests[$0].promptIDs) } : nil
    let rowIndex = Tensor(rows).to(device), sequenceIndex = Tensor(sequences).to(device)
    let zeros = Tensor.zeros([sequences.count], dtype: .int64, device: device)
    let seen = seenRows.map { Tensor.stack($0).indexSelect(0, rowIndex) }
    let (tokens, logProbs) = sampler.choose(logits.indexSelect(0, rowIndex), seen: seen,
                                            uniforms: uniforms.index([(0, sequenceIndex), (1, zeros)]))
    outTokens.indexPut_([(0, sequenceIndex), (1, zeros)], tokens)
    outLogProbs.indexPut_([(0, sequenceIndex), (1, zeros)], logProbs)
    let chosen = tokens.ints()
    var offset = 0
    for (index, request) in pending.enumerated() {
      let samples = requests[request].samples
      let ids = requests[request].promptIDs
      let masks = settings.recordAttentionLayers.isEmpty ? nil : promptMasks(ids)
      // [length, kvHeads, headDim] -> the [1, kvHeads, length, headDim] layout of a KVCache.
      prompts[request] = PrefilledPrompt(
        keys: result.keys[index].map { $0.transpose(0, 1).unsqueeze(0) },
        values: result.values[index].map { $0.transpose(0, 1).unsqueeze(0) }, length: ids.count,
        delta: result.deltas[index], firstTokens: Array(chosen[offset..<(offset + samples)]), seen: seenRows?[index],
        textMask: masks?.text, visionMask: masks?.vision, samples: samples)
      offset += samples
    }
    StageTrace.mark("first tokens", device: device)
  }

  /// The first token of every sample of a request, chosen together from the prompt's last logits
  /// (each row with its own sequence's first uniform, so the result is the same as one at a time).
  func chooseFirstTokens(request: Int, logits: Tensor, seen: Tensor?) -> ([Int], Tensor) {
    let samples = requests[request].samples
    let rows = Tensor((0..<samples).map { firstSequence[request] + $0 }).to(device)
    let noise = uniforms.index([(0, rows), (1, Tensor.zeros([samples], dtype: .int64, device: device))])
    let expandedSeen = seen.map { $0.unsqueeze(0).expand(samples, $0.size(0)) }
    let (tokens, logProbs) = sampler.choose(logits.expand(samples, logits.size(-1)), seen: expandedSeen, uniforms: noise)
    return (tokens.ints(), logProbs)
  }

  /// bool `[vocab]`: the prompt's token ids (the repetition penalty's history starts with the prompt).
  func promptSeen(_ ids: [Int]) -> Tensor {
    var row = [Bool](repeating: false, count: model.config.text.vocabSize)
    for id in ids { row[id] = true }
    return Tensor(row).to(device)
  }

  /// float `[maxLength]` masks of the prompt's text positions and image-token positions.
  func promptMasks(_ ids: [Int]) -> (text: Tensor, vision: Tensor) {
    var text = [Float](repeating: 0, count: cache.maxLength), vision = text
    for (position, id) in ids.enumerated() {
      if id == model.config.imageTokenId { vision[position] = 1 } else { text[position] = 1 }
    }
    return (Tensor(text).to(device), Tensor(vision).to(device))
  }
}
