import ArgumentParser
import Foundation
import Generation
import NN
import Torch

/// `vlmrl doctor`: what this machine offers and whether the kernels vlmrl relies on work here.
struct Doctor: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Check libtorch, CUDA and the kernels vlmrl uses; print a bf16 matmul throughput figure.")

  @Option(help: "Matrix size for the throughput figure (n x n x n).")
  var matmulSize: Int?

  @Flag(help: "Skip the throughput measurement.")
  var noBenchmark = false

  func run() throws {
    print("vlmrl doctor")
    print("  libtorch        \(Torch.version)")
    print("  CPU threads     \(Torch.threads)")
    let cuda = Torch.cudaAvailable
    let why = cuda ? "" : " (" + (Torch.loadCUDAError() ?? "libtorch_cuda loaded, no CUDA device") + ")"
    print("  CUDA available  \(cuda ? "yes" : "no")\(why)")
    var devices: [Device] = [.cpu]
    if cuda {
      if let reason = CUDA.unavailableReason {
        print("  CUDA shim       not loadable: \(reason)")
        throw ExitCode(1)
      }
      for index in 0..<Torch.cudaDeviceCount {
        let memory = CUDA.memoryInfo(index)
        let cap = CUDA.capability(index)
        print("  cuda:\(index)          \(CUDA.deviceName(index)), sm_\(cap.major)\(cap.minor), "
          + String(format: "%.1f GiB total, %.1f GiB free", Double(memory.total) / 1_073_741_824, Double(memory.free) / 1_073_741_824))
      }
      devices.append(.cuda(0))
    }
    var checks = DoctorChecks()
    for device in devices { checks.run(on: device) }
    if !noBenchmark { checks.throughput(device: devices.last!, size: matmulSize) }
    if cuda {
      let stats = CUDA.memoryStats(0)
      print(String(format: "  memory          allocated %.1f MiB, peak %.1f MiB, reserved %.1f MiB",
                   Double(stats.allocated) / 1_048_576, Double(stats.peakAllocated) / 1_048_576, Double(stats.reserved) / 1_048_576))
    }
    print(checks.failures == 0 ? "all checks passed" : "\(checks.failures) check(s) FAILED")
    if checks.failures > 0 { throw ExitCode(1) }
  }
}

/// The self-checks. Each compares a kernel with an independent computation (float64 on the CPU).
struct DoctorChecks {
  var failures = 0

  mutating func report(_ name: String, _ device: Device, error: Double, tolerance: Double) {
    let ok = error.isFinite && error <= tolerance
    if !ok { failures += 1 }
    print(String(format: "  %@ %-34@ max error %.2e (tolerance %.0e)", ok ? "ok  " : "FAIL", "\(name) [\(device)]", error, tolerance))
    fflush(nil)  // every finished check reaches a pipe even if a later one crashes
  }

  mutating func run(on device: Device) {
    let generator = Generator(seed: 1234)
    let dtype: DType = device.isCUDA ? .float32 : .float64
    let tolerance = device.isCUDA ? 2e-3 : 1e-9  // CUDA float32 matmuls may use TF32

    // matmul against a float64 CPU reference.
    let a = Tensor.randn([64, 96], dtype: .float64, generator: generator)
    let b = Tensor.randn([96, 48], dtype: .float64, generator: generator)
    let reference = F.matmul(a, b)
    let product = F.matmul(a.to(dtype, device: device), b.to(dtype, device: device)).to(.float64, device: .cpu)
    report("matmul", device, error: product.maxAbsDifference(reference) / 10, tolerance: tolerance)

    // SDPA (causal, GQA) against softmax(q k^T / sqrt(d)) v written out.
    let q = Tensor.randn([2, 4, 16, 32], dtype: .float64, generator: generator)
    let k = Tensor.randn([2, 2, 16, 32], dtype: .float64, generator: generator)
    let v = Tensor.randn([2, 2, 16, 32], dtype: .float64, generator: generator)
    let attention = attentionReference(q, k, v)
    let sdpa = F.scaledDotProductAttention(q.to(dtype, device: device), k.to(dtype, device: device), v.to(dtype, device: device),
                                           isCausal: true, enableGQA: true).to(.float64, device: .cpu)
    report("sdpa causal gqa", device, error: sdpa.maxAbsDifference(attention), tolerance: tolerance)

    // rms_norm against its formula.
    let x = Tensor.randn([8, 64], dtype: .float64, generator: generator)
    let w = Tensor.randn([64], dtype: .float64, generator: generator)
    let rmsReference = x / (x.square().mean(dim: -1, keepDim: true) + 1e-6).sqrt() * w
    let rms = F.rmsNorm(x.to(dtype, device: device), shape: [64], weight: w.to(dtype, device: device), eps: 1e-6)
    report("rms_norm", device, error: rms.to(.float64, device: .cpu).maxAbsDifference(rmsReference), tolerance: tolerance)

    // AdamW step against the closed form of a first step: p*(1-lr*wd) - lr*sign(g) (|g| >> eps).
    let p0 = Tensor.randn([256], dtype: .float64, generator: generator)
    let g = Tensor.randn([256], dtype: .float64, generator: generator)
    let parameter = Parameter(p0.to(dtype, device: device, copy: true))
    parameter.grad = g.to(dtype, device: device)
    AdamW([parameter], .init(learningRate: 0.01, weightDecay: 0.1)).step()
    let adamReference = p0 * (1 - 0.01 * 0.1) - g / (g.abs() + 1e-8) * 0.01
    report("fused adamw step", device, error: parameter.value.to(.float64, device: .cpu).maxAbsDifference(adamReference),
           tolerance: device.isCUDA ? 1e-6 : 1e-12)

    if device.isCUDA { runCUDAOnly(device, generator) }
  }

