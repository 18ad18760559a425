#!/usr/bin/env python3
"""A tiny region-caption dataset in the Grasp-Any-Region (GAR) release layout, written by the
`datasets` library, for the cycle trainer's data tests.

GAR ships its fine-grained region captions as Arrow files written by `datasets` (`*.arrow` inside
`Fine-Grained-Dataset-Part*` folders). Each row holds `image` (an Image feature: {bytes, path}),
`mask_rle` (COCO RLE: {size: [h, w], counts: compressed string}), `conversations`
([{from, value}], the caption in the `gpt` turn) and `catagory` (spelled so in the release). This
script writes two such rows with `datasets` (its own Arrow writer, as the release was made) and
the masks with pycocotools, so vlmrl reads the layout as written, not as we would write it.

Requirements: pip install datasets pyarrow pycocotools numpy pillow   (no network)
Run from the repository root:  python3 tools/golden/region_caption_layouts.py
Output: Tests/TrainingTests/Fixtures/gar_layout/data-00000-of-00001.arrow and
        Tests/TrainingTests/Fixtures/gar_layout/expected.json (each row's mask area and box).
"""
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util
from datasets import Dataset, Features, Image as ImageFeature, Sequence, Value
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "TrainingTests" / "Fixtures" / "gar_layout"


def row(width, height, box, color, caption):
    pixels = np.full((height, width, 3), 200, dtype=np.uint8)
    x1, y1, x2, y2 = box
    pixels[y1:y2, x1:x2] = color
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[y1:y2, x1:x2] = 1
    rle = mask_util.encode(np.asfortranarray(mask))
    return {
        "image": {"bytes": buffer.getvalue(), "path": None},
        "mask_rle": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")},
        "conversations": [{"from": "human", "value": "<image>\nDescribe the masked region."},
                          {"from": "gpt", "value": caption}],
        "catagory": "shape",
    }, {"area": int(mask.sum()), "box": [x1, y1, x2, y2], "caption": caption}


def main():
    rows, expected = zip(
        row(32, 24, (4, 6, 14, 18), (220, 40, 40), "A red square on the left."),
        row(40, 30, (20, 2, 36, 12), (40, 80, 220), "A blue rectangle at the top right."),
    )
    features = Features({
        "image": ImageFeature(),
        "mask_rle": {"size": Sequence(Value("int64")), "counts": Value("string")},
        "conversations": [{"from": Value("string"), "value": Value("string")}],
        "catagory": Value("string"),
    })
    dataset = Dataset.from_list(list(rows), features=features)
    shutil.rmtree(OUT, ignore_errors=True)
    dataset.save_to_disk(str(OUT))
    # The release ships the Arrow files alone: keep only them (and what we expect from them).
    for extra in ("dataset_info.json", "state.json"):
        (OUT / extra).unlink(missing_ok=True)
    (OUT / "expected.json").write_text(json.dumps(list(expected), indent=1) + "\n")
    print(f"wrote {OUT}: {len(dataset)} rows")


if __name__ == "__main__":
    main()
