// The C interface of libvlmrl_cuda.so, the CUDA-only library built from csrc/ by `make cuda-shim`.
//
// The library is not linked: the Swift `Torch` module dlopen-s it at run time (so one binary runs
// on machines without CUDA) and casts each `dlsym` result to the pointer type declared here. The
// C++ sources define the functions against the same declarations, so a signature changed on one
// side only fails to compile instead of corrupting arguments at run time.
//
// Every function type is written once, as `<name>_f`; `<name>_fn` is the pointer that `dlsym`
// yields. The prototypes are visible only where VLMRL_CUDA_IMPLEMENTATION is defined (the
// library's own sources): Swift must not call them directly, since nothing links them.
//
// Error convention as in ctorch.h: failures return NULL / -1 and leave a thread-local message
// (`vtc_last_error` for the device services, `vtc_kernels_last_error` for the fused kernels).
#ifndef VLMRL_CUDA_H
#define VLMRL_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "ctorch.h"

#ifdef __cplusplus
extern "C" {
#endif

// ---- device services (csrc/cuda_shim.cpp) -------------------------------------------------------
typedef const char *vtc_last_error_f(void);
typedef void vtc_clear_error_f(void);
typedef int vtc_synchronize_f(int device);
/// Writes the device's name, NUL-terminated and truncated to `length` bytes.
typedef int vtc_device_name_f(int device, char *buffer, int length);
typedef int vtc_device_capability_f(int device, int *major, int *minor);
typedef int vtc_mem_info_f(int device, size_t *free_bytes, size_t *total_bytes);
/// `out4`: allocated, reserved, peak allocated, peak reserved (bytes, all pools).
typedef int vtc_memory_stats_f(int device, int64_t *out4);
typedef int vtc_reset_peak_memory_f(int device);
typedef int vtc_empty_cache_f(void);
/// Streams and graphs are opaque owning handles; free them with the matching `_free`.
typedef void *vtc_stream_new_f(int device, int high_priority);
typedef void *vtc_stream_current_f(int device);
typedef void vtc_stream_free_f(void *stream);
typedef int vtc_stream_set_current_f(void *stream);
typedef int vtc_stream_synchronize_f(void *stream);
typedef void *vtc_graph_capture_begin_f(int device);
typedef int vtc_graph_capture_end_f(void *graph);
typedef int vtc_graph_replay_f(void *graph);
typedef void vtc_graph_free_f(void *graph);

// ---- fused decode kernels (csrc/fused_kernels.cpp) ------------------------------------------------
typedef const char *vtc_kernels_last_error_f(void);
/// Compiles and loads the kernels for `device` (once); 0 on success.
typedef int vtc_kernels_load_f(int device);
typedef vt_tensor vtc_add_rmsnorm_f(vt_tensor residual, vt_tensor delta, vt_tensor weight, double eps);
typedef int vtc_rotary_kv_f(vt_tensor qkv, vt_tensor cos, vt_tensor sin, vt_tensor key_cache, vt_tensor value_cache,
                            vt_tensor positions, int heads, int kv_heads, int head_dim);
typedef vt_tensor vtc_swiglu_f(vt_tensor gate_up);
typedef int vtc_sample_f(vt_tensor logits, vt_tensor bias, vt_tensor uniforms, double temperature, vt_tensor tokens,
                         vt_tensor log_probs);
typedef int vtc_sample_step_f(vt_tensor logits, vt_tensor bias, vt_tensor uniforms, double temperature,
                              vt_tensor slot_sequence, vt_tensor slot_step, vt_tensor slot_tokens,
                              vt_tensor slot_lengths, vt_tensor tokens, vt_tensor log_probs);
typedef vt_tensor vtc_decode_attention_f(vt_tensor qkv, vt_tensor key_cache, vt_tensor value_cache, vt_tensor positions,
                                         int heads, int kv_heads, int split, vt_tensor partial, vt_tensor counters,
                                         vt_tensor cos, vt_tensor sin);
typedef vt_tensor vtc_decode_attention_mass_f(vt_tensor qkv, vt_tensor key_cache, vt_tensor value_cache,
                                              vt_tensor positions, int heads, int kv_heads, int split, vt_tensor partial,
                                              vt_tensor counters, vt_tensor cos, vt_tensor sin, vt_tensor text_mask,
                                              vt_tensor vision_mask, vt_tensor out_text, vt_tensor out_vision,
                                              vt_tensor slot_sequence, vt_tensor slot_step, int layer_column,
                                              vt_tensor mass_workspace, vt_tensor mass_counters);
typedef int vtc_step_inputs_f(vt_tensor tokens, vt_tensor lengths, vt_tensor deltas, vt_tensor embedding,
                              vt_tensor inverse_frequencies, int max_len, vt_tensor residual,
                              vt_tensor write_positions, vt_tensor key_lengths, vt_tensor key_lengths32,
                              vt_tensor cos, vt_tensor sin);
/// An NCCL backend (libtorch's ProcessGroupNCCL) over the c10d store `store` (a c10d::Store*, from
/// the CTorch process group being made) on CUDA device `device`: a heap c10::intrusive_ptr<Backend>*
/// that the caller takes over, or NULL with the reason in `error`.
typedef void *vtc_nccl_backend_f(void *store, int rank, int world_size, int64_t timeout_ms, int device, char *error,
                                 int error_length);
typedef int vtc_attention_mass_f(vt_tensor qkv, vt_tensor key_cache, vt_tensor key_lengths, vt_tensor text_mask,
                                 vt_tensor vision_mask, int heads, int kv_heads, vt_tensor out_text,
                                 vt_tensor out_vision, vt_tensor slot_sequence, vt_tensor slot_step,
                                 int layer_column);
typedef int vtc_vision_rotary_f(vt_tensor qkv, vt_tensor cos, vt_tensor sin, int heads, int head_dim,
                                vt_tensor q_out, vt_tensor k_out);

// ---- pointers, as dlsym returns them -------------------------------------------------------------
typedef vtc_last_error_f *vtc_last_error_fn;
typedef vtc_clear_error_f *vtc_clear_error_fn;
typedef vtc_synchronize_f *vtc_synchronize_fn;
typedef vtc_device_name_f *vtc_device_name_fn;
typedef vtc_device_capability_f *vtc_device_capability_fn;
typedef vtc_mem_info_f *vtc_mem_info_fn;
typedef vtc_memory_stats_f *vtc_memory_stats_fn;
typedef vtc_reset_peak_memory_f *vtc_reset_peak_memory_fn;
typedef vtc_empty_cache_f *vtc_empty_cache_fn;
typedef vtc_stream_new_f *vtc_stream_new_fn;
typedef vtc_stream_current_f *vtc_stream_current_fn;
typedef vtc_stream_free_f *vtc_stream_free_fn;
typedef vtc_stream_set_current_f *vtc_stream_set_current_fn;
typedef vtc_stream_synchronize_f *vtc_stream_synchronize_fn;
typedef vtc_graph_capture_begin_f *vtc_graph_capture_begin_fn;
typedef vtc_graph_capture_end_f *vtc_graph_capture_end_fn;
typedef vtc_graph_replay_f *vtc_graph_replay_fn;
typedef vtc_graph_free_f *vtc_graph_free_fn;
typedef vtc_kernels_last_error_f *vtc_kernels_last_error_fn;
typedef vtc_kernels_load_f *vtc_kernels_load_fn;
typedef vtc_add_rmsnorm_f *vtc_add_rmsnorm_fn;
typedef vtc_rotary_kv_f *vtc_rotary_kv_fn;
typedef vtc_swiglu_f *vtc_swiglu_fn;
typedef vtc_sample_f *vtc_sample_fn;
typedef vtc_sample_step_f *vtc_sample_step_fn;
typedef vtc_decode_attention_f *vtc_decode_attention_fn;
typedef vtc_decode_attention_mass_f *vtc_decode_attention_mass_fn;
typedef vtc_step_inputs_f *vtc_step_inputs_fn;
typedef vtc_vision_rotary_f *vtc_vision_rotary_fn;
typedef vtc_attention_mass_f *vtc_attention_mass_fn;
typedef vtc_nccl_backend_f *vtc_nccl_backend_fn;

#ifdef VLMRL_CUDA_IMPLEMENTATION
// Declared through the function types, so a definition whose signature differs is a compile error
// ("conflicting declaration of C function").
vtc_last_error_f vtc_last_error;
vtc_clear_error_f vtc_clear_error;
vtc_synchronize_f vtc_synchronize;
vtc_device_name_f vtc_device_name;
vtc_device_capability_f vtc_device_capability;
vtc_mem_info_f vtc_mem_info;
vtc_memory_stats_f vtc_memory_stats;
vtc_reset_peak_memory_f vtc_reset_peak_memory;
vtc_empty_cache_f vtc_empty_cache;
vtc_stream_new_f vtc_stream_new;
vtc_stream_current_f vtc_stream_current;
vtc_stream_free_f vtc_stream_free;
vtc_stream_set_current_f vtc_stream_set_current;
vtc_stream_synchronize_f vtc_stream_synchronize;
vtc_graph_capture_begin_f vtc_graph_capture_begin;
vtc_graph_capture_end_f vtc_graph_capture_end;
vtc_graph_replay_f vtc_graph_replay;
vtc_graph_free_f vtc_graph_free;
vtc_kernels_last_error_f vtc_kernels_last_error;
vtc_kernels_load_f vtc_kernels_load;
vtc_add_rmsnorm_f vtc_add_rmsnorm;
vtc_rotary_kv_f vtc_rotary_kv;
vtc_swiglu_f vtc_swiglu;
vtc_sample_f vtc_sample;
vtc_sample_step_f vtc_sample_step;
vtc_decode_attention_f vtc_decode_attention;
vtc_decode_attention_mass_f vtc_decode_attention_mass;
vtc_step_inputs_f vtc_step_inputs;
vtc_vision_rotary_f vtc_vision_rotary;
vtc_attention_mass_f vtc_attention_mass;
vtc_nccl_backend_f vtc_nccl_backend;
#endif

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // VLMRL_CUDA_H