  func attentionReference(_ q: Tensor, _ k: Tensor, _ v: Tensor) -> Tensor {
    let groups = q.size(1) / k.size(1)
    let kk = k.repeatInterleave(groups, dim: 1), vv = v.repeatInterleave(groups, dim: 1)
    let length = q.size(2)
    let scores = F.matmul(q, kk.mT) / Double(q.size(-1)).squareRoot()
    let future = Tensor.ones([length, length], dtype: .bool).triu(1)
    return F.matmul(scores.maskedFill(future, -Double.infinity).softmax(dim: -1), vv)
  }

  mutating func runCUDAOnly(_ device: Device, _ generator: Generator) {
    // Varlen flash attention over two packed sequences vs per-sequence SDPA (bf16).
    let lengths = [37, 91]
    let total = lengths.reduce(0, +)
    let q = Tensor.randn([total, 4, 64], dtype: .float64, generator: generator)
    let k = Tensor.randn([total, 2, 64], dtype: .float64, generator: generator)
    let v = Tensor.randn([total, 2, 64], dtype: .float64, generator: generator)
    let cu = Tensor([0, lengths[0], total].map(Int32.init)).to(device)
    let flash = F.flashAttentionVarlen(q.to(.bfloat16, device: device), k.to(.bfloat16, device: device), v.to(.bfloat16, device: device),
                                       cuSeqlensQ: cu, cuSeqlensK: cu, maxSeqlenQ: 91, maxSeqlenK: 91, isCausal: true)
      .to(.float64, device: .cpu)
    var starts = 0
    var error = 0.0
    for length in lengths {
      func part(_ t: Tensor) -> Tensor { t.narrow(0, start: starts, length: length).transpose(0, 1).unsqueeze(0) }
      let reference = attentionReference(part(q), part(k), part(v))[0].transpose(0, 1)
      error = Swift.max(error, flash.narrow(0, start: starts, length: length).maxAbsDifference(reference))
      starts += length
    }
    report("flash attention varlen (bf16)", device, error: error, tolerance: 5e-2)

    // CUDA graph: capture y = x W, change x in place, replay, compare.
    let x = Tensor.randn([128, 256], device: device, generator: Generator(seed: 5, device: device))
    let weight = Tensor.randn([256, 256], device: device, generator: Generator(seed: 6, device: device))
    let output = Tensor.zeros([128, 256], device: device)
    output.copy_(F.matmul(x, weight))  // warm-up outside capture
    CUDA.synchronize()
    let graph = CUDA.Graph { output.copy_(F.matmul(x, weight)) }
    x.copy_(Tensor.randn([128, 256], device: device, generator: Generator(seed: 7, device: device)))
    graph.replay()
    CUDA.synchronize()
    report("cuda graph capture/replay", device, error: output.maxAbsDifference(F.matmul(x, weight)), tolerance: 1e-3)
    fusedKernelChecks(device)
  }

