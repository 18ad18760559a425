// Fused decode kernels (csrc/decode_kernels.cu), part of libvlmrl_cuda.so. The CUDA source is
// embedded at build time and compiled at run time with NVRTC for the device in use; the module is
// loaded and launched through the driver API on libtorch's current stream, so the launches are
// captured by CUDA graphs like any libtorch kernel. NVRTC (libnvrtc.so.13, shipped with PyTorch's
// CUDA wheels) and the driver (libcuda.so.1) are dlopen-ed: nothing here is needed at build time
// beyond the CUDA runtime headers. The exported functions' C types are declared in vlmrl_cuda.h.
#define VLMRL_CUDA_IMPLEMENTATION
#include "vlmrl_cuda.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <cmath>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

// The handle layout of ctorch.cpp: a vt_tensor from the Swift side points at one of these.
struct vt_tensor_opaque {
  at::Tensor tensor;
};

namespace {

const char *kernel_source =
#include "decode_kernels.inc"
    ;

thread_local std::string kernel_error;
thread_local bool kernel_has_error = false;
void fail(const std::string &message) {
  kernel_error = message;
  kernel_has_error = true;
}

// NVRTC entry points (declared here: the header is not part of the runtime packages).
typedef int nvrtcResult;
typedef struct _nvrtcProgram *nvrtcProgram;
struct NVRTC {
  nvrtcResult (*create)(nvrtcProgram *, const char *, const char *, int, const char *const *, const char *const *);
  nvrtcResult (*compile)(nvrtcProgram, int, const char *const *);
  nvrtcResult (*log_size)(nvrtcProgram, size_t *);
  nvrtcResult (*log)(nvrtcProgram, char *);
  nvrtcResult (*cubin_size)(nvrtcProgram, size_t *);
  nvrtcResult (*cubin)(nvrtcProgram, char *);
  nvrtcResult (*destroy)(nvrtcProgram *);
};
struct Driver {
  CUresult (*module_load)(CUmodule *, const void *);
  CUresult (*get_function)(CUfunction *, CUmodule, const char *);
  CUresult (*launch)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream,
                     void **, void **);
  CUresult (*error_string)(CUresult, const char **);
};

template <typename F>
void bind(void *library, const char *name, F &slot) {
  void *symbol = dlsym(library, name);
  if (symbol == nullptr) throw std::runtime_error(std::string("missing symbol ") + name);
  slot = reinterpret_cast<F>(symbol);
}

struct Kernels {
  CUfunction add_rmsnorm = nullptr, add_rmsnorm_row = nullptr, rotary_kv = nullptr, swiglu = nullptr,
             swiglu8 = nullptr, sample = nullptr, decode_attention8 = nullptr, step_inputs = nullptr,
             vision_rotary = nullptr, attention_mass = nullptr, decode_attention8_mass = nullptr;
};

// The sampler's decode-step state (csrc/decode_kernels.cu, StepState), passed by value.
struct StepState {
  int64_t *sequence, *step, *token, *length;
};

// Where vlmrl_decode_attention8_mass reads its masks and writes the masses (csrc/decode_kernels.cu,
// MassTarget), passed by value.
struct MassTarget {
  const float *text_mask, *vision_mask;
  float *out_text, *out_vision;
  const int64_t *sequence, *step;
  float *workspace;
  int *counters;
  int64_t mask_stride;
  int columns, recorded, column;
};

std::mutex load_mutex;
Driver driver;
bool driver_ready = false;
Kernels loaded[64];
bool device_ready[64] = {};

void load_driver() {
  if (driver_ready) return;
  void *library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (library == nullptr) throw std::runtime_error(std::string("libcuda.so.1: ") + dlerror());
  bind(library, "cuModuleLoadData", driver.module_load);
  bind(library, "cuModuleGetFunction", driver.get_function);
  bind(library, "cuLaunchKernel", driver.launch);
  bind(library, "cuGetErrorString", driver.error_string);
  driver_ready = true;
}

