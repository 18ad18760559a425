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

// Eight bf16 values in 16 bytes (one vector load or store).
struct bf16x8 { unsigned w[4]; };
__device__ __forceinline__ float lo(unsigned w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float hi(unsigned w) { return __uint_as_float(w & 0xffff0000u); }
__device__ __forceinline__ unsigned pack(bf16 a, bf16 b) { return (unsigned)a | ((unsigned)b << 16); }
__device__ __forceinline__ bf16x8 load8(const bf16 *p) {
  uint4 v = *reinterpret_cast<const uint4 *>(p);
  bf16x8 r;
  r.w[0] = v.x; r.w[1] = v.y; r.w[2] = v.z; r.w[3] = v.w;
  return r;
}
__device__ __forceinline__ void store8(bf16 *p, const bf16x8 &r) {
  *reinterpret_cast<uint4 *>(p) = make_uint4(r.w[0], r.w[1], r.w[2], r.w[3]);
}
__device__ __forceinline__ float element(const bf16x8 &r, int i) { return (i & 1) ? hi(r.w[i >> 1]) : lo(r.w[i >> 1]); }

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

// The same as vlmrl_add_rmsnorm for dim a multiple of 8 up to 8192: one block of dim / 8 threads
// (rounded up to whole warps) per row, each thread one 16-byte chunk of the residual, the delta and
// the weight, all loaded before the reduction, so a row costs one memory round trip, one block
// barrier and a few dozen instructions per thread: the decode step's 64-256 rows are
// latency-bound, and spreading each row over many threads is what keeps them short.
extern "C" __global__ void vlmrl_add_rmsnorm_row(bf16 *residual, const bf16 *delta, const bf16 *weight, bf16 *out,
                                                 int dim, float eps) {
  __shared__ float scratch[32];
  const int64 base = (int64)blockIdx.x * dim;
  const int i = threadIdx.x * 8;
  const bool inside = i < dim;
  bf16x8 h, d, w;
  if (inside) {
    h = load8(residual + base + i);
    w = load8(weight + i);
    if (delta != 0) d = load8(delta + base + i);
  }
  float squares = 0.0f;
  if (inside) {
    if (delta != 0) {
#pragma unroll
      for (int j = 0; j < 4; ++j) h.w[j] = pack(f2b(lo(h.w[j]) + lo(d.w[j])), f2b(hi(h.w[j]) + hi(d.w[j])));
      store8(residual + base + i, h);
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float a = lo(h.w[j]), b = hi(h.w[j]);
      squares += a * a + b * b;
    }
  }
  const float scale = rsqrtf(block_sum(squares, scratch) / (float)dim + eps);
  if (inside) {
    bf16x8 o;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      o.w[j] = pack(f2b(b2f(f2b(lo(h.w[j]) * scale)) * lo(w.w[j])), f2b(b2f(f2b(hi(h.w[j]) * scale)) * hi(w.w[j])));
    }
    store8(out + base + i, o);
  }
}

// The rotary embedding of one head-dimension pair as the unfused ops round it (Qwen2's apply_rotary_pos_emb in bf16):
// first half x1 * cos + -x2 * sin, second half x2 * cos + x1 * sin, bf16 after each product and sum.
__device__ __forceinline__ void rotate_pair(float x1, float x2, float c1, float s1, float c2, float s2, bf16 &first,
                                            bf16 &second) {
  first = f2b(b2f(f2b(x1 * c1)) + b2f(f2b(-x2 * s1)));
  second = f2b(b2f(f2b(x2 * c2)) + b2f(f2b(x1 * s2)));
}

// Rotary embedding of one token per slot and the key/value cache write.
// qkv: [slots, (heads + 2 * kv_heads) * head_dim] (the fused q/k/v projection output; q is rotated
// in place), cos/sin: [slots, head_dim], caches: [slots, max_len, kv_heads, head_dim], positions:
// [slots] int64 (where each slot's key goes). Rotation as q * cos + rotate_half(q) * sin with bf16
// rounding after each product and after the sum. Grid (heads + 2 * kv_heads, slots): one block per
// head of q, k (rotated) or v (copied), head_dim / 2 threads.
extern "C" __global__ void vlmrl_rotary_kv(bf16 *qkv, const bf16 *cos, const bf16 *sin, bf16 *key_cache,
                                           bf16 *value_cache, const int64 *positions, int heads, int kv_heads,
                                           int head_dim, int max_len) {
  const int head = blockIdx.x, slot = blockIdx.y;
  const int half = head_dim / 2;
  const int width = (heads + 2 * kv_heads) * head_dim;
  bf16 *x = qkv + (int64)slot * width + (int64)head * head_dim;
  if (head >= heads + kv_heads) {  // a value head: copied into the cache
    const int64 cache_row = ((int64)slot * max_len + positions[slot]) * kv_heads * head_dim;
    bf16 *v = value_cache + cache_row + (int64)(head - heads - kv_heads) * head_dim;
    for (int i = threadIdx.x; i < head_dim; i += blockDim.x) v[i] = x[i];
    return;
  }
  const bf16 *c = cos + (int64)slot * head_dim;
  const bf16 *s = sin + (int64)slot * head_dim;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    bf16 first, second;
    rotate_pair(b2f(x[i]), b2f(x[i + half]), b2f(c[i]), b2f(s[i]), b2f(c[i + half]), b2f(s[i + half]), first, second);
    if (head < heads) {
      x[i] = first;
      x[i + half] = second;
    } else {
      const int64 cache_row = ((int64)slot * max_len + positions[slot]) * kv_heads * head_dim;
      bf16 *k = key_cache + cache_row + (int64)(head - heads) * head_dim;
      k[i] = first;
      k[i + half] = second;
    }
  }
}

__device__ __forceinline__ float silu_rounded(float g) { return b2f(f2b(g / (1.0f + expf(-g)))); }

