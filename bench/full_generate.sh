#!/usr/bin/env bash
# `vlmrl generate` on a full-size random-weight Qwen2.5-VL-3B on the GPU: transformers creates and saves
# the checkpoint (bench/configs/qwen2_5_vl_3b.json), the stand-in tokenizer with Qwen's special-token
# ids comes from tools/make_tiny_tokenizer.py --qwen-ids, the chat template and processor settings from
# the tiny test checkpoint.   usage: bench/full_generate.sh DIST_DIR WORK_DIR
set -euo pipefail
dist=$1; work=$2
here=$(cd "$(dirname "$0")" && pwd); root=$here/..
folder=$work/qwen2_5_vl_3b_gen
mkdir -p "$folder"
python3 - "$folder" "$here" <<'PY'
import json, os, sys, torch
from transformers import AutoConfig, AutoModelForImageTextToText
folder, here = sys.argv[1], sys.argv[2]
with open(os.path.join(here, "configs", "qwen2_5_vl_3b.json")) as f:
    json.dump(json.load(f), open(os.path.join(folder, "config.json"), "w"))
torch.manual_seed(0)
with torch.device("cuda"):
    model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(folder), dtype=torch.bfloat16)
model.save_pretrained(folder)
PY
python3 "$root/tools/make_tiny_tokenizer.py" --qwen-ids --out "$folder" > /dev/null
fixture=$root/Tests/ModelsTests/Fixtures/qwen25vl_tied
cp "$fixture/chat_template.jinja" "$fixture/preprocessor_config.json" "$folder/"
"$dist/vlmrl" generate --model "$folder" --image "$fixture/image.png" --prompt "Locate the yellow disc." \
  --max-new-tokens 64 --device cuda --dtype bfloat16 --json
