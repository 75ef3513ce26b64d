// The NEON dot-product kernel table (neondot_kernels(), internal.h): the NEON
// table with the entries of this directory's op files.
#pragma once

#include "../../internal.h"

namespace mnq {
namespace detail {
namespace neondot {

void set_gemm(IsaKernels& t);         // gemm.cc: gemm_pack, gemm
void set_depthwise(IsaKernels& t);    // depthwise.cc: depthwise_pack, _scratch_size, depthwise
void set_direct_conv(IsaKernels& t);  // direct_conv.cc: conv_direct_pack, _scratch_size, conv_direct

}  // namespace neondot
}  // namespace detail
}  // namespace mnq