// out = bf16(silu(gate)) * up with gate and up the halves of one fused projection row:
// gate_up: [rows, 2 * inner], out: [rows, inner].
extern "C" __global__ void vlmrl_swiglu(const bf16 *gate_up, bf16 *out, int64 rows, int inner) {
  const int64 total = rows * inner;
  for (int64 index = (int64)blockIdx.x * blockDim.x + threadIdx.x; index < total;
       index += (int64)gridDim.x * blockDim.x) {
    const int64 r = index / inner;
    const int i = (int)(index - r * inner);
    const float activated = silu_rounded(b2f(gate_up[r * 2 * inner + i]));
    out[index] = f2b(activated * b2f(gate_up[r * 2 * inner + inner + i]));
  }
}

// vlmrl_swiglu for inner a multiple of 8: eight outputs per thread with 16-byte accesses.
extern "C" __global__ void vlmrl_swiglu8(const bf16 *gate_up, bf16 *out, int64 rows, int inner) {
  const int vectors = inner >> 3;
  const int64 total = rows * vectors;
  for (int64 index = (int64)blockIdx.x * blockDim.x + threadIdx.x; index < total;
       index += (int64)gridDim.x * blockDim.x) {
    const int64 r = index / vectors;
    const int i = (int)(index - r * vectors) * 8;
    const bf16x8 g = load8(gate_up + r * 2 * inner + i), u = load8(gate_up + r * 2 * inner + inner + i);
    bf16x8 o;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      o.w[j] = pack(f2b(silu_rounded(lo(g.w[j])) * lo(u.w[j])), f2b(silu_rounded(hi(g.w[j])) * hi(u.w[j])));
    }
    store8(out + r * inner + i, o);
  }
}

