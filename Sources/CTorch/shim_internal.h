// What the shim's C++ files share and Swift never sees: the tensor handle's layout, the error slot
// and the catch-all that every exported function runs in (conventions in include/ctorch.h).
#ifndef CTORCH_SHIM_INTERNAL_H
#define CTORCH_SHIM_INTERNAL_H

#include "ctorch.h"

#include <ATen/ATen.h>

#include <exception>
#include <utility>

struct vt_tensor_opaque {
  at::Tensor tensor;
};

namespace vt_shim {

/// Stores `message` in this thread's error slot (read back by vt_last_error).
void set_error(const char *message);

inline vt_tensor wrap(at::Tensor t) { return new vt_tensor_opaque{std::move(t)}; }
inline const at::Tensor &T(vt_tensor t) { return t->tensor; }

}  // namespace vt_shim

// Runs `body` (which returns a value) inside a catch-all; returns `fail` on error.
#define VT_TRY(fail, ...)                                               \
  try {                                                                 \
    __VA_ARGS__                                                         \
  } catch (const std::exception &e) {                                   \
    vt_shim::set_error(e.what());                                       \
    return fail;                                                        \
  } catch (...) {                                                       \
    vt_shim::set_error("unknown C++ exception");                        \
    return fail;                                                        \
  }

#endif
