// Placeholder until the neondot kernels land: the ISA reports as not built in.
#include "../internal.h"

namespace mnq {
namespace detail {
const IsaKernels* neondot_kernels() { return nullptr; }
}  // namespace detail
}  // namespace mnq