  /// The fused decode kernels against the libtorch ops they replace, in bf16: SwiGLU and rotary must
  /// be bit-identical; add+RMSNorm's residual too, its output within bf16 rounding (relative 1e-2).
  mutating func fusedKernelChecks(_ device: Device) {
    guard case .cuda(let index) = device else { return }
    if let reason = CUDA.FusedKernels.unavailableReason(device: index) {
      print("  FAIL fused decode kernels [\(device)]: \(reason)")
      failures += 1
      return
    }
    let g = Generator(seed: 11)
    func random(_ shape: [Int], scale: Double = 1) -> Tensor { (Tensor.randn(shape, generator: g) * scale).to(.bfloat16, device: device) }
    let gateUp = random([64, 2 * 1000], scale: 3)
    let halves = gateUp.split(sizes: [1000, 1000], dim: 1)
    let swiglu = CUDA.FusedKernels.swiGLU(gateUp)
    report("fused swiglu (bf16, exact)", device, error: swiglu.to(.float64).maxAbsDifference((halves[0].silu() * halves[1]).to(.float64)),
           tolerance: 0)

    let (slots, heads, kvHeads, headDim, maxLength) = (8, 4, 2, 64, 16)
    let qkv = random([slots, (heads + 2 * kvHeads) * headDim])
    let angles = Tensor.randn([slots, headDim / 2], generator: g) * 20
    let both = Tensor.cat([angles, angles], dim: -1)
    let (cos, sin) = (both.cos().to(.bfloat16, device: device), both.sin().to(.bfloat16, device: device))
    let keys = Tensor.zeros([slots, maxLength, kvHeads, headDim], dtype: .bfloat16, device: device)
    let values = Tensor.zeros([slots, maxLength, kvHeads, headDim], dtype: .bfloat16, device: device)
    let positionList = (0..<slots).map { ($0 * 5) % maxLength }
    let positions = Tensor(positionList).to(device)
    let parts = qkv.clone().split(sizes: [heads * headDim, kvHeads * headDim, kvHeads * headDim], dim: 1)
    func rotate(_ t: Tensor, _ count: Int) -> Tensor {
      let x = t.view(slots, count, headDim)
      let c = cos.unsqueeze(1), s = sin.unsqueeze(1)
      let half = x.split(sizes: [headDim / 2, headDim / 2], dim: -1)
      return x * c + Tensor.cat([half[1].neg(), half[0]], dim: -1) * s
    }
    let (expectedQ, expectedK) = (rotate(parts[0], heads), rotate(parts[1], kvHeads))
    CUDA.FusedKernels.rotaryKV(qkv: qkv, cos: cos, sin: sin, keyCache: keys, valueCache: values, positions: positions,
                               heads: heads, kvHeads: kvHeads, headDim: headDim)
    let slotIndex = Tensor.arange(slots, device: device)
    let writtenK = keys.index([(0, slotIndex), (1, positions)]), writtenV = values.index([(0, slotIndex), (1, positions)])
    let rotaryError = [
      qkv.narrow(1, start: 0, length: heads * headDim).view(slots, heads, headDim).to(.float64).maxAbsDifference(expectedQ.to(.float64)),
      writtenK.to(.float64).maxAbsDifference(expectedK.to(.float64)),
      writtenV.to(.float64).maxAbsDifference(parts[2].view(slots, kvHeads, headDim).to(.float64)),
      keys.to(.float64).abs().sum().item() - writtenK.to(.float64).abs().sum().item(),  // nothing written elsewhere
    ].map(abs).max() ?? .nan
    report("fused rotary + kv write (exact)", device, error: rotaryError, tolerance: 0)

    let residual = random([16, 2048]), delta = random([16, 2048]), weight = random([2048])
    let expectedResidual = residual + delta
    let norm = RMSNorm(2048, eps: 1e-6, dtype: .bfloat16, device: device)
    withNoGrad { norm.weight.value.copy_(weight) }
    let expected = norm(expectedResidual)
    let normed = CUDA.FusedKernels.addRMSNorm(residual: residual, delta: delta, weight: weight, eps: 1e-6)
    let residualError = residual.to(.float64).maxAbsDifference(expectedResidual.to(.float64))
    let relative = normed.to(.float64).maxAbsDifference(expected.to(.float64)) / expected.to(.float64).abs().max().item()
    report("fused add+rmsnorm (bf16)", device, error: Swift.max(residualError, relative), tolerance: 1e-2)
    // A width that is not a multiple of 8 takes the kernel without 16-byte accesses.
    let narrow = random([5, 1001]), narrowDelta = random([5, 1001]), narrowWeight = random([1001])
    let narrowNorm = RMSNorm(1001, eps: 1e-6, dtype: .bfloat16, device: device)
    withNoGrad { narrowNorm.weight.value.copy_(narrowWeight) }
    let narrowExpected = narrowNorm(narrow + narrowDelta)
    let narrowOut = CUDA.FusedKernels.addRMSNorm(residual: narrow, delta: narrowDelta, weight: narrowWeight, eps: 1e-6)
    report("fused add+rmsnorm (width 1001)", device,
           error: narrowOut.to(.float64).maxAbsDifference(narrowExpected.to(.float64)) / narrowExpected.to(.float64).abs().max().item(),
           tolerance: 1e-2)
    // The vision tower's rotary (float32 ops on q and k of the fused projection), exact.
    let (length, visionHeads, visionDim) = (100, 16, 80)
    let projected = random([length, 3 * visionHeads * visionDim], scale: 2)
    let visionAngles = Tensor.randn([length, visionDim / 2], generator: g) * 10
    let visionBoth = Tensor.cat([visionAngles, visionAngles], dim: -1).to(device)
    let (visionCos, visionSin) = (visionBoth.cos(), visionBoth.sin())
    let (fusedQ, fusedK) = CUDA.FusedKernels.visionRotary(qkv: projected, cos: visionCos, sin: visionSin, heads: visionHeads,
                                                          headDim: visionDim)
    let split = projected.reshape(length, 3, visionHeads, visionDim).permute(1, 0, 2, 3)
    func visionRotate(_ t: Tensor) -> Tensor {
      let f = t.to(.float32)
      let halves = f.split(sizes: [visionDim / 2, visionDim / 2], dim: -1)
      return (f * visionCos.unsqueeze(1) + Tensor.cat([halves[1].neg(), halves[0]], dim: -1) * visionSin.unsqueeze(1)).to(.bfloat16)
    }
    report("fused vision rotary (exact)", device,
           error: Swift.max(fusedQ.to(.float64).maxAbsDifference(visionRotate(split[0]).to(.float64)),
                            fusedK.to(.float64).maxAbsDifference(visionRotate(split[1]).to(.float64))), tolerance: 0)
    decodeAttentionChecks(device, g)
    attentionMassChecks(device, g)
    stepInputChecks(device, g)
    fusedSamplerChecks(device, g)
  }

