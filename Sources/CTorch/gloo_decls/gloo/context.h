// See the note at the top of distributed.cpp: ProcessGroupGloo.hpp holds contexts by pointer and
// calls one member (in setTimeout, which the shim never calls; libtorch_cpu.so exports it).
#pragma once

#include <chrono>

namespace gloo {
class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);
};
}  // namespace gloo
