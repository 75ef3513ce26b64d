// AArch64 ASIMD elementwise kernels: table lookup (lut_apply), dequantize,
// add, mul, channelwise mul, global average pool, quantize. Bit-identical to
// ref/elementwise.cc; also the neondot table's.
#include "../../elementwise_entry.h"
#include "../../internal.h"
#include "table.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#include "../../quant.h"
#include "../epilogue.h"

namespace mnq {
namespace detail {
namespace {

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

}  // namespace

namespace neon {
void set_elementwise(IsaKernels& t) {
  t.global_avg_pool = global_avg_pool_entry<global_avg_pool_neon>;
  t.add = add_entry<add_neon>;
  t.mul = mul_entry<mul_neon>;
  t.mul_channelwise = mul_channelwise_entry<mul_channelwise_neon>;
  t.lut_apply = lut_apply_neon;
  t.quantize_nchw_to_nhwc = quantize_nchw_to_nhwc_neon;
  t.dequantize = dequantize_neon;
}
}  // namespace neon
}  // namespace detail
}  // namespace mnq

#endif  // __aarch64__
