#!/usr/bin/env python3
"""Tiny random Qwen2.5-VL / Qwen2-VL checkpoints and transformers reference outputs for Tests/ModelsTests.

Requirements: pip install torch torchvision transformers safetensors pillow numpy
(tested with torch 2.15.0, torchvision 0.29.2, transformers 5.23.0; CPU only, no network)
Run from the repository root:  python3 tools/golden/qwen_vl_golden.py

Writes one loadable Hugging Face folder per case under Tests/ModelsTests/Fixtures/<case>/:
  config.json, model.safetensors (bf16 on disk), generation_config.json (cases saved by save_pretrained),
  tokenizer.json + tokenizer_config.json (copied from assets/tokenizer), preprocessor_config.json,
  chat_template.jinja (the Qwen-VL Instruct template), image*.png (the synthetic input images),
  reference.safetensors + reference.json (what transformers computed; see docs/models-golden.md).

The references are computed by loading each committed folder back with
`from_pretrained(dir, dtype=torch.float32, attn_implementation="eager")` and
`AutoProcessor.from_pretrained(dir)`, so they describe exactly what a reader of the folder must compute.
Everything is deterministic: weights come from a seeded generator in sorted parameter-name order,
images from a formula plus a seeded numpy PCG64 stream, and torch runs on one CPU thread.
"""
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import torch
import torchvision
import transformers
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import (AutoProcessor, GenerationConfig, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration,
                          Qwen2VLConfig, Qwen2VLForConditionalGeneration)
from transformers.vision_utils import get_vision_cu_seqlens, get_vision_position_ids, get_vision_window_index

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "ModelsTests" / "Fixtures"
TOKENIZER_DIR = ROOT / "assets" / "tokenizer"
CHAT_TEMPLATE = ROOT / "Tests" / "JinjaTests" / "Fixtures" / "templates" / "qwen2_vl_instruct.jinja"

# Ids of the Qwen special tokens in the project's tiny tokenizer (assets/tokenizer/tokenizer.json).
TOKEN_IDS = {"bos_token_id": 3000, "eos_token_id": 3002, "vision_start_token_id": 3009,
             "vision_end_token_id": 3010, "vision_token_id": 3011, "image_token_id": 3012,
             "video_token_id": 3013}
PAD_ID = 3000  # <|endoftext|>
IM_END = 3002
VOCAB = 3040  # 3022 tokenizer ids + 18 padding rows that no tokenizer produces
TEXT = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 128, "vocab_size": VOCAB, "rms_norm_eps": 1e-6, "max_position_embeddings": 4096,
        "hidden_act": "silu", "max_window_layers": 2, "use_sliding_window": False}
MROPE_SECTION = [2, 3, 3]  # sums to head_dim / 2 = 8
ROPE_THETA = 1e6
PREPROCESSOR = {"image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
                "min_pixels": 3136, "max_pixels": 12845056, "merge_size": 2, "patch_size": 14,
                "temporal_patch_size": 2, "image_processor_type": "Qwen2VLImageProcessor"}
GENERATE_TOKENS = 20
COMPLETION_TOKENS = 16
LAST_LOGITS = 8


# ----------------------------------------------------------------------------------------------
# Configs and weights


def qwen25_config(depth, fullatt, tie):
    text = {**TEXT, "rope_parameters": {"rope_type": "default", "rope_theta": ROPE_THETA, "mrope_section": MROPE_SECTION},
            "bos_token_id": TOKEN_IDS["bos_token_id"], "eos_token_id": TOKEN_IDS["eos_token_id"],
            "tie_word_embeddings": tie}
    vision = {"depth": depth, "hidden_size": 32, "num_heads": 2, "intermediate_size": 48, "out_hidden_size": 64,
              "window_size": 112, "fullatt_block_indexes": fullatt, "tokens_per_second": 2, "patch_size": 14,
              "temporal_patch_size": 2, "spatial_merge_size": 2, "hidden_act": "silu"}
    ids = {k: v for k, v in TOKEN_IDS.items() if k not in ("bos_token_id", "eos_token_id")}
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=tie, **ids)


