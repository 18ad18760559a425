# TRL's GRPOTrainer on the GRPO-step workload of bench/grpo_step.sh (the peer): the same model folder,
# records, rewards-free cost (a constant-time reward), 8 prompts x 8 generations, 256 new tokens
# forced with min_new_tokens, beta 0.04, loss grpo, bf16 weights. Prints per-step wall time and peak
# memory; steps after the first are the measurement.
#   usage: python3 bench/grpo_trl.py MODEL_DIR RECORDS_JSON IMAGE_ROOT OUT_DIR STEPS
import json, os, sys, time
import torch
from datasets import Dataset
from PIL import Image
from transformers import AutoProcessor, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

model_dir, records_path, image_root, out_dir, steps = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
records = json.load(open(records_path))
rows = [{"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": r["instruction"]}]}],
         "image": Image.open(os.path.join(image_root, r["image_path"])).convert("RGB")} for r in records]
dataset = Dataset.from_list(rows)


def format_reward(completions, **kwargs):
    # Cheap and deterministic, like vlmrl's `format` reward on this workload: the cost is in the model.
    return [1.0 if "[" in (c[0]["content"] if isinstance(c, list) else c) else 0.0 for c in completions]


cuda = torch.cuda.is_available()  # False only for a CPU smoke test of this script on a tiny model


def synchronize():
    if cuda:
        torch.cuda.synchronize()


def peak():
    return torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0


class Timer(TrainerCallback):
    def __init__(self):
        self.times, self.start = [], None

    def on_step_begin(self, args, state, control, **kwargs):
        synchronize()
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        synchronize()
        self.times.append(time.perf_counter() - self.start)
        print(f"trl step {state.global_step}: {self.times[-1]:.2f} s, peak {peak():.1f} GiB", flush=True)


fields = set(GRPOConfig.__dataclass_fields__)
options = dict(output_dir=out_dir, per_device_train_batch_size=8, gradient_accumulation_steps=8, num_generations=8,
               max_completion_length=256, beta=0.04, loss_type="grpo", learning_rate=1e-6, bf16=cuda, use_cpu=not cuda, max_steps=steps,
               logging_steps=1, report_to="none", save_strategy="no", temperature=1.0,
               generation_kwargs={"min_new_tokens": 256}, model_init_kwargs={"dtype": torch.bfloat16 if cuda else torch.float32})
if "max_prompt_length" in fields:
    options["max_prompt_length"] = None
config = GRPOConfig(**{k: v for k, v in options.items() if k in fields})
timer = Timer()
# LORA_R=r: LoRA on every linear layer of the language model (peft), as vlmrl's use_peft with
# lora_target_modules all-linear; lora_alpha 2r, no dropout.
lora = int(os.environ.get("LORA_R", "0"))
peft_config = None
if lora:
    from peft import LoraConfig
    peft_config = LoraConfig(r=lora, lora_alpha=2 * lora, lora_dropout=0.0, task_type="CAUSAL_LM",
                             target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)")
trainer = GRPOTrainer(model=model_dir, reward_funcs=[format_reward], args=config, train_dataset=dataset, peft_config=peft_config,
                      processing_class=AutoProcessor.from_pretrained(model_dir), callbacks=[timer])
trainer.train()
measured = timer.times[1:] or timer.times
mean = sum(measured) / len(measured)
print(f"trl GRPO step (8 prompts x 8 generations, 256 new tokens, beta 0.04): mean {mean:.2f} s over steps 2..{len(timer.times)}, "
      f"peak {peak():.1f} GiB")
print(f"TRL_STEP_SECONDS {mean:.3f}")
