#!/usr/bin/env python3
"""Golden fixtures for the Processor module: transformers' Qwen2-VL image processor (torchvision
backend, the class that `Qwen2VLImageProcessorFast` names) on small generated images.

Requirements: pip install torch torchvision transformers pillow numpy
  (written with torch 2.13.0+cpu, torchvision 0.28.0, transformers 5.23.0, Pillow 13.0.0, on an
  x86-64 CPU with AVX2/AVX-512; the processor runs on the CPU, as it does by default.)
Run from the repository root:  python3 tools/golden/processor_golden.py

Writes Tests/ProcessorTests/Fixtures/:
  <name>.png           the input image (RGB8)
  <name>.f32           transformers' pixel_values for it, float32 little-endian, row-major [N, 1176]
  <name>.float.rgb     for resized cases, the resized RGB8 (HWC) image from the float path below
  expected.json        settings, per image: size, resized size, image_grid_thw, token count,
                       pixel statistics; grid-only cases (sizes and pixel limits, including
                       per-call overrides, tiny images and the aspect-ratio error); versions;
                       and the measured differences of other resize paths (see below)
Output is deterministic for a given torch / torchvision / transformers.

The script also measures how far two other resize paths land from the CPU uint8 path that the
fixtures use (printed and stored under "resize_path_differences"):
  - "float_path": uint8 -> float32, antialiased bicubic, clamp to [0, 255], round, back to uint8,
    which is torchvision's path on CUDA tensors (and for uint8 on CPUs without native support);
  - "generic_cpu_kernel": the same uint8 kernel forced off the AVX2 code path (run in a
    subprocess with ATEN_CPU_CAPABILITY=default), as on CPUs without AVX2.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

# A CPU-only torch with a torchvision wheel built for CUDA cannot load torchvision's compiled ops;
# its import then fails registering fake kernels for ops that never loaded. Nothing here uses
# those ops (resize and normalize are plain torch), so define the two schemas it needs first.
try:
    import torchvision  # noqa: F401
except RuntimeError:
    _tv_stub = torch.library.Library("torchvision", "DEF")
    _tv_stub.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _tv_stub.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    for _name in [m for m in sys.modules if m.startswith("torchvision")]:
        del sys.modules[_name]
    import torchvision  # noqa: F401

import PIL
import transformers
from PIL import Image
from torchvision.transforms.v2 import functional as tvF
from transformers import Qwen2VLImageProcessorFast

OUT = os.path.join("Tests", "ProcessorTests", "Fixtures")
MIN_PIXELS = 4 * 28 * 28  # the checkpoints' min_pixels (3136)
MAX_PIXELS = 12 * 28 * 28  # small, so the fixtures stay small (9408)


def pattern(height, width, salt):
    """Integer-only pattern: a gradient, fine stripes, a checkerboard and a small noisy block, so
    every resample path (up, down, one axis) has edges to get wrong."""
    y, x = np.mgrid[0:height, 0:width].astype(np.int64)
    red = (x * 255 // max(width - 1, 1) + salt * 37) % 256
    green = ((x * x + 3 * y * y + salt * 11) // 7) % 256
    blue = np.where(((x // 3) + (y // 2)) % 2 == 0, 230, 20)
    image = np.stack([red, green, blue], axis=-1)
    hashed = (((x * 73856093) ^ (y * 19349663) ^ (salt * 83492791)) >> 5) & 255
    block = (slice(0, max(1, height // 3)), slice(0, max(1, width // 4)))
    image[block] = np.stack([hashed, 255 - hashed, hashed // 2], axis=-1)[block]
    return image.astype(np.uint8)


# name, height, width: what each exercises.
PIXEL_CASES = [
    ("identity_56x84", 56, 84),  # already multiples of 28 within the limits: no resize
    ("tiny_10x17", 10, 17),  # below the 28 px factor: upscaled to min_pixels (56x84)
    ("large_300x200", 300, 200),  # downscaled to max_pixels (112x56)
    ("wide_30x250", 30, 250),  # odd aspect ratio, rounded both ways (28x252)
    ("widthonly_56x66", 56, 66),  # only the width changes (56x56)
]

# name, height, width, min_pixels, max_pixels (None: the settings above, as a per-call override).
GRID_CASES = [
    ("one_pixel", 1, 1, None, None),
    ("just_below_factor", 27, 27, None, None),
    ("factor", 28, 28, None, None),
    ("bankers_70", 70, 70, None, None),
    ("bankers_98x126", 98, 126, None, None),
    ("tall_thin_120x1", 120, 1, None, None),  # ceil branch ends above max_pixels: not clamped again
    ("ratio_200", 1, 200, None, None),
    ("ratio_201", 1, 201, None, None),  # transformers raises
    ("hd_default_limits", 1080, 1920, 3136, 28 * 28 * 1280),
    ("hd_checkpoint_limits", 1080, 1920, 3136, 12845056),
    ("override_min_256_tokens", 100, 150, 256 * 28 * 28, 1280 * 28 * 28),
    ("override_max_16_tokens", 300, 200, 3136, 16 * 28 * 28),
    ("override_tight", 500, 333, 28 * 28, 28 * 28),
]


def make_processor():
    return Qwen2VLImageProcessorFast(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)


def run_processor(processor, image, min_pixels=None, max_pixels=None):
    kwargs = {}
    if min_pixels is not None:
        kwargs["size"] = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    return processor(images=[Image.fromarray(image)], return_tensors="pt", **kwargs)


def stats(values):
    return {"min": float(values.min()), "max": float(values.max()),
            "mean": float(values.double().mean()), "std": float(values.double().std())}


def pixel_fixtures(processor):
    cases = []
    for salt, (name, height, width) in enumerate(PIXEL_CASES):
        image = pattern(height, width, salt)
        Image.fromarray(image).save(os.path.join(OUT, f"{name}.png"), optimize=True)
        # Decode what was written, so the reference sees exactly the committed pixels.
        decoded = np.array(Image.open(os.path.join(OUT, f"{name}.png")).convert("RGB"))
        assert (decoded == image).all()
        result = run_processor(processor, decoded)
        values = result["pixel_values"].to(torch.float32).contiguous()
        grid = result["image_grid_thw"].tolist()[0]
        values.numpy().astype("<f4").tofile(os.path.join(OUT, f"{name}.f32"))
        cases.append({
            "name": name, "height": height, "width": width,
            "resized_height": grid[1] * 14, "resized_width": grid[2] * 14,
            "grid_thw": grid, "tokens": grid[0] * grid[1] * grid[2] // 4,
            "pixel_values_shape": list(values.shape), "stats": stats(values),
        })
        print(f"{name}: {height}x{width} -> grid {grid}, pixel_values {list(values.shape)}")
    return cases


def grid_fixtures(processor):
    cases = []
    for name, height, width, min_pixels, max_pixels in GRID_CASES:
        image = pattern(height, width, 0)
        case = {"name": name, "height": height, "width": width,
                "min_pixels": min_pixels if min_pixels is not None else MIN_PIXELS,
                "max_pixels": max_pixels if max_pixels is not None else MAX_PIXELS,
                "override": min_pixels is not None}
        try:
            result = run_processor(processor, image, min_pixels, max_pixels)
            grid = result["image_grid_thw"].tolist()[0]
            case.update({"grid_thw": grid, "resized_height": grid[1] * 14, "resized_width": grid[2] * 14,
                         "tokens": grid[0] * grid[1] * grid[2] // 4,
                         "rows": int(result["pixel_values"].shape[0])})
        except ValueError as error:
            case["error"] = str(error)
        print(f"{name}: {case.get('grid_thw', case.get('error'))}")
        cases.append(case)
    return cases


def float_path_resize(image_chw, height, width):
    """torchvision's path for uint8 on CUDA: float resize, clamp, round, back to uint8."""
    resized = torch.nn.functional.interpolate(image_chw[None].float(), size=[height, width], mode="bicubic",
                                              align_corners=False, antialias=True)
    return resized.clamp_(0, 255).round_().to(torch.uint8)[0]


