#!/usr/bin/env python3
"""Attention diagnostics (MDI / AEI) reference from transformers' eager attention weights.

Requirements: pip install torch transformers==5.23.0 safetensors numpy (CPU only, no network; the
transformers version the fixture was made with, whose greedy tokens this script relies on).
Run from the repository root:  python3 tools/golden/mdi_attention.py [OUT_DIR]

Input: the tiny Qwen2.5-VL fixture of tools/golden/qwen_vl_golden.py (Tests/ModelsTests/Fixtures/
qwen25vl_tied): its prompt (input_ids, pixel codes, grid) and transformers' greedy completion
(generated_ids). One float32 eager forward over prompt + completion[:-1] with output_attentions=True
gives, for every layer and every generated token after the first, the attention of the query that
produced it (position prompt_length + i, i = 0..entries-1; entries = n-1, or fewer when the random
model sampled an image-pad id, which transformers would read as an image position) over the prompt, heads averaged: its mass on
image-token positions (image pad id) and on the other prompt positions (text). Output:
Tests/GenerationTests/Fixtures/mdi_attention.json (what the engine records, and the MDI / AEI of
the completion per layer group, text + image shares normalised to 1).
"""
import json
import sys
from pathlib import Path

import torch
import transformers
from safetensors import safe_open
from transformers import Qwen2_5_VLForConditionalGeneration

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "Tests" / "ModelsTests" / "Fixtures" / "qwen25vl_tied"
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "Tests" / "GenerationTests" / "Fixtures"
IMAGE_TOKEN = 3012


def reference_inputs():
    with safe_open(FOLDER / "reference.safetensors", framework="pt") as f:
        ids = f.get_tensor("input_ids").to(torch.int64)
        generated = f.get_tensor("generated_ids").to(torch.int64)
        codes = f.get_tensor("pixel_codes").to(torch.int64).reshape(-1, 3, 196)
        table = f.get_tensor("pixel_table")
        grid = f.get_tensor("image_grid_thw").to(torch.int64).reshape(-1, 3)
    values = table.unsqueeze(0).expand(codes.shape[0], 3, 256).gather(2, codes)
    pixels = torch.stack([values, values], dim=2).reshape(codes.shape[0], 1176)
    return ids.reshape(-1), generated.reshape(-1), pixels, grid


def shares(text, vision, text_tokens, vision_tokens):
    total = text + vision
    t, v = text / total, vision / total
    mdi = (t / text_tokens) / (v / vision_tokens)
    n = text_tokens + vision_tokens
    return {"text_share": t, "image_share": v, "mdi": mdi, "aei_text": t / (text_tokens / n), "aei_vision": v / (vision_tokens / n)}


def main():
    torch.set_num_threads(1)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(FOLDER, dtype=torch.float32, attn_implementation="eager").eval()
    ids, generated, pixels, grid = reference_inputs()
    length = ids.shape[0]
    # Completion tokens fed back: all but the last, and none from the first image-pad id the random
    # model may sample (transformers would take it for an image position; the engine keeps it text).
    image_at = (generated == IMAGE_TOKEN).nonzero()
    fed = min(generated.shape[0] - 1, int(image_at[0]) if image_at.numel() else generated.shape[0])
    full = torch.cat([ids, generated[:fed]]).unsqueeze(0)
    with torch.no_grad():
        # mm_token_type_ids marks the prompt's image positions (M-RoPE's image positions come from it).
        types = torch.cat([(ids == IMAGE_TOKEN).long(), torch.zeros(fed, dtype=torch.long)]).unsqueeze(0)
        out = model(input_ids=full, attention_mask=torch.ones_like(full), pixel_values=pixels, image_grid_thw=grid,
                    mm_token_type_ids=types, output_attentions=True)
    is_image = (ids == IMAGE_TOKEN).double()
    is_text = 1 - is_image
    layers = len(out.attentions)
    text_mass, vision_mass = [], []
    for attention in out.attentions:  # [1, heads, T, T]
        probs = attention[0].double().mean(0)  # heads averaged: [T, T]
        rows = probs[length:length + fed, :length]  # generation-phase queries over the prompt
        text_mass.append((rows @ is_text).tolist())
        vision_mass.append((rows @ is_image).tolist())
    text_tokens, vision_tokens = int(is_text.sum()), int(is_image.sum())
    groups = {"early": [0], "late": [layers - 1], "all": list(range(layers))}
    summary = {}
    for name, members in groups.items():
        text = sum(sum(text_mass[l]) for l in members) / (len(members) * len(text_mass[0]))
        vision = sum(sum(vision_mass[l]) for l in members) / (len(members) * len(vision_mass[0]))
        summary[name] = {"layers": members, **shares(text, vision, text_tokens, vision_tokens)}
    OUT.mkdir(parents=True, exist_ok=True)
    result = {"transformers_version": transformers.__version__, "torch_version": torch.__version__,
              "attn_implementation": "eager", "dtype": "float32", "prompt_length": length,
              "completion_ids": generated.tolist(), "entries": fed, "text_tokens": text_tokens, "vision_tokens": vision_tokens,
              "layer_text_mass": text_mass, "layer_vision_mass": vision_mass, "groups": summary}
    (OUT / "mdi_attention.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
