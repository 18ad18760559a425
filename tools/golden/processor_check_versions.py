#!/usr/bin/env python3
"""Checks the committed processor fixtures against another torch / torchvision / transformers
install, on the CPU and (when present) on CUDA. Writes nothing; prints one JSON report.

Requirements: pip install torch torchvision transformers pillow numpy
Run from the repository root:  python3 tools/golden/processor_check_versions.py

Reported per pixel case (Tests/ProcessorTests/Fixtures, made by processor_golden.py):
  cpu_max_abs        transformers' pixel_values on the CPU here vs the fixture
  cuda_max_abs       the same with the processor run on CUDA (`device="cuda"`)
  cuda_vs_float_rgb  uint8 levels between torchvision's CUDA resize and the fixture's float-path
                     resize (`<name>.float.rgb`, float32 on the CPU, clamp, round)
"""
import json
import os

import numpy as np
import torch
from PIL import Image

# Imports torch, torchvision (working around a CPU torch with a CUDA torchvision wheel) and
# transformers the way the fixture script does.
from processor_golden import OUT as FIXTURES, tvF, torchvision, transformers, Qwen2VLImageProcessorFast


def main():
    with open(os.path.join(FIXTURES, "expected.json")) as handle:
        expected = json.load(handle)
    processor = Qwen2VLImageProcessorFast(min_pixels=expected["min_pixels"], max_pixels=expected["max_pixels"])
    cuda = torch.cuda.is_available()
    report = {"versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                           "transformers": transformers.__version__,
                           "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                           "cuda": torch.cuda.get_device_name(0) if cuda else None},
              "processor_class": type(processor).__name__, "cases": {}}
    for case in expected["pixel_cases"]:
        name = case["name"]
        image = Image.open(os.path.join(FIXTURES, f"{name}.png")).convert("RGB")
        reference = torch.from_numpy(np.fromfile(os.path.join(FIXTURES, f"{name}.f32"), dtype="<f4"))
        entry = {}
        cpu = processor(images=[image], return_tensors="pt")["pixel_values"].flatten()
        entry["cpu_max_abs"] = float((cpu - reference).abs().max())
        if cuda:
            on_gpu = processor(images=[image], return_tensors="pt", device="cuda")["pixel_values"]
            entry["cuda_max_abs"] = float((on_gpu.cpu().flatten() - reference).abs().max())
            float_rgb = os.path.join(FIXTURES, f"{name}.float.rgb")
            if os.path.exists(float_rgb):
                chw = torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous().cuda()
                size = [case["resized_height"], case["resized_width"]]
                resized = tvF.resize(chw, size, interpolation=tvF.InterpolationMode.BICUBIC, antialias=True)
                ours = resized.permute(1, 2, 0).cpu().numpy().astype(np.int32).flatten()
                theirs = np.fromfile(float_rgb, dtype=np.uint8).astype(np.int32)
                entry["cuda_vs_float_rgb"] = int(np.abs(ours - theirs).max())
        report["cases"][name] = entry
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