std::vector<char> compile(int major, int minor) {
  void *library = dlopen("libnvrtc.so.13", RTLD_NOW | RTLD_GLOBAL);
  if (library == nullptr) library = dlopen("libnvrtc.so", RTLD_NOW | RTLD_GLOBAL);
  if (library == nullptr) {
    throw std::runtime_error(std::string("NVRTC not found (libnvrtc.so.13; it ships in the nvidia-cuda-nvrtc wheel "
                                         "next to PyTorch's CUDA libraries): ") + dlerror());
  }
  NVRTC nvrtc;
  bind(library, "nvrtcCreateProgram", nvrtc.create);
  bind(library, "nvrtcCompileProgram", nvrtc.compile);
  bind(library, "nvrtcGetProgramLogSize", nvrtc.log_size);
  bind(library, "nvrtcGetProgramLog", nvrtc.log);
  bind(library, "nvrtcGetCUBINSize", nvrtc.cubin_size);
  bind(library, "nvrtcGetCUBIN", nvrtc.cubin);
  bind(library, "nvrtcDestroyProgram", nvrtc.destroy);
  nvrtcProgram program = nullptr;
  if (nvrtc.create(&program, kernel_source, "decode_kernels.cu", 0, nullptr, nullptr) != 0) {
    throw std::runtime_error("nvrtcCreateProgram failed");
  }
  std::string arch = "--gpu-architecture=sm_" + std::to_string(major) + std::to_string(minor);
  const char *options[] = {arch.c_str(), "--std=c++17"};
  nvrtcResult status = nvrtc.compile(program, 2, options);
  if (status != 0) {
    size_t size = 0;
    nvrtc.log_size(program, &size);
    std::string log(size, '\0');
    nvrtc.log(program, log.data());
    nvrtc.destroy(&program);
    throw std::runtime_error("NVRTC could not compile the decode kernels for " + arch + ":\n" + log);
  }
  size_t size = 0;
  nvrtc.cubin_size(program, &size);
  std::vector<char> cubin(size);
  nvrtc.cubin(program, cubin.data());
  nvrtc.destroy(&program);
  return cubin;
}

void check(CUresult result, const char *what) {
  if (result == CUDA_SUCCESS) return;
  const char *message = nullptr;
  driver.error_string(result, &message);
  throw std::runtime_error(std::string(what) + ": " + (message ? message : "unknown CUDA driver error"));
}

const Kernels &kernels(int device) {
  if (device < 0 || device >= 64) throw std::runtime_error("device index out of range");
  std::lock_guard<std::mutex> lock(load_mutex);
  if (!device_ready[device]) {
    load_driver();
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    C10_CUDA_CHECK(cudaFree(nullptr));  // makes the primary context current on this thread
    cudaDeviceProp props;
    C10_CUDA_CHECK(cudaGetDeviceProperties(&props, device));
    std::vector<char> cubin = compile(props.major, props.minor);
    CUmodule module = nullptr;
    check(driver.module_load(&module, cubin.data()), "cuModuleLoadData");
    Kernels k;
    const std::pair<CUfunction *, const char *> entries[] = {
        {&k.add_rmsnorm, "vlmrl_add_rmsnorm"}, {&k.add_rmsnorm_row, "vlmrl_add_rmsnorm_row"},
        {&k.rotary_kv, "vlmrl_rotary_kv"},     {&k.swiglu, "vlmrl_swiglu"},
        {&k.swiglu8, "vlmrl_swiglu8"},         {&k.sample, "vlmrl_sample"},
        {&k.decode_attention8, "vlmrl_decode_attention8"}, {&k.step_inputs, "vlmrl_step_inputs"},
        {&k.vision_rotary, "vlmrl_vision_rotary"}, {&k.attention_mass, "vlmrl_attention_mass"},
        {&k.decode_attention8_mass, "vlmrl_decode_attention8_mass"}};
    for (const auto &[slot, name] : entries) check(driver.get_function(slot, module, name), name);
    loaded[device] = k;
    device_ready[device] = true;
  }
  return loaded[device];
}

struct Grid {
  unsigned x, y = 1, z = 1;
};

void launch(CUfunction function, int device, Grid grid, unsigned block, unsigned shared, void **arguments) {
  CUstream stream = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).stream();
  check(driver.launch(function, grid.x, grid.y, grid.z, block, 1, 1, shared, stream, arguments, nullptr),
        "cuLaunchKernel");
}

void require_vector(const at::Tensor &t, at::ScalarType type, const char *name, int64_t length) {
  if (!t.is_cuda() || t.scalar_type() != type || !t.is_contiguous() || t.numel() != length) {
    throw std::runtime_error(std::string(name) + " must be a contiguous " + c10::toString(type) + " CUDA tensor of " +
                             std::to_string(length));
  }
}
void require_long(const at::Tensor &t, const char *name, int64_t length) { require_vector(t, at::kLong, name, length); }
void require_float(const at::Tensor &t, const char *name, int64_t length) { require_vector(t, at::kFloat, name, length); }

void require(const at::Tensor &t, const char *name, int64_t dim) {
  if (!t.is_cuda()) throw std::runtime_error(std::string(name) + " must be a CUDA tensor");
  if (t.scalar_type() != at::kBFloat16) throw std::runtime_error(std::string(name) + " must be bfloat16");
  if (!t.is_contiguous()) throw std::runtime_error(std::string(name) + " must be contiguous");
  if (dim >= 0 && t.dim() != dim) {
    throw std::runtime_error(std::string(name) + " must have " + std::to_string(dim) + " dimensions");
  }
}

