#!/usr/bin/env bash
# Cycle-trainer steps (job_type cycle) on full-size random-weight Qwen2.5-VL-3B, with their time split
# (issue 18's measurement). Workload per loop: 8 regions x 8 samples (per_device_train_batch_size 64
# completions = 8 prompts x roll_out_num 8), 448x448 synthetic region-caption images (256 image
# tokens), policy completions up to 128 new tokens, partner completions up to 64, beta 0.04, LoRA r 64
# on all linear layers (the EMA partner is then EMA adapters; a full-weight EMA copy plus float32
# AdamW state of a 3B model does not fit an 80 GB card next to the engine), cycle_schedule alternate:
# odd steps run loop 1 (region -> caption -> region'), even steps loop 2 (caption -> region -> caption').
# The loop-2 judge is the same random 3B model served by `vlmrl serve` on the same GPU (answers up to
# 64 tokens; a random model's verdicts are unreadable, so the judge part of the reward is nil and
# counted in cycle/judge_missing). A random policy's groundings never parse as a box, so loop 2
# makes no partner or judge call; the judge's cost is timed separately at the end: 64 verdict-sized
# chat requests (a caption and a question, 64 new tokens) at the trainer's judge concurrency of 16.
#   usage: bench/cycle_step.sh DIST_DIR WORK_DIR [STEPS]
set -euo pipefail
dist=$1; work=$2; steps=${3:-4}
here=$(cd "$(dirname "$0")" && pwd); root=$here/..
folder=$work/qwen2_5_vl_3b_cycle
data=$work/cycle_data
mkdir -p "$folder"
[ -f "$folder/model.safetensors.index.json" ] || [ -f "$folder/model.safetensors" ] || python3 "$here/make_3b.py" "$folder"
python3 "$root/tools/make_tiny_tokenizer.py" --qwen-ids --out "$folder" > /dev/null
fixture=$root/Tests/ModelsTests/Fixtures/qwen25vl_tied
cp "$fixture/chat_template.jinja" "$fixture/preprocessor_config.json" "$folder/"
"$dist/vlmrl" data synth --task region_caption --count 128 --image-size 448 --seed 1 --out "$data" --overwrite > /dev/null
"$dist/vlmrl" serve --model "$folder" --device cuda --port 8911 --served-model-name judge --default-max-tokens 64 \
  > "$work/judge.log" 2>&1 &
judge=$!
trap 'kill $judge 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -sf http://127.0.0.1:8911/health > /dev/null 2>&1 && break
  kill -0 $judge 2>/dev/null || { cat "$work/judge.log"; exit 1; }
  sleep 1
done
cat > "$work/cycle_3b.json" <<JSON
{"job_type": "cycle",
 "dataset": {"labeled_path": "$data/region_caption.json"},
 "models": {"student": "$folder"},
 "training": {"output_dir": "$work/vlmrl_cycle", "cycle_schedule": "alternate", "ema_decay": 0.99,
              "region_prompt": "coordinates", "partner_temperature": 0, "partner_max_completion_length": 64,
              "cycle_meteor_weight": 0.25, "cycle_judge_weight": 0.75,
              "reward_parameters": {"llm_judge": {"url": "http://127.0.0.1:8911/v1", "model": "judge",
                                    "generate_questions": true, "max_concurrency": 16, "timeout": 120, "retries": 0}},
              "per_device_train_batch_size": 64, "gradient_accumulation_steps": 1, "roll_out_num": 8,
              "max_steps": $steps, "max_completion_length": 128, "learning_rate": 1e-5, "beta": 0.04,
              "use_peft": true, "lora_r": 64, "lora_alpha": 128, "lora_target_modules": "all-linear",
              "bf16": true, "save_steps": 100000, "logging_steps": 1, "max_pixels": 200704}}
JSON
echo "== vlmrl cycle, 3B LoRA r64, 8 regions x 8 samples per loop"
"$dist/vlmrl" train --config "$work/cycle_3b.json" --device cuda | tail -n 3
python3 - "$work/vlmrl_cycle/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = ["step_time", "time/generate", "time/partner", "time/score", "time/logprobs", "time/backward", "time/optimizer",
        "num_tokens", "cycle/region_iou", "cycle/caption_meteor", "cycle/judge_missing", "cycle/grounding_parsed",
        "memory/peak_allocated_gib"]
for r in rows:
    loop = 1 if r.get("cycle/loop_region_to_caption") else 2 if r.get("cycle/loop_caption_to_region") else "?"
    print(f"cycle step {r.get('step', -1)} (loop {loop}): " + ", ".join(f"{k} {r[k]:.3f}" for k in keys if k in r))
PY
python3 - <<'PY'
import json, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
def ask(i):
    body = {"model": "judge", "max_tokens": 64, "temperature": 0, "messages": [{"role": "user", "content":
            f"Caption: The red square at the top left of the image, number {i}. Question: Is the object red? Answer yes or no."}]}
    request = urllib.request.Request("http://127.0.0.1:8911/v1/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(request, timeout=300))["usage"]["completion_tokens"]
with ThreadPoolExecutor(16) as pool:
    list(pool.map(ask, range(16)))  # warm-up
    start = time.perf_counter()
    tokens = sum(pool.map(ask, range(64)))
    seconds = time.perf_counter() - start
print(f"judge (vlmrl serve, same 3B): 64 verdict requests at concurrency 16: {seconds:.2f} s, {tokens} completion tokens")
PY
