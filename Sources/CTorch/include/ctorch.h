// CTorch: the plain C API over libtorch (ATen + autograd) that the Swift `Torch` module calls.
//
// Conventions (after tch-rs):
//  - `vt_tensor` is an opaque owning handle (a heap `at::Tensor`); free it with `vt_free`.
//  - Inputs are borrowed; outputs are new handles (returned, or written through out-pointers).
//  - Every function runs inside a catch-all. On failure it returns NULL / -1 / 0 and stores the
//    C++ message in a thread-local that `vt_last_error` returns (and `vt_clear_error` clears).
//    The Swift wrapper reads it immediately after the call, on the same thread.
//  - dtype codes: see VT_DTYPE_*; device: type (0 cpu, 1 cuda) + index.
//
// The CUDA-only library (libvlmrl_cuda.so, loaded at run time) declares its functions in vlmrl_cuda.h.
#ifndef CTORCH_H
#define CTORCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vt_tensor_opaque *vt_tensor;
typedef struct vt_generator_opaque *vt_generator;

enum {
  VT_DTYPE_FLOAT32 = 0,
  VT_DTYPE_FLOAT64 = 1,
  VT_DTYPE_FLOAT16 = 2,
  VT_DTYPE_BFLOAT16 = 3,
  VT_DTYPE_INT64 = 4,
  VT_DTYPE_INT32 = 5,
  VT_DTYPE_INT16 = 6,
  VT_DTYPE_INT8 = 7,
  VT_DTYPE_UINT8 = 8,
  VT_DTYPE_BOOL = 9,
};

enum { VT_DEVICE_CPU = 0, VT_DEVICE_CUDA = 1 };

// ---- errors ---------------------------------------------------------------------------------
const char *vt_last_error(void);
void vt_clear_error(void);

// ---- library --------------------------------------------------------------------------------
const char *vt_version(void);
/// Loads libtorch_cuda.so (RTLD_GLOBAL) so CUDA kernels register. Returns 1 when loaded.
int vt_load_cuda(void);
int vt_cuda_is_available(void);
int vt_cuda_device_count(void);
void vt_manual_seed(uint64_t seed);
void vt_set_num_threads(int n);
int vt_get_num_threads(void);

// ---- lifetime and properties ------------------------------------------------------------------
void vt_free(vt_tensor t);
vt_tensor vt_shallow_clone(vt_tensor t);
int vt_defined(vt_tensor t);
int64_t vt_dim(vt_tensor t);
void vt_shape(vt_tensor t, int64_t *out);
void vt_strides(vt_tensor t, int64_t *out);
int vt_dtype(vt_tensor t);
void vt_device(vt_tensor t, int *type, int *index);
int64_t vt_numel(vt_tensor t);
int vt_is_contiguous(vt_tensor t);
void *vt_data_ptr(vt_tensor t);
int64_t vt_element_size(vt_tensor t);
/// Copies the (contiguous, CPU) tensor's bytes into dst (nbytes must equal numel*element size).
int vt_copy_to_host(vt_tensor t, void *dst, size_t nbytes);
double vt_item_double(vt_tensor t);
int64_t vt_item_int(vt_tensor t);
/// Formats the tensor as libtorch prints it; free the string with vt_free_string.
char *vt_to_string(vt_tensor t);
void vt_free_string(char *s);

// ---- creation -----------------------------------------------------------------------------------
vt_tensor vt_empty(const int64_t *shape, int ndim, int dtype, int dev_type, int dev_index);
vt_tensor vt_zeros(const int64_t *shape, int ndim, int dtype, int dev_type, int dev_index);
vt_tensor vt_ones(const int64_t *shape, int ndim, int dtype, int dev_type, int dev_index);
vt_tensor vt_full(const int64_t *shape, int ndim, double value, int dtype, int dev_type, int dev_index);
vt_tensor vt_arange(double start, double end, double step, int dtype, int dev_type, int dev_index);
vt_tensor vt_linspace(double start, double end, int64_t steps, int dtype, int dev_type, int dev_index);
vt_tensor vt_randn(const int64_t *shape, int ndim, int dtype, int dev_type, int dev_index, vt_generator gen);
vt_tensor vt_rand(const int64_t *shape, int ndim, int dtype, int dev_type, int dev_index, vt_generator gen);
vt_tensor vt_randint(int64_t low, int64_t high, const int64_t *shape, int ndim, int dtype, int dev_type,
                     int dev_index, vt_generator gen);
