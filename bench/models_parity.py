# Full-size parity and training-pass timing of vlmrl's Qwen-VL models against transformers, on a GPU.
#
# For Qwen2.5-VL-3B and Qwen2-VL-2B (the Hub config.json values in bench/configs/), random weights are
# created and saved by transformers, then both implementations score the same ~380-token prompt with
# one 448x448 image (256 image tokens) and a 256-token teacher-forced completion in bf16:
# per-token log-probs (max / mean absolute difference) and the vision-tower output.
# Then forward+backward of one batch (8 sequences x 1024 tokens, one 448x448 image each, the last 256
# tokens scored through log-softmax) is timed for both, with peak memory.
#
#   usage: python3 bench/models_parity.py DIST_DIR WORK_DIR
import json, os, subprocess, sys, time
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForImageTextToText

dist, work = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
device = "cuda"
IMAGE, VSTART, VEND, IM_START = 151655, 151652, 151653, 151644


def build(name):
    folder = os.path.join(work, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(here, "configs", f"{name}.json")) as f:
        raw = json.load(f)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(raw, f)
    config = AutoConfig.from_pretrained(folder)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16, attn_implementation="sdpa")
    # Weights with realistic activation scales (HF's 0.02 init makes every logit ~0 and parity trivial).
    gen = torch.Generator(device=device).manual_seed(1)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(torch.ones_like(p) if "norm" in pname or "ln_q" in pname else 0.02 * torch.randn(p.shape, generator=gen, device=device))
            elif "embed_tokens" in pname or "lm_head" in pname:
                p.copy_(torch.randn(p.shape, generator=gen, device=device) * (3.0 / p.shape[-1] ** 0.5))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen, device=device) / fan_in ** 0.5)
    model.save_pretrained(folder)
    # The reference is the model as transformers loads it (from_pretrained), not the one built under a
    # CUDA device context: there the rotary inv_freq buffers are computed on the GPU, whose pow differs
    # from the CPU's in the last bit, and any such bit is amplified like any other (docs/benchmarks.md).
    built = {n: b.detach().clone() for n, b in model.named_buffers() if n.endswith("inv_freq")}
    del model
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.bfloat16, attn_implementation="sdpa",
                                                        device_map=device)
    loaded = dict(model.named_buffers())
    for n, b in built.items():
        print(f"{name}: {n} built on {device} vs loaded: max |diff| {(b.float() - loaded[n].float()).abs().max():.3e}")
    return model.eval(), folder


def sequence(generator, prompt_len=380, completion=256, image_tokens=256):
    head = [IM_START] + torch.randint(0, 151000, (12,), generator=generator).tolist() + [VSTART]
    tail = [VEND] + torch.randint(0, 151000, (prompt_len - len(head) - image_tokens - 1,), generator=generator).tolist()
    prompt = head + [IMAGE] * image_tokens + tail
    return prompt, torch.randint(0, 151000, (completion,), generator=generator).tolist()


def run(args):
    res = subprocess.run(args, capture_output=True, text=True)
    print(res.stdout.strip())
    if res.returncode != 0:
        print(res.stderr[:3000])
        raise SystemExit(f"{args[1]} failed with {res.returncode}")
    return res.stdout


def reference_logprobs(model, ids, prompt_len, pixels, grid):
    input_ids = torch.tensor([ids], device=device)
    mm = (input_ids == IMAGE).long()
    model.model.rope_deltas = None
    with torch.no_grad():
        out = model(input_ids=input_ids, pixel_values=pixels.to(device), image_grid_thw=grid.to(device),
                    mm_token_type_ids=mm, use_cache=False)
        logits = out.logits[0, prompt_len - 1:-1].float()
        targets = input_ids[0, prompt_len:]
        logprobs = logits.log_softmax(-1).gather(1, targets[:, None])[:, 0]
        vision = model.model.visual(pixels.to(device), grid_thw=grid.to(device)).pooler_output.float()
    return logprobs.cpu(), vision.cpu()


