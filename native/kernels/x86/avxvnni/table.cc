// AVX-VNNI kernels (x86-64 with AVX2 + FMA + AVX-VNNI: the VEX-encoded,
// 256-bit vpdpbusd without AVX-512, e.g. Intel Alder Lake and later, AMD Zen 5
// client): bit-identical to the scalar reference in kernels/ref.
//   gemm.cc         GEMM (pointwise conv, fully connected, im2col'd general conv)
//   direct_conv.cc  direct general conv (the stem), no im2col
//   epilogue.h      their output stage; ../target.h: what runs as AVX-VNNI code
// Only the GEMM (pointwise conv, fully connected, im2col'd general conv) and the
// direct general conv are here; every other entry comes from the AVX2 table
// (resolved_kernels, isa.cc).
#include "../../internal.h"
#include "table.h"

namespace mnq {
namespace detail {

#if defined(__x86_64__) || defined(_M_X64)

const IsaKernels* avxvnni_kernels() {
  static const IsaKernels table = [] {
    IsaKernels t;
    avxvnni::set_gemm(t);
    avxvnni::set_direct_conv(t);
    return t;
  }();
  return &table;
}

#else  // not x86-64

const IsaKernels* avxvnni_kernels() { return nullptr; }

#endif

}  // namespace detail
}  // namespace mnq
