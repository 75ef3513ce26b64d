// AArch64 ASIMD + dot product kernels (Cortex-A76, Raspberry Pi 5).
//   gemm.cc         GEMM: 4x16 output tile, k in groups of 4 (SDOT by element)
//   depthwise.cc    depthwise conv: SDOT over 4 kernel rows of a column (symmetric
//                   weights; the NEON kernel for the others)
//   direct_conv.cc  direct general conv (the stem): SDOT on 4-byte groups
//   target.h        what is compiled with the dot-product extension
// The elementwise kernels and the wide ones (int16 activations: GEMM, depthwise,
// elementwise) are the baseline NEON ones: SDOT multiplies int8 only.
// isa.cc selects this table only when getauxval(AT_HWCAP) has HWCAP_ASIMDDP.
#include "../../internal.h"
#include "table.h"

namespace mnq {
namespace detail {

#if defined(__aarch64__)

const IsaKernels* neondot_kernels() {
  static const IsaKernels table = [] {
    const IsaKernels* neon = neon_kernels();
    IsaKernels t = neon ? *neon : IsaKernels{};
    neondot::set_gemm(t);
    neondot::set_depthwise(t);
    neondot::set_direct_conv(t);
    return t;
  }();
  return &table;
}

#else  // !__aarch64__

const IsaKernels* neondot_kernels() { return nullptr; }

#endif

}  // namespace detail
}  // namespace mnq
