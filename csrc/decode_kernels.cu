// Fused kernels of the rollout engine's decode step (bfloat16 only). Compiled at run time with
// NVRTC for the device in use (csrc/fused_kernels.cpp), so building vlmrl needs no CUDA compiler and
// the code runs on whatever architecture the machine has. No headers: bfloat16 is handled as raw
// 16-bit patterns with the same round-to-nearest-even conversion as PyTorch's c10::BFloat16.
//
// Each kernel reproduces the rounding points of the unfused PyTorch ops it replaces (every op of a
// bf16 tensor computes in float32 and rounds its result to bf16), so the rotary and SwiGLU kernels
// give bit-identical results to the separate ops; the RMSNorm kernel differs only in the order of
// its float32 sum of squares.

typedef unsigned short bf16;
typedef long long int64;

__device__ __forceinline__ float b2f(bf16 x) { return __uint_as_float(((unsigned)x) << 16); }

__device__ __forceinline__ bf16 f2b(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16)0x7fc0;  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return (bf16)(u >> 16);
}

// Sum of a float over the block (blockDim.x a multiple of 32, at most 1024).
__device__ float block_sum(float value, float *scratch) {
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  int warps = blockDim.x >> 5;
  value = (int)threadIdx.x < warps ? scratch[threadIdx.x] : 0.0f;
  if (warp == 0) {
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
    if (lane == 0) scratch[0] = value;
  }
  __syncthreads();
  return scratch[0];
}

// residual = residual + delta (bf16 add; skipped when delta is null), then
// out = weight * bf16(residual * rsqrt(mean(residual^2) + eps)) as Qwen2RMSNorm in bf16.
// One block per row; dynamic shared memory: dim floats.
extern "C" __global__ void vlmrl_add_rmsnorm(bf16 *residual, const bf16 *delta, const bf16 *weight, bf16 *out,
                                             int dim, float eps) {
  extern __shared__ float row[];
  __shared__ float scratch[32];
  const int64 base = (int64)blockIdx.x * dim;
  float squares = 0.0f;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    float h = b2f(residual[base + i]);
    if (delta != 0) {
      bf16 sum = f2b(h + b2f(delta[base + i]));
      residual[base + i] = sum;
      h = b2f(sum);
    }
    row[i] = h;
    squares += h * h;
  }
  float total = block_sum(squares, scratch);
  float scale = rsqrtf(total / (float)dim + eps);
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    float normalized = b2f(f2b(row[i] * scale));
    out[base + i] = f2b(normalized * b2f(weight[i]));
  }
}

// Rotary embedding of one token per slot and the key/value cache write.
// qkv: [slots, (heads + 2 * kv_heads) * head_dim] (the fused q/k/v projection output; q is rotated
// in place), cos/sin: [slots, head_dim], caches: [slots, max_len, kv_heads, head_dim], positions:
// [slots] int64 (where each slot's key goes). Rotation as q * cos + rotate_half(q) * sin with bf16
// rounding after each product and after the sum. One block per slot.
extern "C" __global__ void vlmrl_rotary_kv(bf16 *qkv, const bf16 *cos, const bf16 *sin, bf16 *key_cache,
                                           bf16 *value_cache, const int64 *positions, int heads, int kv_heads,
                                           int head_dim, int max_len) {
  const int slot = blockIdx.x;
  const int half = head_dim / 2;
  const int width = (heads + 2 * kv_heads) * head_dim;
  bf16 *row = qkv + (int64)slot * width;
  const bf16 *c = cos + (int64)slot * head_dim;
  const bf16 *s = sin + (int64)slot * head_dim;
  const int64 cache_row = ((int64)slot * max_len + positions[slot]) * kv_heads * head_dim;
  const int rotated = (heads + kv_heads) * half;
  for (int index = threadIdx.x; index < rotated; index += blockDim.x) {
    const int head = index / half, i = index % half;
    bf16 *x = row + head * head_dim;
    const float x1 = b2f(x[i]), x2 = b2f(x[i + half]);
    const bf16 first = f2b(b2f(f2b(x1 * b2f(c[i]))) + b2f(f2b(-x2 * b2f(s[i]))));
    const bf16 second = f2b(b2f(f2b(x2 * b2f(c[i + half]))) + b2f(f2b(x1 * b2f(s[i + half]))));
    if (head < heads) {
      x[i] = first;
      x[i + half] = second;
    } else {
      bf16 *k = key_cache + cache_row + (head - heads) * head_dim;
      k[i] = first;
      k[i + half] = second;
    }
  }
  const bf16 *v = row + (heads + kv_heads) * head_dim;
  for (int index = threadIdx.x; index < kv_heads * head_dim; index += blockDim.x) {
    value_cache[cache_row + index] = v[index];
  }
}

