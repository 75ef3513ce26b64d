// Placeholder until the neon kernels land: the ISA reports as not built in.
#include "../internal.h"

namespace mnq {
namespace detail {
const IsaKernels* neon_kernels() { return nullptr; }
}  // namespace detail
}  // namespace mnq
