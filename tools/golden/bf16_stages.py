#!/usr/bin/env python3
"""Stage-by-stage bfloat16 outputs of transformers' Qwen2.5-VL and Qwen2-VL, for the bit-exactness test
Tests/ModelsTests/Bf16ParityTests.swift.

Requirements (exactly these versions: vlmrl links the libtorch of the same torch wheel, so its CPU kernels
are the same machine code and the outputs must match bit for bit):
    pip install torch==2.11.0 transformers==5.17.0 safetensors numpy
Run from the repository root:  python3 tools/golden/bf16_stages.py
(CPU only, one thread, no network; deterministic: a second run rewrites byte-identical files.)

Writes Tests/ModelsTests/Fixtures/bf16_stages_<family>/:
  config.json           the model configuration (transformers-5 layout), loadable by vlmrl
  weights.json          how to rebuild every weight: name, shape, seed, mean, std of `hashed_uniform`
  stages.safetensors    the inputs (ids, pixel seed) and the output of every stage, in bf16 as computed
  stages.json           versions, stage names in order, grids, prompt length

Weights and pixels are not stored: both sides rebuild them with `hashed_uniform`, a splitmix64 hash of
(seed, element index) mapped to a uniform value with the requested mean and standard deviation, computed
in float64 and rounded once to float32 (the Swift test does the same arithmetic). Scales are realistic
(matrices std 1/sqrt(fan_in), embeddings std 3/sqrt(D)), because transformers' 0.02 init makes every
logit ~0 and any comparison trivially close.
"""
import json
import math
from pathlib import Path

import numpy as np
import torch
import transformers
from safetensors.torch import save_file
from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLConfig,
                          Qwen2VLForConditionalGeneration)

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "ModelsTests" / "Fixtures"

VOCAB = 256
IDS = {"bos_token_id": 240, "eos_token_id": 241, "vision_start_token_id": 242, "vision_end_token_id": 243,
       "vision_token_id": 244, "image_token_id": 245, "video_token_id": 246}
# head_dim 64 with mrope_section summing to 32, GQA 2:1 as in the 3B model (16 heads over 2 KV heads).
TEXT = {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 2, "num_key_value_heads": 1,
        "intermediate_size": 256, "vocab_size": VOCAB, "rms_norm_eps": 1e-6, "max_position_embeddings": 4096,
        "hidden_act": "silu", "use_sliding_window": False, "max_window_layers": 4,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [8, 12, 12]}}
GRID = [1, 6, 10]  # 60 patches, 3x5 merged tokens: with window_size 56 (2x2 merged per window) six uneven windows
PROMPT_BEFORE, PROMPT_AFTER, COMPLETION = 10, 8, 16
PIXEL_SEED = 7919
TOKEN_SEED = 104729

MASK64 = (1 << 64) - 1


def hashed_uniform(seed: int, count: int, mean: float, std: float) -> np.ndarray:
    """float32 values mean + (2u - 1) * sqrt(3) * std, u = top 24 bits of splitmix64(seed * G + i * C1 + C2)."""
    with np.errstate(over="ignore"):
        i = np.arange(count, dtype=np.uint64)
        x = np.uint64((seed * 0x9E3779B97F4A7C15 + 0x94D049BB133111EB) & MASK64) + i * np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    u = (x >> np.uint64(40)).astype(np.float64) / float(1 << 24)
    return (mean + (2.0 * u - 1.0) * (math.sqrt(3.0) * std)).astype(np.float32)


def weight_scale(name: str, shape) -> tuple[float, float]:
    """(mean, std): norms 1 +- 0.1, biases 0.1, embeddings and head 3/sqrt(D), other matrices 1/sqrt(fan_in)."""
    if "norm" in name or name.endswith("ln_q.weight"):
        return (1.0, 0.1) if name.endswith("weight") else (0.0, 0.1)
    if name.endswith("bias"):
        return 0.0, 0.1
    if "embed_tokens" in name or name == "lm_head.weight":
        return 0.0, 3.0 / math.sqrt(shape[1])
    fan_in = int(np.prod(shape[1:]))
    return 0.0, 1.0 / math.sqrt(fan_in)


def build(family: str):
    text = dict(TEXT, bos_token_id=IDS["bos_token_id"], eos_token_id=IDS["eos_token_id"])
    if family == "qwen2_5_vl":
        vision = {"depth": 4, "hidden_size": 128, "num_heads": 2, "intermediate_size": 256, "out_hidden_size": 128,
                  "window_size": 56, "fullatt_block_indexes": [2], "patch_size": 14, "spatial_merge_size": 2,
                  "temporal_patch_size": 2, "in_channels": 3, "hidden_act": "silu", "tokens_per_second": 2}
        config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **IDS)
        cls = Qwen2_5_VLForConditionalGeneration
    else:
        vision = {"depth": 4, "embed_dim": 128, "num_heads": 2, "mlp_ratio": 2, "hidden_size": 128, "patch_size": 14,
                  "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3, "hidden_act": "quick_gelu"}
        config = Qwen2VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=True, **IDS)
        cls = Qwen2VLForConditionalGeneration
    config.text_config.tie_word_embeddings = config.tie_word_embeddings
    model = cls._from_config(config, attn_implementation="sdpa", dtype=torch.bfloat16).eval()
    specs, state = [], {}
    for seed, (name, param) in enumerate(sorted(model.state_dict().items())):
        if config.tie_word_embeddings and name == "lm_head.weight":
            continue
        mean, std = weight_scale(name, list(param.shape))
        values = torch.from_numpy(hashed_uniform(seed + 1, param.numel(), mean, std)).reshape(param.shape)
        state[name] = values.to(torch.bfloat16)
        specs.append({"name": name, "shape": list(param.shape), "seed": seed + 1, "mean": mean, "std": std})
    model.load_state_dict(state, strict=False)
    if config.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.language_model.embed_tokens.weight.data_ptr()
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name] if name in state else state["model.language_model.embed_tokens.weight"]), name
    return model, config, specs


