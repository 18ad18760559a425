# Rollout throughput: vlmrl's engine vs transformers' generate on the same workload, one GPU, one run.
# Qwen2.5-VL-3B (Hub config values), random weights saved by transformers, bf16; prompts of ~380
# tokens with one 448x448 image (256 image tokens); 256 new tokens with EOS ignored; sampling.
#   usage: python3 bench/rollout.py DIST_DIR WORK_DIR [--attention | --attention-only]
# With --attention: the attention diagnostics (as compute_attention_metrics records them: the thin
# early/middle/late layer groups). First their correctness: greedy, the same tokens through the three
# ways of computing them (VLMRL_ATTENTION_MASS=fused: inside the decode-attention kernel; separate:
# a kernel of its own per recorded layer; ops: the libtorch reference), per recorded layer each
# way's mean masses and the max |difference| from ops (expect ~1e-3 or below for fused: it uses the
# float32 scores the attention applies, the ops round them to bf16; ~1e-6 for separate). Then the
# 64-sequence workload timed with diagnostics off, fused, separate and ops in one run, and
# transformers' generate with eager attention and output_attentions=True (what the TRL MDI fork
# needs for its diagnostics). --attention-only runs just that part (no throughput comparison).
import json, os, subprocess, sys, time
import torch
from transformers import AutoConfig, AutoModelForImageTextToText

dist, work = sys.argv[1], sys.argv[2]
attention_only = "--attention-only" in sys.argv[3:]
attention = attention_only or "--attention" in sys.argv[3:]
here = os.path.dirname(os.path.abspath(__file__))
IMAGE, VSTART, VEND = 151655, 151652, 151653
folder = os.path.join(work, "qwen2_5_vl_3b_rollout")
os.makedirs(folder, exist_ok=True)
with open(os.path.join(here, "configs", "qwen2_5_vl_3b.json")) as f:
    json.dump(json.load(f), open(os.path.join(folder, "config.json"), "w"))
torch.manual_seed(0)
with torch.device("cuda"):
    model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(folder), dtype=torch.bfloat16,
                                                    attn_implementation="sdpa")
model.save_pretrained(folder)
model.eval()


def run(args, env=None):
    res = subprocess.run(args, capture_output=True, text=True, env=env)
    print(res.stdout.strip())
    if res.returncode != 0:
        print(res.stderr[:3000])
        raise SystemExit(f"vlmrl failed with {res.returncode}")
    return res.stdout


ours = {}
if not attention_only:
    # The fused decode kernels against the plain libtorch decode step (greedy, 4 prompts x 4 samples).
    run([f"{dist}/vlmrl", "bench", "rollout", "--model", folder, "--prompts", "4", "--samples", "4", "--new-tokens", "64",
         "--verify-fused"])
    # The same 64-sequence workload with the plain libtorch decode step, for the fused kernels' share.
    run([f"{dist}/vlmrl", "bench", "rollout", "--model", folder, "--prompts", "8", "--samples", "8", "--no-fused-kernels"])

    for prompts in (8, 32):
        out = run([f"{dist}/vlmrl", "bench", "rollout", "--model", folder, "--prompts", str(prompts), "--samples", "8"])
        for line in out.splitlines():
            if "total" in line and "s" in line:
                ours[prompts] = float(line.split()[1])

# transformers: 8 prompts x num_return_sequences=8, batched, SDPA, sampling, 256 new tokens forced.
g = torch.Generator().manual_seed(1)
rows = []
for _ in range(8):
    head = torch.randint(0, 150000, (12,), generator=g).tolist() + [VSTART] + [IMAGE] * 256 + [VEND]
    rows.append(head + torch.randint(0, 150000, (380 - len(head),), generator=g).tolist())
input_ids = torch.tensor(rows, device="cuda")
inputs = dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
              pixel_values=torch.randn(8 * 1024, 1176, generator=g).to("cuda", torch.bfloat16),
              image_grid_thw=torch.tensor([[1, 32, 32]] * 8, device="cuda"),
              mm_token_type_ids=(input_ids == IMAGE).long())
kwargs = dict(do_sample=True, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=256, min_new_tokens=256,
              num_return_sequences=8, pad_token_id=151643)
if not attention_only:
    with torch.no_grad():
        model.generate(**inputs, **{**kwargs, "max_new_tokens": 8, "min_new_tokens": 8})
        torch.cuda.synchronize()
        t = time.perf_counter()
        out = model.generate(**inputs, **kwargs)
        torch.cuda.synchronize()
        hf = time.perf_counter() - t
    new = out.shape[1] - input_ids.shape[1]
    print(f"transformers generate: 8 prompts x 8 samples = 64 sequences, {new} new tokens: {hf:.2f} s, "
          f"{64 * new / hf:.0f} output tokens/s, {hf / new * 1000:.1f} ms per decode step")
    if 8 in ours:
        print(f"64 sequences: vlmrl {ours[8]:.2f} s vs transformers {hf:.2f} s, ratio {hf / ours[8]:.1f}x")

if attention:
    # Correctness: fused and separate against the ops reference, per recorded layer (greedy, 16 sequences).
    run([f"{dist}/vlmrl", "bench", "rollout", "--model", folder, "--prompts", "4", "--samples", "4", "--new-tokens", "64",
         "--verify-attention-mass"])
    # Cost: the 64-sequence workload without diagnostics and with each way of computing them, in one run.
    timed, per_step = {}, {}
    for mode in ("off", "fused", "separate", "ops"):
        flag = [] if mode == "off" else ["--record-attention"]
        env = dict(os.environ, VLMRL_ATTENTION_MASS="fused" if mode == "off" else mode)
        out = run([f"{dist}/vlmrl", "bench", "rollout", "--model", folder, "--prompts", "8", "--samples", "8"] + flag, env=env)
        if mode != "off" and f"recorded ({mode})" not in out:
            raise SystemExit(f"vlmrl did not record the attention diagnostics the {mode} way")
        timed[mode] = next(float(l.split()[1]) for l in out.splitlines() if l.strip().startswith("total"))
        decode = next(l for l in out.splitlines() if l.strip().startswith("decode ") and "ms per step" in l)
        per_step[mode] = float(decode.split("(")[1].split()[0])
    print("attention diagnostics, 64 sequences x 256 tokens (VLMRL_ATTENTION_MASS):")
    for mode in ("off", "fused", "separate", "ops"):
        extra = "" if mode == "off" else (f", overhead {100 * (per_step[mode] / per_step['off'] - 1):.1f}% per decode step, "
                                          f"{100 * (timed[mode] / timed['off'] - 1):.1f}% total")
        print(f"  {mode:9s} total {timed[mode]:.3f} s, {per_step[mode]:.2f} ms per decode step{extra}")

if attention and not attention_only:
    del model
    torch.cuda.empty_cache()
    eager = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.bfloat16, attn_implementation="eager").cuda().eval()
    with torch.no_grad():
        eager.generate(**inputs, **{**kwargs, "max_new_tokens": 8, "min_new_tokens": 8}, output_attentions=True,
                       return_dict_in_generate=True)
        torch.cuda.synchronize()
        t = time.perf_counter()
        out = eager.generate(**inputs, **kwargs, output_attentions=True, return_dict_in_generate=True)
        torch.cuda.synchronize()
        fork = time.perf_counter() - t
    print(f"transformers generate, eager + output_attentions (the MDI fork's way): {fork:.2f} s; "
          f"vlmrl with diagnostics (fused) {timed['fused']:.2f} s, ratio {fork / timed['fused']:.1f}x")
