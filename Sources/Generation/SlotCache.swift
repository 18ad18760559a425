import Foundation
import Models
import Torch

/// Preallocated keys and values of every decoder layer for `slots` sequences, laid out
/// `[slots, maxLength, kvHeads, headDim]` per layer so that a layer's cache is also the packed
/// `[slots * maxLength, kvHeads, headDim]` key tensor that varlen flash attention reads (each slot a
/// sequence of `maxLength` keys, of which `sequsedK` are used).
///
/// During a decode step it is the decoder's `ExternalAttention`: each layer's new key and value are
/// written at `writePositions`, then the one query token of each slot attends to its first
/// `keyLengths` keys. Every per-step input is a device tensor updated in place, so the step can be
/// captured once as a CUDA graph and replayed.
final class SlotKVCache: ExternalAttention, SlotAttentionStore {
  let slots: Int
  let maxLength: Int
  let device: Device
  let keys: [Tensor]
  let values: [Tensor]
  let slotIndex: Tensor
  /// `[slots]` int64: where this step's key goes (the slot's cached length, clamped).
  let writePositions: Tensor
  /// `[slots]` int64 and int32: keys visible to this step's query (`writePositions + 1`).
  let keyLengths: Tensor
  let keyLengths32: Tensor
  /// Keys the CPU path attends over (max of the active slots' `keyLengths`); CUDA uses `maxLength`.
  var hostKeySpan: Int = 1
  let useFlash: Bool
  let cuSeqlensQ: Tensor?
  let cuSeqlensK: Tensor?
  let keyPositions: Tensor
  /// The fused decode path's attention kernel (`CUDA.FusedKernels.decodeAttention`): keys per
  /// block, float32 workspace and int32 completion counters; nil where flash attention serves (not
  /// bf16 on CUDA, head dim other than 128, more than 8 query heads per key/value head, or
  /// `KernelSwitches.decodeAttentionKernel` off).
  let attentionKernel: (split: Int, workspace: Tensor, counters: Tensor)?

  /// Attention diagnostics: layers recorded, `[slots, maxLength]` float masks of the prompt's text
  /// and image tokens, and this step's summed mass per slot.
  let recordedLayers: Set<Int>
  /// The recorded layers in ascending order: column `i` of the step masses is layer `recordedOrder[i]`.
  let recordedOrder: [Int]
  /// How recorded layers compute their masses on the fused path (`KernelSwitches.attentionMass`).
  let massPath: AttentionMassPath
  /// Where the kernels write the masses (the run's per-sequence buffers and the slots' sequence
  /// and step), set by the run before a fused decode step when `writesMassDirectly`.
  var massTarget: (text: Tensor, vision: Tensor, sequence: Tensor, step: Tensor)?
  /// Recorded masses go straight from a kernel into the run's buffers (fused path, `massPath` not ops).
  var writesMassDirectly: Bool { massPath != .ops && attentionKernel != nil && !recordedLayers.isEmpty }
  /// The decode-attention kernel's mass variant (`massPath` fused): float32 workspace and int32
  /// `[slots]` completion counters (zero).
  let massKernel: (workspace: Tensor, counters: Tensor)?
  let textMask: Tensor?
  let visionMask: Tensor?
  let stepTextMass: Tensor?
  let stepVisionMass: Tensor?

