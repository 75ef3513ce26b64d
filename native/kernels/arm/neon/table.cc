// AArch64 ASIMD baseline kernels (Cortex-A72, Raspberry Pi 4): no SDOT here.
// Every entry of the table, each bit-identical to the scalar reference.
//   gemm.cc            GEMM (1x1 conv, fully connected, im2col'd conv)
//   gemm_wide.cc       the wide GEMM (int16 activations)
//   depthwise.cc       depthwise conv
//   depthwise_wide.cc  the wide depthwise conv (int16 activations)
//   direct_conv.cc     direct general conv (the stem), no im2col
//   elementwise.cc     lut_apply, dequantize, add, mul, channelwise mul, global
//                      average pool, quantize
//   ../epilogue.h      their output stage (bit-identical to the scalar reference)
#include "../../internal.h"
#include "table.h"

namespace mnq {
namespace detail {

#if defined(__aarch64__)

const IsaKernels* neon_kernels() {
  static const IsaKernels table = [] {
    IsaKernels t;
    neon::set_gemm(t);
    neon::set_gemm_wide(t);
    neon::set_depthwise(t);
    neon::set_depthwise_wide(t);
    neon::set_direct_conv(t);
    neon::set_elementwise(t);
    return t;
  }();
  return &table;
}

#else  // !__aarch64__

const IsaKernels* neon_kernels() { return nullptr; }

#endif

}  // namespace detail
}  // namespace mnq
