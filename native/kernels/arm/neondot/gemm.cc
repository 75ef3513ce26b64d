// AArch64 dot-product GEMM (Cortex-A76, Raspberry Pi 5): 1x1 conv, fully
// connected, im2col'd conv. Bit-identical to ref/gemm.cc.
//
// 4x16 output tile, k in groups of 4 (SDOT by element).
//   Packed weights: [n_pad / 16][k_pad / 4][16 columns][4 bytes], zero padded,
//   k_pad a multiple of 8 (x is loaded 8 bytes at a time; the k tail of a
//   row is copied into a zero-padded buffer). Zero points as in neon/gemm.cc:
//   acc = sum x*w + bias_folded[n] - wz[n] * rowsum(x).
#include "../../internal.h"
#include "table.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "../epilogue.h"
#include "../gemm.h"
#include "target.h"

namespace mnq {
namespace detail {
namespace {

constexpr int kMr = 4;
constexpr int kNr = 16;
constexpr int kKc = 8;           // x bytes per load (2 groups of 4: keeps 16 acc + 4 x + 8 w in registers)
constexpr size_t kHeader = 64;   // GemmHeader, then wz[n_pad] int32, then weights

struct GemmHeader {
  int32_t n_pad, k_pad;
  int32_t asymmetric;
};

void gemm_pack_dot(PackedGemm* w) {
  const int n = w->n, k = w->k;
  const int n_pad = round_up(std::max(n, 1), kNr), k_pad = round_up(std::max(k, 1), kKc);
  const size_t wz_bytes = static_cast<size_t>(n_pad) * sizeof(int32_t);
  w->packed.resize(kHeader + wz_bytes + static_cast<size_t>(n_pad) * k_pad);
  uint8_t* base = w->packed.data();
  std::memset(base, 0, w->packed.size());
  const GemmHeader h{n_pad, k_pad, w->symmetric ? 0 : 1};
  std::memcpy(base, &h, sizeof h);
  int32_t* wz = reinterpret_cast<int32_t*>(base + kHeader);
  int8_t* dst = reinterpret_cast<int8_t*>(base + kHeader + wz_bytes);
  const int groups = k_pad / 4;
  for (int c = 0; c < n; ++c) {
    wz[c] = w->w_zero_point.empty() ? 0 : w->w_zero_point[c];
    const int8_t* src = w->w.data() + static_cast<size_t>(c) * k;
    const int nb = c / kNr, col = c % kNr;
    for (int i = 0; i < k; ++i)
      dst[((static_cast<size_t>(nb) * groups + i / 4) * kNr + col) * 4 + i % 4] = src[i];
  }
  w->n_block = kNr;
  fold_gemm_bias(w, n_pad);
}

// One group of 4 k values (lane L of the x vectors) against 16 columns.
template <int L>
MNQ_DOTPROD inline void dot_group(const int8_t* wp, const int8x8_t x[kMr], int32x4_t acc[kMr][4]) {
  const int8x16_t w0 = vld1q_s8(wp), w1 = vld1q_s8(wp + 16);
  const int8x16_t w2 = vld1q_s8(wp + 32), w3 = vld1q_s8(wp + 48);
#pragma GCC unroll 4
  for (int r = 0; r < kMr; ++r) {
    acc[r][0] = vdotq_lane_s32(acc[r][0], w0, x[r], L);
    acc[r][1] = vdotq_lane_s32(acc[r][1], w1, x[r], L);
    acc[r][2] = vdotq_lane_s32(acc[r][2], w2, x[r], L);
    acc[r][3] = vdotq_lane_s32(acc[r][3], w3, x[r], L);
  }
}

// Accumulates `chunks` chunks of 8 k values for the 4x16 tile.
MNQ_DOTPROD inline void dot_chunks(const int8_t* const xr[kMr], const int8_t*& wp, int chunks,
                                   int32x4_t acc[kMr][4]) {
  for (int kc = 0; kc < chunks; ++kc) {
    int8x8_t x[kMr];
    for (int r = 0; r < kMr; ++r) x[r] = vld1_s8(xr[r] + kc * kKc);
    dot_group<0>(wp, x, acc);
    dot_group<1>(wp + 64, x, acc);
    wp += 2 * 64;
  }
}

MNQ_DOTPROD void gemm_dot(const GemmArgs& a) {
  if (a.m == 0 || a.n_begin >= a.n_end) return;
  const PackedGemm& w = *a.w;
  GemmHeader h;
  std::memcpy(&h, w.packed.data(), sizeof h);
  const int k = w.k;
  const int chunks_full = k / kKc, k_tail = k % kKc;
  const size_t block_bytes = static_cast<size_t>(h.k_pad) * kNr;
  const uint8_t* base = w.packed.data();
  const int32_t* wz = reinterpret_cast<const int32_t*>(base + kHeader);
  const int8_t* packed = reinterpret_cast<const int8_t*>(base + kHeader + static_cast<size_t>(h.n_pad) * 4);
  const int32_t* bias = w.bias_folded.data();
  const NeonOutput o(*a.out);
  const bool asym = h.asymmetric != 0;
  const int panel = std::max(kNr, (32768 / h.k_pad) / kNr * kNr);
  alignas(16) int8_t tail[kMr][kKc];
  alignas(16) float m_tail[kNr];
  alignas(16) int8_t y_tail[kNr];

  for (int p0 = a.n_begin; p0 < a.n_end; p0 += panel) {
    const int p1 = std::min(a.n_end, p0 + panel);
    for (size_t r0 = 0; r0 < a.m; r0 += kMr) {
      const int rows = static_cast<int>(std::min<size_t>(kMr, a.m - r0));
      const int8_t* xr[kMr];
      const int8_t* xt[kMr];
      int8_t* yr[kMr];
      int32x4_t rs[kMr];
      for (int r = 0; r < kMr; ++r) {
        const size_t row = r0 + std::min(r, rows - 1);  // extra rows repeat the last one
        xr[r] = a.x + row * a.x_stride;
        yr[r] = r < rows ? a.y + (r0 + r) * a.y_stride + p0 : nullptr;
        xt[r] = tail[r];
        if (k_tail) {
          std::memset(tail[r], 0, kKc);
          std::memcpy(tail[r], xr[r] + chunks_full * kKc, k_tail);
        }
        rs[r] = vdupq_n_s32(asym ? row_sum(xr[r], k) : 0);
      }
      for (int nb = p0; nb < p1; nb += kNr) {
        const int8_t* wp = packed + static_cast<size_t>(nb / kNr) * block_bytes;
        int32x4_t acc[kMr][4];
        for (int r = 0; r < kMr; ++r)
          for (int j = 0; j < 4; ++j) acc[r][j] = vdupq_n_s32(0);
        dot_chunks(xr, wp, chunks_full, acc);
        if (k_tail) dot_chunks(xt, wp, 1, acc);
        const float* m = o.m + nb;
        if (nb + kNr > w.n) {
          for (int c = 0; c < kNr; ++c) m_tail[c] = nb + c < w.n ? o.m[nb + c] : 0.0f;
          m = m_tail;
        }
        const int cols = std::min(kNr, p1 - nb);
        int32x4_t b[4], z[4];
        for (int j = 0; j < 4; ++j) {
          b[j] = vld1q_s32(bias + nb + 4 * j);
          z[j] = vld1q_s32(wz + nb + 4 * j);
        }
        for (int r = 0; r < rows; ++r) {
          int32x4_t v[4];
          for (int j = 0; j < 4; ++j) {
            v[j] = vaddq_s32(acc[r][j], b[j]);
            if (asym) v[j] = vmlsq_s32(v[j], z[j], rs[r]);
          }
          int8x16_t q = requant16(v[0], v[1], v[2], v[3], m, o);
          int8_t* y = yr[r] + (nb - p0);
          if (cols == kNr) {
            vst1q_s8(y, q);
            if (o.lut) lut_bytes(o.lut, y, kNr);
          } else {
            vst1q_s8(y_tail, q);
            if (o.lut) lut_bytes(o.lut, y_tail, static_cast<size_t>(cols));
            std::memcpy(y, y_tail, static_cast<size_t>(cols));
          }
        }
      }
    }
  }
}

}  // namespace

namespace neondot {
void set_gemm(IsaKernels& t) {
  t.gemm_pack = gemm_pack_dot;
  t.gemm = gemm_dot;
}
}  // namespace neondot
}  // namespace detail
}  // namespace mnq

#endif  // __aarch64__
