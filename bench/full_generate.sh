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
python3 "$here/make_3b.py" "$folder"
python3 "$root/tools/make_tiny_tokenizer.py" --qwen-ids --out "$folder" > /dev/null
fixture=$root/Tests/ModelsTests/Fixtures/qwen25vl_tied
cp "$fixture/chat_template.jinja" "$fixture/preprocessor_config.json" "$folder/"
"$dist/vlmrl" generate --model "$folder" --image "$fixture/image.png" --prompt "Locate the yellow disc." \
  --max-new-tokens 64 --device cuda --dtype bfloat16 --json
