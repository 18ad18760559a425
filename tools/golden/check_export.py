#!/usr/bin/env python3
"""Checks that a vlmrl final export loads in transformers and gives vlmrl's logits.

Requirements: pip install torch transformers safetensors

  python3 tools/golden/check_export.py EXPORT_DIR [LOGITS_FILE]

EXPORT_DIR is a run's `final/` folder (Hugging Face layout). LOGITS_FILE (default
EXPORT_DIR/vlmrl_logits.safetensors) holds `input_ids` and the `logits` vlmrl computed for them.
To make both from the test suite:

  VLMRL_EXPORT_CHECK_DIR=/tmp/vlmrl-export VLMRL_ONLY=TrainingTests \\
    swift test --scratch-path .build-train --filter seedConfigRunsTwoSteps
  python3 tools/golden/check_export.py /tmp/vlmrl-export

Exits 1 when the relative error max|a - b| / max|b| is above 1e-4 (float32).
"""
import os
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        raise SystemExit(2)
    export = sys.argv[1]
    logits_file = sys.argv[2] if len(sys.argv) > 2 else os.path.join(export, "vlmrl_logits.safetensors")
    config = AutoConfig.from_pretrained(export)
    cls = Qwen2_5_VLForConditionalGeneration if config.model_type == "qwen2_5_vl" else Qwen2VLForConditionalGeneration
    model = cls.from_pretrained(export, dtype=torch.float32).eval()
    data = load_file(logits_file)
    with torch.no_grad():
        logits = model(input_ids=data["input_ids"].reshape(1, -1).long()).logits[0]
    error = ((logits - data["logits"]).abs().max() / data["logits"].abs().max()).item()
    print(f"{export}: transformers {cls.__name__} logits vs vlmrl: max relative error {error:.3e}")
    raise SystemExit(0 if error <= 1e-4 else 1)


if __name__ == "__main__":
    main()