def qwen2_config(tie):
    text = {**TEXT, "rope_parameters": {"rope_type": "default", "rope_theta": ROPE_THETA, "mrope_section": MROPE_SECTION},
            "bos_token_id": TOKEN_IDS["bos_token_id"], "eos_token_id": TOKEN_IDS["eos_token_id"],
            "tie_word_embeddings": tie}
    vision = {"depth": 2, "embed_dim": 32, "num_heads": 2, "mlp_ratio": 2, "hidden_size": 64, "patch_size": 14,
              "temporal_patch_size": 2, "spatial_merge_size": 2, "in_channels": 3, "hidden_act": "quick_gelu"}
    ids = {k: v for k, v in TOKEN_IDS.items() if k not in ("bos_token_id", "eos_token_id")}
    return Qwen2VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=tie, **ids)


def fill_weights(model, seed):
    """Overwrites every parameter from one seeded stream, in sorted name order, so the weights do not depend
    on transformers' own init. Scales keep activations O(1) and logits spread out (clear greedy margins)."""
    gen = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())  # tied lm_head is listed once, under embed_tokens
    for name in sorted(params):
        p = params[name]
        noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
        if name.endswith("bias"):
            value = 0.1 * noise
        elif p.ndim == 1:  # RMSNorm / LayerNorm weights
            value = 1.0 + 0.1 * noise
        elif "embed_tokens" in name or "lm_head" in name:
            value = 0.5 * noise
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            # larger residual updates, so a tied head does not just repeat the current token
            value = 3.0 * noise / float(np.sqrt(p[0].numel()))
        else:
            value = noise / float(np.sqrt(p[0].numel()))
        with torch.no_grad():
            p.copy_(value)
    return model.to(torch.bfloat16)  # checkpoints are bf16 on disk, like the Hub's


# ----------------------------------------------------------------------------------------------
# The 4.x Hub layout (hand-written for one case): flat text fields + rope_scaling, and the
# `model.language_model.*` / `model.visual.*` weight names that transformers 4.52-4.57 save_pretrained wrote.


def hub4_config_qwen25(config):
    text, vision = config.text_config, config.vision_config
    return {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
        **TOKEN_IDS, "attention_dropout": 0.0, "hidden_act": text.hidden_act, "hidden_size": text.hidden_size,
        "initializer_range": 0.02, "intermediate_size": text.intermediate_size,
        "max_position_embeddings": text.max_position_embeddings, "max_window_layers": text.max_window_layers,
        "num_attention_heads": text.num_attention_heads, "num_hidden_layers": text.num_hidden_layers,
        "num_key_value_heads": text.num_key_value_heads, "rms_norm_eps": text.rms_norm_eps,
        "rope_theta": ROPE_THETA, "sliding_window": 4096, "tie_word_embeddings": config.tie_word_embeddings,
        "torch_dtype": "bfloat16", "transformers_version": "4.49.0", "use_cache": True,
        "use_sliding_window": False, "vocab_size": text.vocab_size,
        "rope_scaling": {"type": "mrope", "mrope_section": MROPE_SECTION},
        "vision_config": {
            "depth": vision.depth, "hidden_act": "silu", "hidden_size": vision.hidden_size,
            "intermediate_size": vision.intermediate_size, "num_heads": vision.num_heads, "in_chans": 3,
            "out_hidden_size": vision.out_hidden_size, "patch_size": 14, "spatial_merge_size": 2,
            "spatial_patch_size": 14, "window_size": vision.window_size,
            "fullatt_block_indexes": list(vision.fullatt_block_indexes), "tokens_per_second": 2,
            "temporal_patch_size": 2},
    }


def write_hub4_folder(model, folder):
    sd = {}
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and model.config.tie_word_embeddings:
            continue
        sd[name] = tensor.contiguous().clone()  # names are model.language_model.* / model.visual.* / lm_head.*
    save_file(sd, str(folder / "model.safetensors"), metadata={"format": "pt"})
    write_json(folder / "config.json", hub4_config_qwen25(model.config))


