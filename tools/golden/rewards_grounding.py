#!/usr/bin/env python3
"""Golden values for the grounding / IoU rewards (docs/reward-definitions.md), computed independently with
numpy and scipy's linear_sum_assignment.  Requirements: numpy, scipy.
Writes Tests/RewardsTests/Fixtures/grounding_golden.json (deterministic)."""
import json, math, os, random
import numpy as np
from scipy.optimize import linear_sum_assignment

ALPHA = 0.5

def norm(b):
    x1, y1, x2, y2 = b
    return [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]

def sig(b):
    return max(ALPHA * (b[2] - b[0]), 0.5), max(ALPHA * (b[3] - b[1]), 0.5)

def center(b):
    return np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])

def g_point(p, g):
    sx, sy = sig(g)
    d = center(p) - center(g)
    return math.exp(-0.5 * (d[0] ** 2 / sx ** 2 + d[1] ** 2 / sy ** 2))

def g_plane(p, g):
    Sp = np.diag(np.array(sig(p)) ** 2)
    Sg = np.diag(np.array(sig(g)) ** 2)
    S = (Sp + Sg) / 2
    d = center(p) - center(g)
    D = d @ np.linalg.inv(S) @ d / 8 + 0.5 * math.log(np.linalg.det(S) / math.sqrt(np.linalg.det(Sp) * np.linalg.det(Sg)))
    return math.exp(-D)

def iou(a, b, inclusive=False):
    e = 1.0 if inclusive else 0.0
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + e)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + e)
    inter = iw * ih
    union = (a[2] - a[0] + e) * (a[3] - a[1] + e) + (b[2] - b[0] + e) * (b[3] - b[1] + e) - inter
    return inter / union if union > 0 else (1.0 if a == b else 0.0)

def multi(pred, gt, fn, thr=0.5):
    labels = set(pred) | set(gt)
    if not labels:
        return 1.0
    total = 0.0
    for lab in labels:
        P, G = pred.get(lab, []), gt.get(lab, [])
        if not P and not G:
            total += 1; continue
        if not P or not G:
            continue
        ious = np.array([[iou(p, g) for g in G] for p in P])
        r, c = linear_sum_assignment(1 - ious)
        s = sum(fn(P[i], G[j]) for i, j in zip(r, c) if ious[i, j] >= thr)
        total += 2 * s / (len(P) + len(G))
    return total / len(labels)

rng = random.Random(1234)

def rbox(w=640, h=480, degenerate=False):
    x1, y1 = rng.uniform(0, w - 20), rng.uniform(0, h - 20)
    bw = 0 if degenerate else rng.uniform(1, 200)
    bh = rng.uniform(0, 150)
    return [round(x1, 1), round(y1, 1), round(min(w, x1 + bw), 1), round(min(h, y1 + bh), 1)]

def jitter(b, amount):
    return [round(v + rng.uniform(-amount, amount), 1) for v in b]

single = []
for k in range(40):
    g = rbox(degenerate=(k % 10 == 3))
    p = jitter(g, [2, 10, 40, 120][k % 4])
    if k % 7 == 5:
        p = [p[2], p[3], p[0], p[1]]  # written backwards: reordered before use
    pn, gn = norm(p), norm(g)
    single.append({"pred": p, "gt": g, "gaussian_point": g_point(pn, gn), "gaussian_plane": g_plane(pn, gn),
                   "iou": iou(pn, gn), "iou_inclusive": iou(pn, gn, True)})

multis = []
for k in range(25):
    gt, pred = {}, {}
    for lab in ["0", "1", "2"][: 1 + k % 3]:
        gt[lab] = [rbox() for _ in range(rng.randint(0, 4))]
        pred[lab] = [jitter(b, [3, 15, 60][k % 3]) for b in gt[lab] if rng.random() < 0.8]
        pred[lab] += [rbox() for _ in range(rng.randint(0, 1))]
        rng.shuffle(pred[lab])
    if k % 5 == 4:
        pred["7"] = [rbox()]
    gtn = {l: [norm(b) for b in bs] for l, bs in gt.items()}
    pn = {l: [norm(b) for b in bs] for l, bs in pred.items()}
    multis.append({"pred": pred, "gt": gt, "multi_gaussian_point": multi(pn, gtn, g_point),
                   "multi_gaussian_plane": multi(pn, gtn, g_plane)})

out = os.path.join(os.path.dirname(__file__), "../../Tests/RewardsTests/Fixtures/grounding_golden.json")
with open(out, "w") as f:
    json.dump({"single": single, "multi": multis}, f, indent=1, sort_keys=True)
