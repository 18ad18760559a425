# TRL's GRPOTrainer on the learning benchmark (bench/learning.sh): GRPO from the same SFT checkpoint,
# on the same records, with the same rewards (format, gaussian_point, gaussian_plane as
# docs/reward-definitions.md defines them), hyper-parameters, seed and number of steps as the vlmrl
# run. The vision tower is frozen, as `freeze_vision_tower` does in the vlmrl run. Saves a checkpoint
# every SAVE steps (held-out scores are computed afterwards by `vlmrl eval` for both trainers) and
# writes the wall time of every step to OUT/step_times.json.
#   usage: python3 bench/learning_trl.py MODEL_DIR RECORDS_JSON OUT_DIR STEPS SAVE CONFIG_JSON
# CONFIG_JSON is the vlmrl GRPO config of the same run: its training section gives the settings.
import json, math, os, re, sys, time
import torch
from datasets import Dataset
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

model_dir, records_path, out_dir, steps, save, config_path = sys.argv[1:7]
steps, save = int(steps), int(save)
t = json.load(open(config_path))["training"]
root = os.path.dirname(os.path.abspath(records_path))
records = json.load(open(records_path))
rows = [{"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": r["instruction"]}]}],
         "image": Image.open(os.path.join(root, r["image_path"])).convert("RGB"), "bbox": r["bbox"]} for r in records]
dataset = Dataset.from_list(rows)

BOX = re.compile(r"^\[\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*\]$")


def text(completion):
    return completion[0]["content"] if isinstance(completion, list) else completion


def box(completion):
    m = BOX.match(text(completion).strip())
    if not m:
        return None
    x1, y1, x2, y2 = map(float, m.groups())
    return [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]


def sigmas(b):
    return max(0.5 * (b[2] - b[0]), 0.5), max(0.5 * (b[3] - b[1]), 0.5)


def centre(b):
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2


def format(completions, **kwargs):
    return [1.0 if box(c) is not None else 0.0 for c in completions]


def point(p, g):
    (px, py), (gx, gy), (sx, sy) = centre(p), centre(g), sigmas(g)
    return math.exp(-0.5 * ((px - gx) ** 2 / sx ** 2 + (py - gy) ** 2 / sy ** 2))


def plane(p, g):
    (px, py), (gx, gy) = centre(p), centre(g)
    (spx, spy), (sgx, sgy) = sigmas(p), sigmas(g)
    vx, vy = (spx ** 2 + sgx ** 2) / 2, (spy ** 2 + sgy ** 2) / 2
    d = ((px - gx) ** 2 / vx + (py - gy) ** 2 / vy) / 8 + 0.5 * math.log(vx * vy / (spx * spy * sgx * sgy))
    return math.exp(-d)


def scored(score, completions, bbox):
    # 0 for a completion whose answer is not a box, as vlmrl's rewards score it.
    return [0.0 if box(c) is None else score(box(c), g) for c, g in zip(completions, bbox)]


def gaussian_point(completions, bbox, **kwargs):
    return scored(point, completions, bbox)


def gaussian_plane(completions, bbox, **kwargs):
    return scored(plane, completions, bbox)


class Timer(TrainerCallback):
    def __init__(self):
        self.times, self.start = [], None

    def on_step_begin(self, args, state, control, **kwargs):
        torch.cuda.synchronize()
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self.start)
        if state.global_step % 10 == 0 or state.global_step == 1:
            print(f"trl step {state.global_step}: {self.times[-1]:.3f} s", flush=True)


processor = AutoProcessor.from_pretrained(model_dir)
model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
if t.get("freeze_vision_tower"):
    for p in model.model.visual.parameters():
        p.requires_grad_(False)
fields = set(GRPOConfig.__dataclass_fields__)
options = dict(
    output_dir=out_dir, per_device_train_batch_size=t["per_device_train_batch_size"], gradient_accumulation_steps=1,
    num_generations=t["roll_out_num"], max_completion_length=t["max_completion_length"], beta=t["beta"],
    loss_type=t["loss_type"], scale_rewards=t["scale_rewards"], learning_rate=t["learning_rate"],
    lr_scheduler_type=t["lr_scheduler_type"], warmup_steps=t["warmup_steps"], weight_decay=t["weight_decay"],
    max_grad_norm=t["max_grad_norm"], temperature=t["temperature"], top_p=1.0, top_k=0, seed=t["seed"],
    bf16=True, max_steps=steps, logging_steps=10, report_to="none", save_strategy="steps", save_steps=save,
    save_only_model=True, shuffle_dataset=True)
if "max_prompt_length" in fields:
    options["max_prompt_length"] = None
config = GRPOConfig(**{k: v for k, v in options.items() if k in fields})
timer = Timer()
trainer = GRPOTrainer(model=model, processing_class=processor, reward_funcs=[format, gaussian_point, gaussian_plane],
                      args=config, train_dataset=dataset, callbacks=[timer])
trainer.train()
json.dump(timer.times, open(os.path.join(out_dir, "step_times.json"), "w"))
print(f"trl: {len(timer.times)} steps, {sum(timer.times):.1f} s of steps", flush=True)
