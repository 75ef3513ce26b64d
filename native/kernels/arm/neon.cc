// AArch64 ASIMD baseline kernels (Cortex-A72, Raspberry Pi 4): no SDOT here.
//
// GEMM (1x1 conv, FC, im2col'd conv): 2x8 output tile, k in chunks of 16.
//   Packed weights: [n / 8][k_pad / 16][8 columns][16 bytes], zero padded, so a
//   chunk is 8 consecutive 16-byte vectors. Per chunk and column:
//   SMULL (low 8 bytes) + SMLAL (high 8 bytes) -> int16x8, SADALP into int32x4.
//   Two int8 products in one int16 lane overflow only for (-128)*(-128) twice,
//   which needs a weight of -128; symmetric weights are in [-127, 127]. When a
//   packed weight is -128 (asymmetric models) the kernel uses SMULL + SADALP per
//   8 bytes instead (no int16 sum of two products).
//   Zero points: sum (x - xz)(w - wz) + b = sum x*w + bias_folded[n] - wz[n] * rowsum(x),
//   bias_folded precomputed at pack time, rowsum per row when some wz != 0.
// Depthwise KxK: 16 (then 8) channels per step, weights (w - wz) packed as
//   int16 [c_pad / 8][taps][8]; per tap SSUBL (x - xz) to int16 and SMLAL(2) into
//   int32. Taps outside the image are skipped (they are x = xz, contributing 0).
//   Channel tails (< 8) use the same integer math in scalar code.
// Direct general conv (the stem: 3x3 s2 over 3 channels, few output channels):
//   no im2col; see "direct conv" below and neon_common.h.
// Output stage: neon_common.h (bit-identical to the scalar reference).
#include "../elementwise_entry.h"
#include "../internal.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "../quant.h"
#include "neon_common.h"

