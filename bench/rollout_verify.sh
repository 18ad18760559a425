#!/usr/bin/env bash
# Greedy agreement of the rollout engine's CUDA path (slot cache, varlen flash decode, CUDA graphs)
# with the single-prompt KV-cache path, on a full-size random Qwen2.5-VL-3B (bf16 and float32).
#   usage: bench/rollout_verify.sh DIST_DIR WORK_DIR
set -euo pipefail
dist=$1; work=$2; here=$(cd "$(dirname "$0")" && pwd)
folder=$work/qwen2_5_vl_3b_verify
mkdir -p "$folder"
python3 - "$folder" "$here" <<'PY'
import json, os, sys, torch
from transformers import AutoConfig, AutoModelForImageTextToText
folder, here = sys.argv[1], sys.argv[2]
json.dump(json.load(open(os.path.join(here, "configs", "qwen2_5_vl_3b.json"))), open(os.path.join(folder, "config.json"), "w"))
torch.manual_seed(0)
with torch.device("cuda"):
    model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(folder), dtype=torch.bfloat16)
# Weights at realistic scales (as bench/models_parity.py): with transformers' 0.02 init every logit is
# ~0, top-2 margins are below rounding and any two kernels disagree on the argmax.
gen = torch.Generator(device="cuda").manual_seed(1)
with torch.no_grad():
    for name, p in model.named_parameters():
        if p.dim() == 1:
            p.copy_(torch.ones_like(p) if "norm" in name or "ln_q" in name else 0.02 * torch.randn(p.shape, generator=gen, device="cuda"))
        elif "embed_tokens" in name or "lm_head" in name:
            p.copy_(torch.randn(p.shape, generator=gen, device="cuda") * (3.0 / p.shape[-1] ** 0.5))
        else:
            p.copy_(torch.randn(p.shape, generator=gen, device="cuda") / p[0].numel() ** 0.5)
model.save_pretrained(folder)
PY
for dtype in float32 bfloat16; do
  echo "== $dtype"
  "$dist/vlmrl" bench rollout --model "$folder" --prompts 2 --new-tokens 64 --dtype $dtype --verify-greedy
done
