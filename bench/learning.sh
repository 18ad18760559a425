#!/usr/bin/env bash
# Does vlmrl learn as TRL does, and how much sooner? (issue 23; docs/benchmarks.md, "Learning curves")
# The demo's synthetic grounding task (docs/demo.md) at GPU size: a Qwen2.5-VL-architecture model of
# ~120M parameters (decoder 1024 wide, 12 layers; vision tower 384 wide, 6 blocks) trained from
# scratch by `vlmrl sft`, then GRPO from that checkpoint by vlmrl and by TRL's GRPOTrainer
# (bench/learning_trl.py) with the same records, rewards (format, gaussian_point, gaussian_plane),
# hyper-parameters, seed and number of steps. Both save a checkpoint every SAVE steps; `vlmrl eval`
# scores every checkpoint of both on the same held-out records (greedy), so one evaluator judges
# both. bench/learning_plot.py draws held-out reward against step and against training seconds.
#   usage: bench/learning.sh DIST_DIR WORK_DIR [STEPS] [SAVE] [SFT_STEPS]
set -euo pipefail
dist=$1; work=$2; steps=${3:-80}; save=${4:-10}; sft_steps=${5:-1000}
here=$(cd "$(dirname "$0")" && pwd); root=$here/..
vlmrl=$dist/vlmrl
mkdir -p "$work"; cd "$work"
# The demo's task (scripts/demo, demo/*.json): 112x112 images of a target shape and up to two
# distractors on varied backgrounds; SFT, GRPO and held-out records from different seeds.
task=(--task single_box --image-size 112)
"$vlmrl" data synth "${task[@]}" --count 16000 --seed 1 --out sft-data --overwrite > /dev/null
"$vlmrl" data synth "${task[@]}" --count 8000 --seed 3 --out data --overwrite > /dev/null
"$vlmrl" data synth "${task[@]}" --count 512 --seed 2 --out heldout --overwrite > /dev/null
"$vlmrl" model init --out init --tokenizer "$root/assets/tokenizer" --max-pixels 12544 --hidden 1024 --layers 12 --heads 16 \
  --kv-heads 4 --vision-hidden 384 --vision-depth 6 --overwrite | tail -n 1
cat > sft.json <<JSON
{"job_type": "sft", "dataset": {"labeled_path": "sft-data/single_box.json"}, "models": {"student": "init"},
 "training": {"output_dir": "sft", "per_device_train_batch_size": 32, "max_steps": $sft_steps, "learning_rate": 0.0005,
              "lr_scheduler_type": "cosine", "warmup_steps": 100, "weight_decay": 0.0, "logging_steps": 500,
              "save_steps": 100000, "max_pixels": 12544, "bf16": true}}
JSON
echo "== SFT ($sft_steps steps of 32)"
start=$SECONDS
"$vlmrl" sft --config sft.json --device cuda --overwrite | grep -E "^step [0-9]+ " | tail -n 3
echo "sft wall $((SECONDS - start)) s"
cat > grpo.json <<JSON
{"job_type": "grpo", "dataset": {"labeled_path": "data/single_box.json"}, "models": {"student": "sft/final"},
 "training": {"reward_funcs": ["format", "gaussian_point", "gaussian_plane"], "output_dir": "vlmrl-grpo",
              "per_device_train_batch_size": 64, "roll_out_num": 8, "gradient_accumulation_steps": 1, "max_steps": $steps,
              "max_completion_length": 24, "learning_rate": 0.0002, "lr_scheduler_type": "constant", "warmup_steps": 0,
              "weight_decay": 0.0, "max_grad_norm": 1.0, "beta": 0.0, "loss_type": "grpo", "scale_rewards": "group",
              "temperature": 1.0, "seed": 42, "save_steps": $save, "logging_steps": 1, "max_pixels": 12544,
              "bf16": true}}
JSON
echo "== vlmrl GRPO ($steps steps)"
"$vlmrl" train --config grpo.json --device cuda --overwrite | tail -n 2
echo "== TRL GRPO ($steps steps)"
rm -rf trl-grpo
python3 "$here/learning_trl.py" sft/final data/single_box.json trl-grpo "$steps" "$save" grpo.json 2>&1 \
  | grep -E "^trl|Error|error" | tail -n 8
echo "== held-out (vlmrl eval, greedy, 512 prompts)"
funcs=format,iou,gaussian_point,gaussian_plane
score() { "$vlmrl" eval --model "$1" --data heldout/single_box.json --funcs "$funcs" --device cuda --out "$2" | tail -n 1; }
echo "sft: $(score sft/final eval/sft)"
"$vlmrl" demo baseline --data heldout/single_box.json | tail -n 1
for s in $(seq "$save" "$save" "$steps"); do
  echo "vlmrl $s: $(score vlmrl-grpo/checkpoint-$s eval/vlmrl-$s)"
  # TRL saves the weights; the tokenizer, template and processor are the SFT model's.
  for f in tokenizer.json tokenizer_config.json chat_template.jinja preprocessor_config.json; do
    [ -f "trl-grpo/checkpoint-$s/$f" ] || cp "sft/final/$f" "trl-grpo/checkpoint-$s/"
  done
  echo "trl $s: $(score trl-grpo/checkpoint-$s eval/trl-$s)"
done
python3 "$here/learning_plot.py" "$work" "$steps" "$save"
