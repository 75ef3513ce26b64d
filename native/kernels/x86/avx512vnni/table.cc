// AVX-512 VNNI kernels (x86-64 with AVX-512 F/BW/VL + VNNI): the table's
// entries, each bit-identical to the scalar reference in kernels/ref; mul and
// channelwise mul come from the AVX2 table (isa.cc, elementwise.cc).
//   gemm.cc         GEMM (pointwise conv, fully connected, im2col'd general conv)
//   direct_conv.cc  direct general conv (the stem), no im2col
//   depthwise.cc    depthwise conv
//   elementwise.cc  add, global average pool, lut_apply,
//                   quantize, dequantize
//   epilogue.h      their output stage; ../target.h: what runs as AVX-512 code
#include "../../internal.h"
#include "table.h"

namespace mnq {
namespace detail {

#if defined(__x86_64__) || defined(_M_X64)

const IsaKernels* avx512vnni_kernels() {
  static const IsaKernels table = [] {
    IsaKernels t;
    avx512vnni::set_gemm(t);
    avx512vnni::set_direct_conv(t);
    avx512vnni::set_depthwise(t);
    avx512vnni::set_elementwise(t);
    return t;
  }();
  return &table;
}

#else  // not x86-64

const IsaKernels* avx512vnni_kernels() { return nullptr; }

#endif

}  // namespace detail
}  // namespace mnq
