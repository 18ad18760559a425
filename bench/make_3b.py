# A full-size random-weight Qwen-VL model folder made and saved by transformers on the GPU (its own
# init), from a config in bench/configs/.   usage: python3 bench/make_3b.py FOLDER [CONFIG_NAME]
import json, os, sys
import torch
from transformers import AutoConfig, AutoModelForImageTextToText

folder = sys.argv[1]
name = sys.argv[2] if len(sys.argv) > 2 else "qwen2_5_vl_3b"
here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(folder, exist_ok=True)
with open(os.path.join(here, "configs", f"{name}.json")) as f:
    json.dump(json.load(f), open(os.path.join(folder, "config.json"), "w"))
torch.manual_seed(0)
with torch.device("cuda"):
    model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(folder), dtype=torch.bfloat16)
model.save_pretrained(folder)
