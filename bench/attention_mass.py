"""The attention-diagnostics kernels of the decode step (csrc/decode_kernels.cu) at the 3B rollout's
shapes (16 query heads, 2 key/value heads, ~380-token prompts with 256 image tokens, keys 380-636),
without a vlmrl build (CuPy's NVRTC compiles the source, as bench/kernel_times.py does).

Correctness, for 64 and 256 slots, whole-cache blocks and split keys (split 128, the merge path),
and for 6 query heads per key/value head (padded rows of the tensor-core tiles) with key lengths
of 1 to 65 around the 16-key tiles:
  - vlmrl_decode_attention8_mass's masses against a float32 torch reference over the same rotated
    queries and keys (the probabilities the attention applies), against the ops reference (scores
    rounded to bf16 before the softmax, as VLMRL_ATTENTION_MASS=ops computes them), and the
    separate kernel vlmrl_attention_mass against the ops reference; max |difference| of each;
  - the variant's attention output and cache writes bit-identical to vlmrl_decode_attention8's;
    only the addressed cells of the output buffers written; its counters left zero.
Time per recorded layer (each replayed 200 times inside one CUDA graph, as the engine runs them):
  off       vlmrl_decode_attention8 with the rotation inside (what every unrecorded layer runs)
  fused     vlmrl_decode_attention8_mass with the rotation inside
  separate  vlmrl_rotary_kv + vlmrl_attention_mass + vlmrl_decode_attention8 (the previous path)
Exits with status 1 when a check fails.      usage: python3 bench/attention_mass.py [SLOTS ...]
"""
import ctypes, math, os, sys
import cupy as cp
import torch

from graph_timer import timed

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
module = cp.RawModule(code=open(f"{here}/csrc/decode_kernels.cu").read(), options=("--std=c++17",))
driver = ctypes.CDLL("libcuda.so.1")
HEADS, KVH, D = 16, 2, 128
PROMPT, IMAGE_BEGIN, IMAGE_TOKENS, NEW = 380, 15, 256, 256
MAXLEN = PROMPT + NEW + 8
RECORDED, COLUMN = 6, 2
SCALE_LOG2 = 1.4426950408889634 / math.sqrt(D)


class MassTarget(ctypes.Structure):  # csrc/decode_kernels.cu, MassTarget
    _fields_ = [("text_mask", ctypes.c_void_p), ("vision_mask", ctypes.c_void_p), ("out_text", ctypes.c_void_p),
                ("out_vision", ctypes.c_void_p), ("sequence", ctypes.c_void_p), ("step", ctypes.c_void_p),
                ("workspace", ctypes.c_void_p), ("counters", ctypes.c_void_p), ("mask_stride", ctypes.c_int64),
                ("columns", ctypes.c_int), ("recorded", ctypes.c_int), ("column", ctypes.c_int)]


def p(t):
    return ctypes.c_void_p(t.data_ptr() if t is not None else 0)


def launch(name, grid, block, args):
    """cuLaunchKernel on torch's current stream (so CUDA graphs capture it); args are ctypes values."""
    holders = (ctypes.c_void_p * len(args))(*[ctypes.cast(ctypes.pointer(a), ctypes.c_void_p) for a in args])
    grid = tuple(grid) + (1,) * (3 - len(grid))
    function = module.get_function(name).kernel  # cupy.cuda.function.Function: .ptr is the CUfunction
    status = driver.cuLaunchKernel(ctypes.c_void_p(function.ptr), *[ctypes.c_uint(g) for g in grid],
                                   ctypes.c_uint(block), ctypes.c_uint(1), ctypes.c_uint(1), ctypes.c_uint(0),
                                   ctypes.c_void_p(torch.cuda.current_stream().cuda_stream), holders, None)
    if status != 0:
        raise RuntimeError(f"cuLaunchKernel({name}) failed with {status}")