// out = bf16(silu(gate)) * up with gate and up the halves of one fused projection row:
// gate_up: [rows, 2 * inner], out: [rows, inner].
extern "C" __global__ void vlmrl_swiglu(const bf16 *gate_up, bf16 *out, int64 rows, int inner) {
  const int64 total = rows * inner;
  for (int64 index = (int64)blockIdx.x * blockDim.x + threadIdx.x; index < total;
       index += (int64)gridDim.x * blockDim.x) {
    const int64 r = index / inner;
    const int i = (int)(index - r * inner);
    const float g = b2f(gate_up[r * 2 * inner + i]);
    const float activated = b2f(f2b(g / (1.0f + expf(-g))));
    out[index] = f2b(activated * b2f(gate_up[r * 2 * inner + inner + i]));
  }
}

// Token choice for one row of logits per block (blockDim.x = 1024), for the settings GRPO uses:
// suppression bias, temperature, no top-k / top-p / min-p / repetition penalty (the engine keeps
// the libtorch sampler for those). Scores s = (logit + bias) / temperature (no division when
// greedy); greedy takes the first index of the maximum, sampling takes the first token whose
// cumulative exp(s - max) exceeds uniform * total (inverse CDF, as the libtorch sampler); the
// log-prob is s[token] - max - log(total). logits: [rows, vocab] bf16; bias: [vocab] float or null;
// uniforms: [rows]; tokens: [rows] int64; log_probs: [rows] float.
extern "C" __global__ void vlmrl_sample(const bf16 *logits, const float *bias, const float *uniforms, float temperature,
                                        int vocab, int greedy, int64 *tokens, float *log_probs) {
  __shared__ float prefix[1024];
  __shared__ float best_values[32];
  __shared__ int best_indices[32];
  __shared__ float shared_max;
  __shared__ int shared_argmax, shared_token, shared_last_positive;
  const int tid = threadIdx.x, threads = blockDim.x;
  const bf16 *row = logits + (int64)blockIdx.x * vocab;
  auto score = [&](int i) {
    float s = b2f(row[i]);
    if (bias != 0) s += bias[i];
    return greedy ? s : s / temperature;
  };
  // Maximum and its first index.
  float best = -__int_as_float(0x7f800000);
  int best_index = 0x7fffffff;
  for (int i = tid; i < vocab; i += threads) {
    float s = score(i);
    if (s > best) { best = s; best_index = i; }
  }
  for (int offset = 16; offset > 0; offset >>= 1) {
    float other = __shfl_xor_sync(0xffffffffu, best, offset);
    int other_index = __shfl_xor_sync(0xffffffffu, best_index, offset);
    if (other > best || (other == best && other_index < best_index)) { best = other; best_index = other_index; }
  }
  if ((tid & 31) == 0) { best_values[tid >> 5] = best; best_indices[tid >> 5] = best_index; }
  if (tid == 0) { shared_token = -1; shared_last_positive = 0; }
  __syncthreads();
  if (tid == 0) {
    for (int w = 1; w < threads / 32; ++w) {
      if (best_values[w] > best_values[0] || (best_values[w] == best_values[0] && best_indices[w] < best_indices[0])) {
        best_values[0] = best_values[w];
        best_indices[0] = best_indices[w];
      }
    }
    shared_max = best_values[0];
    shared_argmax = best_indices[0];
  }
  __syncthreads();
  const float maximum = shared_max;
  // Contiguous chunks per thread: chunk sums, then an inclusive scan across threads.
  const int chunk = (vocab + threads - 1) / threads;
  const int begin = min(tid * chunk, vocab), end = min(begin + chunk, vocab);
  float local = 0.0f;
  int last_positive = -1;
  for (int i = begin; i < end; ++i) {
    float e = expf(score(i) - maximum);
    local += e;
    if (e > 0.0f) last_positive = i;
  }
  if (last_positive >= 0) atomicMax(&shared_last_positive, last_positive);
  prefix[tid] = local;
  __syncthreads();
  for (int offset = 1; offset < threads; offset <<= 1) {
    float add = tid >= offset ? prefix[tid - offset] : 0.0f;
    __syncthreads();
    prefix[tid] += add;
    __syncthreads();
  }
  const float total = prefix[threads - 1];
  if (greedy) {
    if (tid == 0) {
      tokens[blockIdx.x] = shared_argmax;
      log_probs[blockIdx.x] = -logf(total);
    }
    return;
  }
  const float target = uniforms[blockIdx.x] * total;
  const float before = tid > 0 ? prefix[tid - 1] : 0.0f;
  if (before <= target && target < prefix[tid]) {
    // The sequential sum may round below the chunk's scanned total: then the chunk's last token with
    // probability > 0 is the one whose interval holds the target.
    float running = before;
    int token = -1, positive = -1;
    for (int i = begin; i < end; ++i) {
      float e = expf(score(i) - maximum);
      running += e;
      if (e > 0.0f) positive = i;
      if (running > target) { token = i; break; }
    }
    shared_token = token >= 0 ? token : positive;
  }
  __syncthreads();
  if (tid == 0) {
    int token = shared_token >= 0 ? shared_token : shared_last_positive;
    tokens[blockIdx.x] = token;
    log_probs[blockIdx.x] = score(token) - maximum - logf(total);
  }
}
