#!/usr/bin/env python3
"""Writes the columnar fixtures of Tests/DatasetsTests (Hugging Face storage layouts, made by pyarrow).

Requirements: pip install pyarrow==26.0.1 pillow==13.0.0
Run from the repository root: python3 tools/golden/datasets_fixtures.py

Outputs (deterministic; small):
  Fixtures/hf_clevr/data/train-0000{0,1}-of-00002.parquet   R1-V QA: image {bytes, path}, problem, solution
  Fixtures/aokvqa/{validation,test}-00000-of-00001.parquet   A-OKVQA (stringified direct_answers, null test labels)
  Fixtures/arrow_saved/                                       save_to_disk folder: region captioning rows
  Fixtures/columnar_expected.json                             what the tests compare against
"""
import io
import json
import os

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "DatasetsTests", "Fixtures")


def image_bytes(width, height, color, fmt="PNG"):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format=fmt)
    return buffer.getvalue()


IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def clevr():
    rows = [
        (8, 6, (255, 0, 0), "How many red cubes are there?", "<answer> 3 </answer>"),
        (10, 4, (0, 255, 0), "How many spheres are there?", "<answer> 1 </answer>"),
        (5, 7, (0, 0, 255), "How many items are there?", "<answer> 7 </answer>"),
        (6, 6, (255, 255, 0), "How many cylinders are there?", "<answer> 0 </answer>"),
        (9, 3, (0, 255, 255), "How many balls are there?", "<answer> 2 </answer>"),
    ]
    folder = os.path.join(ROOT, "hf_clevr", "data")
    os.makedirs(folder, exist_ok=True)
    shards = [rows[:3], rows[3:]]
    expected = []
    for shard_index, shard in enumerate(shards):
        images = [{"bytes": image_bytes(w, h, c, "PNG" if i % 2 == 0 else "JPEG"), "path": f"clevr_{shard_index}_{i}.png"}
                  for i, (w, h, c, _, _) in enumerate(shard)]
        table = pa.table({
            "image": pa.array(images, type=IMAGE_TYPE),
            "problem": [r[3] for r in shard],
            "solution": [r[4] for r in shard],
        })
        path = os.path.join(folder, f"train-0000{shard_index}-of-00002.parquet")
        pq.write_table(table, path, row_group_size=2, compression="snappy")
        expected += [{"width": r[0], "height": r[1], "problem": r[3], "solution": r[4]} for r in shard]
    return expected


def aokvqa():
    folder = os.path.join(ROOT, "aokvqa")
    os.makedirs(folder, exist_ok=True)
    validation = [
        ("q1", "What is the man holding?", ["bat", "ball", "glove", "hat"], 0,
         "['bat', 'bat', 'baseball bat', \"it's a bat\"]"),
        ("q2", "What color is the sky?", ["green", "blue", "red", "black"], 1, "['blue', 'blue', 'light blue']"),
        ("q3", "Where is this?", ["beach", "city", "farm", "forest"], 2, "['farm']"),
    ]
    table = pa.table({
        "question_id": [r[0] for r in validation],
        "image": pa.array([{"bytes": image_bytes(12, 8, (i * 60, 100, 100)), "path": None}
                           for i in range(len(validation))], type=IMAGE_TYPE),
        "question": [r[1] for r in validation],
        "choices": pa.array([r[2] for r in validation], type=pa.list_(pa.string())),
        "correct_choice_idx": pa.array([r[3] for r in validation], type=pa.int64()),
        "direct_answers": [r[4] for r in validation],
        "difficult_direct_answer": [False, False, True],
        "rationales": pa.array([["r1"], ["r2"], ["r3"]], type=pa.list_(pa.string())),
    })
    pq.write_table(table, os.path.join(folder, "validation-00000-of-00001.parquet"), compression="zstd")
    test = pa.table({
        "question_id": ["t1"],
        "image": pa.array([{"bytes": image_bytes(4, 4, (9, 9, 9)), "path": None}], type=IMAGE_TYPE),
        "question": ["What is it?"],
        "choices": pa.array([["a", "b", "c", "d"]], type=pa.list_(pa.string())),
        "correct_choice_idx": pa.array([None], type=pa.int64()),
        "direct_answers": pa.array([None], type=pa.string()),
        "difficult_direct_answer": [False],
        "rationales": pa.array([None], type=pa.list_(pa.string())),
    })
    pq.write_table(test, os.path.join(folder, "test-00000-of-00001.parquet"), compression="gzip")
    return [{"question_id": r[0], "choices": r[2], "label_idx": r[3],
             "direct_answers": eval(r[4])} for r in validation]  # noqa: S307 (literal lists written above)


def arrow_saved():
    folder = os.path.join(ROOT, "arrow_saved")
    os.makedirs(folder, exist_ok=True)
    mask_type = pa.struct([("size", pa.list_(pa.int64())), ("counts", pa.string())])
    turn_type = pa.struct([("from", pa.string()), ("value", pa.string())])
    rows = [
        (16, 12, "0c1b2", "A small red square in the corner."),
        (20, 10, "3a4b", "A blue circle."),
        (7, 9, "00", "Nothing much."),
    ]
    table = pa.table({
        "image": pa.array([{"bytes": image_bytes(w, h, (200, 10, 10)), "path": f"gar_{i}.png"}
                           for i, (w, h, _, _) in enumerate(rows)], type=IMAGE_TYPE),
        "mask_rle": pa.array([{"size": [h, w], "counts": c} for (w, h, c, _) in rows], type=mask_type),
        "conversations": pa.array([[{"from": "human", "value": "<image>\nDescribe the region."},
                                    {"from": "gpt", "value": caption}] for (_, _, _, caption) in rows],
                                  type=pa.list_(turn_type)),
    })
    path = os.path.join(folder, "data-00000-of-00001.arrow")
    with pa.OSFile(path, "wb") as sink, ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=2):
            writer.write_batch(batch)
    with open(os.path.join(folder, "state.json"), "w") as f:
        json.dump({"_data_files": [{"filename": "data-00000-of-00001.arrow"}], "_fingerprint": "fixture",
                   "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
                   "_output_all_columns": False, "_split": "train"}, f, indent=2)
    with open(os.path.join(folder, "dataset_info.json"), "w") as f:
        json.dump({"citation": "", "description": "region captioning fixture", "features": {}}, f, indent=2)
    return [{"width": w, "height": h, "counts": c, "caption": caption} for (w, h, c, caption) in rows]


def main():
    expected = {"clevr": clevr(), "aokvqa": aokvqa(), "arrow": arrow_saved()}
    with open(os.path.join(ROOT, "columnar_expected.json"), "w") as f:
        json.dump(expected, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