/// Copies `nbytes` from host memory into a new CPU tensor of the given dtype and shape.
vt_tensor vt_from_data(const void *data, size_t nbytes, const int64_t *shape, int ndim, int dtype);
/// Wraps external CPU memory without a copy; `release(context)` runs when the storage dies.
vt_tensor vt_from_blob(void *data, const int64_t *shape, int ndim, int dtype, void (*release)(void *),
                       void *context);

vt_generator vt_generator_new(uint64_t seed, int dev_type, int dev_index);
void vt_generator_free(vt_generator gen);
void vt_generator_set_seed(vt_generator gen, uint64_t seed);
/// Generator state as a uint8 CPU tensor (checkpoints), and restore.
vt_tensor vt_generator_get_state(vt_generator gen);
int vt_generator_set_state(vt_generator gen, vt_tensor state);
vt_tensor vt_default_generator_state(int dev_type, int dev_index);
int vt_default_generator_set_state(int dev_type, int dev_index, vt_tensor state);

// ---- conversion and layout -----------------------------------------------------------------------
vt_tensor vt_to(vt_tensor t, int dtype, int dev_type, int dev_index, bool non_blocking, bool copy);
vt_tensor vt_contiguous(vt_tensor t);
vt_tensor vt_clone(vt_tensor t);
vt_tensor vt_detach(vt_tensor t);
vt_tensor vt_reshape(vt_tensor t, const int64_t *shape, int ndim);
vt_tensor vt_view(vt_tensor t, const int64_t *shape, int ndim);
vt_tensor vt_view_dtype(vt_tensor t, int dtype);
vt_tensor vt_permute(vt_tensor t, const int64_t *dims, int ndim);
vt_tensor vt_transpose(vt_tensor t, int64_t d0, int64_t d1);
vt_tensor vt_expand(vt_tensor t, const int64_t *shape, int ndim);
vt_tensor vt_unsqueeze(vt_tensor t, int64_t dim);
vt_tensor vt_squeeze(vt_tensor t, int64_t dim);
vt_tensor vt_squeeze_all(vt_tensor t);
vt_tensor vt_flatten(vt_tensor t, int64_t start, int64_t end);
vt_tensor vt_narrow(vt_tensor t, int64_t dim, int64_t start, int64_t length);
vt_tensor vt_slice(vt_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step);
vt_tensor vt_select(vt_tensor t, int64_t dim, int64_t index);
vt_tensor vt_index_select(vt_tensor t, int64_t dim, vt_tensor index);
/// Advanced indexing: `indices[i]` may be NULL (a full slice in that dimension).
vt_tensor vt_index(vt_tensor t, const vt_tensor *indices, int count);
int vt_index_put_(vt_tensor t, const vt_tensor *indices, int count, vt_tensor values, bool accumulate);
vt_tensor vt_gather(vt_tensor t, int64_t dim, vt_tensor index);
vt_tensor vt_scatter(vt_tensor t, int64_t dim, vt_tensor index, vt_tensor src);
vt_tensor vt_scatter_add(vt_tensor t, int64_t dim, vt_tensor index, vt_tensor src);
vt_tensor vt_masked_fill(vt_tensor t, vt_tensor mask, double value);
vt_tensor vt_masked_select(vt_tensor t, vt_tensor mask);
vt_tensor vt_where(vt_tensor cond, vt_tensor a, vt_tensor b);
vt_tensor vt_nonzero(vt_tensor t);
vt_tensor vt_cat(const vt_tensor *ts, int count, int64_t dim);
vt_tensor vt_stack(const vt_tensor *ts, int count, int64_t dim);
/// Splits into pieces of the given sizes along dim; writes `count` handles to out.
int vt_split_with_sizes(vt_tensor t, const int64_t *sizes, int count, int64_t dim, vt_tensor *out);
vt_tensor vt_repeat(vt_tensor t, const int64_t *repeats, int ndim);
vt_tensor vt_repeat_interleave(vt_tensor t, int64_t repeats, int64_t dim);
vt_tensor vt_repeat_interleave_tensor(vt_tensor repeats);
vt_tensor vt_flip(vt_tensor t, const int64_t *dims, int ndim);
vt_tensor vt_roll(vt_tensor t, int64_t shift, int64_t dim);
vt_tensor vt_triu(vt_tensor t, int64_t diagonal);
vt_tensor vt_tril(vt_tensor t, int64_t diagonal);
vt_tensor vt_one_hot(vt_tensor t, int64_t classes);
vt_tensor vt_pad(vt_tensor t, const int64_t *pad, int count, double value);