  init(layers: Int, slots: Int, maxLength: Int, heads: Int, kvHeads: Int, headDim: Int, dtype: DType, device: Device,
       recordedLayers: Set<Int>, fusedDecode: Bool = false, decodeAttentionKernel: Bool = true,
       attentionMass: AttentionMassPath = .fused) {
    self.slots = slots
    self.maxLength = maxLength
    self.device = device
    keys = (0..<layers).map { _ in Tensor.zeros([slots, maxLength, kvHeads, headDim], dtype: dtype, device: device) }
    values = (0..<layers).map { _ in Tensor.zeros([slots, maxLength, kvHeads, headDim], dtype: dtype, device: device) }
    slotIndex = Tensor.arange(slots, device: device)
    writePositions = Tensor.zeros([slots], dtype: .int64, device: device)
    keyLengths = Tensor.ones([slots], dtype: .int64, device: device)
    keyLengths32 = Tensor.ones([slots], dtype: .int32, device: device)
    keyPositions = Tensor.arange(maxLength, device: device)
    // Flash attention takes half precision only; float32 on CUDA uses the masked SDPA path.
    useFlash = device.isCUDA && (dtype == .bfloat16 || dtype == .float16)
    if useFlash {
      cuSeqlensQ = Tensor.arange(slots + 1, dtype: .int32, device: device)
      cuSeqlensK = Tensor.arange(0, Double((slots + 1) * maxLength), step: Double(maxLength), dtype: .int32, device: device)
    } else {
      cuSeqlensQ = nil
      cuSeqlensK = nil
    }
    if fusedDecode, device.isCUDA, dtype == .bfloat16, headDim == 128, heads % kvHeads == 0, heads / kvHeads <= 8,
      decodeAttentionKernel {
      let split = CUDA.FusedKernels.decodeAttentionSplit(maxLength: maxLength)
      let size = CUDA.FusedKernels.decodeAttentionWorkspace(slots: slots, heads: heads, maxLength: maxLength, split: split)
      attentionKernel = (split, Tensor.empty([size], dtype: .float32, device: device),
                         Tensor.zeros([slots * kvHeads], dtype: .int32, device: device))
    } else {
      attentionKernel = nil
    }
    self.recordedLayers = recordedLayers
    massPath = attentionMass
    recordedOrder = recordedLayers.sorted()
    let record = !recordedLayers.isEmpty
    if record, attentionMass == .fused, let kernel = attentionKernel {
      let size = CUDA.FusedKernels.decodeAttentionMassWorkspace(slots: slots, heads: heads, maxLength: maxLength, split: kernel.split)
      massKernel = (Tensor.empty([size], dtype: .float32, device: device), Tensor.zeros([slots], dtype: .int32, device: device))
    } else {
      massKernel = nil
    }
    textMask = record ? Tensor.zeros([slots, maxLength], device: device) : nil
    visionMask = record ? Tensor.zeros([slots, maxLength], device: device) : nil
    stepTextMass = record ? Tensor.zeros([slots, recordedLayers.count], device: device) : nil
    stepVisionMass = record ? Tensor.zeros([slots, recordedLayers.count], device: device) : nil
  }

  /// The first `count` slots of `base` as a cache of their own, sharing its storage (a decode step
  /// over fewer slots: the rollout engine's smaller batch buckets after compaction).
  init(prefixOf base: SlotKVCache, count: Int) {
    slots = count
    maxLength = base.maxLength
    device = base.device
    func head(_ t: Tensor) -> Tensor { t.narrow(0, start: 0, length: count) }
    keys = base.keys.map(head)
    values = base.values.map(head)
    slotIndex = head(base.slotIndex)
    writePositions = head(base.writePositions)
    keyLengths = head(base.keyLengths)
    keyLengths32 = head(base.keyLengths32)
    hostKeySpan = base.hostKeySpan
    useFlash = base.useFlash
    cuSeqlensQ = base.cuSeqlensQ?.narrow(0, start: 0, length: count + 1)
    cuSeqlensK = base.cuSeqlensK?.narrow(0, start: 0, length: count + 1)
    keyPositions = base.keyPositions
    let kvHeads = base.keys.first?.size(2) ?? 1
    attentionKernel = base.attentionKernel.map { ($0.split, $0.workspace, $0.counters.narrow(0, start: 0, length: count * kvHeads)) }
    recordedLayers = base.recordedLayers
    recordedOrder = base.recordedOrder
    massPath = base.massPath
    massKernel = base.massKernel.map { ($0.workspace, $0.counters.narrow(0, start: 0, length: count)) }
    textMask = base.textMask.map(head)
    visionMask = base.visionMask.map(head)
    stepTextMass = base.stepTextMass.map(head)
    stepVisionMass = base.stepVisionMass.map(head)
  }

  /// Moves the sequences in slots `from` into slots `to` (same count, as int64 lists): their keys,
  /// values and prompt masks, one gather and one scatter per tensor.
  func move(from: Tensor, to: Tensor) {
    for tensor in keys + values + [textMask, visionMask].compactMap({ $0 }) {
      tensor.indexPut_([(0, to)], tensor.indexSelect(0, from))
    }
  }

  /// Bytes of one slot's keys and values over all layers.
  static func bytesPerSlot(layers: Int, maxLength: Int, kvHeads: Int, headDim: Int, dtype: DType) -> Int {
    2 * layers * maxLength * kvHeads * headDim * dtype.byteSize
  }

  /// Copies a prefilled prompt's keys and values (`[1, kvHeads, length, headDim]` per layer) into
  /// the `count` slots listed in `slots` (int64 on the cache's device), and its text/image masks
  /// when attention is recorded.
  func load(slots index: Tensor, count: Int, prompt: PrefilledPrompt) {
    for layer in 0..<keys.count {
      for (cache, source) in [(keys[layer], prompt.keys[layer]), (values[layer], prompt.values[layer])] {
        let rows = source[0].transpose(0, 1)  // [length, kvHeads, headDim]
        cache.narrow(1, start: 0, length: prompt.length).indexPut_([(0, index)], rows.unsqueeze(0).expand([count] + rows.shape))
      }
    }
    if let textMask, let visionMask, let promptText = prompt.textMask, let promptVision = prompt.visionMask {
      textMask.indexPut_([(0, index)], promptText.unsqueeze(0).expand(count, maxLength))
      visionMask.indexPut_([(0, index)], promptVision.unsqueeze(0).expand(count, maxLength))
    }
  }