  /// The decode-attention kernel against the exact attention (float64 on the same bf16 inputs) and
  /// flash attention's error from it, over the same slot cache (as the engine calls it), for 8 and 6
  /// query heads per key/value head, lengths from 1 key to the full cache, a strided query view; run
  /// twice to show the split counters are left at zero. Relative error within bf16 rounding of the
  /// output.
  mutating func decodeAttentionChecks(_ device: Device, _ g: Generator) {
    for (heads, kvHeads) in [(16, 2), (12, 2)] {
      let (slots, maxLength, headDim) = (13, 700, 128)
      let width = (heads + 2 * kvHeads) * headDim
      let qkv = Tensor.randn([slots, width], generator: g).to(.bfloat16, device: device)
      let keys = Tensor.randn([slots, maxLength, kvHeads, headDim], generator: g).to(.bfloat16, device: device)
      let values = Tensor.randn([slots, maxLength, kvHeads, headDim], generator: g).to(.bfloat16, device: device)
      let positions = Tensor([0, 1, 15, 16, 17, 63, 64, 65, 300, 511, 512, 640, maxLength - 1]).to(device)
      // The engine's split (one block per slot) and a split of 64 keys (merging up to 11 blocks).
      let splits = [CUDA.FusedKernels.decodeAttentionSplit(maxLength: maxLength), 64]
      let workspace = Tensor.empty([CUDA.FusedKernels.decodeAttentionWorkspace(slots: slots, heads: heads, maxLength: maxLength, split: 64)],
                                   dtype: .float32, device: device)
      let counters = Tensor.zeros([slots * kvHeads], dtype: .int32, device: device)
      func kernel(_ split: Int) -> Tensor {
        CUDA.FusedKernels.decodeAttention(qkv: qkv, keyCache: keys, valueCache: values, positions: positions, heads: heads,
                                          kvHeads: kvHeads, split: split, workspace: workspace, counters: counters)
      }
      let first = kernel(splits[0]), merged = kernel(splits[1]), second = kernel(splits[1])
      let query = qkv.narrow(1, start: 0, length: heads * headDim).view(slots, heads, headDim)
      let reference = F.flashAttentionVarlen(
        query.contiguous(), keys.view(slots * maxLength, kvHeads, headDim), values.view(slots * maxLength, kvHeads, headDim),
        cuSeqlensQ: Tensor.arange(slots + 1, dtype: .int32, device: device),
        cuSeqlensK: Tensor.arange(0, Double((slots + 1) * maxLength), step: Double(maxLength), dtype: .int32, device: device),
        maxSeqlenQ: 1, maxSeqlenK: maxLength, isCausal: false, sequsedK: (positions + 1).to(.int32))
        .view(slots, heads * headDim)
      // The exact attention (float64 on the same bf16 inputs) for both.
      let visible = Tensor.arange(maxLength, device: device).unsqueeze(0).le(positions.unsqueeze(1))  // [slots, keys]
      let expandedKeys = keys.to(.float64).transpose(1, 2).repeatInterleave(heads / kvHeads, dim: 1)  // [slots, heads, keys, d]
      let expandedValues = values.to(.float64).transpose(1, 2).repeatInterleave(heads / kvHeads, dim: 1)
      var scores = F.matmul(query.to(.float64).unsqueeze(2), expandedKeys.mT) / Double(headDim).squareRoot()
      scores = scores.maskedFill(visible.logicalNot().unsqueeze(1).unsqueeze(1), -Double.infinity)
      let exact = F.matmul(scores.softmax(dim: -1), expandedValues).view(slots, heads * headDim)
      let scale = exact.abs().max().item()
      let kernelError = Swift.max(first.to(.float64).maxAbsDifference(exact), merged.to(.float64).maxAbsDifference(exact)) / scale
      let flashError = reference.to(.float64).maxAbsDifference(exact) / scale
      let repeatError = merged.to(.float64).maxAbsDifference(second.to(.float64))
      let leftCounters = counters.to(.float64).abs().sum().item()
      report(String(format: "decode attention %d/%d heads vs exact (relative; flash: %.2e)", heads, kvHeads, flashError), device,
             error: Swift.max(kernelError, repeatError, leftCounters), tolerance: Swift.max(1e-2, 2 * flashError))
      // The kernel doing the rotary work itself equals the rotary kernel followed by it: same output,
      // same caches (bit for bit).
      let raw = Tensor.randn([slots, width], generator: g).to(.bfloat16, device: device)
      let angles = Tensor.randn([slots, headDim / 2], generator: g) * 30
      let both = Tensor.cat([angles, angles], dim: -1)
      let (cos, sin) = (both.cos().to(.bfloat16, device: device), both.sin().to(.bfloat16, device: device))
      let (keysA, valuesA, keysB, valuesB) = (keys.clone(), values.clone(), keys.clone(), values.clone())
      let rotated = raw.clone()
      CUDA.FusedKernels.rotaryKV(qkv: rotated, cos: cos, sin: sin, keyCache: keysA, valueCache: valuesA, positions: positions,
                                 heads: heads, kvHeads: kvHeads, headDim: headDim)
      var rotaryErrors: [Double] = []
      for split in splits {
        let separate = CUDA.FusedKernels.decodeAttention(qkv: rotated, keyCache: keysA, valueCache: valuesA, positions: positions,
                                                         heads: heads, kvHeads: kvHeads, split: split, workspace: workspace,
                                                         counters: counters)
        let together = CUDA.FusedKernels.decodeAttention(qkv: raw, keyCache: keysB, valueCache: valuesB, positions: positions,
                                                         heads: heads, kvHeads: kvHeads, split: split, workspace: workspace,
                                                         counters: counters, rotary: (cos, sin))
        rotaryErrors += [together.to(.float64).maxAbsDifference(separate.to(.float64)),
                         keysB.to(.float64).maxAbsDifference(keysA.to(.float64)),
                         valuesB.to(.float64).maxAbsDifference(valuesA.to(.float64))]
      }
      report("decode attention \(heads)/\(kvHeads) with rotary = rotary kernel + attention (exact)", device,
             error: rotaryErrors.max() ?? .nan, tolerance: 0)
    }
  }