// ---- element-wise -------------------------------------------------------------------------------
enum {
  VT_UN_NEG, VT_UN_ABS, VT_UN_EXP, VT_UN_LOG, VT_UN_SQRT, VT_UN_RSQRT, VT_UN_TANH, VT_UN_SIGMOID,
  VT_UN_SILU, VT_UN_GELU, VT_UN_GELU_TANH, VT_UN_RELU, VT_UN_SIN, VT_UN_COS, VT_UN_FLOOR, VT_UN_CEIL,
  VT_UN_ROUND, VT_UN_SIGN, VT_UN_LOGICAL_NOT, VT_UN_RECIPROCAL, VT_UN_LOG1P, VT_UN_EXPM1, VT_UN_ISNAN,
  VT_UN_ISINF, VT_UN_ISFINITE, VT_UN_ERF, VT_UN_SQUARE, VT_UN_TRUNC, VT_UN_NAN_TO_NUM,
};
vt_tensor vt_unary(int op, vt_tensor t);

enum {
  VT_BIN_ADD, VT_BIN_SUB, VT_BIN_MUL, VT_BIN_DIV, VT_BIN_POW, VT_BIN_MAXIMUM, VT_BIN_MINIMUM,
  VT_BIN_EQ, VT_BIN_NE, VT_BIN_LT, VT_BIN_LE, VT_BIN_GT, VT_BIN_GE, VT_BIN_AND, VT_BIN_OR,
  VT_BIN_REMAINDER, VT_BIN_ATAN2, VT_BIN_FLOOR_DIVIDE, VT_BIN_XOR,
};
vt_tensor vt_binary(int op, vt_tensor a, vt_tensor b);
vt_tensor vt_binary_scalar(int op, vt_tensor a, double b);
/// `scalar op tensor` (e.g. 1 - x, 2 / x, 2 ** x).
vt_tensor vt_scalar_binary(int op, double a, vt_tensor b);
vt_tensor vt_clamp(vt_tensor t, double min, double max, bool has_min, bool has_max);
vt_tensor vt_clamp_tensor(vt_tensor t, vt_tensor min, vt_tensor max);
int vt_inplace_binary(int op, vt_tensor a, vt_tensor b);
int vt_inplace_binary_scalar(int op, vt_tensor a, double b);
int vt_copy_(vt_tensor dst, vt_tensor src, bool non_blocking);
int vt_zero_(vt_tensor t);
int vt_fill_(vt_tensor t, double value);
int vt_uniform_(vt_tensor t, double from, double to, vt_generator gen);
int vt_normal_(vt_tensor t, double mean, double std, vt_generator gen);
int vt_exponential_(vt_tensor t, double lambda, vt_generator gen);
/// addcmul etc. are built in Swift from the ops above; lerp is fused here for EMA updates.
int vt_lerp_(vt_tensor t, vt_tensor end, double weight);
/// t = t * alpha + other * beta, in place (EMA and mixing without temporaries in Swift).
int vt_mul_add_(vt_tensor t, double alpha, vt_tensor other, double beta);

