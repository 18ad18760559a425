#!/usr/bin/env python3
"""Reference of merging a LoRA adapter into its base, as peft's merge_and_unload computes it, for
`vlmrl merge` (MergeTests), and a check that a folder `vlmrl merge` wrote loads in transformers.

Requirements: pip install torch transformers peft safetensors

  python3 tools/golden/peft_merge.py
      Loads the tiny Qwen2.5-VL fixture (float32) with the committed peft adapter
      (Tests/TrainingTests/Fixtures/peft_adapter, written by peft_adapter.py), merges it with
      merge_and_unload, and writes Tests/ModelsTests/Fixtures/peft_merge/reference.safetensors:
        merged.<name>.row0   the first row of every merged weight (vlmrl's 4.x names)
        merged.<name>.stats  [sum, sum of squares] of that weight (float64)
        rslora.<name>.row0 / .stats   the same with use_rslora true (scaling alpha / sqrt(r))
        input_ids, logits_last        a text prompt and the merged model's logits at its last position

  python3 tools/golden/peft_merge.py --check MERGED_DIR
      Loads MERGED_DIR (written by `vlmrl merge --adapter <that adapter> --out MERGED_DIR`) with
      transformers alone and compares every weight and the logits with peft's merge (exit 1 when
      a weight differs by more than 1e-5 or the logits by more than 1e-4 relative).
"""
import argparse
import json
import os
import shutil
import tempfile

import torch
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = os.path.join(ROOT, "Tests/ModelsTests/Fixtures/qwen25vl_tied")
ADAPTER = os.path.join(ROOT, "Tests/TrainingTests/Fixtures/peft_adapter")
OUT = os.path.join(ROOT, "Tests/ModelsTests/Fixtures/peft_merge")
INPUT_IDS = torch.tensor([[3, 17, 250, 901, 33, 5]])


def load(path):
    from transformers import Qwen2_5_VLForConditionalGeneration
    return Qwen2_5_VLForConditionalGeneration.from_pretrained(path, dtype=torch.float32).eval()


def vlmrl_name(name):
    """transformers 5 module names -> the Hub's 4.x names vlmrl's parameters carry."""
    if name.startswith("model.visual."):
        return name[len("model."):]
    if name.startswith("model.language_model."):
        return "model." + name[len("model.language_model."):]
    return name


def merged(adapter_dir):
    """peft's merge of adapter_dir onto the float32 base, and the names of the adapted weights."""
    import peft
    wrapped = peft.PeftModel.from_pretrained(load(BASE), adapter_dir)
    adapted = sorted(name + ".weight" for name, module in wrapped.base_model.model.named_modules()
                     if hasattr(module, "lora_A") and len(module.lora_A) > 0)
    return wrapped.merge_and_unload().eval(), adapted


def rows_and_stats(model, names, prefix):
    state = model.state_dict()
    out = {}
    for name in names:
        weight = state[name].detach()
        key = f"{prefix}.{vlmrl_name(name)}"
        out[key + ".row0"] = weight[0].contiguous().clone()
        w64 = weight.double()
        out[key + ".stats"] = torch.tensor([w64.sum().item(), (w64 * w64).sum().item()], dtype=torch.float64)
    return out


def make_fixture():
    model, names = merged(ADAPTER)
    tensors = rows_and_stats(model, names, "merged")
    with torch.no_grad():
        logits = model(input_ids=INPUT_IDS).logits[0, -1]
    tensors["input_ids"] = INPUT_IDS[0].to(torch.int64).contiguous()
    tensors["logits_last"] = logits.contiguous()
    with tempfile.TemporaryDirectory() as scratch:
        rslora = os.path.join(scratch, "adapter")
        shutil.copytree(ADAPTER, rslora)
        config_path = os.path.join(rslora, "adapter_config.json")
        config = json.load(open(config_path))
        config["use_rslora"] = True
        json.dump(config, open(config_path, "w"))
        rs_model, rs_names = merged(rslora)
        tensors.update(rows_and_stats(rs_model, rs_names, "rslora"))
    os.makedirs(OUT, exist_ok=True)
    save_file(tensors, os.path.join(OUT, "reference.safetensors"))
    print(f"wrote {OUT}/reference.safetensors: {len(names)} merged weights, logits {tuple(logits.shape)}")


def check(folder):
    reference, _ = merged(ADAPTER)
    loaded = load(folder)
    expected = reference.state_dict()
    got = loaded.state_dict()
    worst = 0.0
    for name, value in expected.items():
        if name not in got:
            raise SystemExit(f"{folder}: transformers has no {name}")
        worst = max(worst, (got[name].float() - value.float()).abs().max().item())
    with torch.no_grad():
        a = loaded(input_ids=INPUT_IDS).logits
        b = reference(input_ids=INPUT_IDS).logits
    relative = ((a - b).abs().max() / b.abs().max()).item()
    print(f"transformers loaded {folder}: {len(expected)} tensors, max |weight diff| {worst:.3e} vs peft merge_and_unload; "
          f"logits max relative diff {relative:.3e}")
    raise SystemExit(0 if worst <= 1e-5 and relative <= 1e-4 else 1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--check")
    args = parser.parse_args()
    if args.check:
        check(args.check)
    else:
        make_fixture()
