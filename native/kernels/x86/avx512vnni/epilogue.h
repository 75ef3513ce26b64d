// The output stage of the AVX-512 VNNI kernels, 16 lanes at a time: the rules
// of ../epilogue.h on zmm (requantization, the packed stage), and the table
// lookup (fused activation, lut_apply). Include inside the target region
// (internal linkage, compiled for AVX-512).
#pragma once

#include <cstdint>

#include "../../internal.h"
#include "../epilogue.h"
#include "../target.h"

namespace mnq {
namespace detail {
namespace {

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

// The packed output stage (../epilogue.h): its rounding, without the float clamp.
__attribute__((always_inline)) inline __m512i round_packed16(__m512i acc, __m512 m) {
  return _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), m));
}
// Its constants for one call.
struct PackedStage {
  __m512i order, zp16, lo8, hi8;
};
__attribute__((always_inline)) inline PackedStage packed_stage(const Epilogue& e) {
  PackedStage k;
  k.order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
  k.zp16 = _mm512_set1_epi16(short(e.zp16));
  k.lo8 = _mm512_set1_epi8(char(e.qmin));
  k.hi8 = _mm512_set1_epi8(char(e.qmax));
  return k;
}
// Four vectors q[0..3] of round_packed16 values -> 64 int8 in order: the 16
// values of q[0], then q[1], q[2], q[3]. four false: only q[0] and q[1] matter
// (the upper 32 bytes are then undefined).
__attribute__((always_inline)) inline __m512i pack_packed16(const PackedStage& k, const __m512i* q, bool four) {
  const __m512i p01 = _mm512_adds_epi16(_mm512_packs_epi32(q[0], q[1]), k.zp16);
  const __m512i p23 = four ? _mm512_adds_epi16(_mm512_packs_epi32(q[2], q[3]), k.zp16) : p01;
  __m512i o = _mm512_permutexvar_epi32(k.order, _mm512_packs_epi16(p01, p23));
  return _mm512_min_epi8(_mm512_max_epi8(o, k.lo8), k.hi8);
}

}  // namespace
}  // namespace detail
}  // namespace mnq
