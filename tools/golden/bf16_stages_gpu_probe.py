#!/usr/bin/env python3
"""Which op differences move bf16 log-probs on the GPU: transformers' own Qwen-VL forward, with one op at a time
swapped for what vlmrl ran before it followed transformers op for op (see docs/models-golden.md).

Requirements: a CUDA GPU, pip install torch==2.11.0 transformers==5.17.0
Run from the repository root:  python3 tools/golden/bf16_stages_gpu_probe.py [qwen2_5_vl_3b qwen2_vl_2b]

Same workload as bench/models_parity.py (Hub configs from bench/configs/, random weights at realistic scales,
a 380-token prompt with one 448x448 image and a 256-token teacher-forced completion, bf16, SDPA). Each variant
is compared with the unmodified transformers forward: per-token log-probs (mean / max |diff|) and whether the
vision output is bit-identical. Variants:
  rerun            the reference again (determinism control)
  fused_rmsnorm    RMSNorm through F.rms_norm (on CUDA the fused `_fused_rms_norm` kernel)
  varlen_vision    vision attention as one varlen flash call per block instead of SDPA per window
  default_scale    SDPA without an explicit scale (its own 1/sqrt(d))
  head_rows        the LM head applied to the 256 scored rows only, not to the whole sequence
  old_vlmrl        fused_rmsnorm + varlen_vision + default_scale + head_rows
Then the vision tower's forward + backward time over 8 images with SDPA per window and with varlen flash.
"""
import shutil, sys, tempfile
from pathlib import Path
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForImageTextToText
from transformers.integrations import sdpa_attention
from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as q25
from transformers.models.qwen2_vl import modeling_qwen2_vl as q2

ROOT = Path(__file__).resolve().parents[2]
IMAGE, VSTART, VEND, IM_START = 151655, 151652, 151653, 151644
device = "cuda"


def build(name):
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(ROOT / "bench" / "configs" / f"{name}.json", Path(folder) / "config.json")
        config = AutoConfig.from_pretrained(folder)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16, attn_implementation="sdpa")
    gen = torch.Generator(device=device).manual_seed(1)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(torch.ones_like(p) if "norm" in pname or "ln_q" in pname else 0.02 * torch.randn(p.shape, generator=gen, device=device))
            elif "embed_tokens" in pname or "lm_head" in pname:
                p.copy_(torch.randn(p.shape, generator=gen, device=device) * (3.0 / p.shape[-1] ** 0.5))
            else:
                p.copy_(torch.randn(p.shape, generator=gen, device=device) / p[0].numel() ** 0.5)
    return model.eval()


def sequence(generator, prompt_len=380, completion=256, image_tokens=256):
    head = [IM_START] + torch.randint(0, 151000, (12,), generator=generator).tolist() + [VSTART]
    tail = [VEND] + torch.randint(0, 151000, (prompt_len - len(head) - image_tokens - 1,), generator=generator).tolist()
    return head + [IMAGE] * image_tokens + tail, torch.randint(0, 151000, (completion,), generator=generator).tolist()


def fused_rmsnorm(self, x):
    return F.rms_norm(x.float(), [x.shape[-1]], None, self.variance_epsilon).to(x.dtype) * self.weight


