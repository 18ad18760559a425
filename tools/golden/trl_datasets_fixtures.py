#!/usr/bin/env python3
"""Writes TRL / Hugging Face and EasyR1 fixtures of Tests/DatasetsTests with the `datasets` library itself,
so the loader is checked against the files users actually have.

Requirements: pip install datasets==5.2.0 pyarrow==26.0.1 pillow==13.0.0
Run from the repository root: python3 tools/golden/trl_datasets_fixtures.py

Outputs (small; the images are a few pixels):
  Fixtures/trl_chat/train.parquet   conversational: prompt (chat messages with image/text parts), image (Image
                                    feature), solution, difficulty; written by Dataset.to_parquet
  Fixtures/trl_saved/               save_to_disk folder: standard prompt string, image (Image feature), solution
  Fixtures/easyr1/train.parquet     EasyR1: images (list of Image), problem with <image> markers, answer
  Fixtures/trl_expected.json        what the tests compare against: kind, system turn, rendered prompt,
                                    image sizes and the reward fields of every record
"""
import io
import json
import os
import shutil

import datasets
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "DatasetsTests", "Fixtures")


def png(width, height, color):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def parts(*items):
    """Message content as TRL writes it: a list of {type, text} parts (text is null for images)."""
    return [{"type": "image", "text": None} if item is None else {"type": "text", "text": item} for item in items]


def trl_chat():
    rows = [
        ("Answer with a number.", (6, 4, (255, 0, 0)), ["How many red squares?"], "2", 1),
        (None, (3, 5, (0, 0, 255)), ["What color is it?"], "blue", 2),
        ("Be brief.", (4, 4, (0, 255, 0)), ["Name the color", " of this image."], "green", 3),
    ]
    prompts = []
    for system, _, texts, _, _ in rows:
        messages = [{"role": "system", "content": parts(system)}] if system else []
        messages.append({"role": "user", "content": parts(None, *texts)})
        prompts.append(messages)
    features = datasets.Features({
        "prompt": [{"role": datasets.Value("string"),
                    "content": [{"type": datasets.Value("string"), "text": datasets.Value("string")}]}],
        "image": datasets.Image(),
        "solution": datasets.Value("string"),
        "difficulty": datasets.Value("int64"),
    })
    dataset = datasets.Dataset.from_dict({
        "prompt": prompts,
        "image": [png(*row[1]) for row in rows],
        "solution": [row[3] for row in rows],
        "difficulty": [row[4] for row in rows],
    }, features=features)
    folder = os.path.join(ROOT, "trl_chat")
    os.makedirs(folder, exist_ok=True)
    dataset.to_parquet(os.path.join(folder, "train.parquet"))
    return [{"kind": "chat", "system": system, "prompt": "<image>" + "".join(texts),
             "images": [[size[0], size[1]]], "fields": {"solution": solution, "difficulty": difficulty}}
            for system, size, texts, solution, difficulty in rows]


def trl_saved():
    rows = [
        ("Describe the image.", (5, 3, (10, 20, 30)), "dark"),
        ("Is it bright?", (2, 7, (250, 250, 250)), "yes"),
    ]
    features = datasets.Features({
        "prompt": datasets.Value("string"), "image": datasets.Image(), "solution": datasets.Value("string"),
    })
    dataset = datasets.Dataset.from_dict({
        "prompt": [row[0] for row in rows],
        "image": [png(*row[1]) for row in rows],
        "solution": [row[2] for row in rows],
    }, features=features)
    folder = os.path.join(ROOT, "trl_saved")
    shutil.rmtree(folder, ignore_errors=True)
    dataset.save_to_disk(folder)
    return [{"kind": "prompt", "system": None, "prompt": "<image>" + text, "images": [[size[0], size[1]]],
             "fields": {"solution": solution}} for text, size, solution in rows]


def easyr1():
    rows = [
        ("<image>What is 1 + 2?", [(4, 3, (1, 2, 3))], "3"),
        ("Compare <image> with <image>. Which is taller? Answer 1 or 2.", [(2, 2, (0, 0, 0)), (2, 6, (9, 9, 9))], "2"),
    ]
    features = datasets.Features({
        "images": datasets.Sequence(datasets.Image()), "problem": datasets.Value("string"),
        "answer": datasets.Value("string"),
    })
    dataset = datasets.Dataset.from_dict({
        "images": [[png(*size) for size in row[1]] for row in rows],
        "problem": [row[0] for row in rows],
        "answer": [row[2] for row in rows],
    }, features=features)
    folder = os.path.join(ROOT, "easyr1")
    os.makedirs(folder, exist_ok=True)
    dataset.to_parquet(os.path.join(folder, "train.parquet"))
    return [{"kind": "prompt", "system": None, "prompt": problem, "images": [[w, h] for (w, h, _) in sizes],
             "fields": {"solution": answer, "answer": answer}} for problem, sizes, answer in rows]


def main():
    expected = {"trl_chat": trl_chat(), "trl_saved": trl_saved(), "easyr1": easyr1(),
                "versions": {"datasets": datasets.__version__}}
    with open(os.path.join(ROOT, "trl_expected.json"), "w") as f:
        json.dump(expected, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
