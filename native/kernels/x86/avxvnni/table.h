// The AVX-VNNI kernel table (avxvnni_kernels(), internal.h): table.cc fills
// it with the entries of each op file. Baseline code with external linkage;
// the kernels themselves keep internal linkage (../target.h).
#pragma once

#include "../../internal.h"

namespace mnq {
namespace detail {
namespace avxvnni {

void set_gemm(IsaKernels& t);         // gemm.cc: gemm_pack, gemm
void set_direct_conv(IsaKernels& t);  // direct_conv.cc: conv_direct_pack, _scratch_size, conv_direct

}  // namespace avxvnni
}  // namespace detail
}  // namespace mnq
