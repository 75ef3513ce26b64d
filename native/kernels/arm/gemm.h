// What the two AArch64 GEMMs (neon/gemm.cc, neondot/gemm.cc) share: the
// folding of the zero points into the bias, and the row sums that correct for
// asymmetric weights. Internal linkage (see epilogue.h).
#pragma once

#if defined(__aarch64__)

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "../internal.h"

namespace mnq {
namespace detail {
namespace {

// Row sums of int8 x (for the weight zero-point correction of asymmetric weights).
inline int32_t row_sum(const int8_t* x, size_t k) {
  int32x4_t s = vdupq_n_s32(0);
  size_t i = 0;
  for (; i + 16 <= k; i += 16) s = vpadalq_s16(s, vpaddlq_s8(vld1q_s8(x + i)));
  int32_t r = vaddvq_s32(s);
  for (; i < k; ++i) r += x[i];
  return r;
}

// GEMM bias folding shared by the GEMM packers:
//   sum_k (x - xz)(w - wz) + b = sum_k x w - wz * rowsum(x) + [b - xz * sum_k w + k * xz * wz]
// The bracket is bias_folded[n] (computed modulo 2^32, like the int32 accumulator),
// padded with zeros to n_pad; the wz * rowsum(x) term is applied per row by the kernel.
inline void fold_gemm_bias(PackedGemm* w, int n_pad) {
  w->bias_folded.assign(static_cast<size_t>(n_pad), 0);
  for (int n = 0; n < w->n; ++n) {
    int64_t sum_w = 0;
    const int8_t* row = w->w.data() + static_cast<size_t>(n) * w->k;
    for (int k = 0; k < w->k; ++k) sum_w += row[k];
    const int64_t wz = w->w_zero_point.empty() ? 0 : w->w_zero_point[n];
    const int64_t b = w->bias.empty() ? 0 : w->bias[n];
    const int64_t xz = w->x_zero_point;
    const uint64_t v = static_cast<uint64_t>(b - xz * sum_w + static_cast<int64_t>(w->k) * xz * wz);
    w->bias_folded[n] = static_cast<int32_t>(static_cast<uint32_t>(v));
  }
}

}  // namespace
}  // namespace detail
}  // namespace mnq

#endif  // __aarch64__