namespace mnq {
namespace detail {
namespace {

// ------------------------------------------------------------------ GEMM
constexpr int kNr = 8;       // columns per tile
constexpr int kKc = 16;      // k bytes per chunk
constexpr size_t kHeader = 64;  // packed header: GemmHeader, then wz[n_pad] int32, then weights

struct GemmHeader {
  int32_t n_pad, k_pad;
  int32_t mlal_safe;  // no weight equals -128
  int32_t asymmetric;
};

inline int round_up(int v, int m) { return (v + m - 1) / m * m; }

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

// ------------------------------------------------------------- depthwise
constexpr int kDwBlock = 8;  // channels per packed block

void depthwise_pack_neon(PackedDepthwise* w) {
  const ConvShape& s = w->shape;
  const int c = s.in_c, taps = s.kernel_h * s.kernel_w;
  const int c_pad = round_up(std::max(c, 1), kDwBlock);
  w->packed.resize(static_cast<size_t>(c_pad) * taps * sizeof(int16_t));
  int16_t* dst = reinterpret_cast<int16_t*>(w->packed.data());
  std::memset(dst, 0, w->packed.size());
  for (int ch = 0; ch < c; ++ch) {
    const int32_t wz = w->w_zero_point.empty() ? 0 : w->w_zero_point[ch];
    for (int t = 0; t < taps; ++t) {
      const int32_t v = w->w[static_cast<size_t>(ch) * taps + t] - wz;  // [-255, 255]
      dst[(static_cast<size_t>(ch / kDwBlock) * taps + t) * kDwBlock + ch % kDwBlock] =
          static_cast<int16_t>(v);
    }
  }
  w->bias_folded.assign(static_cast<size_t>(c_pad), 0);
  for (int ch = 0; ch < c; ++ch) w->bias_folded[ch] = w->bias.empty() ? 0 : w->bias[ch];
}

size_t depthwise_scratch_size_neon(const PackedDepthwise&, int, int) { return 0; }

// Everything one output pixel needs.
struct DwCtx {
  const int8_t* x;
  const int16_t* packed;
  const int32_t* bias;
  int c, kw, taps;
  ptrdiff_t row_step;  // bytes between kernel rows (dilation_h input rows)
  ptrdiff_t col_step;  // bytes between kernel columns (dilation_w input pixels)
  int8x16_t xz;
  int32_t xz_s;
};

// One output pixel, all channels. KH, KW > 0: every tap of the KH x KW kernel is inside
// the image (the ranges are [0, KH) x [0, KW), loops unrolled); 0: taps [ky0, ky1) x [kx0, kx1).
template <int KH, int KW>
inline void dw_pixel(const DwCtx& d, const NeonOutput& o, const NeonLut& lut, ptrdiff_t xpix, int ky0,
                     int ky1, int kx0, int kx1, int8_t* ypix) {
  if (KH > 0) {
    ky0 = kx0 = 0;
    ky1 = KH;
    kx1 = KW;
  }
  const int c = d.c, kw = KW > 0 ? KW : d.kw, taps = d.taps;
  int c0 = 0;
  for (; c0 + 16 <= c; c0 += 16) {
    int32x4_t acc0 = vld1q_s32(d.bias + c0), acc1 = vld1q_s32(d.bias + c0 + 4);
    int32x4_t acc2 = vld1q_s32(d.bias + c0 + 8), acc3 = vld1q_s32(d.bias + c0 + 12);
    const int16_t* wb0 = d.packed + static_cast<size_t>(c0 / kDwBlock) * taps * kDwBlock;
    const int16_t* wb1 = wb0 + static_cast<size_t>(taps) * kDwBlock;
    const ptrdiff_t xc = xpix + c0;  // offsets, not pointers: may be negative before a tap is added
#pragma GCC unroll 5
    for (int ky = ky0; ky < ky1; ++ky) {
#pragma GCC unroll 6
      for (int kx = kx0; kx < kx1; ++kx) {
        const int t = ky * kw + kx;
        const int8x16_t xv = vld1q_s8(d.x + (xc + ky * d.row_step + kx * d.col_step));
        const int16x8_t w0 = vld1q_s16(wb0 + t * kDwBlock);
        const int16x8_t w1 = vld1q_s16(wb1 + t * kDwBlock);
        const int16x8_t d0 = vsubl_s8(vget_low_s8(xv), vget_low_s8(d.xz));
        const int16x8_t d1 = vsubl_high_s8(xv, d.xz);
        acc0 = vmlal_s16(acc0, vget_low_s16(d0), vget_low_s16(w0));
        acc1 = vmlal_high_s16(acc1, d0, w0);
        acc2 = vmlal_s16(acc2, vget_low_s16(d1), vget_low_s16(w1));
        acc3 = vmlal_high_s16(acc3, d1, w1);
      }
    }
    int8x16_t q = requant16(acc0, acc1, acc2, acc3, o.m + c0, o);
    if (o.lut) q = lut.apply(q);
    vst1q_s8(ypix + c0, q);
  }
  for (; c0 + 8 <= c; c0 += 8) {
    int32x4_t acc0 = vld1q_s32(d.bias + c0), acc1 = vld1q_s32(d.bias + c0 + 4);
    const int16_t* wb0 = d.packed + static_cast<size_t>(c0 / kDwBlock) * taps * kDwBlock;
    const ptrdiff_t xc = xpix + c0;  // offsets, not pointers: may be negative before a tap is added
    for (int ky = ky0; ky < ky1; ++ky) {
      for (int kx = kx0; kx < kx1; ++kx) {
        const int t = ky * kw + kx;
        const int8x8_t xv = vld1_s8(d.x + (xc + ky * d.row_step + kx * d.col_step));
        const int16x8_t w0 = vld1q_s16(wb0 + t * kDwBlock);
        const int16x8_t d0 = vsubl_s8(xv, vget_low_s8(d.xz));
        acc0 = vmlal_s16(acc0, vget_low_s16(d0), vget_low_s16(w0));
        acc1 = vmlal_high_s16(acc1, d0, w0);
      }
    }
    int8x8_t q = requant8(acc0, acc1, o.m + c0, o);
    if (o.lut) q = lut.apply8(q);
    vst1_s8(ypix + c0, q);
  }
  for (; c0 < c; ++c0) {  // channel tail: same integer math, scalar
    int32_t acc = d.bias[c0];
    const int16_t* wb = d.packed + static_cast<size_t>(c0 / kDwBlock) * taps * kDwBlock + c0 % kDwBlock;
    const ptrdiff_t xc = xpix + c0;  // offsets, not pointers: may be negative before a tap is added
    for (int ky = ky0; ky < ky1; ++ky)
      for (int kx = kx0; kx < kx1; ++kx)
        acc += (d.x[xc + ky * d.row_step + kx * d.col_step] - d.xz_s) * wb[(ky * kw + kx) * kDwBlock];
    ypix[c0] = requant_one(acc, o.m[c0], o);
  }
}

void depthwise_neon(const DepthwiseArgs& a) {
  const PackedDepthwise& w = *a.w;
  const ConvShape& s = w.shape;
  const int c = s.in_c, kh = s.kernel_h, kw = s.kernel_w;
  const NeonOutput o(*a.out);
  static const int8_t kNoTable[256] = {};
  const NeonLut lut(o.lut ? o.lut : kNoTable);
  const ptrdiff_t row_bytes = static_cast<ptrdiff_t>(s.in_w) * c;
  DwCtx d;
  d.x = a.x;
  d.packed = reinterpret_cast<const int16_t*>(w.packed.data());
  d.bias = w.bias_folded.data();
  d.c = c;
  d.kw = kw;
  d.taps = kh * kw;
  d.row_step = static_cast<ptrdiff_t>(s.dilation_h) * row_bytes;
  d.col_step = static_cast<ptrdiff_t>(s.dilation_w) * c;
  d.xz = vdupq_n_s8(static_cast<int8_t>(w.x_zero_point));
  d.xz_s = w.x_zero_point;
  // 3x3, 5x5 and 3x6 (a 3x3 depthwise over two range pieces per channel: PlanOp::input_pieces) unrolled
  const int shape = kh == 3 && kw == 3 ? 33 : kh == 5 && kw == 5 ? 55 : kh == 3 && kw == 6 ? 36 : 0;

  for (int oy = a.row_begin; oy < a.row_end; ++oy) {
    const int iy0 = oy * s.stride_h - s.pad_top;
    int ky0 = 0, ky1 = kh;
    while (ky0 < kh && iy0 + ky0 * s.dilation_h < 0) ++ky0;
    while (ky1 > ky0 && iy0 + (ky1 - 1) * s.dilation_h >= s.in_h) --ky1;
    for (int ox = 0; ox < s.out_w; ++ox) {
      const int ix0 = ox * s.stride_w - s.pad_left;
      int kx0 = 0, kx1 = kw;
      while (kx0 < kw && ix0 + kx0 * s.dilation_w < 0) ++kx0;
      while (kx1 > kx0 && ix0 + (kx1 - 1) * s.dilation_w >= s.in_w) --kx1;
      // Offset of input pixel (iy0, ix0) (may be negative: only valid taps are read).
      const ptrdiff_t xpix = static_cast<ptrdiff_t>(iy0) * row_bytes + static_cast<ptrdiff_t>(ix0) * c;
      int8_t* ypix = a.y + (static_cast<size_t>(oy) * s.out_w + ox) * c;
      const bool inside = ky0 == 0 && ky1 == kh && kx0 == 0 && kx1 == kw;
      if (inside && shape == 33)
        dw_pixel<3, 3>(d, o, lut, xpix, 0, 3, 0, 3, ypix);
      else if (inside && shape == 55)
        dw_pixel<5, 5>(d, o, lut, xpix, 0, 5, 0, 5, ypix);
      else if (inside && shape == 36)
        dw_pixel<3, 6>(d, o, lut, xpix, 0, 3, 0, 6, ypix);
      else
        dw_pixel<0, 0>(d, o, lut, xpix, ky0, ky1, kx0, kx1, ypix);
    }
  }
}

// ------------------------------------------------------------- direct conv
// Stem-like general convs (neon_common.h's direct path): 2-byte groups, so the
// weights are [ky][pair][block of 16 channels][16 channels][2 bytes] (w - w_zp,
// direct_pack.h), then one flag byte: no packed weight is -128.
// Per pixel, a pair (x[2p], x[2p+1]) is broadcast to every int16 lane (LD1R),
// and SMULL / SMULL2 against a block's pair vector give, per channel, the two
// products of the pair in adjacent int16 lanes; SMLAL / SMLAL2 add the next
// pair's, and SADALP adds the lanes pairwise into the channel's int32 lane. An
// int16 lane holds two products, exact as in the GEMM unless a weight is -128
// (then SMULL + SADALP per pair).
constexpr int kDirectPairMaxOut = kDirectMaxBlocks * kDirectBlock;

// Pixels per tile: 3 for one block (12 accumulators; with 16 GCC spills some,
// the int16 products and the weights need registers too), else 1 (two pixels
// of two blocks spill as well).
constexpr int direct_tile_pixels_neon(int nb) { return nb == 1 ? 3 : 1; }

// Accumulates one pair for MR pixels (xa[r]) against the NB blocks at w;
// when kTwo, also the next pair (xb[r], weights at w + NB * 32), its products
// added in int16 to the first pair's.
template <int NB, int MR, bool kTwo>
__attribute__((always_inline)) inline void direct_pairs(int32x4_t (*acc)[NB][4], const int8_t* w,
                                                        const int8x16_t* xa, const int8x16_t* xb) {
#pragma GCC unroll 4
  for (int b = 0; b < NB; ++b)
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const int8x16_t wa = vld1q_s8(w + b * 32 + h * 16);
      const int8x16_t wb = kTwo ? vld1q_s8(w + NB * 32 + b * 32 + h * 16) : wa;
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        int16x8_t lo = vmull_s8(vget_low_s8(xa[r]), vget_low_s8(wa));
        int16x8_t hi = vmull_high_s8(xa[r], wa);
        if (kTwo) {
          lo = vmlal_s8(lo, vget_low_s8(xb[r]), vget_low_s8(wb));
          hi = vmlal_high_s8(hi, xb[r], wb);
        }
        acc[r][b][2 * h] = vpadalq_s16(acc[r][b][2 * h], lo);
        acc[r][b][2 * h + 1] = vpadalq_s16(acc[r][b][2 * h + 1], hi);
      }
    }
}

// Output pixels [ox, ox + MR) of one row, all NB channel blocks.
template <int NB, int MR, bool kMlal>
__attribute__((always_inline)) inline void direct_tile_neon(const DirectCall<int8_t>& c, const NeonOutput& o,
                                                            const NeonLut* lut, int ox, int8_t* y) {
  int32x4_t acc[MR][NB][4];
  direct_tile_init<NB, MR>(acc, c.bias);
  const int8_t* wp = reinterpret_cast<const int8_t*>(c.w);
  const int pairs = c.groups;
  for (int ky = 0; ky < c.kh; ++ky) {
    const int8_t* xp = c.rows[ky] + static_cast<size_t>(ox) * c.step;
    int p = 0;
    int8x16_t xa[MR], xb[MR];
    if (kMlal) {
      for (; p + 2 <= pairs; p += 2, wp += 2 * NB * 32) {
#pragma GCC unroll 4
        for (int r = 0; r < MR; ++r) {
          xa[r] = load_dup2(xp + static_cast<size_t>(r) * c.step + 2 * p);
          xb[r] = load_dup2(xp + static_cast<size_t>(r) * c.step + 2 * p + 2);
        }
        direct_pairs<NB, MR, true>(acc, wp, xa, xb);
      }
    }
    for (; p < pairs; ++p, wp += NB * 32) {
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) xa[r] = load_dup2(xp + static_cast<size_t>(r) * c.step + 2 * p);
      direct_pairs<NB, MR, false>(acc, wp, xa, xa);
    }
  }
  direct_tile_store<NB, MR>(acc, c, o, lut, ox, y);
}

