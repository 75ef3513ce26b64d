// Placeholder until the avx512vnni kernels land: the ISA reports as not built in.
#include "../internal.h"

namespace mnq {
namespace detail {
const IsaKernels* avx512vnni_kernels() { return nullptr; }
}  // namespace detail
}  // namespace mnq
