// The scalar reference kernel table (scalar_kernels(), internal.h): every
// entry, and what resolved_kernels puts in place of an ISA's null entries.
//   gemm.cc         GEMM
//   depthwise.cc    depthwise conv
//   elementwise.cc  global average pool, add, mul, channelwise mul, lut_apply,
//                   quantize, dequantize
// (The general conv runs as im2col + GEMM, conv.cc.)
#include "ref.h"

namespace mnq {
namespace detail {
const IsaKernels& scalar_kernels() {
  static const IsaKernels k = [] {
    IsaKernels t;
    t.gemm_pack = ref::gemm_pack;
    t.gemm = ref::gemm;
    t.depthwise_pack = ref::depthwise_pack;
    t.depthwise_scratch_size = ref::depthwise_scratch_size;
    t.depthwise = ref::depthwise;
    t.global_avg_pool = ref::global_avg_pool;
    t.add = ref::add;
    t.mul = ref::mul;
    t.mul_channelwise = ref::mul_channelwise;
    t.lut_apply = ref::lut_apply;
    t.quantize_nchw_to_nhwc = ref::quantize_nchw_to_nhwc;
    t.dequantize = ref::dequantize;
    return t;
  }();
  return k;
}
}  // namespace detail
}  // namespace mnq
