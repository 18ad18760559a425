#!/usr/bin/env python3
"""Golden values for COCO RLE masks from pycocotools: compressed strings, areas, IoU, polygons.
Requirements: numpy, pycocotools.  Writes Tests/RewardsTests/Fixtures/rle_golden.json."""
import json, os, random
import numpy as np
from pycocotools import mask as M

rng = random.Random(99)
np_rng = np.random.RandomState(5)

def counts_list(binary):
    flat = binary.flatten(order="F")
    counts, cur, run = [], 0, 0
    for v in flat:
        if v != cur:
            counts.append(run); run = 0; cur = v
        run += 1
    counts.append(run)
    return counts

masks = []
for k in range(30):
    h, w = rng.randint(1, 40), rng.randint(1, 40)
    kind = k % 3
    if kind == 0:
        m = (np_rng.rand(h, w) < 0.5).astype(np.uint8)
    elif kind == 1:
        m = np.zeros((h, w), np.uint8)
        m[rng.randint(0, h - 1):, rng.randint(0, w - 1):] = 1
    else:
        m = np.zeros((h, w), np.uint8) if k % 2 else np.ones((h, w), np.uint8)
    rle = M.encode(np.asfortranarray(m))
    masks.append({"size": [h, w], "counts_list": counts_list(m), "compressed": rle["counts"].decode(),
                  "area": int(M.area(rle)), "pixels": "".join(str(int(v)) for v in m.flatten(order="F"))})

pairs = []
for k in range(30):
    h, w = rng.randint(5, 60), rng.randint(5, 60)
    a = (np_rng.rand(h, w) < rng.random()).astype(np.uint8)
    b = (np_rng.rand(h, w) < rng.random()).astype(np.uint8)
    ra, rb = M.encode(np.asfortranarray(a)), M.encode(np.asfortranarray(b))
    iou = float(M.iou([ra], [rb], [0])[0][0])
    union = M.merge([ra, rb], intersect=False)
    pairs.append({"size": [h, w], "a": ra["counts"].decode(), "b": rb["counts"].decode(), "iou": iou,
                  "union": union["counts"].decode()})

polygons = []
for k in range(30):
    h, w = rng.randint(10, 120), rng.randint(10, 120)
    n = rng.randint(3, 8)
    polys = []
    for _ in range(1 + (k % 4 == 0)):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(2, max(w, h) / 2)
        angles = sorted(rng.uniform(0, 6.283) for _ in range(n))
        poly = []
        for t in angles:
            rr = r * rng.uniform(0.4, 1.0)
            poly += [round(cx + rr * np.cos(t), 2), round(cy + rr * np.sin(t), 2)]
        polys.append(poly)
    rles = M.frPyObjects(polys, h, w)
    rle = M.merge(rles)
    polygons.append({"size": [h, w], "polygons": polys, "compressed": rle["counts"].decode(), "area": int(M.area(rle))})

out = os.path.join(os.path.dirname(__file__), "../../Tests/RewardsTests/Fixtures/rle_golden.json")
with open(out, "w") as f:
    json.dump({"masks": masks, "pairs": pairs, "polygons": polygons}, f, sort_keys=True)