template <int NB, bool kMlal>
__attribute__((noinline)) void direct_row_neon(const DirectCall<int8_t>& c, const NeonOutput& o,
                                               const NeonLut* lut, int out_w, int8_t* y) {
  constexpr int MR = direct_tile_pixels_neon(NB);
  int ox = 0;
  for (; ox + MR <= out_w; ox += MR) direct_tile_neon<NB, MR, kMlal>(c, o, lut, ox, y);
  for (; ox < out_w; ++ox) direct_tile_neon<NB, 1, kMlal>(c, o, lut, ox, y);
}

inline size_t direct_pair_weight_bytes(const ConvShape& s) {
  return static_cast<size_t>(s.kernel_h) * direct::groups(s, 2) *
         ((s.out_c + kDirectBlock - 1) / kDirectBlock) * 2 * kDirectBlock;
}

bool conv_direct_pack_neon(const ConvShape& s, PackedGemm* w) {
  if (!direct::pack<kDirectBlock, 2>(s, w, kDirectPairMaxOut, 0u, false)) return false;
  const size_t wbytes = direct_pair_weight_bytes(s);
  AlignedBuffer packed = std::move(w->packed);
  w->packed.resize(wbytes + 1);
  std::memcpy(w->packed.data(), packed.data(), wbytes);
  bool mlal_safe = true;
  for (size_t i = 0; i < wbytes; ++i) mlal_safe = mlal_safe && packed.data()[i] != 0x80;
  w->packed.data()[wbytes] = mlal_safe ? 1 : 0;
  return true;
}