// Decode attention of one query token per slot over the slot cache (head_dim 128, at most 8 query
// heads per key/value head), split over the keys like flash-decoding, with the splits merged by
// the last block of each (slot, key/value head) to finish (no second launch).
// qkv: [slots, qkv_stride], the rotated queries of all heads first; caches: [slots, max_len,
// kv_heads, 128]; positions: [slots] int64, this step's write position (keys 0...positions[slot]
// are visible). out: [slots, heads * 128] bf16. partial: float workspace of
// 2 * slots * heads * splits + slots * heads * splits * 128; counters: int [slots * kv_heads], zero
// before the launch and left zero after it. cos/sin: null (queries already rotated, this step's key
// and value already in the cache: vlmrl_rotary_kv ran) or [slots, 128] bf16 (the kernel rotates
// and writes them itself). Grid (splits, kv_heads, slots), 32 * ATTN_WARPS threads.
//
// Each warp takes tiles of 16 keys in turn and runs both products on the tensor cores
// (mma.m16n8k16, bf16 in, float32 accumulate) with the group's query heads as the rows (padded to
// 16): S = Q K^T, an online softmax in base 2 (scores scaled by log2(e) / sqrt(128)) in float32,
// then O^T += V^T P^T with P rounded to bf16, as flash attention does (transposed so that the heads
// are the mma's n and no accumulator is padding). No shared-memory staging: the dot product's
// dimension order is free, so each lane loads whole 16-byte runs of a key row for its fragments
// (the query fragments use the same order), and V^T's fragments are assembled from 16-byte loads
// of two keys with byte permutes (the output's dimension order follows from that).
#define ATTN_GROUP 8
__device__ __forceinline__ void mma_bf16(float (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0,
                                         unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
__device__ __forceinline__ unsigned pack_floats(float a, float b) { return pack(f2b(a), f2b(b)); }

// Where the attention-diagnostics variant of the decode attention (vlmrl_decode_attention8_mass)
// reads the prompt's key masks and writes the step's masses; passed by value (the C++ launcher
// declares the same layout). Masks: float32 [slots, mask_stride], 1 on text / image keys. Outputs:
// float32 [rows, columns, recorded] at (sequence[slot], min(step[slot], columns - 1), column), as
// vlmrl_attention_mass writes them. workspace: float32 of 2 * slots * heads * (splits + 1);
// counters: int [slots], zero before the launch and left zero after it.
struct MassTarget {
  const float *text_mask, *vision_mask;
  float *out_text, *out_vision;
  const int64 *sequence, *step;
  float *workspace;
  int *counters;
  int64 mask_stride;
  int columns, recorded, column;
};

// The last stage of the attention masses of one slot: the block that finished key/value head
// `kv_head` (warp 0; lane h < group holds head kv_head * group + h's text and image probability
// mass) stores them; the last of the slot's kv_heads such blocks averages all heads (a fixed
// reduction order, so the result does not depend on which block came last) and writes the slot's
// entry of the run's buffers.
__device__ void finish_mass(const MassTarget &mass, float *head_text, float *head_vision, int slot, int kv_head,
                            int heads, int kv_heads, int group, int lane, float text, float vision) {
  const int64 row = (int64)slot * heads;
  if (lane < group) {
    head_text[row + kv_head * group + lane] = text;
    head_vision[row + kv_head * group + lane] = vision;
    __threadfence();
  }
  __syncwarp();
  int last = 0;
  if (lane == 0) last = atomicAdd(mass.counters + slot, 1) == kv_heads - 1;
  if (!__shfl_sync(0xffffffffu, last, 0)) return;
  __threadfence();
  float text_sum = 0.0f, vision_sum = 0.0f;
  for (int h = lane; h < heads; h += 32) {
    text_sum += __ldcg(head_text + row + h);
    vision_sum += __ldcg(head_vision + row + h);
  }
  for (int offset = 16; offset > 0; offset >>= 1) {
    text_sum += __shfl_xor_sync(0xffffffffu, text_sum, offset);
    vision_sum += __shfl_xor_sync(0xffffffffu, vision_sum, offset);
  }
  if (lane == 0) {
    const int64 step = min(mass.step[slot], (int64)mass.columns - 1);
    const int64 index = (mass.sequence[slot] * mass.columns + step) * mass.recorded + mass.column;
    mass.out_text[index] = text_sum / heads;
    mass.out_vision[index] = vision_sum / heads;
    mass.counters[slot] = 0;
  }
}

template <int ATTN_WARPS, bool MASS>
__device__ __forceinline__ void decode_attention(const bf16 *qkv, int64 qkv_stride, bf16 *key_cache,
                                                 bf16 *value_cache, const int64 *positions, int heads, int kv_heads,
                                                 int max_len, int split, float scale_log2, float *partial, int *counters,
                                                 bf16 *out, const bf16 *cos, const bf16 *sin, const MassTarget &mass) {
  __shared__ __align__(16) float merge_acc[ATTN_WARPS][ATTN_GROUP][128];
  __shared__ float merge_m[ATTN_WARPS][ATTN_GROUP], merge_l[ATTN_WARPS][ATTN_GROUP];
  // The warps' exp-weighted sums on text and image keys (MASS only).
  __shared__ float merge_text[MASS ? ATTN_WARPS : 1][ATTN_GROUP], merge_vision[MASS ? ATTN_WARPS : 1][ATTN_GROUP];
  __shared__ int ticket;
  const float negative_infinity = -__int_as_float(0x7f800000);
  const int split_index = blockIdx.x, kv_head = blockIdx.y, slot = blockIdx.z;
  const int splits = gridDim.x, slots = gridDim.z;
  const int length = (int)positions[slot] + 1;
  const int begin = split_index * split;
  if (begin >= length) return;
  const int end = min(begin + split, length);
  const int used = (length + split - 1) / split;
  const int group = heads / kv_heads;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;  // mma fragment row group and thread in group

  // With cos/sin given, this launch also does vlmrl_rotary_kv's work for its key/value head: the
  // block holding the step's key rotates it and writes it and the value into the cache (visible to
  // the block after the barrier), and every block rotates its queries in registers.
  const int64 row = (int64)slot * qkv_stride;
  if (cos != 0 && begin <= length - 1 && length - 1 < end) {
    const int64 cache_row = (((int64)slot * max_len + (length - 1)) * kv_heads + kv_head) * 128;
    const bf16 *k_new = qkv + row + (int64)(heads + kv_head) * 128, *v_new = qkv + row + (int64)(heads + kv_heads + kv_head) * 128;
    const bf16 *c = cos + (int64)slot * 128, *sn = sin + (int64)slot * 128;
    for (int i = threadIdx.x; i < 64; i += 32 * ATTN_WARPS) {
      bf16 first, second;
      rotate_pair(b2f(k_new[i]), b2f(k_new[i + 64]), b2f(c[i]), b2f(sn[i]), b2f(c[i + 64]), b2f(sn[i + 64]), first, second);
      key_cache[cache_row + i] = first;
      key_cache[cache_row + i + 64] = second;
    }
    for (int i = threadIdx.x; i < 128; i += 32 * ATTN_WARPS) value_cache[cache_row + i] = v_new[i];
  }
  if (cos != 0) __syncthreads();
  // Query fragments (A, rows = heads; rows 8-15 are zero): k-steps 2p and 2p+1 take the 16 bytes
  // at dimensions 32p + 8t ... 32p + 8t + 7 of head g (chunks p and p + 2 are rotation partners).
  unsigned qa[8][2];
  {
    const bf16 *q_row = qkv + row + (int64)(kv_head * group + g) * 128;
    uint4 raw[4];
#pragma unroll
    for (int p = 0; p < 4; ++p) {
      raw[p] = make_uint4(0u, 0u, 0u, 0u);
      if (g < group) raw[p] = *reinterpret_cast<const uint4 *>(q_row + 32 * p + 8 * t);
    }
    if (cos != 0) {
#pragma unroll
      for (int p = 0; p < 2; ++p) {
        const bf16x8 c1 = load8(cos + (int64)slot * 128 + 32 * p + 8 * t), s1 = load8(sin + (int64)slot * 128 + 32 * p + 8 * t);
        const bf16x8 c2 = load8(cos + (int64)slot * 128 + 64 + 32 * p + 8 * t);
        const bf16x8 s2 = load8(sin + (int64)slot * 128 + 64 + 32 * p + 8 * t);
        bf16x8 x1, x2;
        x1.w[0] = raw[p].x; x1.w[1] = raw[p].y; x1.w[2] = raw[p].z; x1.w[3] = raw[p].w;
        x2.w[0] = raw[p + 2].x; x2.w[1] = raw[p + 2].y; x2.w[2] = raw[p + 2].z; x2.w[3] = raw[p + 2].w;
        unsigned first[4], second[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          bf16 f0, s0, f1, s1b;
          rotate_pair(lo(x1.w[j]), lo(x2.w[j]), lo(c1.w[j]), lo(s1.w[j]), lo(c2.w[j]), lo(s2.w[j]), f0, s0);
          rotate_pair(hi(x1.w[j]), hi(x2.w[j]), hi(c1.w[j]), hi(s1.w[j]), hi(c2.w[j]), hi(s2.w[j]), f1, s1b);
          first[j] = pack(f0, f1);
          second[j] = pack(s0, s1b);
        }
        raw[p] = make_uint4(first[0], first[1], first[2], first[3]);
        raw[p + 2] = make_uint4(second[0], second[1], second[2], second[3]);
      }
    }
#pragma unroll
    for (int p = 0; p < 4; ++p) {
      qa[2 * p][0] = raw[p].x;
      qa[2 * p][1] = raw[p].y;
      qa[2 * p + 1][0] = raw[p].z;
      qa[2 * p + 1][1] = raw[p].w;
    }
  }
  // Output accumulators, transposed (O^T = V^T P^T, so the 8 heads are the mma's n and nothing is
  // padding): 8 m-tiles of 16 dimensions; in m-tile 4h + j, row g is dimension 64h + 8g + 2j and
  // row g + 8 is dimension 64h + 8g + 2j + 1; columns 2t, 2t + 1 are heads 2t, 2t + 1.
  float o[8][4];
#pragma unroll
  for (int i = 0; i < 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m = negative_infinity, l = 0.0f;  // of head g
  // MASS: head g's exp2(score - m) summed over this lane's keys that are text / image keys, rescaled
  // with l's corrections (the lanes of a head share m; they are summed after the loop).
  float text_acc = 0.0f, vision_acc = 0.0f;
  const int64 key_stride = (int64)kv_heads * 128;
  const int64 cache_base = (int64)slot * max_len * key_stride + kv_head * 128;
  const bf16 *k_base = key_cache + cache_base, *v_base = value_cache + cache_base;
  for (int tile = begin + warp * 16; tile < end; tile += ATTN_WARPS * 16) {
    // K fragments: keys tile + g (n-tile 0) and tile + 8 + g (n-tile 1), 64 bytes each.
    uint4 kr[2][4];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int key = tile + 8 * h + g;
#pragma unroll
      for (int p = 0; p < 4; ++p) {
        kr[h][p] = key < end ? *reinterpret_cast<const uint4 *>(k_base + (int64)key * key_stride + 32 * p + 8 * t)
                             : make_uint4(0u, 0u, 0u, 0u);
      }
    }
    // V rows of keys tile + 2t, 2t + 1, 2t + 8, 2t + 9: dimensions 64h + 8g ... 64h + 8g + 7.
    uint4 vr[4][2];
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int key = tile + 2 * t + (r & 1) + 8 * (r >> 1);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        vr[r][h] = key < end ? *reinterpret_cast<const uint4 *>(v_base + (int64)key * key_stride + 64 * h + 8 * g)
                             : make_uint4(0u, 0u, 0u, 0u);
      }
    }
    // MASS: the masks of this lane's keys tile + 2t, 2t + 1, 2t + 8, 2t + 9 (loaded with K and V).
    float text_flag[4], vision_flag[4];
    if constexpr (MASS) {
      const float *text_row = mass.text_mask + (int64)slot * mass.mask_stride;
      const float *vision_row = mass.vision_mask + (int64)slot * mass.mask_stride;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int key = tile + 8 * (c >> 1) + 2 * t + (c & 1);
        text_flag[c] = key < end ? text_row[key] : 0.0f;
        vision_flag[c] = key < end ? vision_row[key] : 0.0f;
      }
    }
    // S = Q K^T: two n-tiles of 8 keys.
    float s[2][4];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      s[h][0] = s[h][1] = s[h][2] = s[h][3] = 0.0f;
#pragma unroll
      for (int p = 0; p < 4; ++p) {
        mma_bf16(s[h], qa[2 * p][0], 0u, qa[2 * p][1], 0u, kr[h][p].x, kr[h][p].y);
        mma_bf16(s[h], qa[2 * p + 1][0], 0u, qa[2 * p + 1][1], 0u, kr[h][p].z, kr[h][p].w);
      }
    }
    // Lane holds head g's scores of keys tile + 2t, 2t + 1 (s[0][0..1]) and tile + 8 + 2t, + 1 (s[1][0..1]).
    float x[4];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
      for (int c = 0; c < 2; ++c) x[2 * h + c] = tile + 8 * h + 2 * t + c < end ? s[h][c] * scale_log2 : negative_infinity;
    }
    float tile_max = fmaxf(fmaxf(x[0], x[1]), fmaxf(x[2], x[3]));
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
    const float m_new = fmaxf(m, tile_max);  // finite: the tile's first key is inside
    const float correction = exp2f(m - m_new);
    float pr[4], sum = 0.0f;
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      pr[c] = exp2f(x[c] - m_new);
      sum += pr[c];
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    l = l * correction + sum;
    m = m_new;
    if constexpr (MASS) {
      text_acc = text_acc * correction + (pr[0] * text_flag[0] + pr[1] * text_flag[1] + pr[2] * text_flag[2] + pr[3] * text_flag[3]);
      vision_acc = vision_acc * correction +
                   (pr[0] * vision_flag[0] + pr[1] * vision_flag[1] + pr[2] * vision_flag[2] + pr[3] * vision_flag[3]);
    }
    // P^T as the B fragment (k = the tile's 16 keys, n = heads): lane (g, t) holds head g's
    // probabilities of keys 2t, 2t + 1 and 2t + 8, 2t + 9, which is that fragment's layout.
    const unsigned pb0 = pack_floats(pr[0], pr[1]), pb1 = pack_floats(pr[2], pr[3]);
    // The corrections of the heads of this lane's output columns (2t, 2t + 1).
    const float correction0 = __shfl_sync(0xffffffffu, correction, 8 * t);
    const float correction1 = __shfl_sync(0xffffffffu, correction, 8 * t + 4);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      o[i][0] *= correction0;
      o[i][1] *= correction1;
      o[i][2] *= correction0;
      o[i][3] *= correction1;
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const unsigned words[4][4] = {{vr[0][h].x, vr[0][h].y, vr[0][h].z, vr[0][h].w},
                                    {vr[1][h].x, vr[1][h].y, vr[1][h].z, vr[1][h].w},
                                    {vr[2][h].x, vr[2][h].y, vr[2][h].z, vr[2][h].w},
                                    {vr[3][h].x, vr[3][h].y, vr[3][h].z, vr[3][h].w}};
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        // A fragment of V^T: (dimension row, keys 2t, 2t + 1) pairs from the word holding
        // dimensions 64h + 8g + 2j (low half: row g) and + 1 (high half: row g + 8).
        const unsigned a0 = __byte_perm(words[0][j], words[1][j], 0x5410), a1 = __byte_perm(words[0][j], words[1][j], 0x7632);
        const unsigned a2 = __byte_perm(words[2][j], words[3][j], 0x5410), a3 = __byte_perm(words[2][j], words[3][j], 0x7632);
        mma_bf16(o[4 * h + j], a0, a1, a2, a3, pb0, pb1);
      }
    }
  }
  // Merge the warps (a warp that had no tile holds m = -inf, l = 0).
  if (t == 0) {
    merge_m[warp][g] = m;
    merge_l[warp][g] = l;
  }
  if constexpr (MASS) {
#pragma unroll
    for (int offset = 1; offset < 4; offset <<= 1) {
      text_acc += __shfl_xor_sync(0xffffffffu, text_acc, offset);
      vision_acc += __shfl_xor_sync(0xffffffffu, vision_acc, offset);
    }
    if (t == 0) {
      merge_text[warp][g] = text_acc;
      merge_vision[warp][g] = vision_acc;
    }
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int dimension = 64 * h + 8 * g + 2 * j;
      merge_acc[warp][2 * t][dimension] = o[4 * h + j][0];
      merge_acc[warp][2 * t + 1][dimension] = o[4 * h + j][1];
      merge_acc[warp][2 * t][dimension + 1] = o[4 * h + j][2];
      merge_acc[warp][2 * t + 1][dimension + 1] = o[4 * h + j][3];
    }
  }
  __syncthreads();
  // One thread per dimension merges (with more than 4 warps, the others repeat the same work).
  const int d = threadIdx.x & 127;
  float block_m[ATTN_GROUP], block_l[ATTN_GROUP], block_a[ATTN_GROUP];
