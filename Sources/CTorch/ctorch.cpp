// CTorch implementation: every function is a thin, exception-safe wrapper over ATen / autograd.
// See include/ctorch.h for the conventions.
#include "ctorch.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/version.h>

#include <dlfcn.h>

#include <cstring>
#include <string>
#include <vector>

#include "shim_internal.h"

struct vt_generator_opaque {
  at::Generator generator;
};

namespace {

thread_local std::string last_error;
thread_local bool has_error = false;

}  // namespace

void vt_shim::set_error(const char *message) {
  last_error = message ? message : "unknown error";
  has_error = true;
}

namespace {

using vt_shim::set_error;
using vt_shim::wrap;
using vt_shim::T;

std::optional<at::Tensor> opt(vt_tensor t) {
  if (t == nullptr) return std::nullopt;
  return t->tensor;
}
at::IntArrayRef dims(const int64_t *p, int n) { return at::IntArrayRef(p, static_cast<size_t>(n)); }
std::vector<at::Tensor> list(const vt_tensor *ts, int n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) out.push_back(ts[i]->tensor);
  return out;
}

at::ScalarType scalar_type(int code) {
  switch (code) {
    case VT_DTYPE_FLOAT32: return at::kFloat;
    case VT_DTYPE_FLOAT64: return at::kDouble;
    case VT_DTYPE_FLOAT16: return at::kHalf;
    case VT_DTYPE_BFLOAT16: return at::kBFloat16;
    case VT_DTYPE_INT64: return at::kLong;
    case VT_DTYPE_INT32: return at::kInt;
    case VT_DTYPE_INT16: return at::kShort;
    case VT_DTYPE_INT8: return at::kChar;
    case VT_DTYPE_UINT8: return at::kByte;
    case VT_DTYPE_BOOL: return at::kBool;
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(code));
}

int dtype_code(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return VT_DTYPE_FLOAT32;
    case at::kDouble: return VT_DTYPE_FLOAT64;
    case at::kHalf: return VT_DTYPE_FLOAT16;
    case at::kBFloat16: return VT_DTYPE_BFLOAT16;
    case at::kLong: return VT_DTYPE_INT64;
    case at::kInt: return VT_DTYPE_INT32;
    case at::kShort: return VT_DTYPE_INT16;
    case at::kChar: return VT_DTYPE_INT8;
    case at::kByte: return VT_DTYPE_UINT8;
    case at::kBool: return VT_DTYPE_BOOL;
    default: throw std::invalid_argument(std::string("unsupported dtype ") + c10::toString(t));
  }
}

at::Device device(int type, int index) {
  if (type == VT_DEVICE_CUDA) return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  return at::Device(at::kCPU);
}

at::TensorOptions options(int dtype, int dev_type, int dev_index) {
  return at::TensorOptions().dtype(scalar_type(dtype)).device(device(dev_type, dev_index));
}

std::optional<at::Generator> gen_opt(vt_generator g) {
  if (g == nullptr) return std::nullopt;
  return g->generator;
}

std::optional<at::ScalarType> opt_dtype(int code) {
  if (code < 0) return std::nullopt;
  return scalar_type(code);
}

}  // namespace

#define VT_TENSOR(expr) VT_TRY(nullptr, return wrap(expr);)
#define VT_STATUS(...) VT_TRY(-1, __VA_ARGS__ return 0;)