size_t conv_direct_scratch_size_neon(const ConvShape& s, int, int) { return direct_scratch_bytes(s, 2); }

void conv_direct_neon(const DirectConvArgs& a) {
  const ConvShape& s = *a.s;
  const bool mlal_safe = a.w->packed.data()[direct_pair_weight_bytes(s)] != 0;
  const int nb = (s.out_c + kDirectBlock - 1) / kDirectBlock;
  direct_conv_neon_rows(a, 2, [&](const DirectCall<int8_t>& c, const NeonOutput& o, const NeonLut* lut, int8_t* y) {
    with_direct_blocks(nb, [&](auto blocks) {
      constexpr int NB = decltype(blocks)::value;
      if (mlal_safe)
        direct_row_neon<NB, true>(c, o, lut, s.out_w, y);
      else
        direct_row_neon<NB, false>(c, o, lut, s.out_w, y);
    });
  });
}

// ------------------------------------------------------------ elementwise
void lut_apply_neon(const int8_t table[256], size_t n, const int8_t* x, int8_t* y) {
  const NeonLut lut(table);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) vst1q_s8(y + i, lut.apply(vld1q_s8(x + i)));
  for (; i < n; ++i) y[i] = table[static_cast<int>(x[i]) + 128];
}

void dequantize_neon(const int8_t* q, size_t n, float scale, int32_t zero_point, float* y) {
  const int32x4_t zp = vdupq_n_s32(zero_point);
  const float32x4_t sc = vdupq_n_f32(scale);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const int16x8_t v = vmovl_s8(vld1_s8(q + i));
    const int32x4_t lo = vsubq_s32(vmovl_s16(vget_low_s16(v)), zp);
    const int32x4_t hi = vsubq_s32(vmovl_high_s16(v), zp);
    vst1q_f32(y + i, vmulq_f32(vcvtq_f32_s32(lo), sc));
    vst1q_f32(y + i + 4, vmulq_f32(vcvtq_f32_s32(hi), sc));
  }
  for (; i < n; ++i) y[i] = static_cast<float>(static_cast<int32_t>(q[i]) - zero_point) * scale;
}

