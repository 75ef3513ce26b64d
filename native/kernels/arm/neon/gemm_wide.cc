// AArch64 ASIMD wide GEMM (int16 activations; kernels.h, "int16 activations"):
// bit-identical to ref/gemm_wide.cc. The neondot table takes it too.
//
// SMLAL by element: weights int16 [n_pad / 8][k][8], per k one 8-column vector
// times each row's x[k] into two int32x4 per row (SMLAL, SMLAL2), 4 rows at a
// time. The input zero point is folded into the bias; the pack proves that
// every accumulator fits int32 (docs/quantization.md, "int16 activations"), so
// the wrapping int32 sums are exact. Output stage: ../epilogue.h store_wide8.
#include "../../internal.h"
#include "table.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "../epilogue.h"

namespace mnq {
namespace detail {
namespace {

constexpr int kWideNr = 8;    // columns per tile (one int16x8 weight vector)
constexpr int kWideRows = 4;  // rows per tile

bool gemm_wide_pack_neon(PackedGemm* w) {
  const int n = w->n, k = w->k, n_pad = round_up(std::max(n, 1), kWideNr);
  if (!wide_gemm_fits_int32(*w, &w->bias_folded)) return false;
  w->bias_folded.resize(static_cast<size_t>(n_pad), 0);
  w->packed.resize(static_cast<size_t>(n_pad) * std::max(k, 1) * sizeof(int16_t));
  int16_t* dst = reinterpret_cast<int16_t*>(w->packed.data());
  std::memset(dst, 0, w->packed.size());
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < k; ++i)
      dst[(static_cast<size_t>(j / kWideNr) * k + i) * kWideNr + j % kWideNr] = w->w[static_cast<size_t>(j) * k + i];
  w->n_block = kWideNr;
  return true;
}

template <int R>
inline void gemm_wide_tile(const WideGemmArgs& a, const WideNeonOutput& o, size_t m0, int nb) {
  const PackedGemm& w = *a.w;
  const int k = w.k;
  const int16_t* wp = reinterpret_cast<const int16_t*>(w.packed.data()) + static_cast<size_t>(nb) * k * kWideNr;
  const int32_t* bias = w.bias_folded.data() + nb * kWideNr;
  int32x4_t acc[R][2];
  for (int r = 0; r < R; ++r) {
    acc[r][0] = vld1q_s32(bias);
    acc[r][1] = vld1q_s32(bias + 4);
  }
  const int16_t* x[R];
  for (int r = 0; r < R; ++r) x[r] = a.x + (m0 + r) * a.x_stride;
  for (int i = 0; i < k; ++i) {
    const int16x8_t wv = vld1q_s16(wp + static_cast<size_t>(i) * kWideNr);
    for (int r = 0; r < R; ++r) {
      acc[r][0] = vmlal_n_s16(acc[r][0], vget_low_s16(wv), x[r][i]);
      acc[r][1] = vmlal_high_n_s16(acc[r][1], wv, x[r][i]);
    }
  }
  const int c = nb * kWideNr, valid = std::min(kWideNr, w.n - c);
  for (int r = 0; r < R; ++r) store_wide8(acc[r][0], acc[r][1], c, valid, o, a.y, (m0 + r) * a.y_stride + c);
}

void gemm_wide_neon(const WideGemmArgs& a) {
  if (a.m == 0 || a.n_begin >= a.n_end) return;
  const WideNeonOutput o(*a.out);
  const int nb_begin = a.n_begin / kWideNr, nb_end = (a.n_end + kWideNr - 1) / kWideNr;
  size_t m0 = 0;
  for (; m0 + kWideRows <= a.m; m0 += kWideRows)
    for (int nb = nb_begin; nb < nb_end; ++nb) gemm_wide_tile<kWideRows>(a, o, m0, nb);
  for (; m0 < a.m; ++m0)
    for (int nb = nb_begin; nb < nb_end; ++nb) gemm_wide_tile<1>(a, o, m0, nb);
}

}  // namespace

namespace neon {
void set_gemm_wide(IsaKernels& t) {
  t.gemm_wide_pack = gemm_wide_pack_neon;
  t.gemm_wide = gemm_wide_neon;
}
}  // namespace neon
}  // namespace detail
}  // namespace mnq

#endif  // __aarch64__