# ----------------------------------------------------------------------------------------------
# Folder contents besides the weights


def synthetic_image(height, width, seed):
    """Smooth colour ramps, a disc, a bar and a 7-px checker (structure for the patches) plus a little seeded
    noise, as uint8 RGB."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 255 * x / max(width - 1, 1)
    g = 255 * y / max(height - 1, 1)
    b = 127.5 + 127.5 * np.sin((x + 2 * y) / 9.0)
    disc = (x - 0.6 * width) ** 2 + (y - 0.4 * height) ** 2 < (0.25 * min(height, width)) ** 2
    bar = (np.abs(y - 0.75 * height) < 5) & (x > 0.1 * width)
    img = np.stack([r, g, b], axis=-1)
    img += np.where(((x // 7) + (y // 7)) % 2 == 0, 18.0, -18.0)[..., None]
    img[disc] = [250, 240, 30]
    img[bar] = [20, 20, 160]
    noise = np.random.default_rng(seed).integers(-1, 2, size=img.shape) * ((x.astype(np.int64) % 5) == 0)[..., None]
    return np.clip(np.rint(img) + noise, 0, 255).astype(np.uint8)


def write_json(path, obj):
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_support_files(folder, processor_class):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(TOKENIZER_DIR / name, folder / name)
    shutil.copyfile(CHAT_TEMPLATE, folder / "chat_template.jinja")
    write_json(folder / "preprocessor_config.json", {**PREPROCESSOR, "processor_class": processor_class})


def write_images(folder, sizes, seed):
    names = []
    for i, (h, w) in enumerate(sizes):
        name = "image.png" if len(sizes) == 1 else f"image{i + 1}.png"
        Image.fromarray(synthetic_image(h, w, seed + i)).save(folder / name, optimize=False, compress_level=9)
        names.append(name)
    return names


# ----------------------------------------------------------------------------------------------
# Reference computations


def layer_hooks(model):
    """Per-position output sums of every decoder layer and every vision block, plus the decoder input."""
    inner = model.model
    record = {"decoder": {}, "vision": {}, "patch_embed": None, "decoder_input": None}

    def out_tensor(out):
        return out[0] if isinstance(out, tuple) else out

    def on_decoder(i):
        return lambda _m, _a, out: record["decoder"].__setitem__(i, out_tensor(out)[0].sum(-1).clone())

    def on_block(i):
        return lambda _m, _a, out: record["vision"].__setitem__(i, out_tensor(out).sum(-1).clone())

    def on_decoder_input(_m, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        record["decoder_input"] = hidden[0].sum(-1).clone()

    handles = [layer.register_forward_hook(on_decoder(i)) for i, layer in enumerate(inner.language_model.layers)]
    handles += [blk.register_forward_hook(on_block(i)) for i, blk in enumerate(inner.visual.blocks)]
    handles.append(inner.visual.patch_embed.register_forward_hook(
        lambda _m, _a, out: record.__setitem__("patch_embed", out.sum(-1).clone())))
    handles.append(inner.language_model.layers[0].register_forward_pre_hook(on_decoder_input, with_kwargs=True))
    return record, handles


def prompt_inputs(processor, messages, images):
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    kwargs = {"text": [text], "return_tensors": "pt"}
    if images:
        kwargs["images"] = images
    return text, processor(**kwargs)


def forward_logits(model, inputs, **extra):
    model.model.rope_deltas = None
    with torch.no_grad():
        out = model(**inputs, use_cache=False, **extra)
    return out.logits[0].float()


def greedy(model, inputs):
    model.model.rope_deltas = None
    config = GenerationConfig(do_sample=False, max_new_tokens=GENERATE_TOKENS, eos_token_id=None,
                              pad_token_id=PAD_ID, bos_token_id=TOKEN_IDS["bos_token_id"])
    with torch.no_grad():
        out = model.generate(**inputs, generation_config=config, return_dict_in_generate=True, output_logits=True)
    prompt_len = inputs["input_ids"].shape[1]
    ids = out.sequences[0, prompt_len:]
    top2 = torch.stack([step[0].float().topk(2).values for step in out.logits])
    return ids, top2[:, 0] - top2[:, 1]


def teacher_forced(model, inputs, completion):
    """log p(completion[k] | prompt, completion[:k]) from one forward over prompt + completion."""
    full = dict(inputs)
    comp = torch.tensor([completion], dtype=torch.long)
    full["input_ids"] = torch.cat([inputs["input_ids"], comp], dim=1)
    full["attention_mask"] = torch.ones_like(full["input_ids"])
    full["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(comp, dtype=inputs["mm_token_type_ids"].dtype)], dim=1)
    logits = forward_logits(model, full)
    start = inputs["input_ids"].shape[1] - 1
    logprobs = torch.log_softmax(logits[start:start + len(completion)], dim=-1)
    return logprobs.gather(1, comp[0][:, None])[:, 0]


def completion_ids(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:COMPLETION_TOKENS - 1]
    assert len(ids) == COMPLETION_TOKENS - 1, f"completion text too short: {text!r}"
    return ids + [IM_END]


def pixel_table(processor):
    """The fast processor's fused rescale+normalize for each channel and uint8 value, in float32:
    (float32(v) - float32(mean) * 255) / (float32(std) * 255)."""
    ip = processor.image_processor
    scale = 1.0 / ip.rescale_factor
    mean = torch.tensor(ip.image_mean, dtype=torch.float32) * scale
    std = torch.tensor(ip.image_std, dtype=torch.float32) * scale
    values = torch.arange(256, dtype=torch.float32)
    return (values[None, :] - mean[:, None]) / std[:, None]


def encode_pixels(pixel_values, table):
    """pixel_values [N, 1176] as uint8 codes [N, 588] (the resized image's byte values of the first temporal
    frame; a still image's two frames are equal) plus the [3, 256] float32 table, exactly:
    pixel_values[n, c*392 + t*196 + k] == table[c, codes[n, c*196 + k]] for t in {0, 1}, k < 196."""
    channel = torch.arange(pixel_values.shape[1]) // 392
    std = (table[:, 1] - table[:, 0])[channel]
    codes = torch.round((pixel_values - table[channel, 0]) / std).clamp(0, 255).to(torch.uint8)
    assert torch.equal(table[channel, codes.long()], pixel_values), "pixel_values are not a function of (channel, byte)"
    frames = codes.view(-1, 3, 2, 196)
    assert torch.equal(frames[:, :, 0], frames[:, :, 1]), "the two temporal frames of a still image differ"
    return frames[:, :, 0].reshape(-1, 588).contiguous()


def patchify_bytes(image):
    """Independent check of the processor's patch order (docs/qwen-vl.md 2.5) on an image that needs no resize:
    row = ((bh * mw + bw) * 2 + i) * 2 + j, column = c * 196 + py * 14 + px (first temporal frame)."""
    arr = np.asarray(image, dtype=np.uint8)  # H, W, 3
    mh, mw = arr.shape[0] // 28, arr.shape[1] // 28
    blocks = arr.reshape(mh, 2, 14, mw, 2, 14, 3)  # bh, i, py, bw, j, px, c
    return torch.from_numpy(blocks.transpose(0, 3, 1, 4, 6, 2, 5).reshape(-1, 588).copy())


def check_patch_order(codes, images, grids):
    start = 0
    for image, (t, h, w) in zip(images, grids.tolist()):
        rows = t * h * w
        if (image.height, image.width) == (h * 14, w * 14):  # no resize: the bytes are the PNG's
            assert torch.equal(codes[start:start + rows], patchify_bytes(image)), "patch order differs from docs/qwen-vl.md 2.5"
        start += rows


def manual_greedy(model, inputs, rope):
    """Greedy decoding with an explicit KV cache and explicit M-RoPE positions (prefill: get_rope_index;
    step s: prompt_length + rope_delta + s on all three channels); must equal generate()."""
    from transformers import DynamicCache
    cache = DynamicCache(config=model.config)
    length, delta = inputs["input_ids"].shape[1], int(rope["rope_deltas"].item())
    prefill = {k: v for k, v in inputs.items() if k != "mm_token_type_ids"}
    ids = []
    with torch.no_grad():
        out = model(**prefill, position_ids=rope["position_ids"], past_key_values=cache, use_cache=True)
        for step in range(GENERATE_TOKENS):
            token = int(out.logits[0, -1].float().argmax())
            ids.append(token)
            pos = torch.full((3, 1, 1), length + delta + step, dtype=torch.long)
            mask = torch.ones(1, length + step + 1, dtype=torch.long)
            out = model(input_ids=torch.tensor([[token]]), attention_mask=mask, position_ids=pos,
                        past_key_values=cache, use_cache=True)
    return ids


def vision_reference(model, inputs, is_qwen25):
    visual = model.model.visual
    grid = inputs["image_grid_thw"]
    with torch.no_grad():
        out = visual(inputs["pixel_values"].float(), grid_thw=grid)
    tensors = {"vision_output": out.pooler_output.float().contiguous(),
               "vision_position_ids": get_vision_position_ids(grid, 2).to(torch.int64),
               "cu_seqlens": get_vision_cu_seqlens(grid).to(torch.int32)}
    if is_qwen25:
        cfg = visual.config
        window_index, cu_window = get_vision_window_index(grid, cfg.spatial_merge_size, cfg.window_size, cfg.patch_size)
        tensors["window_index"] = window_index.to(torch.int64)
        tensors["cu_window_seqlens"] = cu_window.to(torch.int32)
    return tensors


def rope_reference(model, inputs):
    grid = inputs.get("image_grid_thw")
    position_ids, deltas = model.model.get_rope_index(
        inputs["input_ids"], inputs["mm_token_type_ids"], image_grid_thw=grid,
        attention_mask=inputs["attention_mask"])
    return {"position_ids": position_ids.to(torch.int64), "rope_deltas": deltas.to(torch.int64).reshape(1, 1)}


def sdpa_check(folder, model_class, inputs, eager_logits, eager_ids):
    model = model_class.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa").eval()
    logits = forward_logits(model, inputs)
    ids, _ = greedy(model, inputs)
    return {"sdpa_logits_max_abs_diff": float((logits - eager_logits).abs().max()),
            "sdpa_generated_ids_equal": bool(torch.equal(ids, eager_ids))}


def folder_layout(folder):
    """Which config and weight-name layouts the folder uses (both must be accepted by readers)."""
    config = json.loads((folder / "config.json").read_text())
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        names = list(f.keys())
    return {"config_layout": "transformers-5 (text_config, rope_parameters)" if "text_config" in config
            else "hub-4 (flat text fields, rope_scaling)",
            "weight_names": "model.language_model.* / model.visual.*" if any(
                n.startswith("model.language_model.") for n in names) else "model.* / visual.*",
            "has_lm_head_weight": "lm_head.weight" in names}


def reference_for(folder, model_class, messages, images, completion_text, is_qwen25, file_stem):
    torch.manual_seed(0)
    processor = AutoProcessor.from_pretrained(folder)
    model, info = model_class.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager",
                                              output_loading_info=True)
    model.eval()
    problems = {k: v for k, v in info.items() if v}
    assert not problems, f"{folder.name}: loading was not clean: {problems}"
    rendered, inputs = prompt_inputs(processor, messages, images)
    tensors = {"input_ids": inputs["input_ids"].to(torch.int64),
               "mm_token_type_ids": inputs["mm_token_type_ids"].to(torch.int64)}
    if images:
        table = pixel_table(processor)
        tensors["pixel_codes"] = encode_pixels(inputs["pixel_values"].float(), table)
        tensors["pixel_table"] = table
        tensors["pixel_values_row_sums"] = inputs["pixel_values"].float().sum(-1)
        check_patch_order(tensors["pixel_codes"], images, inputs["image_grid_thw"])
        tensors["image_grid_thw"] = inputs["image_grid_thw"].to(torch.int64)
        tensors.update(vision_reference(model, inputs, is_qwen25))
    tensors.update(rope_reference(model, inputs))

    record, handles = layer_hooks(model)
    logits = forward_logits(model, inputs)
    for h in handles:
        h.remove()
    length = logits.shape[0]
    tensors["logits_last8"] = logits[-LAST_LOGITS:].contiguous()
    tensors["logits_sum"] = logits.sum(-1).contiguous()
    tensors["logits_argmax"] = logits.argmax(-1).to(torch.int64)
    tensors["decoder_input_sums"] = record["decoder_input"]
    tensors["decoder_layer_sums"] = torch.stack([record["decoder"][i] for i in sorted(record["decoder"])])
    if images:
        tensors["patch_embed_sums"] = record["patch_embed"]
        tensors["vision_block_sums"] = torch.stack([record["vision"][i] for i in sorted(record["vision"])])

    comp = completion_ids(processor.tokenizer, completion_text)
    tensors["completion_ids"] = torch.tensor(comp, dtype=torch.int64)
    tensors["completion_logprobs"] = teacher_forced(model, inputs, comp)
    gen_ids, margins = greedy(model, inputs)
    assert manual_greedy(model, inputs, tensors) == gen_ids.tolist(), f"{folder.name}: generate() != manual loop"
    tensors["generated_ids"] = gen_ids.to(torch.int64)
    tensors["generated_top2_margin"] = margins

    meta = {
        "case": folder.name, "reference_file": f"{file_stem}.safetensors",
        "transformers_version": transformers.__version__, "torch_version": torch.__version__.split("+")[0],
        "torchvision_version": torchvision.__version__.split("+")[0],
        "attn_implementation": "eager", "compute_dtype": "float32", "checkpoint_dtype": "bfloat16",
        "image_processor_class": type(processor.image_processor).__name__,
        "processor_class": type(processor).__name__, "model_class": model_class.__name__,
        "rendered_prompt": rendered, "messages": messages, "completion_text": completion_text,
        "completion_token_count": len(comp), "prompt_length": length,
        "logits_last8_positions": list(range(length - LAST_LOGITS, length)),
        "text_inv_freq_dtype": str(model.model.language_model.rotary_emb.inv_freq.dtype),
        "vision_inv_freq_dtype": str(model.model.visual.rotary_pos_emb.inv_freq.dtype),
        "vision_dtype": str(model.model.visual.dtype),
        "decoder_layer0_sum": float(tensors["decoder_layer_sums"][0].sum()),
        "generated_ids": tensors["generated_ids"].tolist(),
        "generated_text": processor.tokenizer.decode(tensors["generated_ids"].tolist(), skip_special_tokens=False),
        "generated_contains_eos": IM_END in tensors["generated_ids"].tolist(),
        "generate_settings": {"do_sample": False, "max_new_tokens": GENERATE_TOKENS, "eos_token_id": None,
                              "use_cache": True},
        "rope_deltas": int(tensors["rope_deltas"].item()),
        "token_ids": TOKEN_IDS,
        **folder_layout(folder),
        **sdpa_check(folder, model_class, inputs, logits, gen_ids),
    }
    if images:
        meta["image_grid_thw"] = tensors["image_grid_thw"].tolist()
        meta["image_sizes_hw"] = [[im.height, im.width] for im in images]
        meta["vision_block0_sum"] = float(tensors["vision_block_sums"][0].sum())
        meta["image_token_count"] = int((tensors["input_ids"] == TOKEN_IDS["image_token_id"]).sum())
    if "cu_window_seqlens" in tensors:
        meta["cu_window_seqlens"] = tensors["cu_window_seqlens"].tolist()
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    save_file(tensors, str(folder / f"{file_stem}.safetensors"), metadata={"format": "pt"})
    write_json(folder / f"{file_stem}.json", meta)
    return tensors, meta


# ----------------------------------------------------------------------------------------------
# Cases


def user(*parts, system=None):
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": list(parts)}]


IMAGE = {"type": "image"}


def txt(s):
    return {"type": "text", "text": s}


CASES = [
    # name, family, depth, fullatt, tie, image sizes (h, w), layout, messages, completion
    {"name": "qwen25vl_tied", "family": "qwen2_5_vl", "depth": 4, "fullatt": [1, 3], "tie": True, "seed": 101,
     "images": [(140, 196)], "layout": "save_pretrained",
     "messages": user(IMAGE, txt("Describe this image.")),
     "completion": "A yellow disc sits above a blue bar on a colourful gradient background, nothing else.",
     "text_only": {"messages": [{"role": "user", "content": "Hello! Count from 1 to 5, please."}],
                   "completion": "Sure: 1, 2, 3, 4, 5. Is there anything else you would like?"}},
    {"name": "qwen25vl_untied_two_images", "family": "qwen2_5_vl", "depth": 2, "fullatt": [1], "tie": False,
     "seed": 202, "images": [(112, 112), (90, 130)], "layout": "hub4",
     "messages": user(txt("Compare "), IMAGE, txt(" and "), IMAGE, txt(": which one is brighter?"),
                      system="You are a careful assistant."),
     "completion": "The first<|vision_start|> one<|vision_end|> is brighter than the second one, I think."},
    {"name": "qwen2vl", "family": "qwen2_vl", "depth": 2, "fullatt": None, "tie": True, "seed": 303,
     "images": [(168, 112)], "layout": "save_pretrained",
     "messages": user(IMAGE, txt("What is in the picture?")),
     "completion": "The picture shows a yellow circle and a dark blue stripe over a gradient."},
]


def build_case(case):
    folder = OUT / case["name"]
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    is_qwen25 = case["family"] == "qwen2_5_vl"
    torch.manual_seed(case["seed"])
    if is_qwen25:
        config, model_class, processor_class = (qwen25_config(case["depth"], case["fullatt"], case["tie"]),
                                                Qwen2_5_VLForConditionalGeneration, "Qwen2_5_VLProcessor")
    else:
        config, model_class, processor_class = qwen2_config(case["tie"]), Qwen2VLForConditionalGeneration, "Qwen2VLProcessor"
    model = fill_weights(model_class(config), case["seed"])
    if case["layout"] == "hub4":
        write_hub4_folder(model, folder)
    else:
        model.save_pretrained(folder)
    write_support_files(folder, processor_class)
    names = write_images(folder, case["images"], case["seed"])
    images = [Image.open(folder / n).convert("RGB") for n in names]
    check_roundtrip(model, model_class, folder)
    results = [reference_for(folder, model_class, case["messages"], images, case["completion"], is_qwen25, "reference")]
    if "text_only" in case:
        extra = case["text_only"]
        results.append(reference_for(folder, model_class, extra["messages"], [], extra["completion"], is_qwen25,
                                     "reference_text_only"))
    return folder, results


def check_roundtrip(model, model_class, folder):
    """The folder loads back (strictly) into exactly the weights that were generated."""
    loaded = model_class.from_pretrained(folder, dtype=torch.bfloat16)
    want, got = model.state_dict(), loaded.state_dict()
    assert want.keys() == got.keys(), f"{folder.name}: parameter names differ after loading"
    for k in want:
        assert torch.equal(want[k], got[k]), f"{folder.name}: {k} differs after loading"


def describe(folder, results):
    print(f"{folder.relative_to(ROOT)}/")
    for path in sorted(folder.iterdir()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        print(f"  {path.name:36s} {path.stat().st_size:8d} B  sha256 {digest}")
    for tensors, meta in results:
        print(f"  {meta['reference_file']}: prompt length {meta['prompt_length']}, rope_deltas {meta['rope_deltas']}, "
              f"sdpa max |diff| {meta['sdpa_logits_max_abs_diff']:.2e}, generated {meta['generated_ids']}")
        for name, t in sorted(tensors.items()):
            print(f"    {name:24s} {str(t.dtype).replace('torch.', ''):8s} {list(t.shape)}")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    OUT.mkdir(parents=True, exist_ok=True)
    total = 0
    for case in CASES:
        folder, results = build_case(case)
        describe(folder, results)
        total += sum(p.stat().st_size for p in folder.iterdir())
    print(f"total fixture size: {total} bytes")


if __name__ == "__main__":
    main()
