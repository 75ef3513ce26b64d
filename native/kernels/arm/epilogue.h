// The output stage of the AArch64 kernels (arm/neon, arm/neondot), and the
// 256-entry table lookup.
//
// Everything here has internal linkage (anonymous namespace): the neondot
// kernels are compiled with the dot-product extension enabled, and an inline
// function with external linkage could otherwise be merged by the linker into
// the baseline (Cortex-A72) path with SDOT instructions in it.
//
// Output stage, exactly as docs/quantization.md / kernels.h specify:
//   q = clamp(round_half_even(float(acc) * m[c]) + zp, qmin, qmax) [-> lut[q + 128]]
// float(acc) is SCVTF (round to nearest even, as the C++ conversion), the
// product is one float32 multiply, FCVTNS rounds half to even and saturates to
// int32; the zero point is added with saturation, and the narrowing steps
// saturate, which commutes with the final clamp because [qmin, qmax] lies inside
// the int8 range. So the result equals the scalar formula for every finite
// product (and the clamp bound for out-of-range ones).
#pragma once
#if defined(__aarch64__)

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "../internal.h"

namespace mnq {
namespace detail {
namespace {

// Per-call constants of the output stage.
struct NeonOutput {
  int32x4_t zp;
  int8x16_t qmin, qmax;
  int32_t zp_s, qmin_s, qmax_s;
  const float* m;
  const int8_t* lut;  // nullptr when no fused table
  explicit NeonOutput(const OutputStage& o)
      : zp(vdupq_n_s32(o.zero_point)),
        qmin(vdupq_n_s8(static_cast<int8_t>(o.qmin))),
        qmax(vdupq_n_s8(static_cast<int8_t>(o.qmax))),
        zp_s(o.zero_point), qmin_s(o.qmin), qmax_s(o.qmax),
        m(o.multiplier.data()), lut(o.has_lut ? o.lut : nullptr) {}
};

// One lane of the output stage in scalar code (channel tails); the same
// instructions as the vector path (SCVTF, FMUL, FCVTNS, saturating add).
inline int8_t requant_one(int32_t acc, float m, const NeonOutput& o) {
  const float v = static_cast<float>(acc) * m;
  const int32_t r = vcvtns_s32_f32(v);
  int64_t q = static_cast<int64_t>(r) + o.zp_s;
  if (q < o.qmin_s) q = o.qmin_s;
  if (q > o.qmax_s) q = o.qmax_s;
  int8_t out = static_cast<int8_t>(q);
  if (o.lut) out = o.lut[static_cast<int>(out) + 128];
  return out;
}

// int32x4 accumulators times float multipliers -> rounded, zero point added (saturating).
inline int32x4_t requant_s32(int32x4_t acc, float32x4_t m, int32x4_t zp) {
  const float32x4_t v = vmulq_f32(vcvtq_f32_s32(acc), m);
  return vqaddq_s32(vcvtnq_s32_f32(v), zp);
}

// 8 outputs: accumulators a (channels 0-3) and b (4-7), multipliers at m.
inline int8x8_t requant8(int32x4_t a, int32x4_t b, const float* m, const NeonOutput& o) {
  const int32x4_t ra = requant_s32(a, vld1q_f32(m), o.zp);
  const int32x4_t rb = requant_s32(b, vld1q_f32(m + 4), o.zp);
  const int8x8_t q = vqmovn_s16(vcombine_s16(vqmovn_s32(ra), vqmovn_s32(rb)));
  return vmin_s8(vmax_s8(q, vget_low_s8(o.qmin)), vget_low_s8(o.qmax));
}

// 16 outputs from four accumulators.
inline int8x16_t requant16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d, const float* m,
                           const NeonOutput& o) {
  const int32x4_t ra = requant_s32(a, vld1q_f32(m), o.zp);
  const int32x4_t rb = requant_s32(b, vld1q_f32(m + 4), o.zp);
  const int32x4_t rc = requant_s32(c, vld1q_f32(m + 8), o.zp);
  const int32x4_t rd = requant_s32(d, vld1q_f32(m + 12), o.zp);
  const int16x8_t lo = vcombine_s16(vqmovn_s32(ra), vqmovn_s32(rb));
  const int16x8_t hi = vcombine_s16(vqmovn_s32(rc), vqmovn_s32(rd));
  const int8x16_t q = vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi));
  return vminq_s8(vmaxq_s8(q, o.qmin), o.qmax);
}

// 256-entry int8 table held in 16 registers; lookups 16 bytes at a time with
// TBL/TBX over four 64-byte quarters (index = q + 128).
struct NeonLut {
  uint8x16x4_t t[4];
  explicit NeonLut(const int8_t* table) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(table);
    for (int i = 0; i < 4; ++i) t[i] = vld1q_u8_x4(p + 64 * i);
  }
  int8x16_t apply(int8x16_t q) const {
    const uint8x16_t idx = veorq_u8(vreinterpretq_u8_s8(q), vdupq_n_u8(0x80));  // q + 128
    const uint8x16_t k64 = vdupq_n_u8(64);
    uint8x16_t r = vqtbl4q_u8(t[0], idx);
    uint8x16_t i = vsubq_u8(idx, k64);
    r = vqtbx4q_u8(r, t[1], i);
    i = vsubq_u8(i, k64);
    r = vqtbx4q_u8(r, t[2], i);
    i = vsubq_u8(i, k64);
    r = vqtbx4q_u8(r, t[3], i);
    return vreinterpretq_s8_u8(r);
  }
  int8x8_t apply8(int8x8_t q) const {
    return vget_low_s8(apply(vcombine_s8(q, q)));
  }
};

inline void lut_bytes(const int8_t* table, int8_t* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = table[static_cast<int>(y[i]) + 128];
}

}  // namespace
}  // namespace detail
}  // namespace mnq

#endif  // __aarch64__
