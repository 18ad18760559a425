# Learning curves of bench/learning.sh: held-out reward (format + gaussian_point + gaussian_plane,
# and IoU) of vlmrl's and TRL's GRPO checkpoints against optimizer step and against training
# seconds (the sum of step times, checkpoint writing excluded), as a table and learning.png.
#   usage: python3 bench/learning_plot.py WORK_DIR STEPS SAVE
import json, os, sys

work, steps, save = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def held_out(name):
    scores = json.load(open(os.path.join(work, "eval", name, "eval.json")))
    return {m["name"]: float(m["value"]) for m in scores["overall"]}


vlmrl_times = [json.loads(l) for l in open(os.path.join(work, "vlmrl-grpo", "metrics.jsonl"))]
vlmrl_step = {r["step"]: r["step_time"] for r in vlmrl_times if "step_time" in r}
trl_times = json.load(open(os.path.join(work, "trl-grpo", "step_times.json")))
checkpoints = list(range(save, steps + 1, save))
sft = held_out("sft")
rows = []
for name in ("vlmrl", "trl"):
    rows.append((name, 0, 0.0, sft))
    for s in checkpoints:
        seconds = sum(vlmrl_step.get(i, 0) for i in range(1, s + 1)) if name == "vlmrl" else sum(trl_times[:s])
        rows.append((name, s, seconds, held_out(f"{name}-{s}")))


def total(r):
    return r.get("format", 0) + r.get("gaussian_point", 0) + r.get("gaussian_plane", 0)


print(f"{'trainer':8} {'step':>5} {'seconds':>9} {'reward':>7} {'iou':>7} {'point':>7} {'plane':>7}")
for name, s, sec, r in rows:
    print(f"{name:8} {s:5d} {sec:9.2f} {total(r):7.4f} {r.get('iou', 0):7.4f} {r.get('gaussian_point', 0):7.4f} "
          f"{r.get('gaussian_plane', 0):7.4f}")
vt = sum(vlmrl_step.get(i, 0) for i in range(1, steps + 1))
tt = sum(trl_times[:steps])
print(f"training seconds for {steps} steps: vlmrl {vt:.1f}, TRL {tt:.1f}, ratio {tt / vt:.1f}x")
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib missing: no learning.png")
    sys.exit(0)
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for name, color in (("vlmrl", "tab:red"), ("trl", "tab:blue")):
    pts = [(s, sec, total(r)) for n, s, sec, r in rows if n == name]
    axes[0].plot([p[0] for p in pts], [p[2] for p in pts], "o-", color=color, label=name)
    axes[1].plot([p[1] for p in pts], [p[2] for p in pts], "o-", color=color, label=name)
axes[0].set_xlabel("GRPO step")
axes[1].set_xlabel("training seconds")
axes[1].set_xscale("symlog", linthresh=1)
for ax in axes:
    ax.set_ylabel("held-out reward (format + point + plane)")
    ax.grid(alpha=0.3)
    ax.legend()
fig.suptitle("GRPO from the same SFT checkpoint: vlmrl vs TRL (held-out, greedy)")
fig.tight_layout()
fig.savefig(os.path.join(os.environ.get("OUT", work), "learning.png"), dpi=110)
print("wrote learning.png")
