# Peer figure for `vlmrl doctor`'s throughput line: PyTorch's own bf16 matmul, timed the same way
# (3 warm-up products, then 50 timed products between two device synchronisations).
import sys, time
import torch

n = int(sys.argv[1]) if len(sys.argv) > 1 else 8192
a = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
b = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
for _ in range(3):
    a @ b
torch.cuda.synchronize()
iterations = 50
start = time.perf_counter()
for _ in range(iterations):
    a @ b
torch.cuda.synchronize()
seconds = time.perf_counter() - start
print(f"torch {torch.__version__} bf16 matmul {n}x{n}x{n}: {2 * n**3 * iterations / seconds / 1e12:.1f} TFLOP/s")
