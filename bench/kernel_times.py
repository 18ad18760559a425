"""Per-kernel times of the fused decode kernels (csrc/decode_kernels.cu) at the rollout's shapes,
each replayed 200 times inside one CUDA graph (as the engine runs them), next to the libtorch or
flash-attention op it replaces. Loads the kernel source with CuPy's NVRTC, so no vlmrl build is
needed.   usage: python3 bench/kernel_times.py [SLOTS ...]   (default 64 256)
"""
import math, sys
import cupy as cp
import numpy as np
import torch
import torch.nn.functional as F

import os
from graph_timer import timed
here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
module = cp.RawModule(code=open(f"{here}/csrc/decode_kernels.cu").read(), options=("--std=c++17",))
kernel = module.get_function
dev = "cuda"
H, HEADS, KVH, D, INNER = 2048, 16, 2, 128, 11008


def ptr(t):
    return cp.uint64(t.data_ptr())


def launch(name, grid, block, args, shared=0):
    stream = cp.cuda.Stream.from_external(torch.cuda.current_stream())
    kernel(name)(grid, block, args, shared_mem=shared, stream=stream)


empty = cp.RawKernel(r'extern "C" __global__ void nothing() {}', "nothing")
print(f"graph node overhead: empty kernel {timed(lambda: empty((1,), (32,), (), stream=cp.cuda.Stream.from_external(torch.cuda.current_stream()))):.2f} us")

for slots in [int(a) for a in sys.argv[1:]] or [64, 256]:
    print(f"--- {slots} slots")
    residual = torch.randn(slots, H, device=dev, dtype=torch.bfloat16)
    delta = torch.randn(slots, H, device=dev, dtype=torch.bfloat16)
    weight = torch.randn(H, device=dev, dtype=torch.bfloat16)
    out = torch.empty_like(residual)
    t_row = timed(lambda: launch("vlmrl_add_rmsnorm_row", (slots,), (H // 8,),
                                 (ptr(residual), ptr(delta), ptr(weight), ptr(out), np.int32(H), np.float32(1e-6))))
    t_block = timed(lambda: launch("vlmrl_add_rmsnorm", (slots,), (256,),
                                   (ptr(residual), ptr(delta), ptr(weight), ptr(out), np.int32(H), np.float32(1e-6)), shared=H * 4))

    def torch_norm():
        r = residual + delta
        x = r.float()
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)).to(torch.bfloat16)
    print(f"add+rmsnorm [{slots}, {H}]: row kernel {t_row:.2f} us, block kernel {t_block:.2f} us, libtorch ops {timed(torch_norm):.2f} us")

    gate_up = torch.randn(slots, 2 * INNER, device=dev, dtype=torch.bfloat16)
    act = torch.empty(slots, INNER, device=dev, dtype=torch.bfloat16)
    blocks = min((slots * INNER // 8 + 255) // 256, 132 * 16)
    t_sw = timed(lambda: launch("vlmrl_swiglu8", (blocks,), (256,), (ptr(gate_up), ptr(act), np.int64(slots), np.int32(INNER))))
    t_sw_torch = timed(lambda: F.silu(gate_up[:, :INNER]) * gate_up[:, INNER:])
    print(f"swiglu [{slots}, {INNER}]: kernel {t_sw:.2f} us, libtorch ops {t_sw_torch:.2f} us")

    maxlen = 380 + 256 + 8
    qkv = torch.randn(slots, (HEADS + 2 * KVH) * D, device=dev, dtype=torch.bfloat16)
    cos = torch.randn(slots, D, device=dev, dtype=torch.bfloat16)
    sin = torch.randn(slots, D, device=dev, dtype=torch.bfloat16)
    kc = torch.randn(slots, maxlen, KVH, D, device=dev, dtype=torch.bfloat16)
    vc = torch.randn(slots, maxlen, KVH, D, device=dev, dtype=torch.bfloat16)
    positions = torch.randint(380, 636, (slots,), device=dev)
    t_rot = timed(lambda: launch("vlmrl_rotary_kv", (HEADS + 2 * KVH, slots), (D // 2,),
                                 (ptr(qkv), ptr(cos), ptr(sin), ptr(kc), ptr(vc), ptr(positions), np.int32(HEADS),
                                  np.int32(KVH), np.int32(D), np.int32(maxlen))))
    print(f"rotary + kv write [{slots}]: kernel {t_rot:.2f} us")

    for split in (128, 256, 512, 1024):
        splits = (maxlen + split - 1) // split
        work = torch.empty(slots * HEADS * splits * 130, device=dev, dtype=torch.float32)
        counters = torch.zeros(slots * KVH, device=dev, dtype=torch.int32)
        att = torch.empty(slots, HEADS * D, device=dev, dtype=torch.bfloat16)
        t_att = timed(lambda: launch("vlmrl_decode_attention8", (splits, KVH, slots), (256,),
                                     (ptr(qkv), np.int64(qkv.stride(0)), ptr(kc), ptr(vc), ptr(positions), np.int32(HEADS),
                                      np.int32(KVH), np.int32(maxlen), np.int32(split), np.float32(1.4426950408889634 / math.sqrt(D)),
                                      ptr(work), ptr(counters), ptr(att), np.uint64(0), np.uint64(0))))
        print(f"decode attention [{slots} slots, keys 380-636]: kernel (8 warps) split {split}: {t_att:.2f} us")
    q = qkv[:, : HEADS * D].view(slots, HEADS, D)
    cq = torch.arange(slots + 1, device=dev, dtype=torch.int32)
    ck = torch.arange(0, (slots + 1) * maxlen, maxlen, device=dev, dtype=torch.int32)
    used = (positions + 1).to(torch.int32)
    t_flash = timed(lambda: torch.ops.aten._flash_attention_forward(q, kc.view(-1, KVH, D), vc.view(-1, KVH, D), cq, ck, 1, maxlen,
                                                                    0.0, False, False, seqused_k=used))
    kv_bytes = (positions.sum().item() + slots) * KVH * D * 2 * 2
    print(f"decode attention flash (seqused_k): {t_flash:.2f} us; keys+values bytes {kv_bytes / 1e6:.1f} MB = "
          f"{kv_bytes / 4.8e12 * 1e6:.2f} us at 4.8 TB/s")
