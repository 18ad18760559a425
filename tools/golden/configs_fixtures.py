#!/usr/bin/env python3
"""Golden config files and smart_resize values for Tests/ModelConfigTests.

Requirements: pip install transformers pillow   (tested with transformers 5.23.0; torch not needed)
Run from the repository root:  python3 tools/golden/configs_fixtures.py

Writes, under Tests/ModelConfigTests/Fixtures/:
  configs/<model>.hub4.json  the transformers 4.x layout, as the Hub's config.json for that model
                             (values from the Hub files; see docs/model-files.md)
  configs/<model>.tf5.json   what the installed transformers writes after loading the 4.x file
                             (save_pretrained; the 5.x layout with text_config and rope_parameters)
  configs/expected.json      for every file above, the values transformers itself reads from it
  processors/*.json          image processor settings in the spellings found in the wild
  processors/expected.json   the min/max pixels (size) and other settings transformers derives
  smart_resize.json          transformers' smart_resize on several hundred sizes and pixel limits
"""
import json
import random
import tempfile
from pathlib import Path

import transformers
from transformers import Qwen2_5_VLConfig, Qwen2VLConfig
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize  # same function, no torch import

OUT = Path(__file__).resolve().parents[2] / "Tests" / "ModelConfigTests" / "Fixtures"

TOKEN_IDS = {"bos_token_id": 151643, "eos_token_id": 151645, "vision_start_token_id": 151652,
             "vision_end_token_id": 151653, "vision_token_id": 151654, "image_token_id": 151655,
             "video_token_id": 151656}


def text_fields(hidden, layers, heads, kv, inter, vocab, tie, max_pos, max_window):
    return {"attention_dropout": 0.0, "hidden_act": "silu", "hidden_size": hidden, "initializer_range": 0.02,
            "intermediate_size": inter, "max_position_embeddings": max_pos, "max_window_layers": max_window,
            "num_attention_heads": heads, "num_hidden_layers": layers, "num_key_value_heads": kv,
            "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": tie,
            "torch_dtype": "bfloat16", "transformers_version": "4.41.2", "use_cache": True,
            "use_sliding_window": False, "vocab_size": vocab,
            "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}}


def qwen2_vl(hidden, layers, heads, kv, inter, vocab, tie):
    config = {"architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl", **TOKEN_IDS,
              **text_fields(hidden, layers, heads, kv, inter, vocab, tie, 32768, 28)}
    config["vision_config"] = {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "in_chans": 3,
                               "hidden_size": hidden, "patch_size": 14, "spatial_merge_size": 2,
                               "spatial_patch_size": 14, "temporal_patch_size": 2}
    return config


def qwen25_vl(hidden, layers, heads, kv, inter, vocab, tie, max_window):
    config = {"architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl", **TOKEN_IDS,
              **text_fields(hidden, layers, heads, kv, inter, vocab, tie, 128000, max_window)}
    config["vision_config"] = {"depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420,
                               "num_heads": 16, "in_chans": 3, "out_hidden_size": hidden, "patch_size": 14,
                               "spatial_merge_size": 2, "spatial_patch_size": 14, "window_size": 112,
                               "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2,
                               "temporal_patch_size": 2}
    return config


HUB = {
    "qwen2_vl_2b_instruct": (Qwen2VLConfig, qwen2_vl(1536, 28, 12, 2, 8960, 151936, True)),
    "qwen2_vl_7b_instruct": (Qwen2VLConfig, qwen2_vl(3584, 28, 28, 4, 18944, 152064, False)),
    "qwen2_5_vl_3b_instruct": (Qwen2_5_VLConfig, qwen25_vl(2048, 36, 16, 2, 11008, 151936, True, 70)),
    "qwen2_5_vl_7b_instruct": (Qwen2_5_VLConfig, qwen25_vl(3584, 28, 28, 4, 18944, 152064, False, 28)),
}


def transformers_view(config_class, folder):
    """The values transformers reads, under the Swift API's unambiguous names."""
    c = config_class.from_pretrained(folder)
    t, v = c.text_config, c.vision_config
    rope = getattr(t, "rope_parameters", None) or getattr(t, "rope_scaling", None) or {}
    qwen2 = c.model_type == "qwen2_vl"
    view = {
        "family": c.model_type,
        "text": {"hidden_size": t.hidden_size, "intermediate_size": t.intermediate_size,
                 "num_hidden_layers": t.num_hidden_layers, "num_attention_heads": t.num_attention_heads,
                 "num_key_value_heads": t.num_key_value_heads, "vocab_size": t.vocab_size,
                 "rms_norm_eps": t.rms_norm_eps, "rope_theta": rope.get("rope_theta", getattr(t, "rope_theta", None)),
                 "mrope_section": rope["mrope_section"], "max_position_embeddings": t.max_position_embeddings,
                 "hidden_act": t.hidden_act},
        "vision": {"depth": v.depth, "embed_dim": v.embed_dim if qwen2 else v.hidden_size,
                   "num_heads": v.num_heads,
                   "intermediate_size": int(v.embed_dim * v.mlp_ratio) if qwen2 else v.intermediate_size,
                   "out_hidden_size": v.hidden_size if qwen2 else v.out_hidden_size,
                   "hidden_act": v.hidden_act, "patch_size": v.patch_size,
                   "temporal_patch_size": v.temporal_patch_size, "spatial_merge_size": v.spatial_merge_size},
        "tie_word_embeddings": c.tie_word_embeddings,
        "image_token_id": c.image_token_id, "video_token_id": c.video_token_id,
        "vision_start_token_id": c.vision_start_token_id, "vision_end_token_id": c.vision_end_token_id,
    }
    if not qwen2:
        view["vision"].update({"window_size": v.window_size, "fullatt_block_indexes": v.fullatt_block_indexes,
                               "tokens_per_second": v.tokens_per_second})
    return view


def write_json(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def make_configs():
    expected = {"transformers_version": transformers.__version__}
    for name, (config_class, hub) in HUB.items():
        hub_path = OUT / "configs" / f"{name}.hub4.json"
        write_json(hub_path, hub)
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "config.json").write_text(json.dumps(hub))
            expected[f"{name}.hub4.json"] = transformers_view(config_class, folder)
            config_class.from_pretrained(folder).save_pretrained(folder)
            saved = json.loads((Path(folder) / "config.json").read_text())
        saved["text_config"].pop("layer_types", None)  # 28-36 repeated "full_attention": noise
        write_json(OUT / "configs" / f"{name}.tf5.json", saved)
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "config.json").write_text(json.dumps(saved))
            expected[f"{name}.tf5.json"] = transformers_view(config_class, folder)
    write_json(OUT / "configs" / "expected.json", expected)


CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def make_processors():
    hub = {"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2,
           "merge_size": 2, "image_mean": CLIP_MEAN, "image_std": CLIP_STD,
           "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor"}
    size_only = {"size": {"shortest_edge": 200704, "longest_edge": 1003520}, "patch_size": 14,
                 "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5, 0.5, 0.5],
                 "image_std": [0.5, 0.5, 0.5], "resample": 2, "do_resize": False,
                 "image_processor_type": "Qwen2VLImageProcessorFast"}
    both = {**hub, "size": {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 1280}, "max_pixels": 2000000}
    nested_inner = Qwen2VLImageProcessorPil(size={"shortest_edge": 65536, "longest_edge": 4194304}).to_dict()
    nested = {"image_processor": nested_inner, "processor_class": "Qwen2_5_VLProcessor"}
    files = {"preprocessor_hub.json": hub, "preprocessor_size_only.json": size_only,
             "preprocessor_both_spellings.json": both, "processor_config_v5.json": nested,
             "preprocessor_empty.json": {}}
    expected = {}
    for name, content in files.items():
        write_json(OUT / "processors" / name, content)
        settings = content.get("image_processor", content)
        kwargs = {k: v for k, v in settings.items() if k not in ("image_processor_type", "processor_class")}
        p = Qwen2VLImageProcessorPil(**kwargs)
        expected[name] = {"min_pixels": p.size.shortest_edge, "max_pixels": p.size.longest_edge,
                          "patch_size": p.patch_size, "temporal_patch_size": p.temporal_patch_size,
                          "merge_size": p.merge_size, "image_mean": list(p.image_mean),
                          "image_std": list(p.image_std), "rescale_factor": p.rescale_factor,
                          "resample": int(p.resample), "do_resize": p.do_resize}
    write_json(OUT / "processors" / "expected.json", expected)


def make_smart_resize():
    rng = random.Random(1234)
    limits = [(3136, 12845056), (3136, 1003520), (256 * 28 * 28, 1280 * 28 * 28), (3136, 3136 * 4)]
    sizes = [(448, 448), (1080, 1920), (70, 70), (98, 42), (28, 28), (27, 27), (10, 20), (1, 1), (1, 200),
             (1, 201), (5600, 28), (28, 5601), (12, 2400), (3000, 4000), (4000, 3000), (14, 14), (42, 42),
             (56, 56), (84, 84), (15000, 15000), (99999, 500)]
    sizes += [(rng.randint(1, 4096), rng.randint(1, 4096)) for _ in range(260)]
    sizes += [(rng.randint(1, 60), rng.randint(1, 60)) for _ in range(60)]
    sizes += [(28 * rng.randint(1, 150) + rng.choice([0, 14, -14]), 28 * rng.randint(1, 150) + 14) for _ in range(60)]
    cases = []
    for index, (h, w) in enumerate(sizes):
        for min_pixels, max_pixels in ([limits[index % len(limits)]] if index >= 21 else limits):
            case = {"height": h, "width": w, "min_pixels": min_pixels, "max_pixels": max_pixels}
            try:
                case["result"] = list(smart_resize(h, w, factor=28, min_pixels=min_pixels, max_pixels=max_pixels))
            except ValueError as error:
                case["error"] = str(error)[:60]
            cases.append(case)
    (OUT / "smart_resize.json").write_text(json.dumps(
        {"transformers_version": transformers.__version__, "factor": 28, "cases": cases}, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    make_configs()
    make_processors()
    make_smart_resize()
    print("wrote", OUT)