def inputs(config):
    merged = GRID[0] * GRID[1] * GRID[2] // 4
    text = (hashed_uniform(TOKEN_SEED, PROMPT_BEFORE + PROMPT_AFTER + COMPLETION, 0.5, 0.25) * 1000).astype(np.int64) % 230
    text = [int(t) for t in text]
    prompt = ([IDS["bos_token_id"]] + text[:PROMPT_BEFORE] + [IDS["vision_start_token_id"]]
              + [IDS["image_token_id"]] * merged + [IDS["vision_end_token_id"]]
              + text[PROMPT_BEFORE:PROMPT_BEFORE + PROMPT_AFTER])
    ids = prompt + text[PROMPT_BEFORE + PROMPT_AFTER:]
    patches = GRID[0] * GRID[1] * GRID[2]
    pixels = torch.from_numpy(hashed_uniform(PIXEL_SEED, patches * 3 * 2 * 14 * 14, 0.0, 1.0)).reshape(patches, -1)
    return ids, len(prompt), pixels


def record(model, config, ids, prompt_length, pixels):
    """Runs the teacher-forced forward once and returns every stage's output, in execution order."""
    stages = {}
    inner = model.model
    visual, language = inner.visual, inner.language_model

    def keep(name):
        def hook(_module, _args, output):
            stages[name] = (output if torch.is_tensor(output) else output[0]).detach().clone()
        return hook

    handles = [visual.patch_embed.register_forward_hook(keep("vision.patch_embed"))]
    handles += [b.register_forward_hook(keep(f"vision.block{i}")) for i, b in enumerate(visual.blocks)]
    handles.append(visual.merger.register_forward_hook(keep("vision.merger")))
    handles.append(visual.register_forward_hook(
        lambda _m, _a, out: stages.__setitem__("vision.output", out.pooler_output.detach().clone())))
    handles.append(language.register_forward_pre_hook(
        lambda _m, _a, kwargs: stages.__setitem__("text.input", kwargs["inputs_embeds"].detach().clone()),
        with_kwargs=True))
    handles += [l.register_forward_hook(keep(f"text.layer{i}")) for i, l in enumerate(language.layers)]
    handles.append(language.norm.register_forward_hook(keep("text.norm")))

    input_ids = torch.tensor([ids])
    types = (input_ids == config.image_token_id).int()
    types[:, prompt_length:] = 0
    grid = torch.tensor([GRID])
    with torch.no_grad():
        out = model(input_ids=input_ids, pixel_values=pixels, image_grid_thw=grid, mm_token_type_ids=types,
                    use_cache=False)
    for h in handles:
        h.remove()
    logits = out.logits[0]
    stages["logits"] = logits.detach().clone()
    targets = input_ids[0, prompt_length:]
    logprobs = logits[prompt_length - 1:-1].float().log_softmax(-1).gather(1, targets[:, None])[:, 0]
    stages["logprobs"] = logprobs
    return {k: v.squeeze(0) if k.startswith("text.") else v for k, v in stages.items()}


def main():
    torch.set_num_threads(1)
    for family in ["qwen2_5_vl", "qwen2_vl"]:
        model, config, specs = build(family)
        ids, prompt_length, pixels = inputs(config)
        stages = record(model, config, ids, prompt_length, pixels)
        folder = OUT / f"bf16_stages_{family}"
        folder.mkdir(parents=True, exist_ok=True)
        config.to_json_file(folder / "config.json")
        (folder / "weights.json").write_text(json.dumps(specs, indent=1) + "\n")
        tensors = {k: v.contiguous() for k, v in stages.items()}
        tensors["input_ids"] = torch.tensor(ids, dtype=torch.int64)
        save_file(tensors, str(folder / "stages.safetensors"), metadata={"format": "pt"})
        meta = {"torch": torch.__version__, "transformers": transformers.__version__, "family": family,
                "attn_implementation": "sdpa", "dtype": "bfloat16", "threads": 1, "grid": GRID,
                "prompt_length": prompt_length, "pixel_seed": PIXEL_SEED, "pixel_shape": list(pixels.shape),
                "stages": list(stages.keys()),
                "stage_shapes": {k: list(v.shape) for k, v in stages.items()}}
        (folder / "stages.json").write_text(json.dumps(meta, indent=1) + "\n")
        print(family, {k: list(v.shape) for k, v in stages.items()})


if __name__ == "__main__":
    main()
