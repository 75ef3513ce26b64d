// The NEON kernel table (neon_kernels(), internal.h): table.cc fills it with
// the entries of each op file.
#pragma once

#include "../../internal.h"

namespace mnq {
namespace detail {
namespace neon {

void set_gemm(IsaKernels& t);            // gemm.cc: gemm_pack, gemm
void set_gemm_wide(IsaKernels& t);       // gemm_wide.cc: gemm_wide_pack, gemm_wide
void set_depthwise(IsaKernels& t);       // depthwise.cc: depthwise_pack, _scratch_size, depthwise
void set_depthwise_wide(IsaKernels& t);  // depthwise_wide.cc: depthwise_wide_pack, depthwise_wide
void set_direct_conv(IsaKernels& t);     // direct_conv.cc: conv_direct_pack, _scratch_size, conv_direct
void set_elementwise(IsaKernels& t);     // elementwise.cc: global_avg_pool, add, mul, mul_channelwise,
                                         // lut_apply, quantize_nchw_to_nhwc, dequantize

}  // namespace neon
}  // namespace detail
}  // namespace mnq