  /// The decode-attention kernel's attention-diagnostics variant: its heads-averaged masses on text
  /// and image keys against the exact ones (float64 softmax on the same bf16 inputs), written at the
  /// addressed cells only (a step past the last column lands in the last), for the engine's split
  /// and a split of 64 keys (the merge path), and its attention output and cache writes bit for bit
  /// those of the plain kernel with the rotation inside; counters left zero.
  mutating func attentionMassChecks(_ device: Device, _ g: Generator) {
    let (heads, kvHeads, slots, maxLength, headDim, columns) = (16, 2, 13, 700, 128, 9)
    let qkv = Tensor.randn([slots, (heads + 2 * kvHeads) * headDim], generator: g).to(.bfloat16, device: device)
    let keys = Tensor.randn([slots, maxLength, kvHeads, headDim], generator: g).to(.bfloat16, device: device)
    let values = Tensor.randn([slots, maxLength, kvHeads, headDim], generator: g).to(.bfloat16, device: device)
    let positions = Tensor([0, 1, 15, 16, 17, 63, 64, 65, 300, 511, 512, 640, maxLength - 1]).to(device)
    let angles = Tensor.randn([slots, headDim / 2], generator: g) * 30
    let both = Tensor.cat([angles, angles], dim: -1)
    let (cos, sin) = (both.cos().to(.bfloat16, device: device), both.sin().to(.bfloat16, device: device))
    // Key flags: text, image or neither (the completion), disjoint as the prompt's masks are.
    let kind = Tensor.randint(0, 3, [slots, maxLength], generator: g).to(device)
    let (textMask, visionMask) = (kind.eq(0).to(.float32), kind.eq(1).to(.float32))
    let sequence = Tensor((0..<slots).map { ($0 * 5) % slots }).to(device), step = Tensor((0..<slots).map { $0 }).to(device)
    let counters = Tensor.zeros([slots * kvHeads], dtype: .int32, device: device)
    let massCounters = Tensor.zeros([slots], dtype: .int32, device: device)
    var errors: [Double] = []
    for split in [CUDA.FusedKernels.decodeAttentionSplit(maxLength: maxLength), 64] {
      let workspace = Tensor.empty([CUDA.FusedKernels.decodeAttentionWorkspace(slots: slots, heads: heads, maxLength: maxLength, split: split)],
                                   dtype: .float32, device: device)
      let massWorkspace = Tensor.empty([CUDA.FusedKernels.decodeAttentionMassWorkspace(slots: slots, heads: heads, maxLength: maxLength,
                                                                                      split: split)], dtype: .float32, device: device)
      let (text, vision) = (Tensor.full([slots + 1, columns, 3], -1, device: device), Tensor.full([slots + 1, columns, 3], -1, device: device))
      let recording = CUDA.FusedKernels.MassRecording(textMask: textMask, visionMask: visionMask, text: text, vision: vision,
                                                      sequence: sequence, step: step, column: 1)
      let (keysA, valuesA, keysB, valuesB, rawA, rawB) = (keys.clone(), values.clone(), keys.clone(), values.clone(), qkv.clone(), qkv.clone())
      let plain = CUDA.FusedKernels.decodeAttention(qkv: rawA, keyCache: keysA, valueCache: valuesA, positions: positions, heads: heads,
                                                    kvHeads: kvHeads, split: split, workspace: workspace, counters: counters,
                                                    rotary: (cos, sin))
      let recorded = CUDA.FusedKernels.decodeAttention(qkv: rawB, keyCache: keysB, valueCache: valuesB, positions: positions,
                                                       heads: heads, kvHeads: kvHeads, split: split, workspace: workspace,
                                                       counters: counters, rotary: (cos, sin), mass: recording,
                                                       massWorkspace: massWorkspace, massCounters: massCounters)
      errors += [recorded.to(.float64).maxAbsDifference(plain.to(.float64)), keysB.to(.float64).maxAbsDifference(keysA.to(.float64)),
                 valuesB.to(.float64).maxAbsDifference(valuesA.to(.float64))]
      // The exact masses over the rotated queries (the rotary kernel's, bit-identical) and the cached keys.
      let rotated = qkv.clone()
      CUDA.FusedKernels.rotaryKV(qkv: rotated, cos: cos, sin: sin, keyCache: keys.clone(), valueCache: values.clone(),
                                 positions: positions, heads: heads, kvHeads: kvHeads, headDim: headDim)
      let query = rotated.narrow(1, start: 0, length: heads * headDim).view(slots, heads, 1, headDim).to(.float64)
      let expanded = keysA.to(.float64).transpose(1, 2).repeatInterleave(heads / kvHeads, dim: 1)  // [slots, heads, keys, d]
      let visible = Tensor.arange(maxLength, device: device).unsqueeze(0).le(positions.unsqueeze(1))
      let scores = (F.matmul(query, expanded.mT) / Double(headDim).squareRoot())
        .maskedFill(visible.logicalNot().unsqueeze(1).unsqueeze(1), -Double.infinity)
      let probabilities = scores.softmax(dim: -1).squeeze(2).mean(dim: 1)  // [slots, keys]
      let cells: [(Int, Tensor)] = [(0, sequence), (1, step.clamp(max: Double(columns - 1)).to(.int64))]
      let written = text.index(cells).select(1, 1), writtenVision = vision.index(cells).select(1, 1)
      errors += [written.to(.float64).maxAbsDifference((probabilities * textMask.to(.float64)).sum(dim: -1)),
                 writtenVision.to(.float64).maxAbsDifference((probabilities * visionMask.to(.float64)).sum(dim: -1))]
      // Every other cell keeps its -1.
      text.indexPut_(cells, Tensor.full([slots, 3], -1, device: device))
      errors.append((text + 1).abs().max().item())
    }
    errors.append(Swift.max(counters.to(.float64).abs().sum().item(), massCounters.to(.float64).abs().sum().item()))
    report("decode attention with attention mass (masses vs exact; output, caches, other cells exact)", device,
           error: errors.max() ?? .nan, tolerance: 1e-4)
  }

