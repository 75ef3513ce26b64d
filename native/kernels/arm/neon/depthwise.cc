// AArch64 ASIMD depthwise convolution (depth multiplier 1): bit-identical to
// ref/depthwise.cc. Also the neondot table's (SDOT does not help a
// per-channel reduction).
//
// KxK: 16 (then 8) channels per step, weights (w - wz) packed as
//   int16 [c_pad / 8][taps][8]; per tap SSUBL (x - xz) to int16 and SMLAL(2) into
//   int32. Taps outside the image are skipped (they are x = xz, contributing 0).
//   Channel tails (< 8) use the same integer math in scalar code.
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

}  // namespace

namespace neon {
void set_depthwise(IsaKernels& t) {
  t.depthwise_pack = depthwise_pack_neon;
  t.depthwise_scratch_size = depthwise_scratch_size_neon;
  t.depthwise = depthwise_neon;
}
}  // namespace neon
}  // namespace detail
}  // namespace mnq

#endif  // __aarch64__