  func attend(layer: Int, query: Tensor, keys newKeys: Tensor, values newValues: Tensor) -> Tensor {
    let keyCache = keys[layer], valueCache = values[layer]
    // [slots, kvHeads, 1, headDim] -> one row per slot at its write position.
    keyCache.indexPut_([(0, slotIndex), (1, writePositions)], newKeys.squeeze(2))
    valueCache.indexPut_([(0, slotIndex), (1, writePositions)], newValues.squeeze(2))
    // CUDA reads every slot's full row (fixed shapes for graph capture); the CPU path only the
    // longest occupied slot's keys.
    let span = useFlash ? maxLength : hostKeySpan
    let visible = { self.visibleKeys(span: span) }
    let spanKeys = keyCache.narrow(1, start: 0, length: span).transpose(1, 2)  // [slots, kvHeads, span, headDim]
    if recordedLayers.contains(layer) {
      recordMass(layer: layer, query: query, keys: keyCache.narrow(1, start: 0, length: span), visible: visible(), span: span)
    }
    if useFlash, let cuSeqlensQ, let cuSeqlensK {
      let heads = query.size(1), headDim = query.size(3)
      let kvHeads = keyCache.size(2)
      let out = F.flashAttentionVarlen(
        query.reshape(slots, heads, headDim).contiguous(),
        keyCache.view(slots * maxLength, kvHeads, headDim), valueCache.view(slots * maxLength, kvHeads, headDim),
        cuSeqlensQ: cuSeqlensQ, cuSeqlensK: cuSeqlensK, maxSeqlenQ: 1, maxSeqlenK: maxLength, isCausal: false,
        sequsedK: keyLengths32)
      return out.unsqueeze(2)
    }
    let spanValues = valueCache.narrow(1, start: 0, length: span).transpose(1, 2)
    return F.scaledDotProductAttention(query, spanKeys, spanValues, mask: visible().unsqueeze(1).unsqueeze(1), enableGQA: true)
  }

  // MARK: SlotAttentionStore (the fused decode path; CUDA bf16 only, so always flash)

  func caches(layer: Int) -> (keys: Tensor, values: Tensor) { (keys[layer], values[layer]) }

  /// The kernel rotates and writes the step's key itself, also in recorded layers when it records
  /// their masses (`massPath` fused); the separate kernel and the ops read the rotated queries from
  /// `qkv` and the step's key from the cache, so there the rotary kernel runs first.
  func attentionRotates(layer: Int) -> Bool {
    attentionKernel != nil && (!recordedLayers.contains(layer) || (massKernel != nil && massTarget != nil))
  }

  /// The run's buffers for layer `layer`'s masses, when a kernel writes them (`writesMassDirectly`).
  private func massRecording(layer: Int) -> CUDA.FusedKernels.MassRecording? {
    guard let target = massTarget, let textMask, let visionMask, let column = recordedOrder.firstIndex(of: layer) else {
      return nil
    }
    return .init(textMask: textMask, visionMask: visionMask, text: target.text, vision: target.vision,
                 sequence: target.sequence, step: target.step, column: column)
  }