  /// The step-input kernel against the libtorch ops of the plain decode step: embedding rows and
  /// positions exact, cos/sin of `LanguageModel.rotary` for a decode token exact.
  mutating func stepInputChecks(_ device: Device, _ g: Generator) {
    let (slots, hidden, headDim, vocab, maxLength) = (9, 512, 128, 1000, 600)
    let embedding = Tensor.randn([vocab, hidden], generator: g).to(.bfloat16, device: device)
    let tokens = Tensor.randint(0, vocab, [slots], generator: g).to(device)
    let lengths = Tensor([0, 1, 17, 380, 599, 600, 640, 5000, 123_456]).to(device)
    let deltas = Tensor([0, -3, 5, -200, 0, 7, 0, -4000, 99]).to(device)
    let frequencies = Tensor.pow(1_000_000.0, Tensor.arange(0, Double(headDim), step: 2, dtype: .float32) / Double(headDim))
      .reciprocal().to(device)
    let residual = Tensor.empty([slots, hidden], dtype: .bfloat16, device: device)
    let (cos, sin) = (Tensor.empty([slots, headDim], dtype: .bfloat16, device: device),
                      Tensor.empty([slots, headDim], dtype: .bfloat16, device: device))
    let write = Tensor.empty([slots], dtype: .int64, device: device), keyLengths = Tensor.empty([slots], dtype: .int64, device: device)
    let keyLengths32 = Tensor.empty([slots], dtype: .int32, device: device)
    CUDA.FusedKernels.stepInputs(tokens: tokens, lengths: lengths, deltas: deltas, embedding: embedding, inverseFrequencies: frequencies,
                                 maxLength: maxLength, residual: residual, writePositions: write, keyLengths: keyLengths,
                                 keyLengths32: keyLengths32, cos: cos, sin: sin)
    let expectedWrite = lengths.clamp(max: Double(maxLength - 1))
    let angles = (lengths + deltas).to(.float32).unsqueeze(-1) * frequencies
    let both = Tensor.cat([angles, angles], dim: -1)
    let errors = [
      residual.to(.float64).maxAbsDifference(embedding.indexSelect(0, tokens).to(.float64)),
      write.to(.float64).maxAbsDifference(expectedWrite.to(.float64)),
      keyLengths.to(.float64).maxAbsDifference((expectedWrite + 1).to(.float64)),
      keyLengths32.to(.float64).maxAbsDifference((expectedWrite + 1).to(.float64)),
      cos.to(.float64).maxAbsDifference(both.cos().to(.bfloat16).to(.float64)),
      sin.to(.float64).maxAbsDifference(both.sin().to(.bfloat16).to(.float64)),
    ]
    report("fused step inputs (exact)", device, error: errors.max() ?? .nan, tolerance: 0)
  }

