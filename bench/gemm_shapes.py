"""Decode-step GEMM shapes of Qwen2.5-VL-3B at the rollout's batch sizes, through cuBLAS variants.

Usage: python3 bench/gemm_shapes.py
Prints, per shape and M, the time of F.linear(x, W) (what the decode step runs), of x @ W^T with
W stored transposed, and with cuBLASLt preferred, next to the weight bytes' time at 4.8 TB/s. Also
checks whether flash attention's varlen forward accepts a query that is a strided view (the q part
of a fused q/k/v row), which the decode step would otherwise copy.
"""
import torch
import torch.nn.functional as F

torch.manual_seed(0)
dev = "cuda"
shapes = {"qkv": (2048, 2560), "o": (2048, 2048), "gate_up": (2048, 22016), "down": (11008, 2048),
          "lm_head": (2048, 151936)}


def bench(fn, reps=200):
    for _ in range(10):
        fn()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(reps):
            fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    g.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps * 1000  # us


for m in (64, 256):
    print(f"M = {m}")
    for name, (k, n) in shapes.items():
        # Several weight copies round-robin so L2 (50 MB) does not hold the weight between calls.
        copies = max(1, int(200e6 // (k * n * 2)))
        ws = [torch.randn(n, k, device=dev, dtype=torch.bfloat16) * 0.02 for _ in range(copies)]
        wts = [w.t().contiguous() for w in ws]
        x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        state = {"i": 0}

        def lin():
            state["i"] = (state["i"] + 1) % copies
            return F.linear(x, ws[state["i"]])

        def tmm():
            state["i"] = (state["i"] + 1) % copies
            return x @ wts[state["i"]]

        xts = x.t().contiguous()

        def wxt():  # the transposed product W X^T: [n, m]
            state["i"] = (state["i"] + 1) % copies
            return ws[state["i"]] @ xts

        floor = k * n * 2 / 4.8e12 * 1e6
        t_lin = bench(lin)
        t_tmm = bench(tmm)
        torch.backends.cuda.preferred_blas_library("cublaslt")
        t_lt = bench(lin)
        t_lt_t = bench(tmm)
        torch.backends.cuda.preferred_blas_library("cublas")
        t_wxt = bench(wxt)
        print(f"  {name:8s} {k}x{n}: linear {t_lin:7.1f} us  x@Wt {t_tmm:7.1f}  lt-linear {t_lt:7.1f}  lt-x@Wt {t_lt_t:7.1f}"
              f"  W@X^T {t_wxt:7.1f}  bytes floor {floor:6.1f} us")
        del ws, wts

# Flash varlen with a strided query view.
slots, heads, kvh, hd, maxlen = 64, 16, 2, 128, 640
qkv = torch.randn(slots, (heads + 2 * kvh) * hd, device=dev, dtype=torch.bfloat16)
q = qkv[:, : heads * hd].view(slots, heads, hd)
kc = torch.randn(slots * maxlen, kvh, hd, device=dev, dtype=torch.bfloat16)
vc = torch.randn(slots * maxlen, kvh, hd, device=dev, dtype=torch.bfloat16)
cq = torch.arange(slots + 1, device=dev, dtype=torch.int32)
ck = torch.arange(0, (slots + 1) * maxlen, maxlen, device=dev, dtype=torch.int32)
used = torch.randint(380, 636, (slots,), device=dev, dtype=torch.int32)
try:
    out_s = torch.ops.aten._flash_attention_forward(q, kc, vc, cq, ck, 1, maxlen, 0.0, False, False, seqused_k=used)[0]
    out_c = torch.ops.aten._flash_attention_forward(q.contiguous(), kc, vc, cq, ck, 1, maxlen, 0.0, False, False, seqused_k=used)[0]
    print("flash strided q: accepted, max diff vs contiguous", (out_s.float() - out_c.float()).abs().max().item())
    t_s = bench(lambda: torch.ops.aten._flash_attention_forward(q, kc, vc, cq, ck, 1, maxlen, 0.0, False, False, seqused_k=used))
    t_c = bench(lambda: torch.ops.aten._flash_attention_forward(q.contiguous(), kc, vc, cq, ck, 1, maxlen, 0.0, False, False, seqused_k=used))
    print(f"flash decode 64 slots: strided q {t_s:.1f} us, with contiguous copy {t_c:.1f} us")
except Exception as e:  # noqa: BLE001
    print("flash strided q: rejected:", str(e).splitlines()[0])

# The same GEMMs after PyTorch's TunableOp has tried cuBLAS/cuBLASLt solutions for each shape.
import torch.cuda.tunable as tunable
tunable.enable(True)
tunable.tuning_enable(True)
for m in (64, 256):
    print(f"TunableOp, M = {m}")
    for name, (k, n) in shapes.items():
        copies = max(1, int(200e6 // (k * n * 2)))
        ws = [torch.randn(n, k, device=dev, dtype=torch.bfloat16) * 0.02 for _ in range(copies)]
        x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        state = {"i": 0}

        def lin():
            state["i"] = (state["i"] + 1) % copies
            return F.linear(x, ws[state["i"]])

        lin()  # tunes this shape
        print(f"  {name:8s} {k}x{n}: tuned linear {bench(lin):7.1f} us  bytes floor {k * n * 2 / 4.8e12 * 1e6:6.1f} us")
        del ws