#pragma unroll
  for (int h = 0; h < ATTN_GROUP; ++h) {
    float top = merge_m[0][h];
#pragma unroll
    for (int w = 1; w < ATTN_WARPS; ++w) top = fmaxf(top, merge_m[w][h]);
    float total = 0.0f, value = 0.0f;
#pragma unroll
    for (int w = 0; w < ATTN_WARPS; ++w) {
      const float f = exp2f(merge_m[w][h] - top);
      total += merge_l[w][h] * f;
      value += merge_acc[w][h][d] * f;
    }
    block_m[h] = top;
    block_l[h] = total;
    block_a[h] = value;
  }
  bf16 *out_row = out + (int64)slot * heads * 128 + (int64)kv_head * group * 128;
  // MASS: warp 0's lane h < group merges head h's text and image sums over the warps as above (in
  // the workspace: the splits' text and image sums, then each head's masses).
  float mass_l = 0.0f, mass_text = 0.0f, mass_vision = 0.0f;
  float *mass_partial = mass.workspace, *mass_heads = mass.workspace + 2 * (int64)slots * heads * splits;
  if constexpr (MASS) {
    if (warp == 0 && lane < group) {
      float top = merge_m[0][lane];
#pragma unroll
      for (int w = 1; w < ATTN_WARPS; ++w) top = fmaxf(top, merge_m[w][lane]);
#pragma unroll
      for (int w = 0; w < ATTN_WARPS; ++w) {
        const float f = exp2f(merge_m[w][lane] - top);
        mass_l += merge_l[w][lane] * f;
        mass_text += merge_text[w][lane] * f;
        mass_vision += merge_vision[w][lane] * f;
      }
    }
  }
  if (used == 1) {
#pragma unroll
    for (int h = 0; h < ATTN_GROUP; ++h)
      if (h < group) out_row[h * 128 + d] = f2b(block_a[h] / block_l[h]);
    if constexpr (MASS) {
      if (warp == 0) {
        finish_mass(mass, mass_heads, mass_heads + (int64)slots * heads, slot, kv_head, heads, kv_heads, group, lane,
                    mass_text / mass_l, mass_vision / mass_l);
      }
    }
    return;
  }
  const int64 count = (int64)slots * heads * splits;
  float *partial_m = partial, *partial_l = partial + count, *partial_a = partial + 2 * count;
  if constexpr (MASS) {
    if (warp == 0 && lane < group) {
      const int64 index = ((int64)slot * heads + kv_head * group + lane) * splits + split_index;
      mass_partial[index] = mass_text;
      mass_partial[count + index] = mass_vision;
    }
  }