  /// The fused sampler on bf16 logits of Qwen's vocabulary size with a few suppressed ids: greedy
  /// tokens identical to `TokenSampler`'s; sampled tokens against the exact inverse CDF (float64 on
  /// the same logits and uniforms), up to float32 rounding of the cumulative sums, with
  /// `TokenSampler`'s float32 cumsum measured the same way beside it; log-probs of the chosen tokens
  /// within 1e-3 of `TokenSampler`'s.
  mutating func fusedSamplerChecks(_ device: Device, _ g: Generator) {
    let (rows, vocab) = (256, 151_936)
    let logits = (Tensor.randn([rows, vocab], generator: g) * 4).to(.bfloat16, device: device)
    let uniforms = Tensor.rand([rows], generator: g).to(device)
    for temperature in [0.0, 1.0, 0.7] {
      var settings = SamplingSettings(maxNewTokens: 1, temperature: temperature)
      settings.suppressedTokenIds = [151_652, 151_653, 151_655]
      let sampler = TokenSampler(settings: settings, suppressed: settings.suppressedTokenIds ?? [], vocabSize: vocab, device: device)
      let reference = sampler.choose(logits.to(.float32), seen: nil, uniforms: uniforms)
      let fused = CUDA.FusedKernels.sample(logits: logits, bias: sampler.suppressionBias, uniforms: uniforms, temperature: temperature)
      let same = fused.tokens.eq(reference.tokens)
      let logProbError = (fused.logProbs - reference.logProbs).abs().maskedFill(same.logicalNot(), 0).max().item()
      if temperature == 0 {
        report("fused sampler T=0.0 mismatches", device, error: Double(rows) - same.sum().item(), tolerance: 0)
      } else {
        // Against the exact draw (float64 scores and cumulative sums on the same logits and
        // uniforms): the chosen token's interval [cdf(k-1), cdf(k)) must hold uniform * total up to
        // float32 rounding of the sums (1e-5 of the total), and its probability must be positive
        // (never a suppressed token). The libtorch sampler's worst miss is reported beside it.
        var scores = logits.to(.float64)
        if let bias = sampler.suppressionBias { scores = scores + bias.to(.float64) }
        scores = scores / temperature
        let probabilities = (scores - scores.max([-1], keepDim: true)).exp()
        let cumulative = probabilities.cumsum(dim: -1)
        let total = cumulative.narrow(-1, start: vocab - 1, length: 1).squeeze(1)
        let target = uniforms.to(.float64) * total
        func miss(_ tokens: Tensor) -> Double {
          let index = tokens.unsqueeze(1)
          let upper = cumulative.gather(1, index).squeeze(1)
          let lower = upper - probabilities.gather(1, index).squeeze(1)
          let outside = (lower - target).maximum(target - upper).clamp(min: 0) / total
          let zeroProbability = probabilities.gather(1, index).squeeze(1).le(0).to(.float64).sum().item()
          return outside.max().item() + zeroProbability
        }
        report(String(format: "fused sampler T=%.1f draw vs exact inverse CDF (libtorch sampler: %.1e)", temperature,
                      miss(reference.tokens)), device, error: miss(fused.tokens), tolerance: 1e-5)
      }
      report(String(format: "fused sampler T=%.1f log-probs", temperature), device, error: logProbError, tolerance: 1e-3)
      // The decode-step form: the same draws through the slot state, written to their cells.
      let columns = 5
      let sequence = Tensor(Array((0..<rows).reversed())).to(device)
      let step = Tensor.randint(0, columns + 2, [rows], generator: g).to(device)
      let column = step.clamp(max: Double(columns - 1)).to(.int64)  // a float bound promotes to float
      let table = Tensor.rand([rows + 1, columns], generator: g).to(device)
      table.indexPut_([(0, sequence), (1, column)], uniforms)
      let (tokenTable, logProbTable) = (Tensor.zeros([rows + 1, columns], dtype: .int64, device: device),
                                        Tensor.zeros([rows + 1, columns], device: device))
      let (slotTokens, slotLengths, slotStep) = (Tensor.zeros([rows], dtype: .int64, device: device),
                                                 Tensor.full([rows], 7, dtype: .int64, device: device), step.clone())
      CUDA.FusedKernels.sampleStep(logits: logits, bias: sampler.suppressionBias, uniforms: table, temperature: temperature,
                                   slotSequence: sequence, slotStep: slotStep, slotTokens: slotTokens, slotLengths: slotLengths,
                                   tokens: tokenTable, logProbs: logProbTable)
      let stepErrors = [
        tokenTable.index([(0, sequence), (1, column)]).to(.float64).maxAbsDifference(fused.tokens.to(.float64)),
        logProbTable.index([(0, sequence), (1, column)]).to(.float64).maxAbsDifference(fused.logProbs.to(.float64)),
        slotTokens.to(.float64).maxAbsDifference(fused.tokens.to(.float64)),
        slotLengths.to(.float64).maxAbsDifference(Tensor.full([rows], 8, dtype: .float64, device: device)),
        slotStep.to(.float64).maxAbsDifference((step + 1).to(.float64)),
      ]
      report(String(format: "fused sampler T=%.1f decode-step form", temperature), device, error: stepErrors.max() ?? .nan,
             tolerance: 0)
    }
  }

  mutating func throughput(device: Device, size: Int?) {
    let n = size ?? (device.isCUDA ? 8192 : 1024)
    let dtype: DType = device.isCUDA ? .bfloat16 : .float32
    let a = Tensor.randn([n, n], dtype: dtype, device: device)
    let b = Tensor.randn([n, n], dtype: dtype, device: device)
    let iterations = device.isCUDA ? 50 : 3
    for _ in 0..<3 { _ = F.matmul(a, b) }
    if device.isCUDA { CUDA.synchronize() }
    let start = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<iterations { _ = F.matmul(a, b) }
    if device.isCUDA { CUDA.synchronize() }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    let flops = 2 * Double(n) * Double(n) * Double(n) * Double(iterations) / seconds
    print(String(format: "  %@ matmul %dx%dx%d: %.1f TFLOP/s (%.3f ms each)", dtype.description, n, n, n, flops / 1e12,
                 seconds / Double(iterations) * 1000))
  }
}
