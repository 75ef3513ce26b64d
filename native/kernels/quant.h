// The quantization arithmetic of mnq, written once (docs/quantization.md explains
// every line and where ONNX Runtime does the same). The scalar reference
// kernels use these helpers directly; SIMD kernels must produce the same bits.
//
// All float arithmetic here is float32, one IEEE operation at a time: the
// build compiles with -ffp-contract=off so that `a * b + c` is never fused,
// and a fused multiply-add appears only where ONNX Runtime uses one (std::fma).
// Rounding uses the current rounding mode, which must be the default
// round-to-nearest-even (never changed by mnq).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace mnq {
namespace quant {

// Round to nearest, ties to even (cvtps2dq / fcvtns / nearbyintf), for
// |v| < 2^22 (callers clamp first): adding and subtracting 1.5 * 2^23 leaves
// the integer part, rounded by the FPU's default mode. This is MLAS's
// MLAS_ROUNDING_BIAS_MAGIC and, unlike nearbyintf, needs no library call on
// baseline x86-64.
inline float round_half_even(float v) {
  volatile float magic = 12582912.0f;  // volatile: keep (v + m) - m unsimplified
  const float m = magic;
  return (v + m) - m;
}

inline int32_t clamp_i32(int32_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// MlasRequantizeOutput: the conv / gemm / pooling output stage.
//   v = float(acc) * multiplier; v = clamp(v, qmin - zp, qmax - zp);
//   q = round_half_even(v) + zp
// Clamping before rounding to integer bounds equals rounding then clamping.
inline int32_t requantize(int32_t acc, float multiplier, int32_t zero_point,
                          int32_t qmin, int32_t qmax) {
  float v = static_cast<float>(acc) * multiplier;
  const float lo = static_cast<float>(qmin - zero_point);
  const float hi = static_cast<float>(qmax - zero_point);
  v = v < lo ? lo : v;  // (a NaN would become lo, as MAXPS(v, lo) does)
  v = v > hi ? hi : v;
  return static_cast<int32_t>(round_half_even(v)) + zero_point;
}

// The int64 accumulator of the wide kernels (docs/quantization.md, "int16
// activations"): float(acc) is the exact integer rounded to nearest even, then
// the same steps as requantize.
inline int32_t requantize64(int64_t acc, float multiplier, int32_t zero_point, int32_t qmin,
                            int32_t qmax) {
  float v = static_cast<float>(acc) * multiplier;
  const float lo = static_cast<float>(qmin - zero_point);
  const float hi = static_cast<float>(qmax - zero_point);
  v = v < lo ? lo : v;
  v = v > hi ? hi : v;
  return static_cast<int32_t>(round_half_even(v)) + zero_point;
}

// ONNX Runtime QuantizeLinear (MlasQuantizeLinear) to [qmin, qmax] (int8:
// [-128, 127]; int16: [-32768, 32767], the same MLAS code):
//   v = x / scale (a true division); v = clamp(v, qmin - zp, qmax - zp);
//   q = round_half_even(v) + zp.  NaN -> qmin (MAXPS / FMAXNM pick the bound).
inline int32_t quantize_linear_to(float x, float scale, int32_t zero_point, int32_t qmin,
                                  int32_t qmax) {
  float v = x / scale;
  const float lo = static_cast<float>(qmin - zero_point);
  const float hi = static_cast<float>(qmax - zero_point);
  v = (v >= lo) ? v : lo;  // NaN fails the comparison -> lo
  v = v > hi ? hi : v;
  return static_cast<int32_t>(round_half_even(v)) + zero_point;
}
inline int8_t quantize_linear(float x, float scale, int32_t zero_point) {
  return static_cast<int8_t>(quantize_linear_to(x, scale, zero_point, -128, 127));
}

// ONNX Runtime DequantizeLinear: float(q - zp) * scale.
inline float dequantize_linear(int32_t q, float scale, int32_t zero_point) {
  return static_cast<float>(q - zero_point) * scale;
}

// ---------------------------------------------------------------- QLinearAdd
// ONNX Runtime x86-64 (MlasQLinearAddS8KernelAvx2, the kernel used on every
// AVX2 / AVX-512 CPU):
//   ra = sa / sc; rb = sb / sc                       (float32)
//   fixed = float(zc) - fma(ra, float(za), rb * float(zb))
//   t = fma(float(b), rb, fixed); t = fma(float(a), ra, t)
//   q = saturate_int8(round_half_even(t)), then the fused-ReLU clamp.
// uint8 tensors: ORT runs the same float arithmetic on the uint8 values. mnq
// stores them as int8 (value - 128), so an add of uint8 tensors carries
// offset = 128: the kernels compute on a + offset, b + offset with every zero
// point + offset, and subtract offset after the float clamp (exact: t and
// offset are multiples of t's ulp, and rounding commutes with an integer shift).
// The ARM build of ONNX Runtime uses a fixed-point variant instead; mnq follows
// the x86 one on every ISA so that ARM and x86 give the same bits.
struct AddConstants {
  float ra, rb, fixed;
  float offset;  // 0 for int8 tensors, 128 for uint8 ones (see above)
};
inline AddConstants add_constants(float sa, int32_t za, float sb, int32_t zb, float sc,
                                  int32_t zc, int32_t offset = 0) {
  AddConstants k;
  k.ra = sa / sc;
  k.rb = sb / sc;
  const float pb = k.rb * static_cast<float>(zb + offset);
  k.fixed = static_cast<float>(zc + offset) - std::fma(k.ra, static_cast<float>(za + offset), pb);
  k.offset = static_cast<float>(offset);
  return k;
}
inline int32_t add_one(const AddConstants& k, int32_t a, int32_t b, int32_t qmin, int32_t qmax) {
  float t = std::fma(static_cast<float>(b) + k.offset, k.rb, k.fixed);
  t = std::fma(static_cast<float>(a) + k.offset, k.ra, t);
  t = t - k.offset;
  // cvtps2dq then packs (int32 -> int16 -> int8, saturating). |t| < 2^31 for
  // every valid scale ratio, so this is the rounded value clamped to int8,
  // which equals rounding the value clamped to the (integer) bounds.
  t = t < -128.0f ? -128.0f : (t > 127.0f ? 127.0f : t);
  return clamp_i32(static_cast<int32_t>(round_half_even(t)), qmin, qmax);
}

// ---------------------------------------------------------------- QLinearMul
// ONNX Runtime (MlasQLinearMulKernel, qlmul.cpp: one SSE2 kernel for every x86
// CPU; its NEON twin has the same steps): ratio = sa * sb / sc (float32, left
// to right);
//   t = float((a - za) * (b - zb)) * ratio       (one rounding)
//   t = t + float(zc)                            (a second rounding: zc is added
//                                                 in float, before rounding)
//   q = saturate(round_half_even(t))             (cvtps2dq, packs)
// Adding zc after rounding (as requantize does) differs where the float
// addition moves a value next to a tie onto it. uint8 tensors: ORT computes on
// the uint8 zero point; mnq stores them as int8 (value - 128), so a mul of
// uint8 tensors carries offset = 128: t + float(zc + offset), rounded, minus
// offset (exact: both are integers).
inline float mul_ratio(float sa, float sb, float sc) { return sa * sb / sc; }
inline int32_t mul_one(float ratio, int32_t a, int32_t za, int32_t b, int32_t zb, int32_t zc,
                       int32_t offset) {
  const int32_t prod = (a - za) * (b - zb);  // |prod| <= 255 * 255: exact in float
  float t = static_cast<float>(prod) * ratio;
  t = t + static_cast<float>(zc + offset);
  // clamping in float first equals saturating after rounding: the bounds are integers
  const float lo = static_cast<float>(-128 + offset), hi = static_cast<float>(127 + offset);
  t = t < lo ? lo : (t > hi ? hi : t);
  return static_cast<int32_t>(round_half_even(t)) - offset;
}

// ------------------------------------------------- QLinearGlobalAveragePool
// ONNX Runtime (qlgavgpool.cpp): scale = sx / (sy * float(hw));
//   acc = sum(x) - zx * hw; q = requantize(acc, scale, zy, -128, 127)
inline float gap_scale(float sx, float sy, size_t hw) {
  return sx / (sy * static_cast<float>(hw));
}

// ------------------------------------------------------------- float functions
// Float32 evaluation of the unary functions, as ONNX Runtime's CPU kernels
// compute them (see docs/quantization.md).
inline float hardsigmoid(float x, float alpha, float beta) {
  float t = alpha * x;  // Eigen: alpha * x + beta, two roundings (no FMA)
  t = t + beta;
  t = t < 1.0f ? t : 1.0f;  // cwiseMin(1) then cwiseMax(0)
  t = t > 0.0f ? t : 0.0f;
  return t;
}
// MlasComputeLogistic (FMA3 kernel on x86-64): clamp to [-18, 18], odd/even
// rational polynomial evaluated with fused multiply-adds, p / q + 0.5, clamp [0, 1].
inline float logistic(float x) {
  float v = x < -18.0f ? -18.0f : x;
  v = v > 18.0f ? 18.0f : v;
  const float v2 = v * v;
  float p = std::fma(v2, 4.37031012579801e-11f, 1.15627324459942e-07f);
  p = std::fma(p, v2, 6.08574864600143e-05f);
  p = std::fma(p, v2, 8.51377133304701e-03f);
  p = std::fma(p, v2, 2.48287947061529e-01f);
  p = p * v;
  float q = std::fma(v2, 6.10247389755681e-13f, 5.76102136993427e-09f);
  q = std::fma(q, v2, 6.29106785017040e-06f);
  q = std::fma(q, v2, 1.70198817374094e-03f);
  q = std::fma(q, v2, 1.16817656904453e-01f);
  q = std::fma(q, v2, 9.93151921023180e-01f);
  float r = p / q + 0.5f;
  r = r < 0.0f ? 0.0f : r;
  r = r > 1.0f ? 1.0f : r;
  return r;
}

// MlasComputeTanh (FMA3 kernel on x86-64): clamp to [-9, 9], odd / even
// rational polynomial (Eigen's coefficients) with fused multiply-adds, p / q.
inline float tanh(float x) {
  float v = x < -9.0f ? -9.0f : x;
  v = v > 9.0f ? 9.0f : v;
  const float v2 = v * v;
  float p = std::fma(v2, -2.76076847742355e-16f, 2.00018790482477e-13f);
  p = std::fma(p, v2, -8.60467152213735e-11f);
  p = std::fma(p, v2, 5.12229709037114e-08f);
  p = std::fma(p, v2, 1.48572235717979e-05f);
  p = std::fma(p, v2, 6.37261928875436e-04f);
  p = std::fma(p, v2, 4.89352455891786e-03f);
  p = p * v;
  float q = std::fma(v2, 1.19825839466702e-06f, 1.18534705686654e-04f);
  q = std::fma(q, v2, 2.26843463243900e-03f);
  q = std::fma(q, v2, 4.89352518554385e-03f);
  return p / q;
}

}  // namespace quant
}  // namespace mnq