void launch_sample(const at::Tensor &l, vt_tensor bias, const at::Tensor &uniforms, double temperature,
                   const at::Tensor &tokens, const at::Tensor &log_probs, StepState state, int columns) {
  int vocab = static_cast<int>(l.size(1));
  void *bias_pointer = nullptr;
  if (bias != nullptr) {
    require_float(bias->tensor, "bias", vocab);
    bias_pointer = bias->tensor.data_ptr();
  }
  const int device = l.get_device();
  void *l_pointer = l.data_ptr(), *u_pointer = uniforms.data_ptr(), *t_pointer = tokens.data_ptr();
  void *p_pointer = log_probs.data_ptr();
  float temp = static_cast<float>(temperature);
  int greedy = temperature <= 0 ? 1 : 0;
  void *arguments[] = {&l_pointer, &bias_pointer, &u_pointer, &temp, &vocab, &greedy, &t_pointer, &p_pointer,
                       &state, &columns};
  if (l.size(0) > 0) launch(kernels(device).sample, device, {static_cast<unsigned>(l.size(0))}, 1024, 0, arguments);
}

// The attention-diagnostics buffers that vlmrl_attention_mass and vlmrl_decode_attention8_mass
// share: float32 masks [slots, >= max_len] (unit column stride, one row stride), contiguous float32
// outputs [rows, columns, recorded] with `layer_column` in range, int64 [slots] sequences and steps.
void require_mass_buffers(const at::Tensor &text_mask, const at::Tensor &vision_mask, const at::Tensor &out_text,
                          const at::Tensor &out_vision, vt_tensor slot_sequence, vt_tensor slot_step, int64_t slots,
                          int max_len, int layer_column) {
  require_long(slot_sequence->tensor, "slot sequences", slots);
  require_long(slot_step->tensor, "slot steps", slots);
  for (const at::Tensor *t : {&text_mask, &vision_mask}) {
    if (!t->is_cuda() || t->scalar_type() != at::kFloat || t->dim() != 2 || t->size(0) != slots || t->stride(1) != 1) {
      throw std::runtime_error("masks must be float32 CUDA [slots, n] with unit column stride");
    }
  }
  if (text_mask.size(1) < max_len || vision_mask.size(1) < max_len || text_mask.stride(0) != vision_mask.stride(0)) {
    throw std::runtime_error("masks must cover max_len keys with one row stride");
  }
  for (const at::Tensor *t : {&out_text, &out_vision}) {
    if (!t->is_cuda() || t->scalar_type() != at::kFloat || t->dim() != 3 || !t->is_contiguous()) {
      throw std::runtime_error("outputs must be contiguous float32 CUDA [rows, columns, recorded]");
    }
  }
  if (!out_vision.sizes().equals(out_text.sizes()) || layer_column < 0 || layer_column >= out_text.size(2)) {
    throw std::runtime_error("outputs must be alike with the layer's column in range");
  }
}

// The attention-diagnostics part of a vlmrl_decode_attention8_mass launch: `target` with the masks
// and outputs (checked by the caller), and its float32 workspace (at least 2 * slots * heads *
// (splits + 1)) and int32 counters ([slots], zero), checked by decode_attention.
struct MassLaunch {
  MassTarget target;
  const at::Tensor &workspace, &counters;
};

