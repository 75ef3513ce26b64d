// Placeholder until the avx2 kernels land: the ISA reports as not built in.
#include "../internal.h"

namespace mnq {
namespace detail {
const IsaKernels* avx2_kernels() { return nullptr; }
}  // namespace detail
}  // namespace mnq