#pragma unroll
  for (int h = 0; h < ATTN_GROUP; ++h) {
    if (h < group) {
      const int64 index = ((int64)slot * heads + kv_head * group + h) * splits + split_index;
      if (d == 0) {
        partial_m[index] = block_m[h];
        partial_l[index] = block_l[h];
      }
      partial_a[index * 128 + d] = block_a[h];
    }
  }
  __threadfence();
  __syncthreads();
  int *counter = counters + (int64)slot * kv_heads + kv_head;
  if (threadIdx.x == 0) ticket = atomicAdd(counter, 1);
  __syncthreads();
  if (ticket != used - 1) return;
  __threadfence();
  // The last block of this (slot, kv_head): merge the splits.
#pragma unroll
  for (int h = 0; h < ATTN_GROUP; ++h) {
    if (h < group) {
      const int64 base = ((int64)slot * heads + kv_head * group + h) * splits;
      float top = negative_infinity;
      for (int i = 0; i < used; ++i) top = fmaxf(top, __ldcg(partial_m + base + i));
      float total = 0.0f, value = 0.0f;
      for (int i = 0; i < used; ++i) {
        const float f = exp2f(__ldcg(partial_m + base + i) - top);
        total += __ldcg(partial_l + base + i) * f;
        value += __ldcg(partial_a + (base + i) * 128 + d) * f;
      }
      out_row[h * 128 + d] = f2b(value / total);
    }
  }
  if (threadIdx.x == 0) *counter = 0;
  if constexpr (MASS) {
    // The splits' masses, rescaled with the same max correction as their sums (partial_m, partial_l).
    if (warp == 0) {
      float text = 0.0f, vision = 0.0f;
      if (lane < group) {
        const int64 base = ((int64)slot * heads + kv_head * group + lane) * splits;
        float top = negative_infinity;
        for (int i = 0; i < used; ++i) top = fmaxf(top, __ldcg(partial_m + base + i));
        float total = 0.0f;
        for (int i = 0; i < used; ++i) {
          const float f = exp2f(__ldcg(partial_m + base + i) - top);
          total += __ldcg(partial_l + base + i) * f;
          text += __ldcg(mass_partial + base + i) * f;
          vision += __ldcg(mass_partial + count + base + i) * f;
        }
        text /= total;
        vision /= total;
      }
      finish_mass(mass, mass_heads, mass_heads + (int64)slots * heads, slot, kv_head, heads, kv_heads, group, lane, text,
                  vision);
    }
  }
}

// The kernel with 8 warps per block (256 threads): more warps shorten each block's chain of
// dependent tile loads, which bounds the time with one block per slot and key/value head; 8 beat 4
// at 16, 64 and 256 slots (bench/kernel_times.py; docs/benchmarks.md).
extern "C" __global__ void __launch_bounds__(256) vlmrl_decode_attention8(
    const bf16 *qkv, int64 qkv_stride, bf16 *key_cache, bf16 *value_cache, const int64 *positions, int heads,
    int kv_heads, int max_len, int split, float scale_log2, float *partial, int *counters, bf16 *out, const bf16 *cos,
    const bf16 *sin) {
  decode_attention<8, false>(qkv, qkv_stride, key_cache, value_cache, positions, heads, kv_heads, max_len, split,
                             scale_log2, partial, counters, out, cos, sin, MassTarget{});
}