// The launcher of vlmrl_decode_attention8 (vtc_decode_attention), or of its attention-diagnostics
// variant vlmrl_decode_attention8_mass when `mass` is given.
at::Tensor decode_attention(vt_tensor qkv, vt_tensor key_cache, vt_tensor value_cache, vt_tensor positions, int heads,
                            int kv_heads, int split, vt_tensor partial, vt_tensor counters, vt_tensor cos, vt_tensor sin,
                            const MassLaunch *mass) {
  const at::Tensor &x = qkv->tensor, &kc = key_cache->tensor, &vc = value_cache->tensor;
  if (!x.is_cuda() || x.scalar_type() != at::kBFloat16 || x.dim() != 2 || x.stride(1) != 1 || x.stride(0) % 8 != 0) {
    throw std::runtime_error("qkv must be a bfloat16 CUDA matrix with unit column stride and 16-byte aligned rows");
  }
  require(kc, "key cache", 4);
  require(vc, "value cache", 4);
  const int64_t slots = x.size(0);
  if (kc.size(0) != slots || kc.size(2) != kv_heads || kc.size(3) != 128 || !vc.sizes().equals(kc.sizes())) {
    throw std::runtime_error("caches must be [slots, max_len, kv_heads, 128]");
  }
  if (kv_heads <= 0 || heads % kv_heads != 0 || heads / kv_heads > 8) {
    throw std::runtime_error("decode attention takes at most 8 query heads per key/value head");
  }
  if (x.size(1) < static_cast<int64_t>(heads) * 128) throw std::runtime_error("qkv rows are narrower than the queries");
  if (split <= 0 || split % 32 != 0) throw std::runtime_error("split must be a positive multiple of 32");
  int max_len = static_cast<int>(kc.size(1));
  const int64_t splits = (max_len + split - 1) / split;
  require_long(positions->tensor, "positions", slots);
  if (!partial->tensor.is_cuda() || partial->tensor.scalar_type() != at::kFloat || !partial->tensor.is_contiguous() ||
      partial->tensor.numel() < slots * heads * splits * 130) {
    throw std::runtime_error("partial must be a contiguous float32 CUDA tensor of slots * heads * splits * 130");
  }
  const at::Tensor &c = counters->tensor;
  require_vector(c, at::kInt, "counters", slots * kv_heads);
  void *cos_pointer = nullptr, *sin_pointer = nullptr;
  if ((cos == nullptr) != (sin == nullptr)) throw std::runtime_error("give both cos and sin or neither");
  if (cos != nullptr) {
    require(cos->tensor, "cos", 2);
    require(sin->tensor, "sin", 2);
    if (cos->tensor.size(0) != slots || cos->tensor.size(1) != 128 || !sin->tensor.sizes().equals(cos->tensor.sizes())) {
      throw std::runtime_error("cos/sin must be [slots, 128]");
    }
    if (x.size(1) < static_cast<int64_t>(heads + 2 * kv_heads) * 128) {
      throw std::runtime_error("qkv rows must hold the queries, keys and values to rotate");
    }
    cos_pointer = cos->tensor.data_ptr();
    sin_pointer = sin->tensor.data_ptr();
  }
  at::Tensor out = at::empty({slots, static_cast<int64_t>(heads) * 128}, x.options());
  const int device = x.get_device();
  void *x_pointer = x.data_ptr(), *k_pointer = kc.data_ptr(), *v_pointer = vc.data_ptr();
  void *p_pointer = positions->tensor.data_ptr(), *w_pointer = partial->tensor.data_ptr(), *c_pointer = c.data_ptr();
  void *o_pointer = out.data_ptr();
  int64_t stride = x.stride(0);
  float scale_log2 = static_cast<float>(1.4426950408889634 / std::sqrt(128.0));
  MassTarget target = mass != nullptr ? mass->target : MassTarget{};
  if (mass != nullptr) {
    const at::Tensor &w = mass->workspace;
    if (!w.is_cuda() || w.scalar_type() != at::kFloat || !w.is_contiguous() || w.numel() < 2 * slots * heads * (splits + 1)) {
      throw std::runtime_error("mass workspace must be a contiguous float32 CUDA tensor of 2 * slots * heads * (splits + 1)");
    }
    require_vector(mass->counters, at::kInt, "mass counters", slots);
    target.workspace = w.data_ptr<float>();
    target.counters = mass->counters.data_ptr<int>();
  }
  // The plain kernel takes the first 15 (the driver reads as many as the kernel declares).
  void *arguments[] = {&x_pointer, &stride, &k_pointer, &v_pointer, &p_pointer, &heads, &kv_heads, &max_len,
                       &split, &scale_log2, &w_pointer, &c_pointer, &o_pointer, &cos_pointer, &sin_pointer, &target};
  if (slots > 0) {
    // 8 warps per block: faster than 4 at 16, 64 and 256 slots on the H200 (bench/kernel_times.py).
    const Kernels &k = kernels(device);
    launch(mass != nullptr ? k.decode_attention8_mass : k.decode_attention8, device,
           {static_cast<unsigned>(splits), static_cast<unsigned>(kv_heads), static_cast<unsigned>(slots)}, 256, 0, arguments);
  }
  return out;
}

#define VTK_TRY(failure, ...)            \
  try {                                  \
    __VA_ARGS__                          \
  } catch (const std::exception &e) {    \
    fail(e.what());                      \
    return failure;                      \
  } catch (...) {                        \
    fail("unknown C++ exception");       \
    return failure;                      \
  }

}  // namespace

