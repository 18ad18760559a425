#!/usr/bin/env bash
# Per-kernel GPU times of the rollout engine's decode (Nsight Compute, clocks left alone): 64
# sequences (2 prompts x 32 samples), $NEW_TOKENS (default 3) new tokens, no CUDA graphs so that ncu sees each kernel.
#   usage: [NEW_TOKENS=N] [PROMPTS=2 SAMPLES=32] [NCU_CACHE=none] [SKIP_MODEL=1] bench/rollout_profile.sh DIST_DIR WORK_DIR
# (NCU_CACHE=none keeps the caches warm between kernels, as in a real run; by default ncu flushes them)
set -euo pipefail
dist=$1; work=$2; here=$(cd "$(dirname "$0")" && pwd)
folder=$work/qwen2_5_vl_3b_profile
mkdir -p "$folder"
[ -n "${SKIP_MODEL:-}" ] || python3 "$here/make_3b.py" "$folder"
ncu --clock-control none ${NCU_CACHE:+--cache-control $NCU_CACHE} --csv --page raw --metrics gpu__time_duration.sum \
  "$dist/vlmrl" bench rollout --model "$folder" --prompts ${PROMPTS:-2} --samples ${SAMPLES:-32} --new-tokens ${NEW_TOKENS:-3} \
  --no-cuda-graphs > "$work/ncu.csv"
python3 - "$work/ncu.csv" <<'PY'
import csv, collections, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if r]
header = next(i for i, r in enumerate(rows) if "Kernel Name" in r)
names = rows[header]
k, t = names.index("Kernel Name"), names.index("gpu__time_duration.sum")
total, count = collections.Counter(), collections.Counter()
for r in rows[header + 2:]:
    try:
        value = float(r[t].replace(",", ""))  # ncu writes thousands separators
    except (ValueError, IndexError):
        continue
    name = r[k][:90]
    total[name] += value
    count[name] += 1
grand = sum(total.values())
print(f"{sum(count.values())} kernels, {grand / 1e6:.2f} ms of kernel time (all phases)")
for name, value in total.most_common(int(__import__("os").environ.get("TOP", "25"))):
    print(f"{value / 1e6:8.3f} ms  {count[name]:6d}x  {value / count[name] / 1e3:8.1f} us  {name}")
PY