// ---- reductions --------------------------------------------------------------------------------
enum {
  VT_RED_SUM, VT_RED_MEAN, VT_RED_AMAX, VT_RED_AMIN, VT_RED_PROD, VT_RED_ALL, VT_RED_ANY,
  VT_RED_LOGSUMEXP, VT_RED_NORM2,
};
/// ndim == 0 reduces over all dimensions. dtype < 0 keeps the default result dtype.
vt_tensor vt_reduce(int op, vt_tensor t, const int64_t *dims, int ndim, bool keepdim, int dtype);
vt_tensor vt_var(vt_tensor t, const int64_t *dims, int ndim, double correction, bool keepdim);
vt_tensor vt_std(vt_tensor t, const int64_t *dims, int ndim, double correction, bool keepdim);
vt_tensor vt_argmax(vt_tensor t, int64_t dim, bool keepdim);
vt_tensor vt_argmin(vt_tensor t, int64_t dim, bool keepdim);
int vt_max_dim(vt_tensor t, int64_t dim, bool keepdim, vt_tensor *values, vt_tensor *indices);
int vt_min_dim(vt_tensor t, int64_t dim, bool keepdim, vt_tensor *values, vt_tensor *indices);
vt_tensor vt_softmax(vt_tensor t, int64_t dim, int dtype);
vt_tensor vt_log_softmax(vt_tensor t, int64_t dim, int dtype);
vt_tensor vt_cumsum(vt_tensor t, int64_t dim, int dtype);
int vt_sort(vt_tensor t, int64_t dim, bool descending, bool stable, vt_tensor *values, vt_tensor *indices);
int vt_topk(vt_tensor t, int64_t k, int64_t dim, bool largest, bool sorted, vt_tensor *values,
            vt_tensor *indices);
vt_tensor vt_multinomial(vt_tensor probs, int64_t samples, bool replacement, vt_generator gen);
vt_tensor vt_allclose_max_abs_diff(vt_tensor a, vt_tensor b);

// ---- linear algebra and NN --------------------------------------------------------------------
vt_tensor vt_matmul(vt_tensor a, vt_tensor b);
vt_tensor vt_bmm(vt_tensor a, vt_tensor b);
vt_tensor vt_linear(vt_tensor x, vt_tensor w, vt_tensor b /* nullable */);
vt_tensor vt_embedding(vt_tensor weight, vt_tensor indices);
vt_tensor vt_layer_norm(vt_tensor x, const int64_t *shape, int ndim, vt_tensor w, vt_tensor b, double eps);
vt_tensor vt_rms_norm(vt_tensor x, const int64_t *shape, int ndim, vt_tensor w, double eps);
vt_tensor vt_conv2d(vt_tensor x, vt_tensor w, vt_tensor b, const int64_t *stride, const int64_t *padding,
                    const int64_t *dilation, int64_t groups);
vt_tensor vt_conv3d(vt_tensor x, vt_tensor w, vt_tensor b, const int64_t *stride, const int64_t *padding,
                    const int64_t *dilation, int64_t groups);
/// mask may be NULL; scale < 0 uses 1/sqrt(head_dim).
vt_tensor vt_sdpa(vt_tensor q, vt_tensor k, vt_tensor v, vt_tensor mask, double dropout, bool is_causal,
                  double scale, bool enable_gqa);
/// Variable-length flash attention (CUDA). q/k/v are [total, heads, head_dim]; cu_seqlens int32.
/// seqused_k may be NULL. window < 0 means unlimited. Writes the output and log-sum-exp.
int vt_flash_attention_varlen(vt_tensor q, vt_tensor k, vt_tensor v, vt_tensor cu_seqlens_q,
                              vt_tensor cu_seqlens_k, int64_t max_q, int64_t max_k, bool is_causal,
                              double scale, vt_tensor seqused_k, vt_tensor *out, vt_tensor *lse);
vt_tensor vt_upsample_bicubic2d_aa(vt_tensor x, int64_t out_h, int64_t out_w, bool align_corners);
vt_tensor vt_cross_entropy(vt_tensor logits, vt_tensor target, int64_t ignore_index, int reduction);

// ---- autograd ---------------------------------------------------------------------------------
int vt_set_requires_grad(vt_tensor t, bool requires);
int vt_requires_grad(vt_tensor t);
int vt_backward(vt_tensor t, vt_tensor grad /* nullable */, bool retain_graph);
/// Gradients of outputs w.r.t. inputs (torch.autograd.grad). grad_outputs entries may be NULL.
int vt_autograd_grad(const vt_tensor *outputs, const vt_tensor *grad_outputs, int n_out,
                     const vt_tensor *inputs, int n_in, bool retain_graph, bool create_graph,
                     vt_tensor *out_grads);
/// NULL (and no error) when the tensor has no gradient.
vt_tensor vt_grad(vt_tensor t);
int vt_set_grad(vt_tensor t, vt_tensor grad /* nullable: clears */);
int vt_grad_mode_enabled(void);
/// Returns the previous mode.
int vt_set_grad_mode(bool enabled);

