#!/usr/bin/env bash
# One GRPO step on full-size random-weight Qwen2.5-VL-3B: vlmrl vs TRL's GRPOTrainer, same workload,
# same GPU, one run (issue 8's measurement). Workload: 8 prompts x 8 generations, 448x448 images
# (256 image tokens), prompts padded with filler words to ~380 tokens, 256 new tokens (the random
# model almost never samples EOS; TRL is forced with min_new_tokens), beta 0.04, loss grpo, bf16.
# Both generate the 64 completions at once and train in 8 micro-batches of one prompt's 8
# completions (vlmrl counts prompts per device, TRL completions), no gradient checkpointing.
# The model folder is made by transformers; the stand-in tokenizer with Qwen's special-token ids by
# tools/make_tiny_tokenizer.py --qwen-ids; chat template and processor settings from the tiny fixture.
#   usage: bench/grpo_step.sh DIST_DIR WORK_DIR [STEPS] [VLMRL_OVERRIDES...]
# MODEL_CONFIG=qwen2_5_vl_7b (a file in bench/configs/) picks another model; LORA_R=r trains LoRA of
# rank r in both (vlmrl: use_peft, alpha 2r, no dropout; TRL: peft on the language model's linears).
# SKIP_TRL=1 runs vlmrl alone.
set -euo pipefail
dist=$1; work=$2; steps=${3:-3}; shift $(( $# < 3 ? $# : 3 ))
here=$(cd "$(dirname "$0")" && pwd); root=$here/..
model_config=${MODEL_CONFIG:-qwen2_5_vl_3b}
folder=$work/${model_config}_grpo
data=$work/grpo_data
mkdir -p "$folder"
python3 "$here/make_3b.py" "$folder" "$model_config"
python3 "$root/tools/make_tiny_tokenizer.py" --qwen-ids --out "$folder" > /dev/null
fixture=$root/Tests/ModelsTests/Fixtures/qwen25vl_tied
cp "$fixture/chat_template.jinja" "$fixture/preprocessor_config.json" "$folder/"
"$dist/vlmrl" data synth --task single_box --count 64 --image-size 448 --seed 1 --out "$data" --overwrite > /dev/null
# Filler words until the templated prompt (with its 256 image pads) is ~380 tokens.
python3 - "$folder" "$data/single_box.json" <<'PY'
import json, sys
from transformers import AutoProcessor
folder, path = sys.argv[1], sys.argv[2]
processor = AutoProcessor.from_pretrained(folder)
records = json.load(open(path))
words = "please look at the picture carefully and describe where the object is placed".split()
for r in records:
    text, i = r["instruction"], 0
    while True:
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
        n = len(processor.tokenizer(prompt)["input_ids"]) + 255  # <|image_pad|> expands to 256
        if n >= 380: break
        text += " " + words[i % len(words)]; i += 1
    r["instruction"] = text
json.dump(records, open(path, "w"))
print(f"prompts: {len(records)} records, ~{n} tokens each with the image")
PY
cat > "$work/grpo_3b.json" <<JSON
{"job_type": "mmkd_rl_grounding",
 "dataset": {"labeled_path": "$data/single_box.json"},
 "models": {"student": "$folder"},
 "training": {"reward_funcs": ["format"], "output_dir": "$work/vlmrl_grpo", "per_device_train_batch_size": 8,
              "gradient_accumulation_steps": 8, "roll_out_num": 8, "max_steps": $steps, "max_completion_length": 256, "learning_rate": 1e-6,
              "beta": 0.04, "loss_type": "grpo", "temperature": 1.0, "bf16": true, "save_steps": 100000, "gradient_checkpointing": false,
              "logging_steps": 1, "max_pixels": 200704}}
JSON
echo "== vlmrl"
lora=()
if [ -n "${LORA_R:-}" ]; then
  lora=(--set training.use_peft=true --set "training.lora_r=$LORA_R" --set "training.lora_alpha=$((2 * LORA_R))" --set training.lora_dropout=0)
fi
"$dist/vlmrl" train --config "$work/grpo_3b.json" --device cuda "${lora[@]}" "$@" | tail -n 5
python3 - "$work/vlmrl_grpo/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = ["step_time", "time/generate", "time/score", "time/logprobs", "time/backward", "time/optimizer", "num_tokens",
        "memory/peak_allocated_gib"]
for r in rows:
    print("vlmrl step %d: " % r.get("step", -1) + ", ".join(f"{k} {r[k]:.3f}" for k in keys if k in r))
later = rows[1:] or rows
mean = sum(r["step_time"] for r in later) / len(later)
print(f"vlmrl GRPO step: mean {mean:.2f} s over steps 2..{len(rows)}")
print(f"VLMRL_STEP_SECONDS {mean:.3f}")
PY
[ -n "${SKIP_TRL:-}" ] && exit 0  # SKIP_TRL=1: vlmrl only (a no-regression check against an earlier run)
echo "== TRL"
python3 "$here/grpo_trl.py" "$folder" "$data/single_box.json" "$data" "$work/trl_grpo" "$steps" 2>&1 | grep -E "trl |TRL_|Error|error" | tail -n 12