extern "C" {

const char *vt_last_error(void) { return has_error ? last_error.c_str() : nullptr; }
void vt_clear_error(void) {
  has_error = false;
  last_error.clear();
}

// ---- library ------------------------------------------------------------------------------------

const char *vt_version(void) { return TORCH_VERSION; }

int vt_load_cuda(void) {
  VT_TRY(0, {
    static int loaded = -1;
    static std::string load_error;
    if (loaded == 0) set_error(load_error.c_str());
    if (loaded >= 0) return loaded;
    // Find libtorch_cuda.so next to the libtorch_cpu.so we are linked against, then by name.
    Dl_info info;
    std::vector<std::string> candidates;
    if (dladdr(reinterpret_cast<void *>(&at::globalContext), &info) && info.dli_fname) {
      std::string path(info.dli_fname);
      auto slash = path.rfind('/');
      if (slash != std::string::npos) candidates.push_back(path.substr(0, slash + 1) + "libtorch_cuda.so");
    }
    candidates.push_back("libtorch_cuda.so");
    std::string errors;
    for (const auto &c : candidates) {
      if (dlopen(c.c_str(), RTLD_NOW | RTLD_GLOBAL) != nullptr) {
        loaded = 1;
        return loaded;
      }
      const char *e = dlerror();
      errors += (e ? e : c) + std::string("; ");
    }
    loaded = 0;
    load_error = "libtorch_cuda.so could not be loaded: " + errors;
    set_error(load_error.c_str());
    return 0;
  })
}

int vt_cuda_is_available(void) {
  VT_TRY(0, return at::globalContext().hasCUDA() && at::detail::getCUDAHooks().deviceCount() > 0 ? 1 : 0;)
}

int vt_cuda_device_count(void) {
  VT_TRY(0, return at::globalContext().hasCUDA() ? static_cast<int>(at::detail::getCUDAHooks().deviceCount()) : 0;)
}

void vt_manual_seed(uint64_t seed) {
  try {
    at::manual_seed(seed);
  } catch (const std::exception &e) {
    set_error(e.what());
  }
}

void vt_set_num_threads(int n) {
  try {
    at::set_num_threads(n);
  } catch (const std::exception &e) {
    set_error(e.what());
  }
}
int vt_get_num_threads(void) { VT_TRY(-1, return at::get_num_threads();) }

// ---- lifetime and properties ---------------------------------------------------------------

void vt_free(vt_tensor t) { delete t; }
vt_tensor vt_shallow_clone(vt_tensor t) { VT_TENSOR(T(t)) }
int vt_defined(vt_tensor t) { return t != nullptr && T(t).defined() ? 1 : 0; }
int64_t vt_dim(vt_tensor t) { VT_TRY(-1, return T(t).dim();) }
void vt_shape(vt_tensor t, int64_t *out) {
  auto s = T(t).sizes();
  std::copy(s.begin(), s.end(), out);
}
void vt_strides(vt_tensor t, int64_t *out) {
  auto s = T(t).strides();
  std::copy(s.begin(), s.end(), out);
}
int vt_dtype(vt_tensor t) { VT_TRY(-1, return dtype_code(T(t).scalar_type());) }
void vt_device(vt_tensor t, int *type, int *index) {
  auto d = T(t).device();
  *type = d.is_cuda() ? VT_DEVICE_CUDA : VT_DEVICE_CPU;
  *index = d.has_index() ? d.index() : 0;
}
int64_t vt_numel(vt_tensor t) { return T(t).numel(); }
int vt_is_contiguous(vt_tensor t) { return T(t).is_contiguous() ? 1 : 0; }
void *vt_data_ptr(vt_tensor t) { VT_TRY(nullptr, return T(t).data_ptr();) }
int64_t vt_element_size(vt_tensor t) { return static_cast<int64_t>(T(t).element_size()); }

int vt_copy_to_host(vt_tensor t, void *dst, size_t nbytes) {
  VT_STATUS({
    auto c = T(t).detach().to(at::kCPU).contiguous();
    size_t have = static_cast<size_t>(c.numel()) * c.element_size();
    if (have != nbytes)
      throw std::invalid_argument("copy_to_host: tensor has " + std::to_string(have) + " bytes, buffer " +
                                  std::to_string(nbytes));
    if (nbytes > 0) std::memcpy(dst, c.data_ptr(), nbytes);
  })
}

double vt_item_double(vt_tensor t) { VT_TRY(0.0, return T(t).item<double>();) }
int64_t vt_item_int(vt_tensor t) { VT_TRY(0, return T(t).item<int64_t>();) }

char *vt_to_string(vt_tensor t) {
  VT_TRY(nullptr, {
    std::ostringstream s;
    s << T(t);
    return strdup(s.str().c_str());
  })
}
void vt_free_string(char *s) { free(s); }

// ---- creation --------------------------------------------------------------------------------

vt_tensor vt_empty(const int64_t *shape, int ndim, int dtype, int dt, int di) {
  VT_TENSOR(at::empty(dims(shape, ndim), options(dtype, dt, di)))
}
vt_tensor vt_zeros(const int64_t *shape, int ndim, int dtype, int dt, int di) {
  VT_TENSOR(at::zeros(dims(shape, ndim), options(dtype, dt, di)))
}
vt_tensor vt_ones(const int64_t *shape, int ndim, int dtype, int dt, int di) {
  VT_TENSOR(at::ones(dims(shape, ndim), options(dtype, dt, di)))
}
vt_tensor vt_full(const int64_t *shape, int ndim, double value, int dtype, int dt, int di) {
  VT_TENSOR(at::full(dims(shape, ndim), value, options(dtype, dt, di)))
}
vt_tensor vt_arange(double start, double end, double step, int dtype, int dt, int di) {
  VT_TENSOR(at::arange(start, end, step, options(dtype, dt, di)))
}
vt_tensor vt_linspace(double start, double end, int64_t steps, int dtype, int dt, int di) {
  VT_TENSOR(at::linspace(start, end, steps, options(dtype, dt, di)))
}
vt_tensor vt_randn(const int64_t *shape, int ndim, int dtype, int dt, int di, vt_generator gen) {
  VT_TENSOR(at::randn(dims(shape, ndim), gen_opt(gen), options(dtype, dt, di)))
}
vt_tensor vt_rand(const int64_t *shape, int ndim, int dtype, int dt, int di, vt_generator gen) {
  VT_TENSOR(at::rand(dims(shape, ndim), gen_opt(gen), options(dtype, dt, di)))
}
vt_tensor vt_randint(int64_t low, int64_t high, const int64_t *shape, int ndim, int dtype, int dt, int di,
                     vt_generator gen) {
  VT_TENSOR(at::randint(low, high, dims(shape, ndim), gen_opt(gen), options(dtype, dt, di)))
}

vt_tensor vt_from_data(const void *data, size_t nbytes, const int64_t *shape, int ndim, int dtype) {
  VT_TRY(nullptr, {
    auto t = at::empty(dims(shape, ndim), at::TensorOptions().dtype(scalar_type(dtype)));
    size_t want = static_cast<size_t>(t.numel()) * t.element_size();
    if (want != nbytes)
      throw std::invalid_argument("from_data: shape needs " + std::to_string(want) + " bytes, got " +
                                  std::to_string(nbytes));
    if (nbytes > 0) std::memcpy(t.data_ptr(), data, nbytes);
    return wrap(std::move(t));
  })
}

vt_tensor vt_from_blob(void *data, const int64_t *shape, int ndim, int dtype, void (*release)(void *),
                       void *context) {
  VT_TRY(nullptr, {
    auto deleter = [release, context](void *) {
      if (release) release(context);
    };
    return wrap(at::from_blob(data, dims(shape, ndim), deleter, at::TensorOptions().dtype(scalar_type(dtype))));
  })
}

vt_generator vt_generator_new(uint64_t seed, int dt, int di) {
  VT_TRY(nullptr, {
    at::Generator g;
    if (dt == VT_DEVICE_CUDA) {
      g = at::globalContext().defaultGenerator(device(dt, di)).clone();
    } else {
      g = at::detail::createCPUGenerator(seed);
    }
    g.set_current_seed(seed);
    return new vt_generator_opaque{std::move(g)};
  })
}
void vt_generator_free(vt_generator gen) { delete gen; }
void vt_generator_set_seed(vt_generator gen, uint64_t seed) {
  try {
    std::lock_guard<std::mutex> lock(gen->generator.mutex());
    gen->generator.set_current_seed(seed);
  } catch (const std::exception &e) {
    set_error(e.what());
  }
}
vt_tensor vt_generator_get_state(vt_generator gen) {
  VT_TRY(nullptr, {
    std::lock_guard<std::mutex> lock(gen->generator.mutex());
    return wrap(gen->generator.get_state());
  })
}
int vt_generator_set_state(vt_generator gen, vt_tensor state) {
  VT_STATUS({
    std::lock_guard<std::mutex> lock(gen->generator.mutex());
    gen->generator.set_state(T(state));
  })
}
vt_tensor vt_default_generator_state(int dt, int di) {
  VT_TRY(nullptr, {
    auto g = at::globalContext().defaultGenerator(device(dt, di));
    std::lock_guard<std::mutex> lock(g.mutex());
    return wrap(g.get_state());
  })
}
int vt_default_generator_set_state(int dt, int di, vt_tensor state) {
  VT_STATUS({
    auto g = at::globalContext().defaultGenerator(device(dt, di));
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_state(T(state));
  })
}

// ---- conversion and layout -----------------------------------------------------------------

vt_tensor vt_to(vt_tensor t, int dtype, int dt, int di, bool non_blocking, bool copy) {
  VT_TENSOR(T(t).to(device(dt, di), scalar_type(dtype), non_blocking, copy))
}
vt_tensor vt_contiguous(vt_tensor t) { VT_TENSOR(T(t).contiguous()) }
vt_tensor vt_clone(vt_tensor t) { VT_TENSOR(T(t).clone()) }
vt_tensor vt_detach(vt_tensor t) { VT_TENSOR(T(t).detach()) }
vt_tensor vt_reshape(vt_tensor t, const int64_t *s, int n) { VT_TENSOR(T(t).reshape(dims(s, n))) }
vt_tensor vt_view(vt_tensor t, const int64_t *s, int n) { VT_TENSOR(T(t).view(dims(s, n))) }
vt_tensor vt_view_dtype(vt_tensor t, int dtype) { VT_TENSOR(T(t).view(scalar_type(dtype))) }
vt_tensor vt_permute(vt_tensor t, const int64_t *d, int n) { VT_TENSOR(T(t).permute(dims(d, n))) }
vt_tensor vt_transpose(vt_tensor t, int64_t a, int64_t b) { VT_TENSOR(T(t).transpose(a, b)) }
vt_tensor vt_expand(vt_tensor t, const int64_t *s, int n) { VT_TENSOR(T(t).expand(dims(s, n))) }
vt_tensor vt_unsqueeze(vt_tensor t, int64_t d) { VT_TENSOR(T(t).unsqueeze(d)) }
vt_tensor vt_squeeze(vt_tensor t, int64_t d) { VT_TENSOR(T(t).squeeze(d)) }
vt_tensor vt_squeeze_all(vt_tensor t) { VT_TENSOR(T(t).squeeze()) }
vt_tensor vt_flatten(vt_tensor t, int64_t a, int64_t b) { VT_TENSOR(T(t).flatten(a, b)) }
vt_tensor vt_narrow(vt_tensor t, int64_t d, int64_t s, int64_t l) { VT_TENSOR(T(t).narrow(d, s, l)) }
vt_tensor vt_slice(vt_tensor t, int64_t d, int64_t s, int64_t e, int64_t st) { VT_TENSOR(T(t).slice(d, s, e, st)) }
vt_tensor vt_select(vt_tensor t, int64_t d, int64_t i) { VT_TENSOR(T(t).select(d, i)) }
vt_tensor vt_index_select(vt_tensor t, int64_t d, vt_tensor i) { VT_TENSOR(T(t).index_select(d, T(i))) }

static c10::List<std::optional<at::Tensor>> index_list(const vt_tensor *indices, int count) {
  c10::List<std::optional<at::Tensor>> out;
  out.reserve(count);
  for (int i = 0; i < count; ++i) out.push_back(opt(indices[i]));
  return out;
}
vt_tensor vt_index(vt_tensor t, const vt_tensor *indices, int count) {
  VT_TENSOR(at::index(T(t), index_list(indices, count)))
}
int vt_index_put_(vt_tensor t, const vt_tensor *indices, int count, vt_tensor values, bool accumulate) {
  VT_STATUS(at::index_put_(t->tensor, index_list(indices, count), T(values), accumulate);)
}
vt_tensor vt_gather(vt_tensor t, int64_t d, vt_tensor i) { VT_TENSOR(T(t).gather(d, T(i))) }
vt_tensor vt_scatter(vt_tensor t, int64_t d, vt_tensor i, vt_tensor s) { VT_TENSOR(T(t).scatter(d, T(i), T(s))) }
vt_tensor vt_scatter_add(vt_tensor t, int64_t d, vt_tensor i, vt_tensor s) {
  VT_TENSOR(T(t).scatter_add(d, T(i), T(s)))
}
vt_tensor vt_masked_fill(vt_tensor t, vt_tensor m, double v) { VT_TENSOR(T(t).masked_fill(T(m), v)) }
vt_tensor vt_masked_select(vt_tensor t, vt_tensor m) { VT_TENSOR(T(t).masked_select(T(m))) }
vt_tensor vt_where(vt_tensor c, vt_tensor a, vt_tensor b) { VT_TENSOR(at::where(T(c), T(a), T(b))) }
vt_tensor vt_nonzero(vt_tensor t) { VT_TENSOR(T(t).nonzero()) }
vt_tensor vt_cat(const vt_tensor *ts, int n, int64_t d) { VT_TENSOR(at::cat(list(ts, n), d)) }
vt_tensor vt_stack(const vt_tensor *ts, int n, int64_t d) { VT_TENSOR(at::stack(list(ts, n), d)) }
int vt_split_with_sizes(vt_tensor t, const int64_t *sizes, int count, int64_t d, vt_tensor *out) {
  VT_STATUS({
    auto parts = T(t).split_with_sizes(dims(sizes, count), d);
    for (int i = 0; i < count; ++i) out[i] = wrap(parts[i]);
  })
}
vt_tensor vt_repeat(vt_tensor t, const int64_t *r, int n) { VT_TENSOR(T(t).repeat(dims(r, n))) }
vt_tensor vt_repeat_interleave(vt_tensor t, int64_t r, int64_t d) { VT_TENSOR(T(t).repeat_interleave(r, d)) }
vt_tensor vt_repeat_interleave_tensor(vt_tensor r) { VT_TENSOR(at::repeat_interleave(T(r))) }
vt_tensor vt_flip(vt_tensor t, const int64_t *d, int n) { VT_TENSOR(T(t).flip(dims(d, n))) }
vt_tensor vt_roll(vt_tensor t, int64_t s, int64_t d) { VT_TENSOR(T(t).roll(s, d)) }
vt_tensor vt_triu(vt_tensor t, int64_t k) { VT_TENSOR(T(t).triu(k)) }
vt_tensor vt_tril(vt_tensor t, int64_t k) { VT_TENSOR(T(t).tril(k)) }
vt_tensor vt_one_hot(vt_tensor t, int64_t n) { VT_TENSOR(at::one_hot(T(t), n)) }
vt_tensor vt_pad(vt_tensor t, const int64_t *p, int n, double v) {
  VT_TENSOR(at::constant_pad_nd(T(t), dims(p, n), v))
}

// ---- element-wise ----------------------------------------------------------------------------

vt_tensor vt_unary(int op, vt_tensor tt) {
  VT_TRY(nullptr, {
    const at::Tensor &t = T(tt);
    switch (op) {
      case VT_UN_NEG: return wrap(t.neg());
      case VT_UN_ABS: return wrap(t.abs());
      case VT_UN_EXP: return wrap(t.exp());
      case VT_UN_LOG: return wrap(t.log());
      case VT_UN_SQRT: return wrap(t.sqrt());
      case VT_UN_RSQRT: return wrap(t.rsqrt());
      case VT_UN_TANH: return wrap(t.tanh());
      case VT_UN_SIGMOID: return wrap(t.sigmoid());
      case VT_UN_SILU: return wrap(at::silu(t));
      case VT_UN_GELU: return wrap(at::gelu(t, "none"));
      case VT_UN_GELU_TANH: return wrap(at::gelu(t, "tanh"));
      case VT_UN_RELU: return wrap(t.relu());
      case VT_UN_SIN: return wrap(t.sin());
      case VT_UN_COS: return wrap(t.cos());
      case VT_UN_FLOOR: return wrap(t.floor());
      case VT_UN_CEIL: return wrap(t.ceil());
      case VT_UN_ROUND: return wrap(t.round());
      case VT_UN_SIGN: return wrap(t.sign());
      case VT_UN_LOGICAL_NOT: return wrap(t.logical_not());
      case VT_UN_RECIPROCAL: return wrap(t.reciprocal());
      case VT_UN_LOG1P: return wrap(t.log1p());
      case VT_UN_EXPM1: return wrap(t.expm1());
      case VT_UN_ISNAN: return wrap(t.isnan());
      case VT_UN_ISINF: return wrap(t.isinf());
      case VT_UN_ISFINITE: return wrap(t.isfinite());
      case VT_UN_ERF: return wrap(t.erf());
      case VT_UN_SQUARE: return wrap(t.square());
      case VT_UN_TRUNC: return wrap(t.trunc());
      case VT_UN_NAN_TO_NUM: return wrap(t.nan_to_num(0.0));
    }
    throw std::invalid_argument("unknown unary op " + std::to_string(op));
  })
}

static at::Tensor binary(int op, const at::Tensor &a, const at::Tensor &b) {
  switch (op) {
    case VT_BIN_ADD: return a.add(b);
    case VT_BIN_SUB: return a.sub(b);
    case VT_BIN_MUL: return a.mul(b);
    case VT_BIN_DIV: return a.div(b);
    case VT_BIN_POW: return a.pow(b);
    case VT_BIN_MAXIMUM: return at::maximum(a, b);
    case VT_BIN_MINIMUM: return at::minimum(a, b);
    case VT_BIN_EQ: return a.eq(b);
    case VT_BIN_NE: return a.ne(b);
    case VT_BIN_LT: return a.lt(b);
    case VT_BIN_LE: return a.le(b);
    case VT_BIN_GT: return a.gt(b);
    case VT_BIN_GE: return a.ge(b);
    case VT_BIN_AND: return a.logical_and(b);
    case VT_BIN_OR: return a.logical_or(b);
    case VT_BIN_REMAINDER: return a.remainder(b);
    case VT_BIN_ATAN2: return a.atan2(b);
    case VT_BIN_FLOOR_DIVIDE: return a.div(b, "floor");
    case VT_BIN_XOR: return a.logical_xor(b);
  }
  throw std::invalid_argument("unknown binary op " + std::to_string(op));
}

static at::Tensor binary_scalar(int op, const at::Tensor &a, const at::Scalar &b) {
  switch (op) {
    case VT_BIN_ADD: return a.add(b);
    case VT_BIN_SUB: return a.sub(b);
    case VT_BIN_MUL: return a.mul(b);
    case VT_BIN_DIV: return a.div(b);
    case VT_BIN_POW: return a.pow(b);
    case VT_BIN_EQ: return a.eq(b);
    case VT_BIN_NE: return a.ne(b);
    case VT_BIN_LT: return a.lt(b);
    case VT_BIN_LE: return a.le(b);
    case VT_BIN_GT: return a.gt(b);
    case VT_BIN_GE: return a.ge(b);
    case VT_BIN_REMAINDER: return a.remainder(b);
    case VT_BIN_FLOOR_DIVIDE: return a.div(b, "floor");
    case VT_BIN_MAXIMUM: return a.clamp_min(b);
    case VT_BIN_MINIMUM: return a.clamp_max(b);
  }
  return binary(op, a, at::scalar_tensor(b, a.options()));
}

// A double scalar keeps integer tensors integral when the value is integral (x * 2 stays int64).
static at::Scalar scalar_for(const at::Tensor &t, double v) {
  if (!at::isFloatingType(t.scalar_type()) && !t.is_complex() && v == static_cast<double>(static_cast<int64_t>(v)))
    return at::Scalar(static_cast<int64_t>(v));
  return at::Scalar(v);
}

vt_tensor vt_binary(int op, vt_tensor a, vt_tensor b) { VT_TENSOR(binary(op, T(a), T(b))) }
vt_tensor vt_binary_scalar(int op, vt_tensor a, double b) { VT_TENSOR(binary_scalar(op, T(a), scalar_for(T(a), b))) }
vt_tensor vt_scalar_binary(int op, double a, vt_tensor b) {
  VT_TRY(nullptr, {
    const at::Tensor &t = T(b);
    if (op == VT_BIN_SUB) return wrap(at::rsub(t, scalar_for(t, a)));
    if (op == VT_BIN_ADD || op == VT_BIN_MUL) return wrap(binary_scalar(op, t, scalar_for(t, a)));
    if (op == VT_BIN_POW) return wrap(at::pow(scalar_for(t, a), t));
    return wrap(binary(op, at::scalar_tensor(scalar_for(t, a), t.options()), t));
  })
}
vt_tensor vt_clamp(vt_tensor t, double lo, double hi, bool has_lo, bool has_hi) {
  VT_TENSOR(T(t).clamp(has_lo ? std::optional<at::Scalar>(lo) : std::nullopt,
                       has_hi ? std::optional<at::Scalar>(hi) : std::nullopt))
}
vt_tensor vt_clamp_tensor(vt_tensor t, vt_tensor lo, vt_tensor hi) { VT_TENSOR(T(t).clamp(opt(lo), opt(hi))) }

int vt_inplace_binary(int op, vt_tensor a, vt_tensor b) {
  VT_STATUS({
    at::Tensor &x = a->tensor;
    switch (op) {
      case VT_BIN_ADD: x.add_(T(b)); break;
      case VT_BIN_SUB: x.sub_(T(b)); break;
      case VT_BIN_MUL: x.mul_(T(b)); break;
      case VT_BIN_DIV: x.div_(T(b)); break;
      default: x.copy_(binary(op, x, T(b)));
    }
  })
}
int vt_inplace_binary_scalar(int op, vt_tensor a, double b) {
  VT_STATUS({
    at::Tensor &x = a->tensor;
    auto s = scalar_for(x, b);
    switch (op) {
      case VT_BIN_ADD: x.add_(s); break;
      case VT_BIN_SUB: x.sub_(s); break;
      case VT_BIN_MUL: x.mul_(s); break;
      case VT_BIN_DIV: x.div_(s); break;
      default: x.copy_(binary_scalar(op, x, s));
    }
  })
}
int vt_copy_(vt_tensor dst, vt_tensor src, bool nb) { VT_STATUS(dst->tensor.copy_(T(src), nb);) }
int vt_zero_(vt_tensor t) { VT_STATUS(t->tensor.zero_();) }
int vt_fill_(vt_tensor t, double v) { VT_STATUS(t->tensor.fill_(scalar_for(T(t), v));) }
int vt_uniform_(vt_tensor t, double a, double b, vt_generator g) { VT_STATUS(t->tensor.uniform_(a, b, gen_opt(g));) }
int vt_normal_(vt_tensor t, double m, double s, vt_generator g) { VT_STATUS(t->tensor.normal_(m, s, gen_opt(g));) }
int vt_exponential_(vt_tensor t, double l, vt_generator g) { VT_STATUS(t->tensor.exponential_(l, gen_opt(g));) }
int vt_lerp_(vt_tensor t, vt_tensor e, double w) { VT_STATUS(t->tensor.lerp_(T(e), w);) }
int vt_mul_add_(vt_tensor t, double alpha, vt_tensor other, double beta) {
  VT_STATUS({
    t->tensor.mul_(alpha);
    t->tensor.add_(T(other), beta);
  })
}

// ---- reductions ------------------------------------------------------------------------------

vt_tensor vt_reduce(int op, vt_tensor tt, const int64_t *d, int n, bool keep, int dtype) {
  VT_TRY(nullptr, {
    const at::Tensor &t = T(tt);
    at::OptionalIntArrayRef od = n > 0 ? at::OptionalIntArrayRef(dims(d, n)) : at::OptionalIntArrayRef();
    std::vector<int64_t> all;
    if (n == 0)
      for (int64_t i = 0; i < t.dim(); ++i) all.push_back(i);
    at::IntArrayRef rd = n > 0 ? dims(d, n) : at::IntArrayRef(all);
    switch (op) {
      case VT_RED_SUM: return wrap(at::sum(t, od, keep, opt_dtype(dtype)));
      case VT_RED_MEAN: return wrap(at::mean(t, od, keep, opt_dtype(dtype)));
      case VT_RED_AMAX: return wrap(at::amax(t, rd, keep));
      case VT_RED_AMIN: return wrap(at::amin(t, rd, keep));
      case VT_RED_PROD: {
        at::Tensor r = t;
        if (n == 0) return wrap(keep ? at::prod(t, opt_dtype(dtype)).reshape(std::vector<int64_t>(t.dim(), 1))
                                     : at::prod(t, opt_dtype(dtype)));
        for (int i = n - 1; i >= 0; --i) r = at::prod(r, d[i], keep, opt_dtype(dtype));
        return wrap(r);
      }
      case VT_RED_ALL: return wrap(n == 0 ? t.all() : at::all(t, rd, keep));
      case VT_RED_ANY: return wrap(n == 0 ? t.any() : at::any(t, rd, keep));
      case VT_RED_LOGSUMEXP: return wrap(at::logsumexp(t, rd, keep));
      case VT_RED_NORM2: return wrap(at::linalg_vector_norm(t, 2, od, keep, opt_dtype(dtype)));
    }
    throw std::invalid_argument("unknown reduction " + std::to_string(op));
  })
}
vt_tensor vt_var(vt_tensor t, const int64_t *d, int n, double c, bool keep) {
  VT_TENSOR(at::var(T(t), n > 0 ? at::OptionalIntArrayRef(dims(d, n)) : at::OptionalIntArrayRef(), at::Scalar(c), keep))
}
vt_tensor vt_std(vt_tensor t, const int64_t *d, int n, double c, bool keep) {
  VT_TENSOR(at::std(T(t), n > 0 ? at::OptionalIntArrayRef(dims(d, n)) : at::OptionalIntArrayRef(), at::Scalar(c), keep))
}
vt_tensor vt_argmax(vt_tensor t, int64_t d, bool k) { VT_TENSOR(T(t).argmax(d, k)) }
vt_tensor vt_argmin(vt_tensor t, int64_t d, bool k) { VT_TENSOR(T(t).argmin(d, k)) }
int vt_max_dim(vt_tensor t, int64_t d, bool k, vt_tensor *v, vt_tensor *i) {
  VT_STATUS({
    auto r = T(t).max(d, k);
    *v = wrap(std::get<0>(r));
    *i = wrap(std::get<1>(r));
  })
}
int vt_min_dim(vt_tensor t, int64_t d, bool k, vt_tensor *v, vt_tensor *i) {
  VT_STATUS({
    auto r = T(t).min(d, k);
    *v = wrap(std::get<0>(r));
    *i = wrap(std::get<1>(r));
  })
}
vt_tensor vt_softmax(vt_tensor t, int64_t d, int dtype) { VT_TENSOR(at::softmax(T(t), d, opt_dtype(dtype))) }
vt_tensor vt_log_softmax(vt_tensor t, int64_t d, int dtype) { VT_TENSOR(at::log_softmax(T(t), d, opt_dtype(dtype))) }
vt_tensor vt_cumsum(vt_tensor t, int64_t d, int dtype) { VT_TENSOR(at::cumsum(T(t), d, opt_dtype(dtype))) }
int vt_sort(vt_tensor t, int64_t d, bool desc, bool stable, vt_tensor *v, vt_tensor *i) {
  VT_STATUS({
    auto r = at::sort(T(t), stable, d, desc);
    *v = wrap(std::get<0>(r));
    *i = wrap(std::get<1>(r));
  })
}
int vt_topk(vt_tensor t, int64_t k, int64_t d, bool largest, bool sorted, vt_tensor *v, vt_tensor *i) {
  VT_STATUS({
    auto r = at::topk(T(t), k, d, largest, sorted);
    *v = wrap(std::get<0>(r));
    *i = wrap(std::get<1>(r));
  })
}
vt_tensor vt_multinomial(vt_tensor p, int64_t n, bool repl, vt_generator g) {
  VT_TENSOR(at::multinomial(T(p), n, repl, gen_opt(g)))
}
vt_tensor vt_allclose_max_abs_diff(vt_tensor a, vt_tensor b) {
  VT_TENSOR((T(a).to(at::kDouble) - T(b).to(at::kDouble)).abs().max())
}

// ---- linear algebra and NN ---------------------------------------------------------------

vt_tensor vt_matmul(vt_tensor a, vt_tensor b) { VT_TENSOR(at::matmul(T(a), T(b))) }
vt_tensor vt_bmm(vt_tensor a, vt_tensor b) { VT_TENSOR(at::bmm(T(a), T(b))) }
vt_tensor vt_linear(vt_tensor x, vt_tensor w, vt_tensor b) { VT_TENSOR(at::linear(T(x), T(w), opt(b))) }
vt_tensor vt_embedding(vt_tensor w, vt_tensor i) { VT_TENSOR(at::embedding(T(w), T(i))) }
vt_tensor vt_layer_norm(vt_tensor x, const int64_t *s, int n, vt_tensor w, vt_tensor b, double eps) {
  VT_TENSOR(at::layer_norm(T(x), dims(s, n), opt(w), opt(b), eps))
}
vt_tensor vt_rms_norm(vt_tensor x, const int64_t *s, int n, vt_tensor w, double eps) {
  VT_TENSOR(at::rms_norm(T(x), dims(s, n), opt(w), eps))
}
vt_tensor vt_conv2d(vt_tensor x, vt_tensor w, vt_tensor b, const int64_t *st, const int64_t *pa, const int64_t *di,
                    int64_t g) {
  VT_TENSOR(at::conv2d(T(x), T(w), opt(b), dims(st, 2), dims(pa, 2), dims(di, 2), g))
}
vt_tensor vt_conv3d(vt_tensor x, vt_tensor w, vt_tensor b, const int64_t *st, const int64_t *pa, const int64_t *di,
                    int64_t g) {
  VT_TENSOR(at::conv3d(T(x), T(w), opt(b), dims(st, 3), dims(pa, 3), dims(di, 3), g))
}
vt_tensor vt_sdpa(vt_tensor q, vt_tensor k, vt_tensor v, vt_tensor m, double drop, bool causal, double scale,
                  bool gqa) {
  VT_TENSOR(at::scaled_dot_product_attention(T(q), T(k), T(v), opt(m), drop, causal,
                                             scale < 0 ? std::nullopt : std::optional<double>(scale), gqa))
}
int vt_flash_attention_varlen(vt_tensor q, vt_tensor k, vt_tensor v, vt_tensor cq, vt_tensor ck, int64_t mq,
                              int64_t mk, bool causal, double scale, vt_tensor seqused_k, vt_tensor *out,
                              vt_tensor *lse) {
  VT_STATUS({
    auto r = at::_flash_attention_forward(T(q), T(k), T(v), T(cq), T(ck), mq, mk, 0.0, causal, false,
                                          scale < 0 ? std::nullopt : std::optional<double>(scale), std::nullopt,
                                          std::nullopt, opt(seqused_k), std::nullopt);
    *out = wrap(std::get<0>(r));
    if (lse) *lse = wrap(std::get<1>(r));
  })
}
vt_tensor vt_upsample_bicubic2d_aa(vt_tensor x, int64_t h, int64_t w, bool ac) {
  VT_TENSOR(at::_upsample_bicubic2d_aa(T(x), std::vector<int64_t>{h, w}, ac, std::nullopt, std::nullopt))
}
vt_tensor vt_cross_entropy(vt_tensor logits, vt_tensor target, int64_t ignore, int reduction) {
  VT_TENSOR(at::cross_entropy_loss(T(logits), T(target), std::nullopt, reduction, ignore, 0.0))
}

// ---- autograd --------------------------------------------------------------------------------

int vt_set_requires_grad(vt_tensor t, bool r) { VT_STATUS(t->tensor.set_requires_grad(r);) }
int vt_requires_grad(vt_tensor t) { return T(t).requires_grad() ? 1 : 0; }
int vt_backward(vt_tensor t, vt_tensor g, bool retain) {
  VT_STATUS({
    std::vector<at::Tensor> grads;
    if (g) grads.push_back(T(g));
    torch::autograd::backward({T(t)}, grads, retain);
  })
}
int vt_autograd_grad(const vt_tensor *outputs, const vt_tensor *grad_outputs, int n_out, const vt_tensor *inputs,
                     int n_in, bool retain, bool create, vt_tensor *out) {
  VT_STATUS({
    std::vector<at::Tensor> gos;
    for (int i = 0; i < n_out; ++i) gos.push_back(grad_outputs && grad_outputs[i] ? T(grad_outputs[i]) : at::Tensor());
    auto r = torch::autograd::grad(list(outputs, n_out), list(inputs, n_in), gos, retain, create, true);
    for (int i = 0; i < n_in; ++i) out[i] = r[i].defined() ? wrap(r[i]) : nullptr;
  })
}
vt_tensor vt_grad(vt_tensor t) {
  VT_TRY(nullptr, {
    const auto &g = T(t).grad();
    return g.defined() ? wrap(g) : nullptr;
  })
}
int vt_set_grad(vt_tensor t, vt_tensor g) {
  VT_STATUS({
    if (g)
      t->tensor.mutable_grad() = T(g);
    else
      t->tensor.mutable_grad().reset();
  })
}
int vt_grad_mode_enabled(void) { return at::GradMode::is_enabled() ? 1 : 0; }
int vt_set_grad_mode(bool enabled) {
  bool prev = at::GradMode::is_enabled();
  at::GradMode::set_enabled(enabled);
  return prev ? 1 : 0;
}

// ---- optimizer and training kernels --------------------------------------------------------

int vt_fused_adamw(const vt_tensor *params, const vt_tensor *grads, const vt_tensor *m, const vt_tensor *v,
                   const vt_tensor *steps, int n, double lr, double b1, double b2, double wd, double eps) {
  VT_STATUS({
    at::NoGradGuard no_grad;
    auto p = list(params, n);
    auto state_steps = list(steps, n);
    // As torch.optim's fused path: the caller advances the step counts, the kernel reads them.
    at::_foreach_add_(state_steps, 1);
    at::_fused_adamw_(p, list(grads, n), list(m, n), list(v, n), {}, state_steps, lr, b1, b2, wd, eps,
                      false, false, std::nullopt, std::nullopt);
  })
}
vt_tensor vt_global_norm(const vt_tensor *ts, int n) {
  VT_TRY(nullptr, {
    at::NoGradGuard no_grad;
    auto norms = at::_foreach_norm(list(ts, n), 2);
    std::vector<at::Tensor> f;
    for (auto &x : norms) f.push_back(x.to(at::kFloat));
    return wrap(at::linalg_vector_norm(at::stack(f), 2));
  })
}
int vt_stochastic_round_bf16_(vt_tensor dst, vt_tensor src, vt_generator gen) {
  VT_STATUS({
    at::NoGradGuard no_grad;
    auto s = T(src).contiguous();
    TORCH_CHECK(s.scalar_type() == at::kFloat && T(dst).scalar_type() == at::kBFloat16 && T(dst).sizes() == s.sizes(),
                "stochastic rounding takes float32 into bfloat16 of the same shape");
    // bfloat16 is float32's upper half: adding 16 uniform random bits before dropping the lower half
    // carries into the kept bits with probability (dropped bits) / 2^16, for either sign.
    auto noise = at::randint(0, 1 << 16, s.sizes(), gen_opt(gen), s.options().dtype(at::kInt));
    auto kept = (s.view(at::kInt) + noise).bitwise_and(static_cast<int64_t>(static_cast<int32_t>(0xFFFF0000u)));
    T(dst).copy_(kept.view(at::kFloat));
  })
}
int vt_mul_list_(const vt_tensor *ts, int n, vt_tensor scale) {
  VT_STATUS({
    at::NoGradGuard no_grad;
    auto l = list(ts, n);
    at::_foreach_mul_(l, T(scale));
  })
}

}  // extern "C"

