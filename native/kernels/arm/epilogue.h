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
// int32. The rounded value r is then narrowed to int16 with saturation, the
// zero point added in int16 with saturation, and the sum narrowed to int8 with
// saturation before the clamp: exact, because [qmin, qmax] lies inside the int8
// range and zp inside [-128, 127], so wherever a saturation changes a value
// (|r| > 32767, or r + zp outside int16) both the saturated and the exact sum
// are beyond the same end of [qmin, qmax]. So the result equals the scalar
// formula for every finite product (and the clamp bound for out-of-range ones).
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
  int16x8_t zp;
  int8x16_t qmin, qmax;
  bool clamps;  // [qmin, qmax] narrower than int8
  int32_t zp_s, qmin_s, qmax_s;
  const float* m;
  const int8_t* lut;  // nullptr when no fused table
  explicit NeonOutput(const OutputStage& o)
      : zp(vdupq_n_s16(static_cast<int16_t>(o.zero_point))),
        qmin(vdupq_n_s8(static_cast<int8_t>(o.qmin))),
        qmax(vdupq_n_s8(static_cast<int8_t>(o.qmax))),
        clamps(o.qmin > -128 || o.qmax < 127),
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

// float(acc) * m rounded half to even, saturated to int32.
inline int32x4_t round_scaled(int32x4_t acc, float32x4_t m) {
  return vcvtnq_s32_f32(vmulq_f32(vcvtq_f32_s32(acc), m));
}

// int32x4 accumulators times float multipliers -> rounded, zero point added (saturating, int32).
inline int32x4_t requant_s32(int32x4_t acc, float32x4_t m, int32x4_t zp) {
  return vqaddq_s32(round_scaled(acc, m), zp);
}

// 8 outputs before the int8 narrowing: accumulators a (lanes 0-3) and b (4-7), their multipliers,
// rounded, narrowed to int16 and the zero point added (both saturating; see the top of the file).
inline int16x8_t requant_s16(int32x4_t a, int32x4_t b, float32x4_t ma, float32x4_t mb, int16x8_t zp) {
  return vqaddq_s16(vqmovn_high_s32(vqmovn_s32(round_scaled(a, ma)), round_scaled(b, mb)), zp);
}

// The clamp to [qmin, qmax].
inline int8x16_t clamp16(int8x16_t q, const NeonOutput& o) { return vminq_s8(vmaxq_s8(q, o.qmin), o.qmax); }
inline int8x8_t clamp8(int8x8_t q, const NeonOutput& o) {
  return vmin_s8(vmax_s8(q, vget_low_s8(o.qmin)), vget_low_s8(o.qmax));
}

// 8 outputs: accumulators a (channels 0-3) and b (4-7), multipliers at m.
inline int8x8_t requant8(int32x4_t a, int32x4_t b, const float* m, const NeonOutput& o) {
  return clamp8(vqmovn_s16(requant_s16(a, b, vld1q_f32(m), vld1q_f32(m + 4), o.zp)), o);
}

// 16 outputs from four accumulators.
inline int8x16_t requant16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d, const float* m,
                           const NeonOutput& o) {
  const float32x4x4_t mv = vld1q_f32_x4(m);
  const int16x8_t lo = requant_s16(a, b, mv.val[0], mv.val[1], o.zp);
  const int16x8_t hi = requant_s16(c, d, mv.val[2], mv.val[3], o.zp);
  return clamp16(vqmovn_high_s16(vqmovn_s16(lo), hi), o);
}

// The wide output stage (int16 activations; docs/quantization.md): the same SCVTF, FMUL,
// FCVTNS and saturating zero-point add, then saturating narrowing to int16 (and int8) and the
// clamp to [qmin, qmax], which lies inside the output type: equal to the scalar formula as above.
struct WideNeonOutput {
  int32x4_t zp;
  int16x8_t qmin, qmax;
  const float* m;
  bool y16;  // int16 output (else int8)
  explicit WideNeonOutput(const OutputStage& o)
      : zp(vdupq_n_s32(o.zero_point)),
        qmin(vdupq_n_s16(static_cast<int16_t>(o.qmin))),
        qmax(vdupq_n_s16(static_cast<int16_t>(o.qmax))),
        m(o.multiplier.data()), y16(o.dtype == Dtype::int16) {}
};

// Outputs of channels c .. c + valid - 1 (valid <= 8) from accumulators a (c .. c + 3) and
// b (c + 4 .. c + 7), written at element `index` of y (out.dtype).
inline void store_wide8(int32x4_t a, int32x4_t b, int c, int valid, const WideNeonOutput& o, void* y,
                        size_t index) {
  float32x4_t ma, mb;
  if (valid == 8) {
    ma = vld1q_f32(o.m + c);
    mb = vld1q_f32(o.m + c + 4);
  } else {
    float t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < valid; ++i) t[i] = o.m[c + i];
    ma = vld1q_f32(t);
    mb = vld1q_f32(t + 4);
  }
  int16x8_t q = vcombine_s16(vqmovn_s32(requant_s32(a, ma, o.zp)), vqmovn_s32(requant_s32(b, mb, o.zp)));
  q = vminq_s16(vmaxq_s16(q, o.qmin), o.qmax);
  if (o.y16) {
    int16_t* dst = static_cast<int16_t*>(y) + index;
    if (valid == 8) {
      vst1q_s16(dst, q);
    } else {
      int16_t t[8];
      vst1q_s16(t, q);
      for (int i = 0; i < valid; ++i) dst[i] = t[i];
    }
  } else {
    int8_t* dst = static_cast<int8_t*>(y) + index;
    const int8x8_t q8 = vqmovn_s16(q);
    if (valid == 8) {
      vst1_s8(dst, q8);
    } else {
      int8_t t[8];
      vst1_s8(t, q8);
      for (int i = 0; i < valid; ++i) dst[i] = t[i];
    }
  }
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
