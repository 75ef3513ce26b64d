// The output stage of the AVX-512 VNNI GEMM, direct conv and depthwise kernels
// (and the table lookup of lut_apply): quant::requantize 16 lanes at a time.
// Include inside the target region (internal linkage, compiled for AVX-512).
#pragma once

#include <cstdint>

#include "../../internal.h"
#include "../target.h"

namespace mnq {
namespace detail {
namespace {

inline int imin(int a, int b) { return a < b ? a : b; }

// Requantization constants shared by all tiles of one call.
struct Epilogue {
  __m512 lo, hi;       // qmin - zp, qmax - zp (float)
  __m512i zp;
  bool has_lut;
  __m512i t0, t1, t2, t3;  // the 256-byte table as 4 x 16 dwords
  int32_t zp16, qmin, qmax;
};

inline Epilogue make_epilogue(const OutputStage& o) {
  Epilogue e;
  e.lo = _mm512_set1_ps(float(o.qmin - o.zero_point));
  e.hi = _mm512_set1_ps(float(o.qmax - o.zero_point));
  e.zp = _mm512_set1_epi32(o.zero_point);
  e.has_lut = o.has_lut;
  e.zp16 = o.zero_point;
  e.qmin = o.qmin;
  e.qmax = o.qmax;
  e.t0 = _mm512_loadu_si512(o.lut + 0);
  e.t1 = _mm512_loadu_si512(o.lut + 64);
  e.t2 = _mm512_loadu_si512(o.lut + 128);
  e.t3 = _mm512_loadu_si512(o.lut + 192);
  return e;
}

// lut[q + 128] for 16 int32 lanes q in [-128, 127]; result in the low byte.
inline __m512i lut16(const Epilogue& e, __m512i q) {
  const __m512i idx = _mm512_add_epi32(q, _mm512_set1_epi32(128));
  const __m512i dw = _mm512_srli_epi32(idx, 2);  // dword index 0..63
  const __m512i a = _mm512_permutex2var_epi32(e.t0, dw, e.t1);
  const __m512i b = _mm512_permutex2var_epi32(e.t2, dw, e.t3);
  const __mmask16 hi = _mm512_test_epi32_mask(dw, _mm512_set1_epi32(32));
  const __m512i v = _mm512_mask_blend_epi32(hi, a, b);
  const __m512i sh = _mm512_slli_epi32(_mm512_and_si512(idx, _mm512_set1_epi32(3)), 3);
  return _mm512_srlv_epi32(v, sh);
}

// int32 accumulators (bias already added) -> requantized int32 in [qmin, qmax] (or LUT'ed).
inline __m128i requant16(const Epilogue& e, __m512i acc, __m512 mult) {
  __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), mult);
  f = _mm512_min_ps(_mm512_max_ps(f, e.lo), e.hi);
  __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), e.zp);
  if (e.has_lut) q = lut16(e, q);
  return _mm512_cvtepi32_epi8(q);
}

}  // namespace
}  // namespace detail
}  // namespace mnq