// Saturating narrow of four int32x4 to int8x16 (then the caller's clamp).
inline int8x16_t narrow16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
  const int16x8_t lo = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
  const int16x8_t hi = vcombine_s16(vqmovn_s32(c), vqmovn_s32(d));
  return vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi));
}

// quant::add_one on 4 lanes: two fused multiply-adds as the reference (std::fma).
inline int32x4_t add4(int32x4_t a, int32x4_t b, float32x4_t ra, float32x4_t rb, float32x4_t fixed,
                      float32x4_t off) {
  float32x4_t t = vfmaq_f32(fixed, vaddq_f32(vcvtq_f32_s32(b), off), rb);
  t = vfmaq_f32(t, vaddq_f32(vcvtq_f32_s32(a), off), ra);
  return vcvtnq_s32_f32(vsubq_f32(t, off));
}

void add_neon(float k_ra, float k_rb, float k_fixed, float k_offset, int32_t qmin, int32_t qmax,
              size_t n, const int8_t* a, const int8_t* b, int8_t* y) {
  const quant::AddConstants k{k_ra, k_rb, k_fixed, k_offset};
  const float32x4_t ra = vdupq_n_f32(k.ra), rb = vdupq_n_f32(k.rb), fx = vdupq_n_f32(k.fixed);
  const float32x4_t off = vdupq_n_f32(k.offset);
  const int8x16_t lo = vdupq_n_s8(static_cast<int8_t>(qmin)), hi = vdupq_n_s8(static_cast<int8_t>(qmax));
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const int8x16_t va = vld1q_s8(a + i), vb = vld1q_s8(b + i);
    const int16x8_t a0 = vmovl_s8(vget_low_s8(va)), a1 = vmovl_high_s8(va);
    const int16x8_t b0 = vmovl_s8(vget_low_s8(vb)), b1 = vmovl_high_s8(vb);
    const int32x4_t r0 = add4(vmovl_s16(vget_low_s16(a0)), vmovl_s16(vget_low_s16(b0)), ra, rb, fx, off);
    const int32x4_t r1 = add4(vmovl_high_s16(a0), vmovl_high_s16(b0), ra, rb, fx, off);
    const int32x4_t r2 = add4(vmovl_s16(vget_low_s16(a1)), vmovl_s16(vget_low_s16(b1)), ra, rb, fx, off);
    const int32x4_t r3 = add4(vmovl_high_s16(a1), vmovl_high_s16(b1), ra, rb, fx, off);
    vst1q_s8(y + i, vminq_s8(vmaxq_s8(narrow16(r0, r1, r2, r3), lo), hi));
  }
  for (; i < n; ++i) y[i] = static_cast<int8_t>(quant::add_one(k, a[i], b[i], qmin, qmax));
}

