// AArch64 ASIMD baseline GEMM (Cortex-A72, Raspberry Pi 4: no SDOT): 1x1 conv,
// fully connected, im2col'd general conv. Bit-identical to ref/gemm.cc.
//
// 2x8 output tile, k in chunks of 16.
//   Packed weights: [n / 8][k_pad / 16][8 columns][16 bytes], zero padded, so a
//   chunk is 8 consecutive 16-byte vectors. Per chunk and column:
//   SMULL (low 8 bytes) + SMLAL (high 8 bytes) -> int16x8, SADALP into int32x4.
//   Two int8 products in one int16 lane overflow only for (-128)*(-128) twice,
//   which needs a weight of -128; symmetric weights are in [-127, 127]. When a
//   packed weight is -128 (asymmetric models) the kernel uses SMULL + SADALP per
//   8 bytes instead (no int16 sum of two products).
//   Zero points: sum (x - xz)(w - wz) + b = sum x*w + bias_folded[n] - wz[n] * rowsum(x),
//   bias_folded precomputed at pack time, rowsum per row when some wz != 0.
#include "../../internal.h"
#include "table.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "../epilogue.h"
#include "../gemm.h"

namespace mnq {
namespace detail {
namespace {

constexpr int kNr = 8;       // columns per tile
constexpr int kKc = 16;      // k bytes per chunk
constexpr size_t kHeader = 64;  // packed header: GemmHeader, then wz[n_pad] int32, then weights

struct GemmHeader {
  int32_t n_pad, k_pad;
  int32_t mlal_safe;  // no weight equals -128
  int32_t asymmetric;
};

void gemm_pack_neon(PackedGemm* w) {
  const int n = w->n, k = w->k;
  const int n_pad = round_up(std::max(n, 1), kNr), k_pad = round_up(std::max(k, 1), kKc);
  const size_t wz_bytes = static_cast<size_t>(n_pad) * sizeof(int32_t);
  const size_t w_bytes = static_cast<size_t>(n_pad) * k_pad;
  w->packed.resize(kHeader + wz_bytes + w_bytes);
  uint8_t* base = w->packed.data();
  std::memset(base, 0, w->packed.size());
  GemmHeader h{n_pad, k_pad, 1, w->symmetric ? 0 : 1};
  int32_t* wz = reinterpret_cast<int32_t*>(base + kHeader);
  int8_t* dst = reinterpret_cast<int8_t*>(base + kHeader + wz_bytes);
  for (int c = 0; c < n; ++c) {
    wz[c] = w->w_zero_point.empty() ? 0 : w->w_zero_point[c];
    const int8_t* src = w->w.data() + static_cast<size_t>(c) * k;
    const int nb = c / kNr, col = c % kNr;
    for (int i = 0; i < k; ++i) {
      if (src[i] == -128) h.mlal_safe = 0;
      const int kc = i / kKc, j = i % kKc;
      dst[((static_cast<size_t>(nb) * (k_pad / kKc) + kc) * kNr + col) * kKc + j] = src[i];
    }
  }
  std::memcpy(base, &h, sizeof h);
  w->n_block = kNr;
  fold_gemm_bias(w, n_pad);
}

// Accumulates one 2x8 tile over `chunks` chunks of 16 bytes.
template <bool kMlal>
inline void gemm_2x8_chunks(const int8_t* x0, const int8_t* x1, const int8_t*& wp, int chunks,
                            int32x4_t acc0[8], int32x4_t acc1[8]) {
  for (int kc = 0; kc < chunks; ++kc) {
    const int8x16_t a0 = vld1q_s8(x0 + kc * kKc);
    const int8x16_t a1 = vld1q_s8(x1 + kc * kKc);
#pragma GCC unroll 8
    for (int c = 0; c < kNr; ++c) {
      const int8x16_t b = vld1q_s8(wp + c * kKc);
      if (kMlal) {
        int16x8_t p0 = vmull_s8(vget_low_s8(a0), vget_low_s8(b));
        int16x8_t p1 = vmull_s8(vget_low_s8(a1), vget_low_s8(b));
        p0 = vmlal_high_s8(p0, a0, b);
        p1 = vmlal_high_s8(p1, a1, b);
        acc0[c] = vpadalq_s16(acc0[c], p0);
        acc1[c] = vpadalq_s16(acc1[c], p1);
      } else {
        acc0[c] = vpadalq_s16(acc0[c], vmull_s8(vget_low_s8(a0), vget_low_s8(b)));
        acc1[c] = vpadalq_s16(acc1[c], vmull_s8(vget_low_s8(a1), vget_low_s8(b)));
        acc0[c] = vpadalq_s16(acc0[c], vmull_high_s8(a0, b));
        acc1[c] = vpadalq_s16(acc1[c], vmull_high_s8(a1, b));
      }
    }
    wp += kNr * kKc;
  }
}

inline int32x4_t hsum4(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
  return vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d));
}

template <bool kMlal>
void gemm_neon_impl(const GemmArgs& a, const GemmHeader& h) {
  const PackedGemm& w = *a.w;
  const int k = w.k;
  const int chunks_full = k / kKc, k_tail = k % kKc;
  const int chunks_pad = h.k_pad / kKc;
  const uint8_t* base = w.packed.data();
  const int32_t* wz = reinterpret_cast<const int32_t*>(base + kHeader);
  const int8_t* packed = reinterpret_cast<const int8_t*>(base + kHeader + static_cast<size_t>(h.n_pad) * 4);
  const int32_t* bias = w.bias_folded.data();
  const NeonOutput o(*a.out);
  const bool asym = h.asymmetric != 0;
  // Column panels whose packed weights stay in L1 while all rows stream past.
  const int panel = std::max(kNr, (16384 / h.k_pad) / kNr * kNr);
  alignas(16) int8_t t0[kKc], t1[kKc];
  alignas(16) float m_tail[kNr];
  alignas(16) int8_t y_tail[2][kNr];

  for (int p0 = a.n_begin; p0 < a.n_end; p0 += panel) {
    const int p1 = std::min(a.n_end, p0 + panel);
    for (size_t r = 0; r < a.m; r += 2) {
      const bool two = r + 1 < a.m;
      const int8_t* x0 = a.x + r * a.x_stride;
      const int8_t* x1 = two ? x0 + a.x_stride : x0;
      int8_t* y0 = a.y + r * a.y_stride + p0;
      int8_t* y1 = two ? y0 + a.y_stride : y0;  // written only when two
      if (k_tail) {
        std::memset(t0, 0, sizeof t0);
        std::memset(t1, 0, sizeof t1);
        std::memcpy(t0, x0 + chunks_full * kKc, k_tail);
        std::memcpy(t1, x1 + chunks_full * kKc, k_tail);
      }
      int32x4_t rs0 = vdupq_n_s32(0), rs1 = vdupq_n_s32(0);
      if (asym) {
        rs0 = vdupq_n_s32(row_sum(x0, k));
        rs1 = vdupq_n_s32(row_sum(x1, k));
      }
      for (int nb = p0; nb < p1; nb += kNr) {
        const int8_t* wp = packed + static_cast<size_t>(nb / kNr) * chunks_pad * kNr * kKc;
        int32x4_t acc0[kNr], acc1[kNr];
        for (int c = 0; c < kNr; ++c) acc0[c] = acc1[c] = vdupq_n_s32(0);
        gemm_2x8_chunks<kMlal>(x0, x1, wp, chunks_full, acc0, acc1);
        if (k_tail) gemm_2x8_chunks<kMlal>(t0, t1, wp, 1, acc0, acc1);
        const int32x4_t b0 = vld1q_s32(bias + nb), b1 = vld1q_s32(bias + nb + 4);
        int32x4_t r0a = vaddq_s32(hsum4(acc0[0], acc0[1], acc0[2], acc0[3]), b0);
        int32x4_t r0b = vaddq_s32(hsum4(acc0[4], acc0[5], acc0[6], acc0[7]), b1);
        int32x4_t r1a = vaddq_s32(hsum4(acc1[0], acc1[1], acc1[2], acc1[3]), b0);
        int32x4_t r1b = vaddq_s32(hsum4(acc1[4], acc1[5], acc1[6], acc1[7]), b1);
        if (asym) {
          const int32x4_t za = vld1q_s32(wz + nb), zb = vld1q_s32(wz + nb + 4);
          r0a = vmlsq_s32(r0a, za, rs0);
          r0b = vmlsq_s32(r0b, zb, rs0);
          r1a = vmlsq_s32(r1a, za, rs1);
          r1b = vmlsq_s32(r1b, zb, rs1);
        }
        const int cols = std::min(kNr, p1 - nb);
        const float* m = o.m + nb;
        if (nb + kNr > w.n) {
          for (int c = 0; c < kNr; ++c) m_tail[c] = nb + c < w.n ? o.m[nb + c] : 0.0f;
          m = m_tail;
        }
        const int8x16_t q = vcombine_s8(requant8(r0a, r0b, m, o), requant8(r1a, r1b, m, o));
        vst1_s8(y_tail[0], vget_low_s8(q));
        vst1_s8(y_tail[1], vget_high_s8(q));
        if (o.lut) lut_bytes(o.lut, y_tail[0], 2 * kNr);
        std::memcpy(y0, y_tail[0], cols);
        if (two) std::memcpy(y1, y_tail[1], cols);
        y0 += cols;
        y1 += cols;
      }
    }
  }
}

void gemm_neon(const GemmArgs& a) {
  if (a.m == 0 || a.n_begin >= a.n_end) return;
  GemmHeader h;
  std::memcpy(&h, a.w->packed.data(), sizeof h);
  if (h.mlal_safe)
    gemm_neon_impl<true>(a, h);
  else
    gemm_neon_impl<false>(a, h);
}

}  // namespace

namespace neon {
void set_gemm(IsaKernels& t) {
  t.gemm_pack = gemm_pack_neon;
  t.gemm = gemm_neon;
}
}  // namespace neon
}  // namespace detail
}  // namespace mnq

#endif  // __aarch64__
