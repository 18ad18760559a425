// Process groups over libtorch's c10d: a TCPStore for the rendezvous and the Gloo backend for CPU
// tensors. Collectives run on libtorch's own engine; nothing here moves bytes itself.
//
// Why gloo_decls/: the PyPI wheel ships ProcessGroupGloo.hpp but none of the gloo headers it
// includes (the gloo code itself is inside libtorch_cpu.so). gloo_decls/ declares only the names
// that header mentions. That is safe because ProcessGroupGloo holds gloo types only behind
// shared_ptr/unique_ptr, so its size and layout here equal libtorch's, and its nested GlooStore (the
// one class deriving from a gloo type) is constructed inside libtorch, never here. This file calls
// libtorch's exported constructor, Options::create and createDevice*, then uses the group only
// through c10d::Backend's virtual collectives.
#include "shim_internal.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

struct vt_process_group_opaque {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  int rank;
  int world_size;
};

namespace {

using vt_shim::T;

std::string where(const vt_process_group_opaque *pg) {
  return "rank " + std::to_string(pg->rank) + " of " + std::to_string(pg->world_size);
}

// libtorch's message without the C++ backtrace that c10::Error appends.
std::string message(const std::exception &e) {
  if (auto error = dynamic_cast<const c10::Error *>(&e)) return error->what_without_backtrace();
  return e.what();
}

bool is_loopback(const std::string &host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// The network device Gloo binds: the interfaces named by GLOO_SOCKET_IFNAME (as torch.distributed
// reads it), loopback when the master is on loopback (all ranks on this machine), else the address
// this machine's hostname resolves to (libtorch's default).
std::vector<std::shared_ptr<::gloo::transport::Device>> gloo_devices(const std::string &master) {
  std::vector<std::shared_ptr<::gloo::transport::Device>> devices;
  if (const char *names = std::getenv("GLOO_SOCKET_IFNAME"); names != nullptr && *names != '\0') {
    std::string list(names);
    size_t start = 0;
    while (start <= list.size()) {
      size_t end = list.find(',', start);
      if (end == std::string::npos) end = list.size();
      if (end > start) devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(list.substr(start, end - start)));
      start = end + 1;
    }
  } else if (is_loopback(master)) {
    devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(master));
  } else {
    devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  return devices;
}

void wait(const c10::intrusive_ptr<c10d::Work> &work) { work->wait(); }

// Runs a one-tensor collective over many tensors: one flat buffer per (dtype, device), copied back
// after, so Gloo sees one message per dtype instead of one per parameter.
template <typename Op>
void coalesced(const vt_tensor *tensors, int count, Op op) {
  at::NoGradGuard no_grad;
  std::map<std::pair<int, std::string>, std::vector<at::Tensor>> groups;
  std::vector<std::pair<int, std::string>> order;
  for (int i = 0; i < count; ++i) {
    const at::Tensor &t = T(tensors[i]);
    auto key = std::make_pair(static_cast<int>(t.scalar_type()), t.device().str());
    if (groups.find(key) == groups.end()) order.push_back(key);
    groups[key].push_back(t);
  }
  for (const auto &key : order) {
    auto &group = groups[key];
    if (group.size() == 1 && group[0].is_contiguous()) {
      op(group[0]);
      continue;
    }
    std::vector<at::Tensor> flat_parts;
    flat_parts.reserve(group.size());
    for (const auto &t : group) flat_parts.push_back(t.reshape({-1}));
    at::Tensor flat = at::cat(flat_parts);
    op(flat);
    int64_t offset = 0;
    for (auto &t : group) {
      t.copy_(flat.narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

// The rendezvous: rank 0 serves a TCPStore at master:port, every rank connects; throws with the
// rank, the address and the timeout when the ranks do not all arrive.
c10::intrusive_ptr<c10d::Store> make_store(int rank, int world_size, const std::string &master, int port,
                                           int64_t timeout_ms) {
  std::string who = "rank " + std::to_string(rank) + " of " + std::to_string(world_size);
  std::string endpoint = master + ":" + std::to_string(port);
  if (world_size < 1 || rank < 0 || rank >= world_size) throw std::invalid_argument("rank out of range");
  if (port <= 0 || port > 65535) throw std::invalid_argument("port " + std::to_string(port) + " out of range");
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(port);
  options.isServer = rank == 0;
  options.numWorkers = static_cast<std::size_t>(world_size);
  options.waitWorkers = true;
  options.timeout = std::chrono::milliseconds(timeout_ms);
  try {
    return c10::make_intrusive<c10d::TCPStore>(master, options);
  } catch (const std::exception &e) {
    std::string what = rank == 0 ? "the store at " + endpoint + " (rank 0 serves it) did not see all "
                                       + std::to_string(world_size) + " ranks"
                                 : "could not reach the master's store at " + endpoint;
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%g", timeout_ms / 1000.0);
    throw std::runtime_error(who + ": " + what + " within " + seconds + " s: " + message(e));
  }
}

// Both flat collectives run on Backend::_reduce_scatter_base / _allgather_base, which Gloo (CPU) and
// NCCL implement. `body` gets (whole, part): contiguous, of one dtype, whole = world_size x part.
template <typename Body>
int flat_collective(vt_process_group pg, const char *name, vt_tensor whole_handle, vt_tensor part_handle, Body body) {
  VT_TRY(-1, {
    try {
      at::NoGradGuard no_grad;
      at::Tensor whole = T(whole_handle), part = T(part_handle);
      if (!whole.is_contiguous() || !part.is_contiguous()) throw std::invalid_argument("tensors must be contiguous");
      if (whole.scalar_type() != part.scalar_type()) throw std::invalid_argument("input and output dtypes differ");
      if (whole.numel() != part.numel() * pg->world_size) throw std::invalid_argument("the whole is not world_size x the part");
      wait(body(whole, part));
    } catch (const std::exception &e) {
      throw std::runtime_error(std::string(name) + " on " + where(pg) + " failed: " + message(e));
    }
    return 0;
  })
}

}  // namespace

extern "C" {

vt_process_group vt_pg_gloo_create(int rank, int world_size, const char *master_addr, int port, int64_t timeout_ms) {
  std::string master = master_addr ? master_addr : "";
  std::string who = "rank " + std::to_string(rank) + " of " + std::to_string(world_size);
  std::string endpoint = master + ":" + std::to_string(port);
  VT_TRY(nullptr, {
    auto store = make_store(rank, world_size, master, port, timeout_ms);
    auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(timeout_ms));
    options->devices = gloo_devices(master);
    c10::intrusive_ptr<c10d::Backend> backend;
    try {
      backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, options);
    } catch (const std::exception &e) {
      throw std::runtime_error(who + ": the Gloo process group over " + endpoint + " could not connect all ranks: "
                               + message(e));
    }
    return new vt_process_group_opaque{store, backend, rank, world_size};
  })
}

vt_process_group vt_pg_create_with(int rank, int world_size, const char *master_addr, int port, int64_t timeout_ms,
                                   vt_backend_factory factory, int device, const char *name) {
  std::string master = master_addr ? master_addr : "";
  std::string who = "rank " + std::to_string(rank) + " of " + std::to_string(world_size);
  std::string backend_name = name ? name : "backend";
  VT_TRY(nullptr, {
    if (factory == nullptr) throw std::invalid_argument("no " + backend_name + " backend factory");
    auto store = make_store(rank, world_size, master, port, timeout_ms);
    char error[1024] = {0};
    void *made = factory(store.get(), rank, world_size, timeout_ms, device, error, static_cast<int>(sizeof error));
    if (made == nullptr) throw std::runtime_error(who + ": the " + backend_name + " process group could not be made: " + error);
    auto *holder = static_cast<c10::intrusive_ptr<c10d::Backend> *>(made);
    c10::intrusive_ptr<c10d::Backend> backend = std::move(*holder);
    delete holder;
    return new vt_process_group_opaque{store, backend, rank, world_size};
  })
}

int vt_pg_rank(vt_process_group pg) { return pg->rank; }
int vt_pg_world_size(vt_process_group pg) { return pg->world_size; }

void vt_pg_free(vt_process_group pg) {
  try {
    // As torch.distributed.destroy_process_group: NCCL tears its communicators down here (and
    // warns at exit when nobody did); Gloo's shutdown does nothing.
    if (pg != nullptr && pg->backend) pg->backend->shutdown();
  } catch (...) {
  }
  try {
    delete pg;
  } catch (...) {
  }
}

int vt_pg_allreduce_sum(vt_process_group pg, const vt_tensor *tensors, int count) {
  VT_TRY(-1, {
    try {
      coalesced(tensors, count, [&](at::Tensor &flat) {
        std::vector<at::Tensor> one{flat};
        wait(pg->backend->allreduce(one, c10d::AllreduceOptions{}));
      });
    } catch (const std::exception &e) {
      throw std::runtime_error("allreduce on " + where(pg) + " failed: " + message(e));
    }
    return 0;
  })
}

int vt_pg_broadcast(vt_process_group pg, const vt_tensor *tensors, int count, int root) {
  VT_TRY(-1, {
    try {
      c10d::BroadcastOptions options;
      options.rootRank = root;
      coalesced(tensors, count, [&](at::Tensor &flat) {
        std::vector<at::Tensor> one{flat};
        wait(pg->backend->broadcast(one, options));
      });
    } catch (const std::exception &e) {
      throw std::runtime_error("broadcast from rank " + std::to_string(root) + " on " + where(pg) + " failed: " + message(e));
    }
    return 0;
  })
}

vt_tensor vt_pg_allgather(vt_process_group pg, vt_tensor input) {
  VT_TRY(nullptr, {
    try {
      at::NoGradGuard no_grad;
      std::vector<at::Tensor> inputs{T(input).contiguous()};
      std::vector<std::vector<at::Tensor>> outputs(1);
      for (int r = 0; r < pg->world_size; ++r) outputs[0].push_back(at::empty_like(inputs[0]));
      wait(pg->backend->allgather(outputs, inputs, c10d::AllgatherOptions{}));
      return vt_shim::wrap(at::stack(outputs[0]));
    } catch (const std::exception &e) {
      throw std::runtime_error("allgather on " + where(pg) + " failed: " + message(e));
    }
  })
}

int vt_pg_reduce_scatter_sum(vt_process_group pg, vt_tensor input, vt_tensor output) {
  return flat_collective(pg, "reduce-scatter", input, output, [&](at::Tensor &whole, at::Tensor &part) {
    return pg->backend->_reduce_scatter_base(part, whole, c10d::ReduceScatterOptions{});
  });
}

int vt_pg_allgather_into(vt_process_group pg, vt_tensor input, vt_tensor output) {
  return flat_collective(pg, "allgather", output, input, [&](at::Tensor &whole, at::Tensor &part) {
    return pg->backend->_allgather_base(whole, part, c10d::AllgatherOptions{});
  });
}

int vt_pg_barrier(vt_process_group pg) {
  VT_TRY(-1, {
    try {
      wait(pg->backend->barrier(c10d::BarrierOptions{}));
    } catch (const std::exception &e) {
      throw std::runtime_error("barrier on " + where(pg) + " failed: " + message(e));
    }
    return 0;
  })
}

}  // extern "C"