extern "C" {

const char *vtc_kernels_last_error(void) { return kernel_has_error ? kernel_error.c_str() : nullptr; }

/// Compiles and loads the decode kernels for `device` (once). 0 on success.
int vtc_kernels_load(int device) {
  VTK_TRY(-1, {
    kernels(device);
    return 0;
  })
}

/// residual += delta (when delta is not null), returns weight * rmsnorm(residual) as Qwen2RMSNorm.
/// residual, delta: [rows, dim]; weight: [dim]; all bfloat16 contiguous on one GPU.
vt_tensor vtc_add_rmsnorm(vt_tensor residual, vt_tensor delta, vt_tensor weight, double eps) {
  VTK_TRY(nullptr, {
    const at::Tensor &r = residual->tensor;
    require(r, "residual", 2);
    require(weight->tensor, "weight", 1);
    const int64_t rows = r.size(0), dim = r.size(1);
    if (weight->tensor.size(0) != dim) throw std::runtime_error("weight length differs from the row width");
    void *delta_pointer = nullptr;
    if (delta != nullptr) {
      require(delta->tensor, "delta", 2);
      if (!delta->tensor.sizes().equals(r.sizes())) throw std::runtime_error("delta shape differs from residual");
      delta_pointer = delta->tensor.data_ptr();
    }
    at::Tensor out = at::empty_like(r);
    const int device = r.get_device();
    void *residual_pointer = r.data_ptr(), *weight_pointer = weight->tensor.data_ptr(), *out_pointer = out.data_ptr();
    int width = static_cast<int>(dim);
    float epsilon = static_cast<float>(eps);
    if (rows > 0 && dim % 8 == 0 && dim <= 8192) {
      // One block per row, one 16-byte chunk per thread (vlmrl_add_rmsnorm_row).
      void *arguments[] = {&residual_pointer, &delta_pointer, &weight_pointer, &out_pointer, &width, &epsilon};
      launch(kernels(device).add_rmsnorm_row, device, {static_cast<unsigned>(rows)}, static_cast<unsigned>((dim / 8 + 31) / 32 * 32),
             0, arguments);
    } else if (rows > 0) {
      void *arguments[] = {&residual_pointer, &delta_pointer, &weight_pointer, &out_pointer, &width, &epsilon};
      launch(kernels(device).add_rmsnorm, device, {static_cast<unsigned>(rows)}, 256,
             static_cast<unsigned>(dim * sizeof(float)), arguments);
    }
    return new vt_tensor_opaque{std::move(out)};
  })
}

/// Rotates q and k of the fused projection `qkv` [slots, (heads + 2 kv_heads) * head_dim] in place
/// (q stays in qkv) and writes k and v into the caches [slots, max_len, kv_heads, head_dim] at
/// `positions` [slots] (int64). cos/sin: [slots, head_dim].
int vtc_rotary_kv(vt_tensor qkv, vt_tensor cos, vt_tensor sin, vt_tensor key_cache, vt_tensor value_cache,
                  vt_tensor positions, int heads, int kv_heads, int head_dim) {
  VTK_TRY(-1, {
    const at::Tensor &x = qkv->tensor;
    require(x, "qkv", 2);
    require(cos->tensor, "cos", 2);
    require(sin->tensor, "sin", 2);
    require(key_cache->tensor, "key cache", 4);
    require(value_cache->tensor, "value cache", 4);
    const int64_t slots = x.size(0);
    if (x.size(1) != static_cast<int64_t>(heads + 2 * kv_heads) * head_dim) throw std::runtime_error("qkv width");
    if (cos->tensor.size(0) != slots || cos->tensor.size(1) != head_dim || !sin->tensor.sizes().equals(cos->tensor.sizes())) {
      throw std::runtime_error("cos/sin must be [slots, head_dim]");
    }
    const at::Tensor &kc = key_cache->tensor;
    if (kc.size(0) != slots || kc.size(2) != kv_heads || kc.size(3) != head_dim ||
        !value_cache->tensor.sizes().equals(kc.sizes())) {
      throw std::runtime_error("caches must be [slots, max_len, kv_heads, head_dim]");
    }
    const at::Tensor &p = positions->tensor;
    require_long(p, "positions", slots);
    const int device = x.get_device();
    void *x_pointer = x.data_ptr(), *cos_pointer = cos->tensor.data_ptr(), *sin_pointer = sin->tensor.data_ptr();
    void *k_pointer = kc.data_ptr(), *v_pointer = value_cache->tensor.data_ptr(), *p_pointer = p.data_ptr();
    int max_len = static_cast<int>(kc.size(1));
    void *arguments[] = {&x_pointer, &cos_pointer, &sin_pointer, &k_pointer, &v_pointer, &p_pointer,
                         &heads, &kv_heads, &head_dim, &max_len};
    if (slots > 0) {
      launch(kernels(device).rotary_kv, device, {static_cast<unsigned>(heads + 2 * kv_heads), static_cast<unsigned>(slots)},
             static_cast<unsigned>(std::max(32, std::min(head_dim / 2, 1024))), 0, arguments);
    }
    return 0;
  })
}

/// silu(gate) * up for gate_up [rows, 2 * inner] (gate first): returns [rows, inner].
vt_tensor vtc_swiglu(vt_tensor gate_up) {
  VTK_TRY(nullptr, {
    const at::Tensor &x = gate_up->tensor;
    require(x, "gate_up", 2);
    if (x.size(1) % 2 != 0) throw std::runtime_error("gate_up width must be even");
    int64_t rows = x.size(0);
    int inner = static_cast<int>(x.size(1) / 2);
    at::Tensor out = at::empty({rows, static_cast<int64_t>(inner)}, x.options());
    const int device = x.get_device();
    void *x_pointer = x.data_ptr(), *out_pointer = out.data_ptr();
    void *arguments[] = {&x_pointer, &out_pointer, &rows, &inner};
    const bool vectorised = inner % 8 == 0;
    const int64_t total = vectorised ? rows * inner / 8 : rows * inner;
    if (total > 0) {
      unsigned blocks = static_cast<unsigned>(std::min<int64_t>((total + 255) / 256, 132 * 16));
      launch(vectorised ? kernels(device).swiglu8 : kernels(device).swiglu, device, {blocks}, 256, 0, arguments);
    }
    return new vt_tensor_opaque{std::move(out)};
  })
}

/// One token per row of `logits` [rows, vocab] (bf16): greedy (temperature <= 0) or inverse-CDF
/// sampling with `uniforms` [rows] (float), after adding `bias` [vocab] (float, nullable) and dividing
/// by the temperature. Writes int64 `tokens` [rows] and float `log_probs` [rows].
int vtc_sample(vt_tensor logits, vt_tensor bias, vt_tensor uniforms, double temperature, vt_tensor tokens,
               vt_tensor log_probs) {
  VTK_TRY(-1, {
    const at::Tensor &l = logits->tensor;
    require(l, "logits", 2);
    const int64_t rows = l.size(0);
    require_float(uniforms->tensor, "uniforms", rows);
    require_float(log_probs->tensor, "log_probs", rows);
    require_long(tokens->tensor, "tokens", rows);
    launch_sample(l, bias, uniforms->tensor, temperature, tokens->tensor, log_probs->tensor, StepState{}, 0);
    return 0;
  })
}

/// The sampler as the last kernel of a decode step: row r of `logits` is slot r; its uniform is
/// `uniforms`[sequence, min(step, columns - 1)] (float [sequences + 1, columns]) and its token and
/// log-prob go to the same cell of `tokens` (int64) / `log_probs` (float) of that shape; then the
/// slot's token becomes the choice and its length and step advance (all int64 [rows]).
int vtc_sample_step(vt_tensor logits, vt_tensor bias, vt_tensor uniforms, double temperature, vt_tensor slot_sequence,
                    vt_tensor slot_step, vt_tensor slot_tokens, vt_tensor slot_lengths, vt_tensor tokens,
                    vt_tensor log_probs) {
  VTK_TRY(-1, {
    const at::Tensor &l = logits->tensor;
    require(l, "logits", 2);
    const int64_t rows = l.size(0);
    const at::Tensor &u = uniforms->tensor;
    if (u.dim() != 2) throw std::runtime_error("uniforms must be [sequences + 1, columns]");
    require_float(u, "uniforms", u.numel());
    require_float(log_probs->tensor, "log_probs", u.numel());
    require_long(tokens->tensor, "tokens", u.numel());
    if (!log_probs->tensor.sizes().equals(u.sizes()) || !tokens->tensor.sizes().equals(u.sizes())) {
      throw std::runtime_error("tokens and log_probs must have the uniforms' shape");
    }
    StepState state;
    const std::pair<vt_tensor, const char *> parts[] = {
        {slot_sequence, "slot sequence"}, {slot_step, "slot step"}, {slot_tokens, "slot tokens"}, {slot_lengths, "slot lengths"}};
    int64_t *pointers[4];
    for (int i = 0; i < 4; ++i) {
      require_long(parts[i].first->tensor, parts[i].second, rows);
      pointers[i] = parts[i].first->tensor.data_ptr<int64_t>();
    }
    state = StepState{pointers[0], pointers[1], pointers[2], pointers[3]};
    launch_sample(l, bias, u, temperature, tokens->tensor, log_probs->tensor, state, static_cast<int>(u.size(1)));
    return 0;
  })
}

/// Decode attention over the slot cache (vlmrl_decode_attention): the rotated queries at the head
/// of each `qkv` row [slots, >= heads * 128], caches [slots, max_len, kv_heads, 128], `positions`
/// [slots] int64 (keys 0...positions are visible). `split` keys per block; `partial` a float
/// workspace of at least slots * heads * splits * 130 with splits = ceil(max_len / split);
/// `counters` int32 [slots * kv_heads], zero. `cos`/`sin` [slots, 128] bf16, or both null: given,
/// the kernel also rotates the queries (in registers) and the step's key and writes the key and
/// value into the caches at `positions` (vtc_rotary_kv's work); null, that has been done. Returns
/// [slots, heads * 128] bf16.
vt_tensor vtc_decode_attention(vt_tensor qkv, vt_tensor key_cache, vt_tensor value_cache, vt_tensor positions, int heads,
                               int kv_heads, int split, vt_tensor partial, vt_tensor counters, vt_tensor cos, vt_tensor sin) {
  VTK_TRY(nullptr, {
    at::Tensor out = decode_attention(qkv, key_cache, value_cache, positions, heads, kv_heads, split, partial, counters, cos,
                                      sin, nullptr);
    return new vt_tensor_opaque{std::move(out)};
  })
}

/// vtc_decode_attention that also records its layer's attention diagnostics (vlmrl_decode_attention8_mass,
/// the fused form of vtc_attention_mass): the heads-averaged attention probability of each slot's
/// query on text keys and on image keys (`text_mask`/`vision_mask` float32 [slots, >= max_len]),
/// written into `out_text`/`out_vision` float32 [rows, columns, recorded] at (slot_sequence[slot],
/// min(slot_step[slot], columns - 1), layer_column) as vtc_attention_mass writes them.
/// `mass_workspace` float32 of 2 * slots * heads * (splits + 1), `mass_counters` int32 [slots]
/// zeros (left zero).
vt_tensor vtc_decode_attention_mass(vt_tensor qkv, vt_tensor key_cache, vt_tensor value_cache, vt_tensor positions,
                                    int heads, int kv_heads, int split, vt_tensor partial, vt_tensor counters, vt_tensor cos,
                                    vt_tensor sin, vt_tensor text_mask, vt_tensor vision_mask, vt_tensor out_text,
                                    vt_tensor out_vision, vt_tensor slot_sequence, vt_tensor slot_step, int layer_column,
                                    vt_tensor mass_workspace, vt_tensor mass_counters) {
  VTK_TRY(nullptr, {
    const at::Tensor &tm = text_mask->tensor, &vm = vision_mask->tensor, &ot = out_text->tensor, &ov = out_vision->tensor;
    const at::Tensor &kc = key_cache->tensor;
    if (kc.dim() != 4) throw std::runtime_error("caches must be [slots, max_len, kv_heads, 128]");
    require_mass_buffers(tm, vm, ot, ov, slot_sequence, slot_step, kc.size(0), static_cast<int>(kc.size(1)), layer_column);
    MassTarget target{tm.data_ptr<float>(), vm.data_ptr<float>(), ot.data_ptr<float>(), ov.data_ptr<float>(),
                      slot_sequence->tensor.data_ptr<int64_t>(), slot_step->tensor.data_ptr<int64_t>(), nullptr, nullptr,
                      tm.stride(0), static_cast<int>(ot.size(1)), static_cast<int>(ot.size(2)), layer_column};
    MassLaunch mass{target, mass_workspace->tensor, mass_counters->tensor};
    at::Tensor out = decode_attention(qkv, key_cache, value_cache, positions, heads, kv_heads, split, partial, counters, cos,
                                      sin, &mass);
    return new vt_tensor_opaque{std::move(out)};
  })
}

/// Attention diagnostics of one recorded layer (vlmrl_attention_mass): the heads-averaged attention
/// probability of each slot's query (the rotated queries at the head of each `qkv` row) on text and
/// on image keys among keys 0 .. key_lengths - 1 of `key_cache` [slots, max_len, kv_heads, 128],
/// with float32 masks [slots, >= max_len], written into the float32 per-sequence buffers
/// `out_text`/`out_vision` [rows, columns, recorded] at (slot_sequence[slot],
/// min(slot_step[slot], columns - 1), layer_column); slot_sequence/slot_step int64 [slots].
int vtc_attention_mass(vt_tensor qkv, vt_tensor key_cache, vt_tensor key_lengths, vt_tensor text_mask,
                       vt_tensor vision_mask, int heads, int kv_heads, vt_tensor out_text, vt_tensor out_vision,
                       vt_tensor slot_sequence, vt_tensor slot_step, int layer_column) {
  VTK_TRY(-1, {
    const at::Tensor &x = qkv->tensor, &kc = key_cache->tensor;
    if (!x.is_cuda() || x.scalar_type() != at::kBFloat16 || x.dim() != 2 || x.stride(1) != 1) {
      throw std::runtime_error("qkv must be a bfloat16 CUDA matrix with unit column stride");
    }
    const int64_t slots = x.size(0);
    if (!kc.is_cuda() || kc.scalar_type() != at::kBFloat16 || kc.dim() != 4 || kc.size(0) != slots ||
        kc.size(2) != kv_heads || kc.size(3) != 128 || kc.stride(3) != 1 || kc.stride(2) != 128 ||
        kc.stride(1) != static_cast<int64_t>(kv_heads) * 128) {
      throw std::runtime_error("key cache must be bfloat16 [slots, max_len, kv_heads, 128] with dense rows");
    }
    if (kv_heads <= 0 || heads % kv_heads != 0 || heads / kv_heads > 8) {
      throw std::runtime_error("attention mass takes at most 8 query heads per key/value head");
    }
    if (x.size(1) < static_cast<int64_t>(heads) * 128) throw std::runtime_error("qkv rows are narrower than the queries");
    require_long(key_lengths->tensor, "key lengths", slots);
    int max_len = static_cast<int>(kc.size(1));
    const at::Tensor &tm = text_mask->tensor, &vm = vision_mask->tensor, &ot = out_text->tensor, &ov = out_vision->tensor;
    require_mass_buffers(tm, vm, ot, ov, slot_sequence, slot_step, slots, max_len, layer_column);
    const int device = x.get_device();
    void *x_pointer = x.data_ptr(), *k_pointer = kc.data_ptr(), *l_pointer = key_lengths->tensor.data_ptr();
    void *tm_pointer = tm.data_ptr(), *vm_pointer = vm.data_ptr(), *ot_pointer = ot.data_ptr(), *ov_pointer = ov.data_ptr();
    void *sq_pointer = slot_sequence->tensor.data_ptr(), *st_pointer = slot_step->tensor.data_ptr();
    int64_t query_stride = x.stride(0), cache_stride = kc.stride(0), mask_stride = tm.stride(0);
    int columns = static_cast<int>(ot.size(1)), recorded = static_cast<int>(ot.size(2));
    void *arguments[] = {&x_pointer, &query_stride, &k_pointer, &cache_stride, &l_pointer, &tm_pointer, &vm_pointer,
                         &mask_stride, &heads, &kv_heads, &max_len, &ot_pointer, &ov_pointer, &sq_pointer, &st_pointer,
                         &columns, &recorded, &layer_column};
    if (slots > 0) launch(kernels(device).attention_mass, device, {static_cast<unsigned>(slots)}, 256, 0, arguments);
    return 0;
  })
}

/// The per-step inputs of a fused decode step (vlmrl_step_inputs): from the slots' `tokens`,
/// `lengths` and rope `deltas` (int64 [slots]), writes `residual` [slots, hidden] (the tokens'
/// rows of `embedding` [vocab, hidden]), `write_positions`/`key_lengths` (int64) and
/// `key_lengths32` (int32) [slots], and `cos`/`sin` [slots, head_dim] from `inverse_frequencies`
/// (float [head_dim / 2]). All bf16 tensors contiguous.
int vtc_step_inputs(vt_tensor tokens, vt_tensor lengths, vt_tensor deltas, vt_tensor embedding,
                    vt_tensor inverse_frequencies, int max_len, vt_tensor residual, vt_tensor write_positions,
                    vt_tensor key_lengths, vt_tensor key_lengths32, vt_tensor cos, vt_tensor sin) {
  VTK_TRY(-1, {
    const at::Tensor &r = residual->tensor, &e = embedding->tensor;
    require(r, "residual", 2);
    require(e, "embedding", 2);
    require(cos->tensor, "cos", 2);
    require(sin->tensor, "sin", 2);
    const int64_t slots = r.size(0);
    int hidden = static_cast<int>(r.size(1)), head_dim = static_cast<int>(cos->tensor.size(1));
    if (e.size(1) != hidden) throw std::runtime_error("embedding width differs from residual");
    if (cos->tensor.size(0) != slots || !sin->tensor.sizes().equals(cos->tensor.sizes())) {
      throw std::runtime_error("cos/sin must be [slots, head_dim]");
    }
    require_float(inverse_frequencies->tensor, "inverse frequencies", head_dim / 2);
    for (auto t : {tokens, lengths, deltas, write_positions, key_lengths}) require_long(t->tensor, "slot state", slots);
    const at::Tensor &k32 = key_lengths32->tensor;
    require_vector(k32, at::kInt, "key_lengths32", slots);
    const int device = r.get_device();
    void *pointers[] = {tokens->tensor.data_ptr(), lengths->tensor.data_ptr(), deltas->tensor.data_ptr(), e.data_ptr(),
                        inverse_frequencies->tensor.data_ptr(), r.data_ptr(), write_positions->tensor.data_ptr(),
                        key_lengths->tensor.data_ptr(), k32.data_ptr(), cos->tensor.data_ptr(), sin->tensor.data_ptr()};
    void *arguments[] = {&pointers[0], &pointers[1], &pointers[2], &pointers[3], &pointers[4], &hidden, &head_dim,
                         &max_len, &pointers[5], &pointers[6], &pointers[7], &pointers[8], &pointers[9], &pointers[10]};
    if (slots > 0) launch(kernels(device).step_inputs, device, {static_cast<unsigned>(slots)}, 256, 0, arguments);
    return 0;
  })
}

/// The vision tower's rotary embedding of q and k (vlmrl_vision_rotary): `qkv` [length, 3 * heads *
/// head_dim] bf16 contiguous, `cos`/`sin` [length, head_dim] float32. Writes the rotated q and k
/// ([length, heads, head_dim] bf16) to `q_out` / `k_out` (caller-allocated, contiguous).
int vtc_vision_rotary(vt_tensor qkv, vt_tensor cos, vt_tensor sin, int heads, int head_dim, vt_tensor q_out, vt_tensor k_out) {
  VTK_TRY(-1, {
    const at::Tensor &x = qkv->tensor;
    require(x, "qkv", 2);
    const int64_t length = x.size(0);
    if (x.size(1) != 3LL * heads * head_dim) throw std::runtime_error("qkv must be [length, 3 * heads * head_dim]");
    require_float(cos->tensor, "cos", length * head_dim);
    require_float(sin->tensor, "sin", length * head_dim);
    require(q_out->tensor, "q_out", -1);
    require(k_out->tensor, "k_out", -1);
    if (q_out->tensor.numel() != length * heads * head_dim || k_out->tensor.numel() != length * heads * head_dim) {
      throw std::runtime_error("q_out/k_out must hold length * heads * head_dim values");
    }
    const int device = x.get_device();
    void *pointers[] = {x.data_ptr(), cos->tensor.data_ptr(), sin->tensor.data_ptr(), q_out->tensor.data_ptr(),
                        k_out->tensor.data_ptr()};
    int64_t count = length;
    void *arguments[] = {&pointers[0], &pointers[1], &pointers[2], &pointers[3], &pointers[4], &count, &heads, &head_dim};
    const int64_t total = 2 * length * heads * head_dim;
    if (total > 0) {
      launch(kernels(device).vision_rotary, device, {static_cast<unsigned>(std::min<int64_t>((total + 255) / 256, 132 * 32))}, 256, 0,
             arguments);
    }
    return 0;
  })
}

}  // extern "C"