// ---- optimizer and training kernels -------------------------------------------------------------
/// AdamW over lists (fused kernel: `_fused_adamw_`; on CPU and CUDA). steps are float32 scalars.
int vt_fused_adamw(const vt_tensor *params, const vt_tensor *grads, const vt_tensor *exp_avgs,
                   const vt_tensor *exp_avg_sqs, const vt_tensor *steps, int count, double lr,
                   double beta1, double beta2, double weight_decay, double eps);
/// Global L2 norm of a list of tensors (float32 scalar tensor on the first tensor's device).
vt_tensor vt_global_norm(const vt_tensor *ts, int count);
/// Writes the float32 `src` into the bfloat16 `dst` (same shape) with stochastic rounding: up with
/// probability equal to the share of the spacing the dropped 16 bits cover (`gen`, or the default
/// generator when NULL).
int vt_stochastic_round_bf16_(vt_tensor dst, vt_tensor src, vt_generator gen);
/// Multiplies each tensor in place by a scalar tensor.
int vt_mul_list_(const vt_tensor *ts, int count, vt_tensor scale);

// ---- gradient checkpointing ---------------------------------------------------------------------
/// A custom autograd function whose forward runs `fn(context, inputs) -> outputs` without saving
/// activations and re-runs it in backward. `fn` must create its outputs with vt_* calls.
typedef int (*vt_checkpoint_fn)(void *context, const vt_tensor *inputs, int n_in, vt_tensor *outputs,
                                int n_out);
int vt_checkpoint(vt_checkpoint_fn fn, void *context, const vt_tensor *inputs, int n_in, vt_tensor *outputs,
                  int n_out);

// ---- process groups (c10d) ------------------------------------------------------------------------
/// A c10d process group: a TCPStore rendezvous at master_addr:port (rank 0 serves it) and the Gloo
/// backend over it (CPU tensors). Creating one blocks until all world_size ranks have joined or
/// timeout_ms has passed; then NULL, with an error naming the rank and the address. Every
/// collective fails (rather than hangs) once a peer has been silent for timeout_ms.
typedef struct vt_process_group_opaque *vt_process_group;
vt_process_group vt_pg_gloo_create(int rank, int world_size, const char *master_addr, int port, int64_t timeout_ms);
/// Makes a backend over a c10d store (the CUDA shim's NCCL backend, vtc_nccl_backend): a heap
/// c10::intrusive_ptr<c10d::Backend>* the group takes over, or NULL with the reason in `error`.
typedef void *(*vt_backend_factory)(void *store, int rank, int world_size, int64_t timeout_ms, int device, char *error,
                                    int error_length);
/// As vt_pg_gloo_create, with the backend `factory` makes on CUDA device `device` (`name` in errors).
vt_process_group vt_pg_create_with(int rank, int world_size, const char *master_addr, int port, int64_t timeout_ms,
                                   vt_backend_factory factory, int device, const char *name);
int vt_pg_rank(vt_process_group pg);
int vt_pg_world_size(vt_process_group pg);
void vt_pg_free(vt_process_group pg);
/// Sums the tensors over all ranks, in place (one flat buffer per dtype and device).
int vt_pg_allreduce_sum(vt_process_group pg, const vt_tensor *tensors, int count);
/// Overwrites the tensors with rank `root`'s values.
int vt_pg_broadcast(vt_process_group pg, const vt_tensor *tensors, int count, int root);
/// Every rank's `input` (same shape and dtype on all ranks), stacked along a new first dimension.
vt_tensor vt_pg_allgather(vt_process_group pg, vt_tensor input);
/// c10d's reduce_scatter_tensor (sum): `input` holds world_size * n contiguous elements, `output` n;
/// rank r receives the sum over the ranks of input[r*n ..< (r+1)*n].
int vt_pg_reduce_scatter_sum(vt_process_group pg, vt_tensor input, vt_tensor output);
/// c10d's all_gather_into_tensor: `output` (world_size * n elements) receives every rank's `input`
/// (n elements) in rank order.
int vt_pg_allgather_into(vt_process_group pg, vt_tensor input, vt_tensor output);
int vt_pg_barrier(vt_process_group pg);

#ifdef __cplusplus
}
#endif

#endif