// ---- gradient checkpointing ----------------------------------------------------------------------

namespace {

struct CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext *ctx,
                                                at::TensorList input_list, int64_t fn_bits,
                                                int64_t context_bits, int64_t n_out) {
    auto fn = reinterpret_cast<vt_checkpoint_fn>(fn_bits);
    ctx->saved_data["fn"] = fn_bits;
    ctx->saved_data["context"] = context_bits;
    ctx->saved_data["n_out"] = n_out;
    std::vector<at::Tensor> inputs = input_list.vec();
    ctx->save_for_backward(inputs);
    return run(fn, reinterpret_cast<void *>(context_bits), inputs, n_out);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    auto fn = reinterpret_cast<vt_checkpoint_fn>(ctx->saved_data["fn"].toInt());
    void *context = reinterpret_cast<void *>(ctx->saved_data["context"].toInt());
    int64_t n_out = ctx->saved_data["n_out"].toInt();
    auto saved = ctx->get_saved_variables();
    std::vector<at::Tensor> detached;
    for (auto &s : saved) detached.push_back(s.detach().requires_grad_(s.requires_grad()));
    torch::autograd::variable_list outputs;
    {
      at::AutoGradMode enable(true);
      outputs = run(fn, context, detached, n_out);
    }
    std::vector<at::Tensor> diff_inputs, diff_outputs, diff_grads;
    std::vector<int> input_slots;
    for (size_t i = 0; i < detached.size(); ++i)
      if (detached[i].requires_grad()) {
        diff_inputs.push_back(detached[i]);
        input_slots.push_back(static_cast<int>(i));
      }
    for (size_t i = 0; i < outputs.size(); ++i)
      if (outputs[i].requires_grad() && grad_outputs[i].defined()) {
        diff_outputs.push_back(outputs[i]);
        diff_grads.push_back(grad_outputs[i]);
      }
    torch::autograd::variable_list result(detached.size() + 3);
    if (!diff_outputs.empty()) {
      // Like PyTorch's reentrant checkpoint: a backward over the recomputed graph accumulates into
      // the parameters that fn captured, and into the detached inputs, whose .grad we pass on.
      torch::autograd::backward(diff_outputs, diff_grads, false, false);
      for (size_t j = 0; j < input_slots.size(); ++j) result[input_slots[j]] = diff_inputs[j].grad();
    }
    return result;
  }

  static torch::autograd::variable_list run(vt_checkpoint_fn fn, void *context,
                                            const std::vector<at::Tensor> &inputs, int64_t n_out) {
    std::vector<vt_tensor> in;
    for (auto &t : inputs) in.push_back(wrap(t));
    std::vector<vt_tensor> out(n_out, nullptr);
    int rc = fn(context, in.data(), static_cast<int>(in.size()), out.data(), static_cast<int>(n_out));
    for (auto h : in) delete h;
    torch::autograd::variable_list result;
    for (auto h : out) {
      if (h) {
        result.push_back(h->tensor);
        delete h;
      } else {
        result.push_back(at::Tensor());
      }
    }
    if (rc != 0) throw std::runtime_error("checkpointed function failed");
    return result;
  }
};

}  // namespace

extern "C" int vt_checkpoint(vt_checkpoint_fn fn, void *context, const vt_tensor *inputs, int n_in,
                             vt_tensor *outputs, int n_out) {
  VT_STATUS({
    // Passed as a TensorList so that autograd sees the inputs as differentiable arguments.
    std::vector<at::Tensor> in = list(inputs, n_in);
    auto result = CheckpointFunction::apply(at::TensorList(in), reinterpret_cast<int64_t>(fn),
                                            reinterpret_cast<int64_t>(context), static_cast<int64_t>(n_out));
    for (int i = 0; i < n_out; ++i) outputs[i] = wrap(result[i]);
  })
}