// vlmrl_decode_attention8 that also records the attention diagnostics of its layer (the rollout
// engine's compute_attention_metrics): while it holds each query head's probabilities it sums them
// over the keys flagged text and over those flagged image (the masks of MassTarget), rescaled with
// the online softmax's corrections and divided by its denominator at the end; the heads' average
// goes to the run's per-sequence buffers as vlmrl_attention_mass writes it. The probabilities are
// the ones the attention applies (float32 scores of the tensor-core product, not rounded to bf16).
// Held to 128 registers (two blocks per multiprocessor, as the plain kernel): unbounded it took 158
// without spills and was 1 us faster per launch at 64 slots but 12 us slower at 256 on the H100
// (bench/attention_mass.py).
extern "C" __global__ void __launch_bounds__(256, 2) vlmrl_decode_attention8_mass(
    const bf16 *qkv, int64 qkv_stride, bf16 *key_cache, bf16 *value_cache, const int64 *positions, int heads,
    int kv_heads, int max_len, int split, float scale_log2, float *partial, int *counters, bf16 *out, const bf16 *cos,
    const bf16 *sin, MassTarget mass) {
  decode_attention<8, true>(qkv, qkv_stride, key_cache, value_cache, positions, heads, kv_heads, max_len, split,
                            scale_log2, partial, counters, out, cos, sin, mass);
}

// The per-step inputs of a fused decode step, from the slots' device state: residual = the
// embedding rows of `tokens`; write position = min(length, max_len - 1), visible keys = write
// position + 1 (int64 and int32); cos/sin [slots, head_dim] (bf16) of the text position
// length + delta, which all three M-RoPE channels share in decoding, computed as the unfused ops
// do: float32 angle = position * inverse frequency, cos/sin in float32, rounded to bf16.
// Grid: slots blocks of 256 threads.
extern "C" __global__ void vlmrl_step_inputs(const int64 *tokens, const int64 *lengths, const int64 *deltas,
                                             const bf16 *embedding, const float *inverse_frequencies, int hidden,
                                             int head_dim, int max_len, bf16 *residual, int64 *write_positions,
                                             int64 *key_lengths, int *key_lengths32, bf16 *cos_out, bf16 *sin_out) {
  const int slot = blockIdx.x;
  const int64 length = lengths[slot];
  if (threadIdx.x == 0) {
    const int64 position = length < max_len - 1 ? length : max_len - 1;
    write_positions[slot] = position;
    key_lengths[slot] = position + 1;
    key_lengths32[slot] = (int)(position + 1);
  }
  const bf16 *row = embedding + tokens[slot] * (int64)hidden;
  bf16 *target = residual + (int64)slot * hidden;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) target[i] = row[i];
  const float position = (float)(length + deltas[slot]);
  const int half = head_dim / 2;
  for (int i = threadIdx.x; i < head_dim; i += blockDim.x) {
    const float angle = position * inverse_frequencies[i % half];
    cos_out[(int64)slot * head_dim + i] = f2b(cosf(angle));
    sin_out[(int64)slot * head_dim + i] = f2b(sinf(angle));
  }
}

// The rotary embedding of the vision tower's queries and keys as transformers computes it, in
// float32 with each op rounded on its own (no fused multiply-add), so the result is bit-identical
// to the separate ops: out = bf16(f * cos + rotate_half(f) * sin), f = float(x).
// qkv: [length, 3, heads, head_dim] bf16 (the fused projection's output), cos/sin: [length,
// head_dim] float32; q_out, k_out: [length, heads, head_dim] bf16.
extern "C" __global__ void vlmrl_vision_rotary(const bf16 *qkv, const float *cos, const float *sin, bf16 *q_out,
                                               bf16 *k_out, int64 length, int heads, int head_dim) {
  const int half = head_dim / 2;
  const int64 per_part = length * heads * head_dim;
  for (int64 index = (int64)blockIdx.x * blockDim.x + threadIdx.x; index < 2 * per_part;
       index += (int64)gridDim.x * blockDim.x) {
    const int which = index >= per_part;  // 0: q, 1: k
    const int64 within = index - which * per_part;
    const int i = (int)(within % head_dim);
    const int64 token_head = within / head_dim;
    const int64 token = token_head / heads;
    const int head = (int)(token_head - token * heads);
    const bf16 *x = qkv + ((token * 3 + which) * heads + head) * head_dim;
    const float f = b2f(x[i]);
    const float partner = i < half ? -b2f(x[i + half]) : b2f(x[i - half]);
    const float r = __fadd_rn(__fmul_rn(f, cos[token * head_dim + i]), __fmul_rn(partner, sin[token * head_dim + i]));
    (which ? k_out : q_out)[within] = f2b(r);
  }
}