def parity(name):
    model, folder = build(name)
    g = torch.Generator().manual_seed(2)
    prompt, completion = sequence(g)
    pixels = torch.randn(1024, 1176, generator=g)
    grid = torch.tensor([[1, 32, 32]])
    ref_lp, ref_vision = reference_logprobs(model, prompt + completion, len(prompt), pixels, grid)
    # Both bf16 implementations are also compared with transformers in float32 on the same weights:
    # bf16 rounding alone moves deep random networks; the question is whether vlmrl moves more.
    model.float()
    fp32_lp, fp32_vision = reference_logprobs(model, prompt + completion, len(prompt), pixels, grid)
    inputs = os.path.join(work, f"{name}_inputs.safetensors")
    save_file({"input_ids": torch.tensor(prompt + completion), "prompt_length": torch.tensor(len(prompt)),
               "pixel_values": pixels, "image_grid_thw": grid}, inputs)
    out = os.path.join(work, f"{name}_out.safetensors")
    t = time.time()
    run([f"{dist}/vlmrl", "forward", "--model", folder, "--inputs", inputs, "--out", out, "--device", "cuda",
         "--dtype", "bfloat16"])
    ours = load_file(out)
    diff = (ours["logprobs"] - ref_lp).abs()
    vdiff = (ours["vision_output"] - ref_vision).abs().max() / ref_vision.abs().max()
    print(f"{name}: logprobs of {len(completion)} completion tokens after a {len(prompt)}-token prompt with one 448x448 image "
          f"(bf16): max |diff| {diff.max():.4f}, mean |diff| {diff.mean():.4f} (reference mean logprob {ref_lp.mean():.3f}); "
          f"vision output max rel diff {vdiff:.4f}; vlmrl forward call {time.time() - t:.1f} s incl. load")
    hf_err = (ref_lp - fp32_lp).abs()
    our_err = (ours["logprobs"] - fp32_lp).abs()
    scale = fp32_vision.abs().max()
    print(f"{name}: against transformers float32: transformers-bf16 mean |diff| {hf_err.mean():.4f} (max {hf_err.max():.4f}), "
          f"vlmrl-bf16 mean |diff| {our_err.mean():.4f} (max {our_err.max():.4f}); vision max rel diff "
          f"transformers-bf16 {(ref_vision - fp32_vision).abs().max() / scale:.4f}, vlmrl-bf16 {(ours['vision_output'] - fp32_vision).abs().max() / scale:.4f}")
    # The vision attention variants (docs/models-golden.md): windows batched (default), one SDPA call
    # per window, one varlen flash call per block. Bit-identical vision output shows as 0.
    for label, extra in (("one SDPA call per window", {"VLMRL_VISION_WINDOW_BATCH": "0"}),
                         ("varlen flash", {"VLMRL_VISION_ATTENTION": "varlen"})):
        variant = os.path.join(work, f"{name}_variant.safetensors")
        subprocess.run([f"{dist}/vlmrl", "forward", "--model", folder, "--inputs", inputs, "--out", variant, "--device", "cuda",
                        "--dtype", "bfloat16"], capture_output=True, text=True, env={**os.environ, **extra}, check=True)
        v = load_file(variant)
        print(f"{name} [{label}]: logprobs mean |diff| {(v['logprobs'] - ref_lp).abs().mean():.4f}; vision max |diff| vs "
              f"transformers {(v['vision_output'] - ref_vision).abs().max():.3e}, vs vlmrl default "
              f"{(v['vision_output'] - ours['vision_output']).abs().max():.3e}")
    del model
    torch.cuda.empty_cache()
    return folder


def hf_train_step(folder, batch=8, length=1024, completion=256, iterations=3):
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.bfloat16, attn_implementation="sdpa").to(device)
    model.train()
    g = torch.Generator().manual_seed(3)
    grid_side = 32
    rows = []
    for _ in range(batch):
        head = torch.randint(0, 150000, (16,), generator=g).tolist() + [VSTART] + [IMAGE] * 256 + [VEND]
        rows.append(head + torch.randint(0, 150000, (length - len(head),), generator=g).tolist())
    input_ids = torch.tensor(rows, device=device)
    pixels = torch.randn(batch * grid_side * grid_side, 1176, generator=g).to(device)
    grid = torch.tensor([[1, grid_side, grid_side]] * batch, device=device)
    mm = (input_ids == IMAGE).long()

    def step():
        model.model.rope_deltas = None
        out = model(input_ids=input_ids, pixel_values=pixels, image_grid_thw=grid, mm_token_type_ids=mm,
                    use_cache=False, logits_to_keep=completion + 1)
        logits = out.logits[:, :-1].float()
        targets = input_ids[:, -completion:]
        loss = -logits.log_softmax(-1).gather(2, targets[..., None]).mean()
        loss.backward()
        model.zero_grad(set_to_none=True)

    step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(iterations):
        t = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    median = sorted(times)[len(times) // 2]
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(f"transformers train-step: {batch} x {length} tokens (image 448x448, {completion} scored), no checkpointing: "
          f"median {median:.3f} s, {batch * length / median:.0f} tokens/s, peak {peak:.1f} GiB")
    del model
    torch.cuda.empty_cache()
    return median, peak


print(f"torch {torch.__version__}, transformers {__import__('transformers').__version__}, {torch.cuda.get_device_name()}")
folder3b = parity("qwen2_5_vl_3b")
parity("qwen2_vl_2b")
# vlmrl runs first, in its own process, so that neither measurement sees the other's allocator state.
stdout = run([f"{dist}/vlmrl", "bench", "train-step", "--model", folder3b, "--batch", "8", "--length", "1024"])
ours = float(stdout.split("median ")[1].split(" s")[0])
hf_time, hf_peak = hf_train_step(folder3b)
print(f"forward+backward 8x1024 Qwen2.5-VL-3B bf16: vlmrl {ours:.3f} s vs transformers {hf_time:.3f} s, ratio {hf_time / ours:.2f}x")