class Workload:
    def __init__(self, slots, seed, heads=HEADS, lengths=None):
        g = torch.Generator(device="cuda").manual_seed(seed)
        dev, bf = "cuda", torch.bfloat16
        self.slots, self.heads = slots, heads
        HEADS = heads
        # Queries scaled so that the scores spread over a few units, as a trained model's do.
        self.qkv = torch.randn(slots, (HEADS + 2 * KVH) * D, device=dev, generator=g).mul_(2).to(bf)
        self.kc = torch.randn(slots, MAXLEN, KVH, D, device=dev, generator=g).to(bf)
        self.vc = torch.randn(slots, MAXLEN, KVH, D, device=dev, generator=g).to(bf)
        self.positions = torch.randint(PROMPT, PROMPT + NEW, (slots,), device=dev, generator=g)
        if lengths is not None:
            self.positions = torch.tensor(lengths, device=dev) - 1
        inverse = 1.0 / (1e6 ** (torch.arange(0, D, 2, device=dev, dtype=torch.float32) / D))
        angles = self.positions.float()[:, None] * inverse[None, :]
        self.cos = torch.cat([angles.cos(), angles.cos()], dim=1).to(bf)
        self.sin = torch.cat([angles.sin(), angles.sin()], dim=1).to(bf)
        self.text = torch.zeros(slots, MAXLEN, device=dev)
        self.vision = torch.zeros(slots, MAXLEN, device=dev)
        self.text[:, :PROMPT] = 1
        self.text[:, IMAGE_BEGIN - 1:IMAGE_BEGIN + IMAGE_TOKENS + 1] = 0
        self.vision[:, IMAGE_BEGIN:IMAGE_BEGIN + IMAGE_TOKENS] = 1
        self.rows, self.columns = slots + 1, NEW + 8
        self.sequence = torch.randperm(slots, device=dev, generator=g)
        self.step = torch.randint(0, self.columns + 4, (slots,), device=dev, generator=g)  # some past the last column
        self.key_lengths = self.positions + 1

    def buffers(self, split):
        splits = (MAXLEN + split - 1) // split
        dev, HEADS = "cuda", self.heads
        return dict(partial=torch.empty(self.slots * HEADS * splits * 130, device=dev),
                    counters=torch.zeros(self.slots * KVH, device=dev, dtype=torch.int32),
                    mass_work=torch.empty(2 * self.slots * HEADS * (splits + 1), device=dev),
                    mass_counters=torch.zeros(self.slots, device=dev, dtype=torch.int32),
                    out=torch.empty(self.slots, HEADS * D, device=dev, dtype=torch.bfloat16),
                    out_text=torch.full((self.rows, self.columns, RECORDED), -1.0, device=dev),
                    out_vision=torch.full((self.rows, self.columns, RECORDED), -1.0, device=dev), splits=splits)

    def attention_args(self, qkv, kc, vc, b, split, rotate):
        return [p(qkv), ctypes.c_int64(qkv.stride(0)), p(kc), p(vc), p(self.positions), ctypes.c_int(self.heads),
                ctypes.c_int(KVH), ctypes.c_int(MAXLEN), ctypes.c_int(split), ctypes.c_float(SCALE_LOG2),
                p(b["partial"]), p(b["counters"]), p(b["out"]), p(self.cos if rotate else None),
                p(self.sin if rotate else None)]

    def plain(self, qkv, kc, vc, b, split, rotate=True):
        launch("vlmrl_decode_attention8", (b["splits"], KVH, self.slots), 256, self.attention_args(qkv, kc, vc, b, split, rotate))

    def fused(self, qkv, kc, vc, b, split):
        target = MassTarget(self.text.data_ptr(), self.vision.data_ptr(), b["out_text"].data_ptr(), b["out_vision"].data_ptr(),
                            self.sequence.data_ptr(), self.step.data_ptr(), b["mass_work"].data_ptr(),
                            b["mass_counters"].data_ptr(), self.text.stride(0), self.columns, RECORDED, COLUMN)
        launch("vlmrl_decode_attention8_mass", (b["splits"], KVH, self.slots), 256,
               self.attention_args(qkv, kc, vc, b, split, True) + [target])

    def rotary(self, qkv, kc, vc):
        launch("vlmrl_rotary_kv", (self.heads + 2 * KVH, self.slots), D // 2,
               [p(qkv), p(self.cos), p(self.sin), p(kc), p(vc), p(self.positions), ctypes.c_int(self.heads), ctypes.c_int(KVH),
                ctypes.c_int(D), ctypes.c_int(MAXLEN)])

    def separate_mass(self, qkv, kc, b):
        launch("vlmrl_attention_mass", (self.slots,), 256,
               [p(qkv), ctypes.c_int64(qkv.stride(0)), p(kc), ctypes.c_int64(kc.stride(0)), p(self.key_lengths), p(self.text),
                p(self.vision), ctypes.c_int64(self.text.stride(0)), ctypes.c_int(self.heads), ctypes.c_int(KVH), ctypes.c_int(MAXLEN),
                p(b["out_text"]), p(b["out_vision"]), p(self.sequence), p(self.step), ctypes.c_int(self.columns),
                ctypes.c_int(RECORDED), ctypes.c_int(COLUMN)])

    def cells(self, b):
        step = self.step.clamp(max=self.columns - 1)
        return b["out_text"][self.sequence, step, COLUMN], b["out_vision"][self.sequence, step, COLUMN]

    def reference(self, rotated_qkv, kc, rounded):
        """Heads-averaged masses from torch: float32 scores, or rounded to bf16 first (the ops path)."""
        HEADS = self.heads
        q = rotated_qkv[:, :HEADS * D].view(self.slots, KVH, HEADS // KVH, D).float()
        k = kc.float()  # [slots, maxlen, kvh, d]
        scores = torch.einsum("skgd,sjkd->skgj", q, k)
        if rounded:
            scores = scores.to(torch.bfloat16).float()
        scores = (scores / math.sqrt(D)).reshape(self.slots, HEADS, MAXLEN)
        visible = torch.arange(MAXLEN, device="cuda")[None, :] < self.key_lengths[:, None]
        probabilities = scores.masked_fill(~visible[:, None, :], float("-inf")).softmax(-1).mean(1)
        return (probabilities * self.text).sum(-1), (probabilities * self.vision).sum(-1)


failures = []


def check(what, ok):
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


def correctness(slots, split, heads=HEADS, lengths=None):
    w = Workload(slots, seed=slots + split, heads=heads, lengths=lengths)
    label = (f"{slots} slots, {heads}/{KVH} heads, split {split if split < MAXLEN else 'whole cache'}"
             + (", key lengths 1-65" if lengths else ""))
    print(f"--- correctness: {label}")
    # The separate path: rotation kernel, then the mass kernel and the attention over rotated queries.
    qkv_r, kc_r, vc_r = w.qkv.clone(), w.kc.clone(), w.vc.clone()
    w.rotary(qkv_r, kc_r, vc_r)
    b_sep = w.buffers(split)
    w.separate_mass(qkv_r, kc_r, b_sep)
    # The unrecorded layer (plain kernel, rotation inside) and the fused variant, each on its own copies.
    qkv_p, kc_p, vc_p = w.qkv.clone(), w.kc.clone(), w.vc.clone()
    b_plain = w.buffers(split)
    w.plain(qkv_p, kc_p, vc_p, b_plain, split)
    qkv_f, kc_f, vc_f = w.qkv.clone(), w.kc.clone(), w.vc.clone()
    b_fused = w.buffers(split)
    w.fused(qkv_f, kc_f, vc_f, b_fused, split)
    torch.cuda.synchronize()
    exact_t, exact_v = w.reference(qkv_r, kc_r, rounded=False)
    ops_t, ops_v = w.reference(qkv_r, kc_r, rounded=True)
    fused_t, fused_v = w.cells(b_fused)
    sep_t, sep_v = w.cells(b_sep)
    rows = []
    for name, (t, v) in {"fused": (fused_t, fused_v), "separate": (sep_t, sep_v), "ops reference": (ops_t, ops_v),
                         "float32 reference": (exact_t, exact_v)}.items():
        rows.append(f"    {name:18s} text {t.mean().item():.6f}  image {v.mean().item():.6f}  (means over slots)")
    print("\n".join(rows))

    def diff(a, b):
        return max((a[0] - b[0]).abs().max().item(), (a[1] - b[1]).abs().max().item())
    d_fused_exact, d_fused_ops = diff((fused_t, fused_v), (exact_t, exact_v)), diff((fused_t, fused_v), (ops_t, ops_v))
    d_sep_ops = diff((sep_t, sep_v), (ops_t, ops_v))
    print(f"    max |diff|: fused vs float32 reference {d_fused_exact:.2e}, fused vs ops reference {d_fused_ops:.2e}, "
          f"separate vs ops reference {d_sep_ops:.2e}")
    check(f"{label}: fused masses within 1e-4 of the float32 reference", d_fused_exact < 1e-4)
    check(f"{label}: fused masses within 1e-3 of the ops reference", d_fused_ops < 1e-3)
    check(f"{label}: separate kernel within 1e-4 of the ops reference", d_sep_ops < 1e-4)
    check(f"{label}: attention output bit-identical to the plain kernel", torch.equal(b_fused["out"], b_plain["out"]))
    check(f"{label}: key/value cache writes identical", torch.equal(kc_f, kc_p) and torch.equal(vc_f, vc_p))
    untouched = b_fused["out_text"].clone()
    untouched[w.sequence, w.step.clamp(max=w.columns - 1), COLUMN] = -1
    check(f"{label}: only the addressed cells written", bool((untouched == -1).all()))
    check(f"{label}: counters left zero",
          int(b_fused["mass_counters"].abs().sum()) == 0 and int(b_fused["counters"].abs().sum()) == 0)


def timing(slots):
    w = Workload(slots, seed=7)
    split = (MAXLEN + 63) // 64 * 64  # the engine's split: the whole cache per block
    b = w.buffers(split)
    qkv, kc, vc = w.qkv.clone(), w.kc.clone(), w.vc.clone()
    off = timed(lambda: w.plain(qkv, kc, vc, b, split))
    fused = timed(lambda: w.fused(qkv, kc, vc, b, split))

    def separate():
        w.rotary(qkv, kc, vc)
        w.separate_mass(qkv, kc, b)
        w.plain(qkv, kc, vc, b, split, rotate=False)
    sep = timed(separate)
    print(f"--- time per recorded layer, {slots} slots: off {off:.2f} us, fused {fused:.2f} us (+{fused - off:.2f}), "
          f"separate {sep:.2f} us (+{sep - off:.2f}); x{RECORDED} recorded layers per step: fused +{RECORDED * (fused - off):.1f} us, "
          f"separate +{RECORDED * (sep - off):.1f} us")


print(f"device: {torch.cuda.get_device_name()}")
for slots in [int(a) for a in sys.argv[1:]] or [64, 256]:
    for split in (MAXLEN + 63) // 64 * 64, 128:
        correctness(slots, split)
edges = [1, 2, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65]
for split in (MAXLEN + 63) // 64 * 64, 32:
    correctness(len(edges), split, heads=12, lengths=edges)
for slots in [int(a) for a in sys.argv[1:]] or [64, 256]:
    timing(slots)
if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")