// Token choice for one row of logits per block (blockDim.x = 1024), for the settings GRPO uses:
// suppression bias, temperature, no top-k / top-p / min-p / repetition penalty (the engine keeps
// the libtorch sampler for those). Scores s = (logit + bias) / temperature (no division when
// greedy); greedy takes the first index of the maximum, sampling takes the first token whose
// cumulative exp(s - max) exceeds uniform * total (inverse CDF, as the libtorch sampler); the
// log-prob is s[token] - max - log(total). logits: [rows, vocab] bf16; bias: [vocab] float or null.
//
// Every pass reads the row coalesced: the maximum with a block-strided loop; the total as 32 warp
// segments of consecutive tokens (lanes strided within a segment); the draw finds the segment
// whose running total passes the target, then the block scans that segment alone. The running
// sums are associated differently from the libtorch sampler's cumsum, so a draw within float
// rounding of a token boundary can pick the neighbouring token.
//
// Two ways to be called: plain (`step_state.sequence` null): uniforms[row] is the row's uniform and the
// choice goes to tokens[row] / log_probs[row]. Decode step (`step_state` = {slot_sequence,
// slot_step, slot_tokens, slot_lengths}, int64 [rows] each): row r is slot r, whose uniform is
// uniforms[sequence * columns + column] with column = min(step, columns - 1); the token and
// log-prob go to the same cell of tokens / log_probs ([sequences + 1, columns] tables); the
// slot's token becomes the choice and its length and step advance by one.
struct StepState { int64 *sequence, *step, *token, *length; };
extern "C" __global__ void __launch_bounds__(1024) vlmrl_sample(
    const bf16 *logits, const float *bias, const float *uniforms, float temperature, int vocab, int greedy,
    int64 *tokens, float *log_probs, StepState step_state, int columns) {
  __shared__ float warp_values[32];
  __shared__ int warp_indices[32];
  __shared__ float warp_sums[32];
  __shared__ float shared_max, shared_total, shared_target;
  __shared__ int shared_argmax, shared_token, segment_last_positive, chosen_warp;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int row_index = blockIdx.x;
  const bf16 *row = logits + (int64)row_index * vocab;
  auto score = [&](int i) {
    float s = b2f(row[i]);
    if (bias != 0) s += bias[i];
    return greedy ? s : s / temperature;
  };
  int64 cell = row_index;
  const bool stepping = step_state.sequence != 0;
  if (stepping) {
    const int64 step = step_state.step[row_index];
    cell = step_state.sequence[row_index] * columns + (step < columns - 1 ? step : columns - 1);
  }
  // 1. Maximum and its first index.
  float best = -__int_as_float(0x7f800000);
  int best_index = 0x7fffffff;
  for (int i = tid; i < vocab; i += 1024) {
    const float s = score(i);
    if (s > best) { best = s; best_index = i; }
  }
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, best, offset);
    const int other_index = __shfl_xor_sync(0xffffffffu, best_index, offset);
    if (other > best || (other == best && other_index < best_index)) { best = other; best_index = other_index; }
  }
  if (lane == 0) { warp_values[warp] = best; warp_indices[warp] = best_index; }
  __syncthreads();
  if (warp == 0) {
    best = warp_values[lane];
    best_index = warp_indices[lane];
    for (int offset = 16; offset > 0; offset >>= 1) {
      const float other = __shfl_xor_sync(0xffffffffu, best, offset);
      const int other_index = __shfl_xor_sync(0xffffffffu, best_index, offset);
      if (other > best || (other == best && other_index < best_index)) { best = other; best_index = other_index; }
    }
    if (lane == 0) { shared_max = best; shared_argmax = best_index; segment_last_positive = -1; shared_token = 0x7fffffff; }
  }
  __syncthreads();
  const float maximum = shared_max;
  // 2. Warp segments of consecutive tokens: their sums, then their running totals.
  const int segment = ((vocab + 1023) / 1024) * 32;
  const int segment_begin = min(warp * segment, vocab), segment_end = min(segment_begin + segment, vocab);
  float local = 0.0f;
  for (int i = segment_begin + lane; i < segment_end; i += 32) local += expf(score(i) - maximum);
  for (int offset = 16; offset > 0; offset >>= 1) local += __shfl_xor_sync(0xffffffffu, local, offset);
  if (lane == 0) warp_sums[warp] = local;
  __syncthreads();
  if (warp == 0) {
    const float mine = warp_sums[lane];
    float running = mine;
    for (int offset = 1; offset < 32; offset <<= 1) {
      const float up = __shfl_up_sync(0xffffffffu, running, offset);
      if (lane >= offset) running += up;
    }
    const float total = __shfl_sync(0xffffffffu, running, 31);
    if (greedy) {
      if (lane == 0) {
        shared_token = shared_argmax;
        shared_total = total;
      }
    } else {
      const float target = uniforms[cell] * total;
      // The first segment whose running total passes the target; past the end (rounding), the
      // last segment holding any probability.
      const unsigned passes = __ballot_sync(0xffffffffu, running > target);
      const unsigned positive = __ballot_sync(0xffffffffu, mine > 0.0f);
      const int chosen = passes ? __ffs(passes) - 1 : 31 - __clz(positive);
      const float before = __shfl_sync(0xffffffffu, running - mine, chosen);
      if (lane == 0) {
        chosen_warp = chosen;
        shared_total = total;
        shared_target = target - before;
      }
    }
  }
  __syncthreads();
  if (!greedy) {
    // 3. The chosen segment, scanned by the whole block: each thread a few consecutive tokens.
    const int begin = min(chosen_warp * segment, vocab), end = min(begin + segment, vocab);
    const int per_thread = (end - begin + 1023) / 1024;
    const int mine_begin = min(begin + tid * per_thread, end), mine_end = min(mine_begin + per_thread, end);
    float mine = 0.0f;
    int last_positive = -1;
    for (int i = mine_begin; i < mine_end; ++i) {
      const float e = expf(score(i) - maximum);
      mine += e;
      if (e > 0.0f) last_positive = i;
    }
    if (last_positive >= 0) atomicMax(&segment_last_positive, last_positive);
    float running = mine;
    for (int offset = 1; offset < 32; offset <<= 1) {
      const float up = __shfl_up_sync(0xffffffffu, running, offset);
      if (lane >= offset) running += up;
    }
    if (lane == 31) warp_sums[warp] = running;
    __syncthreads();
    if (warp == 0) {
      float total = warp_sums[lane];
      for (int offset = 1; offset < 32; offset <<= 1) {
        const float up = __shfl_up_sync(0xffffffffu, total, offset);
        if (lane >= offset) total += up;
      }
      warp_sums[lane] = total - warp_sums[lane];  // exclusive prefix of the warps
    }
    __syncthreads();
    const float target = shared_target;
    float before = warp_sums[warp] + running - mine;
    if (before <= target && target < before + mine) {
      // Summed one by one the run may round below before + mine: then the target lies in this
      // thread's last token with probability > 0.
      int token = last_positive;
      for (int i = mine_begin; i < mine_end; ++i) {
        before += expf(score(i) - maximum);
        if (before > target) { token = i; break; }
      }
      atomicMin(&shared_token, token);
    }
    __syncthreads();
  }
  if (tid == 0) {
    const int token = shared_token != 0x7fffffff ? shared_token : segment_last_positive;
    const float log_prob = greedy ? -logf(shared_total) : score(token) - maximum - logf(shared_total);
    tokens[cell] = token;
    log_probs[cell] = log_prob;
    if (stepping) {
      step_state.token[row_index] = token;
      step_state.length[row_index] += 1;
      step_state.step[row_index] += 1;
    }
  }
}