// quant::mul_one on 4 products: float(p) * r + float(zc + offset) (two roundings, no FMA), rounded,
// minus offset; narrow16 then saturates to int8, which equals the reference's float clamp.
inline int32x4_t mul4(int32x4_t p, float32x4_t r, float32x4_t zc, int32x4_t off) {
  const float32x4_t t = vaddq_f32(vmulq_f32(vcvtq_f32_s32(p), r), zc);
  return vsubq_s32(vcvtnq_s32_f32(t), off);
}

struct MulConsts {
  float32x4_t r, zc;
  int16x8_t za, zb;
  int32x4_t off;
  MulConsts(float ratio, int32_t a_zp, int32_t b_zp, int32_t y_zp, int32_t offset)
      : r(vdupq_n_f32(ratio)), zc(vdupq_n_f32(static_cast<float>(y_zp + offset))),
        za(vdupq_n_s16(static_cast<int16_t>(a_zp))), zb(vdupq_n_s16(static_cast<int16_t>(b_zp))),
        off(vdupq_n_s32(offset)) {}
};

// quant::mul_one for 16 lanes: (a - za) * (b - zb) exactly in int32, then mul4.
inline int8x16_t mul16(int8x16_t va, int8x16_t vb, const MulConsts& k) {
  const int16x8_t a0 = vsubq_s16(vmovl_s8(vget_low_s8(va)), k.za), a1 = vsubq_s16(vmovl_high_s8(va), k.za);
  const int16x8_t b0 = vsubq_s16(vmovl_s8(vget_low_s8(vb)), k.zb), b1 = vsubq_s16(vmovl_high_s8(vb), k.zb);
  const int32x4_t p0 = vmull_s16(vget_low_s16(a0), vget_low_s16(b0));
  const int32x4_t p1 = vmull_high_s16(a0, b0);
  const int32x4_t p2 = vmull_s16(vget_low_s16(a1), vget_low_s16(b1));
  const int32x4_t p3 = vmull_high_s16(a1, b1);
  return narrow16(mul4(p0, k.r, k.zc, k.off), mul4(p1, k.r, k.zc, k.off), mul4(p2, k.r, k.zc, k.off),
                  mul4(p3, k.r, k.zc, k.off));
}

void mul_neon(float ratio, int32_t a_zp, int32_t b_zp, int32_t y_zp, int32_t offset, size_t n,
              const int8_t* a, const int8_t* b, int8_t* y) {
  const MulConsts k(ratio, a_zp, b_zp, y_zp, offset);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) vst1q_s8(y + i, mul16(vld1q_s8(a + i), vld1q_s8(b + i), k));
  for (; i < n; ++i)
    y[i] = static_cast<int8_t>(quant::mul_one(ratio, a[i], a_zp, b[i], b_zp, y_zp, offset));
}

void mul_channelwise_neon(float ratio, int32_t a_zp, int32_t b_zp, int32_t y_zp, int32_t offset, size_t hw,
                          size_t c, const int8_t* x, const int8_t* s, int8_t* y) {
  const MulConsts k(ratio, a_zp, b_zp, y_zp, offset);
  for (size_t i = 0; i < hw; ++i) {
    const int8_t* xi = x + i * c;
    int8_t* yi = y + i * c;
    size_t ch = 0;
    for (; ch + 16 <= c; ch += 16) vst1q_s8(yi + ch, mul16(vld1q_s8(xi + ch), vld1q_s8(s + ch), k));
    for (; ch < c; ++ch)
      yi[ch] = static_cast<int8_t>(quant::mul_one(ratio, xi[ch], a_zp, s[ch], b_zp, y_zp, offset));
  }
}

