"""K-split decode GEMMs: Y = X W^T at M = 64 / 256 as one cuBLAS call (F.linear) against a batched
GEMM over c chunks of K with float32 outputs (torch.bmm(out_dtype=float32); the chunks' sum would be
folded into the next kernel, the residual add + RMSNorm), which lets cuBLAS spread a narrow
projection over c times more thread blocks. Times from CUDA-graph replays with weights rotated
through copies larger than L2.   usage: python3 bench/gemm_split.py
"""
import torch
import torch.nn.functional as F

from graph_timer import timed

dev = "cuda"
shapes = {"qkv": (2048, 2560), "o": (2048, 2048), "gate_up": (2048, 22016), "down": (11008, 2048)}


for m in (64, 256):
    print(f"M = {m}")
    for name, (k, n) in shapes.items():
        copies = max(1, int(200e6 // (k * n * 2)))
        ws = [torch.randn(n, k, device=dev, dtype=torch.bfloat16) * 0.02 for _ in range(copies)]
        x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        state = {"i": 0}

        def lin():
            state["i"] = (state["i"] + 1) % copies
            return F.linear(x, ws[state["i"]])

        line = f"  {name:8s} {k}x{n}: linear {timed(lin):6.1f} us"
        reference = F.linear(x.float(), ws[0].float())
        for c in (2, 4, 8):
            if k % c:
                continue
            kc = k // c
            xs = x.as_strided((c, m, kc), (kc, k, 1))
            wts = [w.as_strided((c, kc, n), (kc, 1, k)) for w in ws]  # W^T chunks, no copy

            def split():
                state["i"] = (state["i"] + 1) % copies
                return torch.bmm(xs, wts[state["i"]], out_dtype=torch.float32)

            try:
                t = timed(split)
                state["i"] = copies - 1
                err = (split().sum(0) - reference).abs().max().item()
                line += f"  split {c}: {t:6.1f} us (err {err:.1e})"
            except Exception as e:  # noqa: BLE001
                line += f"  split {c}: {str(e).splitlines()[0][:60]}"
        print(line, f"  floor {k * n * 2 / 4.8e12 * 1e6:5.1f} us")