// Attention diagnostics of one recorded layer in a decode step (the rollout engine's
// compute_attention_metrics): for each slot, the heads-averaged attention probability of the step's
// query on the prompt's text keys and on its image keys, written straight into the run's per-sequence
// buffers out_text/out_vision [rows, columns, recorded] at row slot_sequence[slot], column
// min(slot_step[slot], columns - 1), entry `layer_column` (where the unfused path copies its step
// masses), so the step needs no other op and keeps the fused sampler. As the unfused ops: the score q.k is accumulated in float32 and
// rounded to bf16 (a bf16 matmul's output), then divided by sqrt(128) in float32; the softmax over
// keys 0 .. key_lengths[slot] - 1 runs in float32. `query` rows (stride query_stride) hold the
// rotated queries [heads, 128]; key_cache [slots, max_len, kv_heads, 128] (slot stride
// cache_stride); masks float32 [slots, mask_stride] (1 on text / image keys). One block of 256
// threads per slot; each thread takes whole keys (j = thread, thread + 256, ...), with the group's
// queries in shared memory, and keeps an online softmax (max, sum, text and image sums) per head.
extern "C" __global__ void __launch_bounds__(256) vlmrl_attention_mass(
    const bf16 *query, int64 query_stride, const bf16 *key_cache, int64 cache_stride, const int64 *key_lengths,
    const float *text_mask, const float *vision_mask, int64 mask_stride, int heads, int kv_heads, int max_len,
    float *out_text, float *out_vision, const int64 *slot_sequence, const int64 *slot_step, int columns, int recorded,
    int layer_column) {
  __shared__ float q[8][128];
  __shared__ float merged[8][8][4];
  const int slot = blockIdx.x, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int group = heads / kv_heads;
  const int length = (int)min((int64)max_len, key_lengths[slot]);
  const float inverse_scale = 1.0f / sqrtf(128.0f);
  const float negative_infinity = __int_as_float(0xff800000);
  float text_total = 0.0f, vision_total = 0.0f;
  for (int kv = 0; kv < kv_heads; ++kv) {
    __syncthreads();  // the previous head's queries and merged sums have been read
    for (int i = threadIdx.x; i < group * 128; i += blockDim.x) {
      q[i >> 7][i & 127] = b2f(query[(int64)slot * query_stride + (int64)kv * group * 128 + i]);
    }
    __syncthreads();
    float m[8], s[8], st[8], sv[8];
#pragma unroll
    for (int h = 0; h < 8; ++h) { m[h] = negative_infinity; s[h] = 0.0f; st[h] = 0.0f; sv[h] = 0.0f; }
    for (int j = threadIdx.x; j < length; j += blockDim.x) {
      const bf16 *key = key_cache + (int64)slot * cache_stride + ((int64)j * kv_heads + kv) * 128;
      float dot[8];
#pragma unroll
      for (int h = 0; h < 8; ++h) dot[h] = 0.0f;
#pragma unroll 4
      for (int c = 0; c < 16; ++c) {
        const bf16x8 k = load8(key + 8 * c);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          const float x = element(k, e);
#pragma unroll
          for (int h = 0; h < 8; ++h) dot[h] += q[h][8 * c + e] * x;
        }
      }
      const float tm = text_mask[(int64)slot * mask_stride + j], vm = vision_mask[(int64)slot * mask_stride + j];
#pragma unroll
      for (int h = 0; h < 8; ++h) {
        if (h < group) {
          const float score = b2f(f2b(dot[h])) * inverse_scale;
          const float top = fmaxf(m[h], score);
          const float keep = expf(m[h] - top), e = expf(score - top);
          s[h] = s[h] * keep + e;
          st[h] = st[h] * keep + e * tm;
          sv[h] = sv[h] * keep + e * vm;
          m[h] = top;
        }
      }
    }
    // Merge the threads: lanes of a warp by shuffles, then the warps in shared memory.
#pragma unroll
    for (int h = 0; h < 8; ++h) {
      if (h < group) {
        for (int offset = 16; offset > 0; offset >>= 1) {
          const float m2 = __shfl_xor_sync(0xffffffffu, m[h], offset), s2 = __shfl_xor_sync(0xffffffffu, s[h], offset);
          const float t2 = __shfl_xor_sync(0xffffffffu, st[h], offset), v2 = __shfl_xor_sync(0xffffffffu, sv[h], offset);
          const float top = fmaxf(m[h], m2);
          const float a = m[h] == negative_infinity ? 0.0f : expf(m[h] - top);
          const float b = m2 == negative_infinity ? 0.0f : expf(m2 - top);
          s[h] = s[h] * a + s2 * b;
          st[h] = st[h] * a + t2 * b;
          sv[h] = sv[h] * a + v2 * b;
          m[h] = top;
        }
        if (lane == 0) {
          merged[warp][h][0] = m[h];
          merged[warp][h][1] = s[h];
          merged[warp][h][2] = st[h];
          merged[warp][h][3] = sv[h];
        }
      }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      const int warps = blockDim.x >> 5;
      for (int h = 0; h < group; ++h) {
        float top = negative_infinity;
        for (int w = 0; w < warps; ++w) top = fmaxf(top, merged[w][h][0]);
        float total = 0.0f, text = 0.0f, vision = 0.0f;
        for (int w = 0; w < warps; ++w) {
          const float f = merged[w][h][0] == negative_infinity ? 0.0f : expf(merged[w][h][0] - top);
          total += merged[w][h][1] * f;
          text += merged[w][h][2] * f;
          vision += merged[w][h][3] * f;
        }
        text_total += text / total;
        vision_total += vision / total;
      }
    }
  }
  if (threadIdx.x == 0) {
    const int64 step = min(slot_step[slot], (int64)columns - 1);
    const int64 index = (slot_sequence[slot] * columns + step) * recorded + layer_column;
    out_text[index] = text_total / heads;
    out_vision[index] = vision_total / heads;
  }
}