  func attendCached(layer: Int, qkv: Tensor, heads: Int, headDim: Int, rotary: (cos: Tensor, sin: Tensor)?) -> Tensor {
    let keyCache = keys[layer], valueCache = values[layer]
    let kvHeads = keyCache.size(2)
    // A strided view of the q columns: both the kernel and flash attention read it in place.
    let query = qkv.narrow(1, start: 0, length: heads * headDim).view(slots, heads, headDim)
    if recordedLayers.contains(layer) {
      let recording = massRecording(layer: layer)
      if let recording, let kernel = attentionKernel, let massKernel {
        // The attention kernel's variant sums the masses from the probabilities it forms anyway.
        return CUDA.FusedKernels.decodeAttention(qkv: qkv, keyCache: keyCache, valueCache: valueCache, positions: writePositions,
                                                 heads: heads, kvHeads: kvHeads, split: kernel.split,
                                                 workspace: kernel.workspace, counters: kernel.counters, rotary: rotary,
                                                 mass: recording, massWorkspace: massKernel.workspace,
                                                 massCounters: massKernel.counters)
      }
      precondition(rotary == nil, "recorded layers rotate in the attention kernel only when it records their masses")
      if let recording {
        // One kernel instead of the ~15 ops of `recordMass` and the step's copies (same rounding points).
        CUDA.FusedKernels.attentionMass(qkv: qkv, keyCache: keyCache, keyLengths: keyLengths, heads: heads, kvHeads: kvHeads,
                                        mass: recording)
      } else {
        recordMass(layer: layer, query: query.unsqueeze(2), keys: keyCache, visible: visibleKeys(span: maxLength), span: maxLength)
      }
    }
    if let kernel = attentionKernel {  // made only where the kernel applies (init)
      return CUDA.FusedKernels.decodeAttention(qkv: qkv, keyCache: keyCache, valueCache: valueCache, positions: writePositions,
                                               heads: heads, kvHeads: kvHeads, split: kernel.split,
                                               workspace: kernel.workspace, counters: kernel.counters, rotary: rotary)
    }
    precondition(rotary == nil, "only the decode-attention kernel rotates")
    guard let cuSeqlensQ, let cuSeqlensK else { preconditionFailure("the fused decode path needs the flash cache layout") }
    return F.flashAttentionVarlen(
      query, keyCache.view(slots * maxLength, kvHeads, headDim), valueCache.view(slots * maxLength, kvHeads, headDim),
      cuSeqlensQ: cuSeqlensQ, cuSeqlensK: cuSeqlensK, maxSeqlenQ: 1, maxSeqlenK: maxLength, isCausal: false,
      sequsedK: keyLengths32)
      .view(slots, heads * headDim)
  }

  /// Adds the heads-averaged attention probability mass on prompt text and image keys to this
  /// step's per-slot sums (the probabilities are computed only for recorded layers; nothing kept).
  /// Bool `[slots, span]`: key positions each slot's query may see (below its `keyLengths`).
  private func visibleKeys(span: Int) -> Tensor {
    keyPositions.narrow(0, start: 0, length: span).unsqueeze(0).lt(keyLengths.unsqueeze(1))
  }

  /// Layer `layer`'s heads-averaged attention probabilities of this step's queries over the
  /// visible keys, reduced at once to their mass on prompt text and on image keys (column of the
  /// layer in the step masses). A companion of the attention over the same scores, computed per
  /// key/value head without expanding the cache: one batched product reads each key once (in the
  /// cache's dtype, float32 accumulation), the softmax runs in float32, nothing is kept.
  private func recordMass(layer: Int, query: Tensor, keys cache: Tensor, visible: Tensor, span: Int) {
    guard let textMask, let visionMask, let stepTextMass, let stepVisionMass,
      let column = recordedOrder.firstIndex(of: layer) else { return }
    // query [slots, heads, 1, headDim]; cache [slots, span, kvHeads, headDim]
    let heads = query.size(1), kvHeads = cache.size(2), headDim = query.size(3)
    let group = heads / kvHeads
    let queries = query.reshape(slots, heads, headDim)
    var scores: [Tensor] = []
    for kvHead in 0..<kvHeads {
      let q = queries.narrow(1, start: kvHead * group, length: group)  // [slots, group, headDim]
      let k = cache.select(2, kvHead)  // [slots, span, headDim], rows kvHeads * headDim apart
      scores.append(F.matmul(q, k.mT))  // [slots, group, span]
    }
    var logits = Tensor.cat(scores, dim: 1).to(.float32) / Double(headDim).squareRoot()  // [slots, heads, span]
    logits = logits.maskedFill(visible.logicalNot().unsqueeze(1), -Double.infinity)
    let probabilities = logits.softmax(dim: -1).mean(dim: 1)  // [slots, span]
    stepTextMass.select(1, column).copy_((probabilities * textMask.narrow(1, start: 0, length: span)).sum(dim: -1))
    stepVisionMass.select(1, column).copy_((probabilities * visionMask.narrow(1, start: 0, length: span)).sum(dim: -1))
  }
}

/// A prompt after the vision tower and prefill: its keys and values, rope delta, the first token
/// of each of its samples, its repetition-penalty history and the masks of attention diagnostics.
final class PrefilledPrompt {
  let keys: [Tensor]
  let values: [Tensor]
  let length: Int
  let delta: Int
  let firstTokens: [Int]
  let seen: Tensor?
  let textMask: Tensor?
  let visionMask: Tensor?
  var samplesLeft: Int

  init(keys: [Tensor], values: [Tensor], length: Int, delta: Int, firstTokens: [Int], seen: Tensor?, textMask: Tensor?,
       visionMask: Tensor?, samples: Int) {
    self.keys = keys
    self.values = values
    self.length = length
    self.delta = delta
    self.firstTokens = firstTokens
    self.seen = seen
    self.textMask = textMask
    self.visionMask = visionMask
    samplesLeft = samples
  }
}