void global_avg_pool_neon(float scale, int32_t bias, int32_t y_zero_point, size_t hw, size_t c,
                          const int8_t* x, int8_t* y) {
  const float32x4_t m = vdupq_n_f32(scale);
  const int32x4_t zp = vdupq_n_s32(y_zero_point);
  size_t ch = 0;
  for (; ch + 16 <= c; ch += 16) {
    int32x4_t a0 = vdupq_n_s32(bias), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < hw; ++i) {
      const int8x16_t v = vld1q_s8(x + i * c + ch);
      const int16x8_t lo = vmovl_s8(vget_low_s8(v)), hi = vmovl_high_s8(v);
      a0 = vaddw_s16(a0, vget_low_s16(lo));
      a1 = vaddw_high_s16(a1, lo);
      a2 = vaddw_s16(a2, vget_low_s16(hi));
      a3 = vaddw_high_s16(a3, hi);
    }
    vst1q_s8(y + ch, narrow16(requant_s32(a0, m, zp), requant_s32(a1, m, zp),
                              requant_s32(a2, m, zp), requant_s32(a3, m, zp)));
  }
  for (; ch < c; ++ch) {
    int32_t acc = bias;
    for (size_t i = 0; i < hw; ++i) acc += x[i * c + ch];
    y[ch] = static_cast<int8_t>(quant::requantize(acc, scale, y_zero_point, -128, 127));
  }
}

// quant::quantize_linear on 4 lanes: true division, clamp with FMAXNM (a NaN
// becomes the lower bound, as the reference's comparison), round half even.
inline int32x4_t quantize4(float32x4_t x, float32x4_t scale, float32x4_t lo, float32x4_t hi,
                           int32x4_t zp) {
  float32x4_t v = vdivq_f32(x, scale);
  v = vminnmq_f32(vmaxnmq_f32(v, lo), hi);
  return vaddq_s32(vcvtnq_s32_f32(v), zp);
}

void quantize_nchw_to_nhwc_neon(const float* x, size_t c, size_t h, size_t w, float scale,
                                int32_t zero_point, int8_t* y) {
  const size_t hw = h * w;
  const float32x4_t sc = vdupq_n_f32(scale);
  const float32x4_t lo = vdupq_n_f32(static_cast<float>(-128 - zero_point));
  const float32x4_t hi = vdupq_n_f32(static_cast<float>(127 - zero_point));
  const int32x4_t zp = vdupq_n_s32(zero_point);
  alignas(16) int8_t tmp[16];
  size_t i = 0;
  for (; i + 16 <= hw; i += 16) {
    for (size_t ch = 0; ch < c; ++ch) {
      const float* xc = x + ch * hw + i;
      const int8x16_t q = narrow16(quantize4(vld1q_f32(xc), sc, lo, hi, zp),
                                   quantize4(vld1q_f32(xc + 4), sc, lo, hi, zp),
                                   quantize4(vld1q_f32(xc + 8), sc, lo, hi, zp),
                                   quantize4(vld1q_f32(xc + 12), sc, lo, hi, zp));
      vst1q_s8(tmp, q);
      for (int j = 0; j < 16; ++j) y[(i + j) * c + ch] = tmp[j];
    }
  }
  for (; i < hw; ++i)
    for (size_t ch = 0; ch < c; ++ch) y[i * c + ch] = quant::quantize_linear(x[ch * hw + i], scale, zero_point);
}

IsaKernels make_neon_table() {
  IsaKernels t;
  t.gemm_pack = gemm_pack_neon;
  t.gemm = gemm_neon;
  t.depthwise_pack = depthwise_pack_neon;
  t.depthwise_scratch_size = depthwise_scratch_size_neon;
  t.depthwise = depthwise_neon;
  t.conv_direct_pack = conv_direct_pack_neon;
  t.conv_direct_scratch_size = conv_direct_scratch_size_neon;
  t.conv_direct = conv_direct_neon;
  t.global_avg_pool = global_avg_pool_entry<global_avg_pool_neon>;
  t.add = add_entry<add_neon>;
  t.mul = mul_entry<mul_neon>;
  t.mul_channelwise = mul_channelwise_entry<mul_channelwise_neon>;
  t.lut_apply = lut_apply_neon;
  t.quantize_nchw_to_nhwc = quantize_nchw_to_nhwc_neon;
  t.dequantize = dequantize_neon;
  return t;
}

}  // namespace

const IsaKernels* neon_kernels() {
  static const IsaKernels table = make_neon_table();
  return &table;
}

}  // namespace detail
}  // namespace mnq

#else  // !__aarch64__

namespace mnq {
namespace detail {
const IsaKernels* neon_kernels() { return nullptr; }
}  // namespace detail
}  // namespace mnq

#endif
