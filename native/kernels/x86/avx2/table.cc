// AVX2 kernels (x86-64 with AVX2 + FMA): every entry of the table but
// lut_apply, each bit-identical to the scalar reference in kernels/ref.
//   gemm.cc         GEMM (pointwise conv, fully connected, im2col'd general conv)
//   direct_conv.cc  direct general conv (the stem), no im2col
//   depthwise.cc    depthwise conv
//   elementwise.cc  add, mul, channelwise mul, global average pool, quantize,
//                   dequantize
//   lanes.h         partial loads and stores; ../epilogue_avx2.h: the output
//                   stage; ../target.h: what runs as AVX2 code
#include "../../internal.h"
#include "table.h"

namespace mnq {
namespace detail {

#if defined(__x86_64__) || defined(_M_X64)

const IsaKernels* avx2_kernels() {
  static const IsaKernels table = [] {
    IsaKernels t;
    avx2::set_gemm(t);
    avx2::set_direct_conv(t);
    avx2::set_depthwise(t);
    avx2::set_elementwise(t);
    return t;
  }();
  return &table;
}

#else  // not x86-64

const IsaKernels* avx2_kernels() { return nullptr; }

#endif

}  // namespace detail
}  // namespace mnq
