#!/usr/bin/env python3
"""peft adapter fixtures for vlmrl's LoRA loading, and a check of adapters vlmrl writes.

Requirements: pip install torch transformers peft safetensors

  python3 tools/golden/peft_adapter.py
      Builds a LoRA adapter with peft (random non-zero A and B, fixed seed) on the tiny Qwen2.5-VL
      fixture, saves it to Tests/TrainingTests/Fixtures/peft_adapter/ and records the logits of a
      text prompt and of an image prompt (last 4 rows) with the adapter on (expected.safetensors). The Swift test
      loads the adapter with `QwenVLModel.loadAdapter` and compares logits (fp32, rel. error <= 1e-4).

  python3 tools/golden/peft_adapter.py --check ADAPTER_DIR [--base MODEL_DIR]
      The other direction: loads an adapter folder written by vlmrl (a LoRA run's final/ or
      checkpoint-N/) with peft and prints logits statistics; with --expect FILE (a safetensors file
      with `input_ids` and `logits`) it compares them.
"""
import argparse
import json
import os

import torch
from safetensors.torch import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = os.path.join(ROOT, "Tests/ModelsTests/Fixtures/qwen25vl_tied")
OUT = os.path.join(ROOT, "Tests/TrainingTests/Fixtures/peft_adapter")


def load_base(path):
    from transformers import Qwen2_5_VLForConditionalGeneration
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(path, dtype=torch.float32)
    return model.eval()


def image_inputs():
    # The ModelsTests reference inputs (ids with expanded image pads, pixel values, grid).
    return load_file(os.path.join(BASE, "reference.safetensors"))


def pixel_values(reference):
    """pixel_values [N, 1176] from the ModelsTests byte codes (as ParityTests decodes them):
    value[n, c*392 + t*196 + k] = table[c, codes[n, c*196 + k]] for both frames t."""
    codes = reference["pixel_codes"].long().reshape(-1, 3, 196)
    table = reference["pixel_table"].float()
    values = torch.stack([table[c][codes[:, c, :]] for c in range(3)], dim=1)  # [N, 3, 196]
    return torch.stack([values, values], dim=2).reshape(codes.shape[0], 1176)


def make_fixture():
    import peft
    torch.manual_seed(0)
    model = load_base(BASE)
    config = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj", "gate_proj", "down_proj"],
                             init_lora_weights=False)
    wrapped = peft.get_peft_model(model, config)
    # init_lora_weights=False already draws B at random; scale A and B so the adapter moves the logits.
    with torch.no_grad():
        for name, parameter in wrapped.named_parameters():
            if "lora_" in name:
                parameter.copy_(torch.randn_like(parameter) * 0.3)
    wrapped.eval()
    os.makedirs(OUT, exist_ok=True)
    wrapped.save_pretrained(OUT)
    text_ids = torch.tensor([[3, 17, 250, 901, 33, 5]])
    reference = image_inputs()
    with torch.no_grad():
        text_logits = wrapped(input_ids=text_ids).logits[0]
        inputs = {"input_ids": reference["input_ids"].reshape(1, -1).long(), "pixel_values": pixel_values(reference),
                  "image_grid_thw": reference["image_grid_thw"].reshape(-1, 3).long(),
                  # transformers 5 takes the M-RoPE image positions from the token types
                  "mm_token_type_ids": reference["mm_token_type_ids"]}
        image_logits = wrapped(**inputs).logits[0]
        with wrapped.disable_adapter():
            base_logits = wrapped(input_ids=text_ids).logits[0]
    print("adapter moves text logits by", (text_logits - base_logits).abs().max().item())
    save_file({"text_input_ids": text_ids[0].to(torch.int64).contiguous(), "text_logits": text_logits.contiguous(),
               "image_logits_last4": image_logits[-4:].contiguous()}, os.path.join(OUT, "expected.safetensors"))
    config_path = os.path.join(OUT, "adapter_config.json")
    saved = json.load(open(config_path))
    saved["base_model_name_or_path"] = os.path.relpath(BASE, ROOT)  # no machine-specific path in the fixture
    saved["target_modules"] = sorted(saved["target_modules"])  # peft keeps a set: fix the order
    with open(config_path, "w") as handle:
        json.dump(saved, handle, indent=2, sort_keys=True)
        handle.write("\n")
    readme = os.path.join(OUT, "README.md")  # peft's model card; not part of the fixture
    if os.path.exists(readme):
        os.remove(readme)
    print("wrote", OUT)


def check(adapter_dir, base, expect):
    import peft
    model = load_base(base)
    wrapped = peft.PeftModel.from_pretrained(model, adapter_dir).eval()
    if expect:
        data = load_file(expect)
        with torch.no_grad():
            logits = wrapped(input_ids=data["input_ids"].reshape(1, -1).long()).logits[0]
        error = ((logits - data["logits"]).abs().max() / data["logits"].abs().max()).item()
        print("max relative error vs", expect, ":", error)
        raise SystemExit(0 if error <= 1e-4 else 1)
    # Every tensor of the file must have landed in peft's model, and every LoRA weight of the model
    # must come from the file (peft only warns about missing keys).
    saved = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    in_model = {k: v for k, v in wrapped.state_dict().items() if ".lora_" in k}
    for key, value in saved.items():
        name = key.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")
        if name not in in_model or not torch.equal(in_model[name].float(), value.float()):
            raise SystemExit(f"{key}: not loaded by peft as saved")
    if len(saved) != len(in_model):
        raise SystemExit(f"peft has {len(in_model)} LoRA tensors, the file {len(saved)}")
    ids = torch.tensor([[3, 17, 250, 901]])
    with torch.no_grad():
        logits = wrapped(input_ids=ids).logits
        with wrapped.disable_adapter():
            base_logits = wrapped(input_ids=ids).logits
    print(f"peft loaded {adapter_dir}: {len(saved)} LoRA tensors, all equal to the file; logits {tuple(logits.shape)}, "
          f"adapter effect max |diff| {(logits - base_logits).abs().max().item():.3e}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--check")
    parser.add_argument("--base", default=BASE)
    parser.add_argument("--expect")
    args = parser.parse_args()
    if args.check:
        check(args.check, args.base, args.expect)
    else:
        make_fixture()
