"""Kernel timing for the bench/ microbenchmarks: calls replayed from one CUDA graph, as the rollout
engine replays its decode step."""
import torch


def timed(fn, reps=200):
    """Microseconds per call of fn, replayed from a CUDA graph of `reps` calls (warmed up and
    captured on a side stream, then replayed once before the timed replay)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(reps):
            fn()
    g.replay()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    g.replay()
    b.record()
    torch.cuda.synchronize()
    return a.elapsed_time(b) / reps * 1000