def resized_uint8(case):
    """The uint8 image after HF's resize (CPU path), and after the float path, for one case."""
    image = torch.from_numpy(np.array(Image.open(os.path.join(OUT, f"{case['name']}.png")).convert("RGB")))
    chw = image.permute(2, 0, 1).contiguous()
    size = [case["resized_height"], case["resized_width"]]
    native = tvF.resize(chw, size, interpolation=tvF.InterpolationMode.BICUBIC, antialias=True)
    if size == list(chw.shape[1:]):
        return native, native
    return native, float_path_resize(chw, *size)


def measure_resize_paths(pixel_cases):
    """Largest uint8 level difference of the other resize paths from the fixtures' path, and the
    pixel_values difference that makes (one level is 1 / (255 * std) after normalization)."""
    std_min = min(0.26862954, 0.26130258, 0.27577711)
    with tempfile.TemporaryDirectory() as scratch:
        generic_file = os.path.join(scratch, "generic.npz")
        subprocess.run([sys.executable, __file__, "--save-resized", generic_file],
                       env={**os.environ, "ATEN_CPU_CAPABILITY": "default"}, check=True)
        generic = dict(np.load(generic_file))
    float_levels = generic_levels = 0
    for case in pixel_cases:
        native, float_path = resized_uint8(case)
        float_levels = max(float_levels, int((native.int() - float_path.int()).abs().max()))
        if list(native.shape[1:]) != [case["height"], case["width"]]:
            # The float path's resized image (HWC RGB8), for the Swift float-path test.
            float_path.permute(1, 2, 0).contiguous().numpy().tofile(os.path.join(OUT, f"{case['name']}.float.rgb"))
        other = torch.from_numpy(generic[case["name"]]).int()
        generic_levels = max(generic_levels, int((native.int() - other).abs().max()))

    def entry(levels):
        return {"max_levels": levels, "max_pixel_value_difference": levels / (255 * std_min)}
    return {"float_path": entry(float_levels), "generic_cpu_kernel": entry(generic_levels)}