def varlen_vision(original):
    def forward(self, hidden_states, cu_seqlens, position_embeddings=None, **kwargs):
        n = hidden_states.shape[0]
        q, k, v = self.qkv(hidden_states).reshape(n, 3, self.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
        cos, sin = position_embeddings
        q, k = original.apply_rotary_pos_emb_vision(q, k, cos, sin)
        cu = cu_seqlens.to(torch.int32)
        longest = int((cu[1:] - cu[:-1]).max())
        out = torch.ops.aten._flash_attention_forward(q, k, v, cu, cu, longest, longest, 0.0, False, False,
                                                      scale=self.scaling)[0]
        return self.proj(out.reshape(n, -1))
    return forward


def default_scale(wrapped):
    def forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
        return wrapped(module, query, key, value, attention_mask, dropout=dropout, scaling=None, **kwargs)
    return forward


def logprobs(model, ids, prompt_len, pixels, grid, head_rows=False):
    input_ids = torch.tensor([ids], device=device)
    model.model.rope_deltas = None
    with torch.no_grad():
        out = model.model(input_ids=input_ids, pixel_values=pixels, image_grid_thw=grid,
                          mm_token_type_ids=(input_ids == IMAGE).long(), use_cache=False)
        hidden = out.last_hidden_state[0]
        logits = model.lm_head(hidden[prompt_len - 1:-1]) if head_rows else model.lm_head(hidden)[prompt_len - 1:-1]
        targets = input_ids[0, prompt_len:]
        lp = logits.float().log_softmax(-1).gather(1, targets[:, None])[:, 0]
        vision = model.model.visual(pixels, grid_thw=grid).pooler_output
    return lp, vision


def time_vision(model, pixels, images=8, repeats=5):
    """Median milliseconds of the vision tower's forward + backward over `images` 448x448 images (training's case)."""
    batch = pixels.repeat(images, 1).requires_grad_(False)
    grid = torch.tensor([[1, 32, 32]] * images, device=device)
    times = []
    for step in range(repeats + 1):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        model.model.visual(batch, grid_thw=grid).pooler_output.float().square().mean().backward()
        end.record()
        torch.cuda.synchronize()
        if step:
            times.append(start.elapsed_time(end))
    model.zero_grad(set_to_none=True)
    return sorted(times)[len(times) // 2]


def main(names):
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    originals = {"rms25": q25.Qwen2_5_VLRMSNorm.forward, "rms2": q2.Qwen2VLRMSNorm.forward,
                 "att25": q25.Qwen2_5_VLVisionAttention.forward, "att2": q2.VisionAttention.forward,
                 "sdpa": sdpa_attention.sdpa_attention_forward}

    def configure(variant):
        on = {"fused_rmsnorm", "varlen_vision", "default_scale"} if variant == "old_vlmrl" else {variant}
        q25.Qwen2_5_VLRMSNorm.forward = fused_rmsnorm if "fused_rmsnorm" in on else originals["rms25"]
        q2.Qwen2VLRMSNorm.forward = fused_rmsnorm if "fused_rmsnorm" in on else originals["rms2"]
        q25.Qwen2_5_VLVisionAttention.forward = varlen_vision(q25) if "varlen_vision" in on else originals["att25"]
        q2.VisionAttention.forward = varlen_vision(q2) if "varlen_vision" in on else originals["att2"]
        sdpa = default_scale(originals["sdpa"]) if "default_scale" in on else originals["sdpa"]
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
        ALL_ATTENTION_FUNCTIONS["sdpa"] = sdpa

    for name in names:
        model = build(name)
        g = torch.Generator().manual_seed(2)
        prompt, completion = sequence(g)
        pixels = torch.randn(1024, 1176, generator=g).to(device)
        grid = torch.tensor([[1, 32, 32]], device=device)
        configure("reference")
        ref_lp, ref_vision = logprobs(model, prompt + completion, len(prompt), pixels, grid)
        print(f"{name}: reference mean logprob {ref_lp.mean():.3f}")
        for variant in ["rerun", "fused_rmsnorm", "varlen_vision", "default_scale", "head_rows", "old_vlmrl"]:
            configure(variant)
            rows = variant in ("head_rows", "old_vlmrl")
            lp, vision = logprobs(model, prompt + completion, len(prompt), pixels, grid, head_rows=rows)
            diff = (lp - ref_lp).abs()
            vdiff = (vision.float() - ref_vision.float()).abs().max().item()
            print(f"  {variant:14s} logprobs mean |diff| {diff.mean():.4f} max {diff.max():.4f}; "
                  f"vision {'bit-identical' if vdiff == 0 else f'max |diff| {vdiff:.4g}'}")
        for variant in ["reference", "varlen_vision"]:
            configure(variant)
            print(f"  vision forward+backward, 8 images 448x448, {variant}: {time_vision(model, pixels):.1f} ms")
        configure("reference")
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main(sys.argv[1:] or ["qwen2_5_vl_3b", "qwen2_vl_2b"])
