#!/usr/bin/env bash
# Foundation check on a GPU machine: `vlmrl doctor` from a `make dist` build against that machine's
# torch 2.11, and PyTorch's own bf16 matmul as the peer, in one run. Prints both and the ratio.
#   usage: bench/foundation.sh [DIST_DIR]   (DIST_DIR holds vlmrl, libvlmrl_cuda.so, lib/)
set -uo pipefail
dist=${1:-dist}
here=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH="$("$here/../scripts/torch-env"):$dist/lib"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
missing=$(ldd "$dist/vlmrl" | grep 'not found')
[ -n "$missing" ] && { echo "missing libraries: $missing"; exit 1; }
"$dist/vlmrl" doctor | tee /tmp/doctor.txt
status=${PIPESTATUS[0]}
peer=$(python3 "$here/matmul_peer.py" 8192)
echo "$peer"
ours=$(grep -oE 'bfloat16 matmul 8192x8192x8192: [0-9.]+' /tmp/doctor.txt | awk '{print $NF}')
theirs=$(echo "$peer" | grep -oE '[0-9.]+ TFLOP/s' | awk '{print $1}')
[ -n "$ours" ] && [ -n "$theirs" ] && python3 -c "print(f'bf16 matmul 8192^3: vlmrl {$ours} TFLOP/s, torch {$theirs} TFLOP/s, ratio {$ours/$theirs:.3f}')"
exit $status
