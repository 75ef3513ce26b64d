// AArch64 ASIMD depthwise convolution (depth multiplier 1): bit-identical to
// ref/depthwise.cc. Also the neondot table's for weights with zero points
// (neondot/depthwise.cc runs the others with SDOT).
//
// The input rows a call reads are copied once into a ring of padded rows in the
// scratch (x_zp left and right of each row; rows above and below the image read
// one row of x_zp), so every output pixel reads every tap from memory, without
// border cases. Per output pixel, 16 channels at a time (then 8, then one by one):
//   - weights without zero points and without -128 (all symmetric int8 weights):
//     sum (x - xz) w = sum x w - xz sum w, the second term folded into the bias
//     (padding reads x = xz, so the fold holds there too). Two taps at a time,
//     SMULL + SMLAL put x_a w_a + x_b w_b in an int16 lane (exact: both
//     products are at most 128 * 127), SADDW / SADDW2 widen it into the int32
//     accumulators: 8 instructions per 2 taps and 16 channels.
//   - other weights: (w - wz) as int16, SSUBL (x - xz) to int16, SMLAL(2) into
//     int32 per tap.
#include "../../internal.h"
#include "table.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "../depthwise.h"
#include "../epilogue.h"

namespace mnq {
namespace detail {
namespace {

constexpr int kDwBlock = 16;  // channels per packed block
constexpr int kMaxRing = 64;  // padded rows in the ring (the dilated kernel height)
constexpr int kMaxKh = 16;    // taller kernels (no MobileNet has them) run the reference

// Pairs need every weight in [-127, 127] (two products per int16 lane) and no zero point (the fold).
inline bool dw_pairs_ok(const PackedDepthwise& w) {
  if (!w.symmetric) return false;
  for (int8_t v : w.w)
    if (v == -128) return false;
  return true;
}

// Packed (../depthwise.h): the header, then [c_pad / 16][taps][16] int8 (pairs) or int16 (w - wz).
void depthwise_pack_neon(PackedDepthwise* w) {
  const ConvShape& s = w->shape;
  const int c = s.in_c, taps = s.kernel_h * s.kernel_w;
  const int c_pad = round_up(std::max(c, 1), kDwBlock);
  const bool pairs = dw_pairs_ok(*w);
  uint8_t* base = dw_pack_begin(w, pairs ? DwLayout::pairs : DwLayout::int16,
                                static_cast<size_t>(c_pad) * taps * (pairs ? 1 : 2), c_pad, pairs);
  int8_t* dst8 = reinterpret_cast<int8_t*>(base);
  int16_t* dst16 = reinterpret_cast<int16_t*>(base);
  for (int ch = 0; ch < c; ++ch) {
    const int32_t wz = w->w_zero_point.empty() ? 0 : w->w_zero_point[ch];
    for (int t = 0; t < taps; ++t) {
      const int32_t v = w->w[static_cast<size_t>(ch) * taps + t];
      const size_t at = (static_cast<size_t>(ch / kDwBlock) * taps + t) * kDwBlock + ch % kDwBlock;
      if (pairs)
        dst8[at] = static_cast<int8_t>(v);
      else
        dst16[at] = static_cast<int16_t>(v - wz);  // [-255, 255]
    }
  }
}

// The padded row buffers: a ring of eff_h rows of (pad_left + in_w + pad_right) pixels, then
// one row of x_zp, each rounded up to 16 bytes.
struct DwRows {
  size_t row_bytes;
  int ring;  // rows in the ring
};
inline DwRows dw_rows(const ConvShape& s) {
  const size_t pixels = static_cast<size_t>(s.pad_left) + s.in_w + s.pad_right;
  return {(pixels * s.in_c + 15) / 16 * 16, (s.kernel_h - 1) * s.dilation_h + 1};
}

size_t depthwise_scratch_size_neon(const PackedDepthwise& w, int, int) {
  const DwRows r = dw_rows(w.shape);
  return (static_cast<size_t>(r.ring) + 1) * r.row_bytes + 64;
}

// Everything the pixels of one call share.
struct DwCall {
  const int8_t* w8;    // packed int8 weights (pairs)
  const int16_t* w16;  // packed int16 weights (otherwise)
  const int32_t* bias;
  int c, taps, kw;
  ptrdiff_t col_step;  // bytes between kernel columns in a padded row (dilation_w pixels)
  int8x16_t xz;
  int32_t xz_s;
  bool pairs;
};

// acc (4 x int32x4, channels 0-15) += xa * wa + xb * wb, two products per int16 lane.
inline void pair16(int32x4_t& a0, int32x4_t& a1, int32x4_t& a2, int32x4_t& a3, int8x16_t xa, int8x16_t wa,
                   int8x16_t xb, int8x16_t wb) {
  int16x8_t lo = vmull_s8(vget_low_s8(xa), vget_low_s8(wa));
  int16x8_t hi = vmull_high_s8(xa, wa);
  lo = vmlal_s8(lo, vget_low_s8(xb), vget_low_s8(wb));
  hi = vmlal_high_s8(hi, xb, wb);
  a0 = vaddw_s16(a0, vget_low_s16(lo));
  a1 = vaddw_high_s16(a1, lo);
  a2 = vaddw_s16(a2, vget_low_s16(hi));
  a3 = vaddw_high_s16(a3, hi);
}
inline void single16(int32x4_t& a0, int32x4_t& a1, int32x4_t& a2, int32x4_t& a3, int8x16_t x, int8x16_t w) {
  const int16x8_t lo = vmull_s8(vget_low_s8(x), vget_low_s8(w));
  const int16x8_t hi = vmull_high_s8(x, w);
  a0 = vaddw_s16(a0, vget_low_s16(lo));
  a1 = vaddw_high_s16(a1, lo);
  a2 = vaddw_s16(a2, vget_low_s16(hi));
  a3 = vaddw_high_s16(a3, hi);
}
inline void pair8(int32x4_t& a0, int32x4_t& a1, int8x8_t xa, int8x8_t wa, int8x8_t xb, int8x8_t wb) {
  const int16x8_t p = vmlal_s8(vmull_s8(xa, wa), xb, wb);
  a0 = vaddw_s16(a0, vget_low_s16(p));
  a1 = vaddw_high_s16(a1, p);
}

// The tap pointer of tap t (row ky, column kx) of the pixel whose kernel rows start at rows[ky].
template <int KW>
inline const int8_t* tap_ptr(const DwCall& d, const int8_t* const* rows, int t) {
  const int kw = KW > 0 ? KW : d.kw;
  return rows[t / kw] + (t % kw) * d.col_step;
}

// One output pixel, all channels. rows[ky]: kernel row ky of this pixel at channel 0.
// KH, KW > 0: the kernel shape (taps unrolled); 0: d.taps, d.kw at run time.
template <int KH, int KW>
inline void dw_pixel(const DwCall& d, const NeonOutput& o, const NeonLut& lut, const int8_t* const* rows,
                     int8_t* y) {
  const int taps = KH > 0 ? KH * KW : d.taps;
  const int c = d.c;
  int c0 = 0;
  if (d.pairs) {
    for (; c0 + 16 <= c; c0 += 16) {
      const int8_t* wb = d.w8 + static_cast<size_t>(c0) * taps;
      int32x4_t a0 = vld1q_s32(d.bias + c0), a1 = vld1q_s32(d.bias + c0 + 4);
      int32x4_t a2 = vld1q_s32(d.bias + c0 + 8), a3 = vld1q_s32(d.bias + c0 + 12);
      int t = 0;
#pragma GCC unroll 13
      for (; t + 2 <= taps; t += 2)
        pair16(a0, a1, a2, a3, vld1q_s8(tap_ptr<KW>(d, rows, t) + c0), vld1q_s8(wb + t * 16),
               vld1q_s8(tap_ptr<KW>(d, rows, t + 1) + c0), vld1q_s8(wb + (t + 1) * 16));
      if (t < taps) single16(a0, a1, a2, a3, vld1q_s8(tap_ptr<KW>(d, rows, t) + c0), vld1q_s8(wb + t * 16));
      int8x16_t q = requant16(a0, a1, a2, a3, o.m + c0, o);
      if (o.lut) q = lut.apply(q);
      vst1q_s8(y + c0, q);
    }
    for (; c0 + 8 <= c; c0 += 8) {  // half a packed block
      const int8_t* wb = d.w8 + static_cast<size_t>(c0 / 16 * 16) * taps + c0 % 16;
      int32x4_t a0 = vld1q_s32(d.bias + c0), a1 = vld1q_s32(d.bias + c0 + 4);
      int t = 0;
      for (; t + 2 <= taps; t += 2)
        pair8(a0, a1, vld1_s8(tap_ptr<KW>(d, rows, t) + c0), vld1_s8(wb + t * 16),
              vld1_s8(tap_ptr<KW>(d, rows, t + 1) + c0), vld1_s8(wb + (t + 1) * 16));
      if (t < taps) {
        const int16x8_t p = vmull_s8(vld1_s8(tap_ptr<KW>(d, rows, t) + c0), vld1_s8(wb + t * 16));
        a0 = vaddw_s16(a0, vget_low_s16(p));
        a1 = vaddw_high_s16(a1, p);
      }
      int8x8_t q = requant8(a0, a1, o.m + c0, o);
      if (o.lut) q = lut.apply8(q);
      vst1_s8(y + c0, q);
    }
    for (; c0 < c; ++c0) {  // channel tail: same integer math, scalar
      const int8_t* wb = d.w8 + static_cast<size_t>(c0 / 16 * 16) * taps + c0 % 16;
      int32_t acc = d.bias[c0];
      for (int t = 0; t < taps; ++t) acc += tap_ptr<KW>(d, rows, t)[c0] * wb[t * 16];
      y[c0] = requant_one(acc, o.m[c0], o);
    }
    return;
  }
  for (; c0 + 16 <= c; c0 += 16) {
    const int16_t* wb = d.w16 + static_cast<size_t>(c0) * taps;
    int32x4_t a0 = vld1q_s32(d.bias + c0), a1 = vld1q_s32(d.bias + c0 + 4);
    int32x4_t a2 = vld1q_s32(d.bias + c0 + 8), a3 = vld1q_s32(d.bias + c0 + 12);
#pragma GCC unroll 25
    for (int t = 0; t < taps; ++t) {
      const int8x16_t xv = vld1q_s8(tap_ptr<KW>(d, rows, t) + c0);
      const int16x8_t w0 = vld1q_s16(wb + t * 16), w1 = vld1q_s16(wb + t * 16 + 8);
      const int16x8_t d0 = vsubl_s8(vget_low_s8(xv), vget_low_s8(d.xz));
      const int16x8_t d1 = vsubl_high_s8(xv, d.xz);
      a0 = vmlal_s16(a0, vget_low_s16(d0), vget_low_s16(w0));
      a1 = vmlal_high_s16(a1, d0, w0);
      a2 = vmlal_s16(a2, vget_low_s16(d1), vget_low_s16(w1));
      a3 = vmlal_high_s16(a3, d1, w1);
    }
    int8x16_t q = requant16(a0, a1, a2, a3, o.m + c0, o);
    if (o.lut) q = lut.apply(q);
    vst1q_s8(y + c0, q);
  }
  for (; c0 + 8 <= c; c0 += 8) {
    const int16_t* wb = d.w16 + static_cast<size_t>(c0 / 16 * 16) * taps + c0 % 16;
    int32x4_t a0 = vld1q_s32(d.bias + c0), a1 = vld1q_s32(d.bias + c0 + 4);
    for (int t = 0; t < taps; ++t) {
      const int16x8_t w0 = vld1q_s16(wb + t * 16);
      const int16x8_t d0 = vsubl_s8(vld1_s8(tap_ptr<KW>(d, rows, t) + c0), vget_low_s8(d.xz));
      a0 = vmlal_s16(a0, vget_low_s16(d0), vget_low_s16(w0));
      a1 = vmlal_high_s16(a1, d0, w0);
    }
    int8x8_t q = requant8(a0, a1, o.m + c0, o);
    if (o.lut) q = lut.apply8(q);
    vst1_s8(y + c0, q);
  }
  for (; c0 < c; ++c0) {
    const int16_t* wb = d.w16 + static_cast<size_t>(c0 / 16 * 16) * taps + c0 % 16;
    int32_t acc = d.bias[c0];
    for (int t = 0; t < taps; ++t) acc += (tap_ptr<KW>(d, rows, t)[c0] - d.xz_s) * wb[t * 16];
    y[c0] = requant_one(acc, o.m[c0], o);
  }
}

// The 16-channel blocks of 3x3 pixels with int8 weights (most MobileNet
// depthwise work): everything in registers (byte stores may alias any memory,
// so values left in structs or arrays would be reloaded after each store).
template <bool kLut>
__attribute__((noinline)) void dw_row_33_pairs(const DwCall& d, const NeonOutput& o, const NeonLut& lut,
                                               const int8_t* r0, const int8_t* r1, const int8_t* r2,
                                               ptrdiff_t pixel_step, int out_w, int8_t* y) {
  const int blocks = d.c / 16;
  const ptrdiff_t c1 = d.col_step, c2 = 2 * d.col_step, tail = d.c - blocks * 16;
  const int32_t* const bias0 = d.bias;
  const int8_t* const w0 = d.w8;
  const float* const m0 = o.m;
  const int16x8_t zp = o.zp;
  const int8x16_t qmin = o.qmin, qmax = o.qmax;
  const bool clamps = o.clamps;
  // Taps relative to kernel row 0: rows 1 and 2 are fixed distances away within a call's scratch.
  const ptrdiff_t o1 = r1 - r0, o2 = r2 - r0;
  const ptrdiff_t t1 = o1 + c1, t2 = o1 + c2, t3 = o2 + c1, t4 = o2 + c2;
  for (int ox = 0; ox < out_w; ++ox) {
    const int8_t* p = r0;
    const int8_t* wb = w0;
    const int32_t* bias = bias0;
    const float* m = m0;
    for (int b = blocks; b > 0; --b) {
      const int32x4x4_t bv = vld1q_s32_x4(bias);
      int32x4_t a0 = bv.val[0], a1 = bv.val[1], a2 = bv.val[2], a3 = bv.val[3];
      const int8x16x4_t wa = vld1q_s8_x4(wb), wc = vld1q_s8_x4(wb + 64);
      const int8x16_t w8 = vld1q_s8(wb + 128);
      pair16(a0, a1, a2, a3, vld1q_s8(p), wa.val[0], vld1q_s8(p + c1), wa.val[1]);
      pair16(a0, a1, a2, a3, vld1q_s8(p + c2), wa.val[2], vld1q_s8(p + o1), wa.val[3]);
      pair16(a0, a1, a2, a3, vld1q_s8(p + t1), wc.val[0], vld1q_s8(p + t2), wc.val[1]);
      pair16(a0, a1, a2, a3, vld1q_s8(p + o2), wc.val[2], vld1q_s8(p + t3), wc.val[3]);
      single16(a0, a1, a2, a3, vld1q_s8(p + t4), w8);
      const float32x4x4_t mv = vld1q_f32_x4(m);
      const int16x8_t lo = requant_s16(a0, a1, mv.val[0], mv.val[1], zp);
      const int16x8_t hi = requant_s16(a2, a3, mv.val[2], mv.val[3], zp);
      int8x16_t q = vqmovn_high_s16(vqmovn_s16(lo), hi);
      if (clamps) q = vminq_s8(vmaxq_s8(q, qmin), qmax);
      if (kLut) q = lut.apply(q);
      vst1q_s8(y, q);
      y += 16;
      p += 16;
      wb += 9 * 16;
      bias += 16;
      m += 16;
    }
    if (tail) {  // the last channels: the generic pixel
      const int8_t* rows[3] = {r0, r1, r2};
      DwCall dt = d;
      dt.c = static_cast<int>(tail);
      const int c0 = blocks * 16;
      dt.w8 = d.w8 + static_cast<size_t>(c0) * 9;
      dt.bias = d.bias + c0;
      NeonOutput ot = o;
      ot.m = o.m + c0;
      for (int ky = 0; ky < 3; ++ky) rows[ky] += c0;
      dw_pixel<3, 3>(dt, ot, lut, rows, y);
      y += tail;
    }
    r0 += pixel_step;
    r1 += pixel_step;
    r2 += pixel_step;
  }
}

// Output row oy, every pixel: rows[ky] = the padded row of kernel row ky at its first pixel.
template <int KH, int KW>
__attribute__((noinline)) void dw_row(const DwCall& d, const NeonOutput& o, const NeonLut& lut, const int8_t* const* rows,
                                      int kh, ptrdiff_t pixel_step, int out_w, int8_t* y) {
  const int8_t* r[kMaxKh];
  for (int ky = 0; ky < kh; ++ky) r[ky] = rows[ky];
  for (int ox = 0; ox < out_w; ++ox) {
    dw_pixel<KH, KW>(d, o, lut, r, y);
    for (int ky = 0; ky < kh; ++ky) r[ky] += pixel_step;
    y += d.c;
  }
}

void depthwise_neon(const DepthwiseArgs& a) {
  const PackedDepthwise& w = *a.w;
  const ConvShape& s = w.shape;
  const int c = s.in_c, kh = s.kernel_h, kw = s.kernel_w;
  if (kh > kMaxKh || dw_rows(s).ring > kMaxRing) {  // kernels taller than any MobileNet's: the reference
    scalar_kernels().depthwise(a);
    return;
  }
  const NeonOutput o(*a.out);
  static const int8_t kNoTable[256] = {};
  const NeonLut lut(o.lut ? o.lut : kNoTable);
  DwCall d;
  d.w8 = reinterpret_cast<const int8_t*>(w.packed.data() + kDwHeader);
  d.w16 = reinterpret_cast<const int16_t*>(w.packed.data() + kDwHeader);
  d.bias = w.bias_folded.data();
  d.c = c;
  d.taps = kh * kw;
  d.kw = kw;
  d.col_step = static_cast<ptrdiff_t>(s.dilation_w) * c;
  d.xz = vdupq_n_s8(static_cast<int8_t>(w.x_zero_point));
  d.xz_s = w.x_zero_point;
  d.pairs = dw_layout(w) == DwLayout::pairs;

  // The ring of padded input rows (input row iy in slot iy % ring) and the row of x_zp.
  const DwRows geo = dw_rows(s);
  int8_t* base = reinterpret_cast<int8_t*>((reinterpret_cast<uintptr_t>(a.scratch) + 63) & ~uintptr_t(63));
  int8_t* zp_row = base + static_cast<size_t>(geo.ring) * geo.row_bytes;
  const int8_t pad = static_cast<int8_t>(w.x_zero_point);
  std::memset(zp_row, pad, geo.row_bytes);
  int filled[kMaxRing];  // the input row each slot holds
  const int ring = geo.ring;
  for (int i = 0; i < ring; ++i) filled[i] = -1;
  const size_t left = static_cast<size_t>(s.pad_left) * c, row_in = static_cast<size_t>(s.in_w) * c;
  auto row_ptr = [&](int iy) -> const int8_t* {
    if (iy < 0 || iy >= s.in_h) return zp_row;
    const int slot = iy % ring;
    int8_t* dst = base + static_cast<size_t>(slot) * geo.row_bytes;
    if (filled[slot] != iy) {
      std::memset(dst, pad, left);
      std::memcpy(dst + left, a.x + static_cast<size_t>(iy) * row_in, row_in);
      std::memset(dst + left + row_in, pad, geo.row_bytes - left - row_in);
      filled[slot] = iy;
    }
    return dst;
  };
  const int8_t* rows[kMaxKh];
  const ptrdiff_t pixel_step = static_cast<ptrdiff_t>(s.stride_w) * c;
  // 3x3, 5x5 and 3x6 (a 3x3 depthwise over two range pieces per channel: PlanOp::input_pieces) unrolled.
  const int shape = kh == 3 && kw == 3 ? 33 : kh == 5 && kw == 5 ? 55 : kh == 3 && kw == 6 ? 36 : 0;
  for (int oy = a.row_begin; oy < a.row_end; ++oy) {
    const int iy0 = oy * s.stride_h - s.pad_top;
    int8_t* y = a.y + static_cast<size_t>(oy) * s.out_w * c;
    for (int ky = 0; ky < kh; ++ky) rows[ky] = row_ptr(iy0 + ky * s.dilation_h);
    if (shape == 33 && d.pairs && o.lut)
      dw_row_33_pairs<true>(d, o, lut, rows[0], rows[1], rows[2], pixel_step, s.out_w, y);
    else if (shape == 33 && d.pairs)
      dw_row_33_pairs<false>(d, o, lut, rows[0], rows[1], rows[2], pixel_step, s.out_w, y);
    else if (shape == 33)
      dw_row<3, 3>(d, o, lut, rows, kh, pixel_step, s.out_w, y);
    else if (shape == 55)
      dw_row<5, 5>(d, o, lut, rows, kh, pixel_step, s.out_w, y);
    else if (shape == 36)
      dw_row<3, 6>(d, o, lut, rows, kh, pixel_step, s.out_w, y);
    else
      dw_row<0, 0>(d, o, lut, rows, kh, pixel_step, s.out_w, y);
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
