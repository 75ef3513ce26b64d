// The AVX-512 VNNI kernel table (avx512vnni_kernels(), internal.h): table.cc
// fills it with the entries of each op file. Baseline code with external
// linkage; the kernels themselves keep internal linkage (../target.h).
#pragma once

#include "../../internal.h"

namespace mnq {
namespace detail {
namespace avx512vnni {

void set_gemm(IsaKernels& t);         // gemm.cc: gemm_pack, gemm
void set_direct_conv(IsaKernels& t);  // direct_conv.cc: conv_direct_pack, _scratch_size, conv_direct
void set_depthwise(IsaKernels& t);    // depthwise.cc: depthwise_pack, _scratch_size, depthwise
void set_elementwise(IsaKernels& t);  // elementwise.cc: global_avg_pool, add, mul, mul_channelwise,
                                      // lut_apply, quantize_nchw_to_nhwc, dequantize

}  // namespace avx512vnni
}  // namespace detail
}  // namespace mnq
