#!/usr/bin/env python3
"""Converts describe-anything (DAM / DLC-SDP) region captions to vlmrl's `region_caption` records.

The describe-anything release stores one image per row (`jpg`: encoded bytes) with its regions
packed in a Python pickle (`pickle`): a list of region dicts, or a dict holding such a list (under
`regions`, `items`, `objects`, `annotations` or `list`, or as its values), each region with
`caption` (text) and `mask_rle` (COCO RLE: {size: [h, w], counts}). vlmrl does not unpickle data
(a pickle can run code), so this one-time conversion runs in Python: only on files you trust.

Writes OUT/images/<row>.jpg and OUT/region_caption.jsonl, one record per region with a caption
and a mask:
  {"image": "images/000001.jpg", "mask_rle": {...}, "conversations": [
     {"from": "human", "value": "<image>\\nDescribe the masked region in detail."},
     {"from": "gpt", "value": CAPTION}]}
which `vlmrl data inspect` and job_type cycle read as region captioning (docs/cycle.md).

Requirements: pip install datasets   (no network: INPUT is local files)
Usage: python3 tools/convert_describe_anything.py INPUT OUT
  INPUT: a folder written by `save_to_disk`, or Parquet / Arrow files of the release (a folder of
  them, or one file).
"""
import json
import pickle
import sys
from pathlib import Path

from datasets import load_dataset, load_from_disk


def regions(meta):
    if isinstance(meta, list):
        return meta
    if isinstance(meta, dict):
        for key in ("regions", "items", "objects", "annotations", "list"):
            if isinstance(meta.get(key), list):
                return meta[key]
        values = list(meta.values())
        if values and all(isinstance(v, dict) for v in values):
            return values
    return []


def usable(region):
    mask = region.get("mask_rle") if isinstance(region, dict) else None
    caption = region.get("caption") if isinstance(region, dict) else None
    return isinstance(caption, str) and caption.strip() and isinstance(mask, dict) and "size" in mask and "counts" in mask


def open_rows(path):
    path = Path(path)
    if (path / "state.json").exists():
        return load_from_disk(str(path))
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in (".parquet", ".arrow"))
    if not files:
        sys.exit(f"{path}: no Parquet or Arrow files")
    kind = "parquet" if files[0].suffix == ".parquet" else "arrow"
    return load_dataset(kind, data_files=[str(f) for f in files], split="train")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rows, out = open_rows(sys.argv[1]), Path(sys.argv[2])
    (out / "images").mkdir(parents=True, exist_ok=True)
    written = skipped = 0
    with open(out / "region_caption.jsonl", "w") as records:
        for index, row in enumerate(rows):
            try:
                meta = pickle.loads(row["pickle"])
            except Exception as error:  # a row whose metadata cannot be read is counted, not fatal
                print(f"row {index}: unreadable pickle ({error})", file=sys.stderr)
                skipped += 1
                continue
            image = f"images/{index:06d}.jpg"
            found = [r for r in regions(meta) if usable(r)]
            skipped += len(regions(meta)) - len(found)
            if not found:
                continue
            (out / image).write_bytes(row["jpg"])
            for region in found:
                counts = region["mask_rle"]["counts"]
                mask = {"size": list(region["mask_rle"]["size"]),
                        "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}
                records.write(json.dumps({"image": image, "mask_rle": mask, "conversations": [
                    {"from": "human", "value": "<image>\nDescribe the masked region in detail."},
                    {"from": "gpt", "value": region["caption"].strip()}]}) + "\n")
                written += 1
    print(f"{out / 'region_caption.jsonl'}: {written} regions written, {skipped} skipped (no caption or mask)")


if __name__ == "__main__":
    main()
