// libvlmrl_cuda.so: the CUDA-only part of the shim (device properties, synchronisation, caching
// allocator statistics, streams, CUDA graphs). Linked against libtorch_cuda / libc10_cuda and
// dlopen-ed by the Swift `Torch` module only when a GPU is present, so CPU machines never need the
// CUDA libraries. Same error convention as ctorch.h: catch-all, thread-local message. The
// functions' C types are declared in vlmrl_cuda.h, which the Swift side casts `dlsym` results to.
#define VLMRL_CUDA_IMPLEMENTATION
#include "vlmrl_cuda.h"

// ProcessGroupNCCL's declarations exist only with USE_C10D_NCCL (libtorch_cuda defines the class).
#define USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

namespace {
thread_local std::string last_error;
thread_local bool has_error = false;
void set_error(const char *m) {
  last_error = m ? m : "unknown error";
  has_error = true;
}
struct Stream {
  c10::cuda::CUDAStream stream;
};
struct Graph {
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  std::unique_ptr<c10::cuda::CUDAStream> capture_stream;
  std::unique_ptr<c10::cuda::CUDAStreamGuard> guard;
};
}  // namespace

#define VTC_TRY(fail, ...)                   \
  try {                                      \
    __VA_ARGS__                              \
  } catch (const std::exception &e) {        \
    set_error(e.what());                     \
    return fail;                             \
  } catch (...) {                            \
    set_error("unknown C++ exception");      \
    return fail;                             \
  }

extern "C" {

const char *vtc_last_error(void) { return has_error ? last_error.c_str() : nullptr; }

void *vtc_nccl_backend(void *store, int rank, int world_size, int64_t timeout_ms, int device, char *error, int error_length) {
  try {
    // NCCL binds the communicator to the current device; each rank has its own (cuda:LOCAL_RANK).
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(device));
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = std::chrono::milliseconds(timeout_ms);
    auto shared = c10::intrusive_ptr<c10d::Store>::reclaim_copy(static_cast<c10d::Store *>(store));
    c10::intrusive_ptr<c10d::Backend> backend =
        c10::make_intrusive<c10d::ProcessGroupNCCL>(shared, rank, world_size, options);
    return new c10::intrusive_ptr<c10d::Backend>(std::move(backend));
  } catch (const std::exception &e) {
    const c10::Error *c10 = dynamic_cast<const c10::Error *>(&e);
    std::snprintf(error, static_cast<size_t>(error_length), "%s", c10 ? c10->what_without_backtrace() : e.what());
  } catch (...) {
    std::snprintf(error, static_cast<size_t>(error_length), "unknown C++ exception");
  }
  return nullptr;
}
void vtc_clear_error(void) { has_error = false; }

int vtc_synchronize(int device) {
  VTC_TRY(-1, {
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    C10_CUDA_CHECK(cudaDeviceSynchronize());
    return 0;
  })
}

int vtc_device_name(int device, char *buffer, int length) {
  VTC_TRY(-1, {
    cudaDeviceProp props;
    C10_CUDA_CHECK(cudaGetDeviceProperties(&props, device));
    std::snprintf(buffer, static_cast<size_t>(length), "%s", props.name);
    return 0;
  })
}

int vtc_device_capability(int device, int *major, int *minor) {
  VTC_TRY(-1, {
    cudaDeviceProp props;
    C10_CUDA_CHECK(cudaGetDeviceProperties(&props, device));
    *major = props.major;
    *minor = props.minor;
    return 0;
  })
}

int vtc_mem_info(int device, size_t *free_bytes, size_t *total_bytes) {
  VTC_TRY(-1, {
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    C10_CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes));
    return 0;
  })
}

/// stats: 0 allocated, 1 reserved, 2 peak allocated, 3 peak reserved (bytes, all pools).
int vtc_memory_stats(int device, int64_t *out4) {
  VTC_TRY(-1, {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
    auto all = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    out4[0] = stats.allocated_bytes[all].current;
    out4[1] = stats.reserved_bytes[all].current;
    out4[2] = stats.allocated_bytes[all].peak;
    out4[3] = stats.reserved_bytes[all].peak;
    return 0;
  })
}

int vtc_reset_peak_memory(int device) {
  VTC_TRY(-1, {
    c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device));
    return 0;
  })
}

int vtc_empty_cache(void) {
  VTC_TRY(-1, {
    c10::cuda::CUDACachingAllocator::emptyCache();
    return 0;
  })
}

void *vtc_stream_new(int device, int high_priority) {
  VTC_TRY(nullptr, {
    auto s = c10::cuda::getStreamFromPool(high_priority != 0, static_cast<c10::DeviceIndex>(device));
    return new Stream{s};
  })
}
void vtc_stream_free(void *s) { delete static_cast<Stream *>(s); }
void *vtc_stream_current(int device) {
  VTC_TRY(nullptr, return new Stream{c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device))};)
}
int vtc_stream_set_current(void *s) {
  VTC_TRY(-1, {
    c10::cuda::setCurrentCUDAStream(static_cast<Stream *>(s)->stream);
    return 0;
  })
}
int vtc_stream_synchronize(void *s) {
  VTC_TRY(-1, {
    static_cast<Stream *>(s)->stream.synchronize();
    return 0;
  })
}

/// Begins capturing on a fresh side stream of `device` (graphs cannot capture the default stream).
void *vtc_graph_capture_begin(int device) {
  VTC_TRY(nullptr, {
    auto g = std::make_unique<Graph>();
    g->graph = std::make_unique<at::cuda::CUDAGraph>();
    g->capture_stream = std::make_unique<c10::cuda::CUDAStream>(
        c10::cuda::getStreamFromPool(false, static_cast<c10::DeviceIndex>(device)));
    g->guard = std::make_unique<c10::cuda::CUDAStreamGuard>(*g->capture_stream);
    g->graph->capture_begin();
    return g.release();
  })
}
int vtc_graph_capture_end(void *g) {
  VTC_TRY(-1, {
    auto *graph = static_cast<Graph *>(g);
    graph->graph->capture_end();
    graph->guard.reset();
    return 0;
  })
}
int vtc_graph_replay(void *g) {
  VTC_TRY(-1, {
    static_cast<Graph *>(g)->graph->replay();
    return 0;
  })
}
void vtc_graph_free(void *g) { delete static_cast<Graph *>(g); }

}  // extern "C"