def save_resized(path):
    """Subprocess mode: the CPU path's resized uint8 images of every pixel case, to `path`."""
    with open(os.path.join(OUT, "expected.json")) as handle:
        cases = json.load(handle)["pixel_cases"]
    np.savez(path, **{case["name"]: resized_uint8(case)[0].numpy() for case in cases})


def main():
    os.makedirs(OUT, exist_ok=True)
    processor = make_processor()
    pixel_cases = pixel_fixtures(processor)
    expected = {
        "processor_class": f"{type(processor).__module__}.{type(processor).__name__}",
        "called_as": "transformers.Qwen2VLImageProcessorFast(min_pixels=..., max_pixels=...), per-call "
                     "overrides as size={'shortest_edge': min_pixels, 'longest_edge': max_pixels}",
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "transformers": transformers.__version__, "pillow": PIL.__version__,
                     "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS,
        "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
        "pixel_cases": pixel_cases,
        "grid_cases": grid_fixtures(processor),
    }
    with open(os.path.join(OUT, "expected.json"), "w") as handle:
        json.dump(expected, handle, indent=1)
    expected["resize_path_differences"] = measure_resize_paths(pixel_cases)
    print("resize path differences:", expected["resize_path_differences"])
    with open(os.path.join(OUT, "expected.json"), "w") as handle:
        json.dump(expected, handle, indent=1)
        handle.write("\n")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--save-resized":
        save_resized(sys.argv[2])
    else:
        main()
