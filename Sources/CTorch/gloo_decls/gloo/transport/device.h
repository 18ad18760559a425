// See the note at the top of distributed.cpp: only pointers to these appear in ProcessGroupGloo.hpp.
#pragma once

namespace gloo {
namespace transport {
class Device;
class UnboundBuffer;
}  // namespace transport
}  // namespace gloo
