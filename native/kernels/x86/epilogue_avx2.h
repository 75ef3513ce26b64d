// The output stage on 8 lanes (ymm), the same for the AVX2 and AVX-VNNI
// kernels: the rules of epilogue.h, then the fused table by vpgatherdd.
// Include inside a target region with AVX2 (internal linkage, compiled for
// that ISA; target.h).
#pragma once

#include <cstdint>
#include <cstring>

#include "../internal.h"
#include "epilogue.h"
#include "target.h"

namespace mnq {
namespace detail {
namespace {

// Requantization constants shared by all tiles of one call.
struct Epilogue {
  __m256 lo, hi;      // qmin - zp, qmax - zp (float)
  __m256i zp;
  const int8_t* lut;  // 256 + 4 readable bytes, or nullptr
  int32_t zp16, qmin, qmax;  // for the packed output stage (avxvnni)
};

inline Epilogue make_epilogue(const OutputStage& o, int8_t* lut_copy /* 260 bytes */) {
  Epilogue e;
  e.lo = _mm256_set1_ps(float(o.qmin - o.zero_point));
  e.hi = _mm256_set1_ps(float(o.qmax - o.zero_point));
  e.zp = _mm256_set1_epi32(o.zero_point);
  e.zp16 = o.zero_point;
  e.qmin = o.qmin;
  e.qmax = o.qmax;
  e.lut = nullptr;
  if (o.has_lut) {
    std::memcpy(lut_copy, o.lut, 256);
    std::memset(lut_copy + 256, 0, 4);
    e.lut = lut_copy;
  }
  return e;
}

// quant::requantize of 8 int32 lanes (bias added), before the table.
inline __m256i requantize8(const Epilogue& e, __m256i acc, __m256 mult) {
  __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), mult);
  f = _mm256_min_ps(_mm256_max_ps(f, e.lo), e.hi);
  return _mm256_add_epi32(_mm256_cvtps_epi32(f), e.zp);
}

// lut[q + 128] for 8 int32 lanes q in [-128, 127] (a table of 256 + 4
// readable bytes), sign-extended.
inline __m256i lut8(const int8_t* lut, __m256i q) {
  const __m256i idx = _mm256_add_epi32(q, _mm256_set1_epi32(128));
  q = _mm256_i32gather_epi32(reinterpret_cast<const int*>(lut), idx, 1);
  return _mm256_srai_epi32(_mm256_slli_epi32(q, 24), 24);  // sign-extend the low byte
}

// int32 accumulators (bias added) -> 8 int8 in the low 8 bytes:
// quant::requantize, then the table if there is one.
inline __m128i requant8(const Epilogue& e, __m256i acc, __m256 mult) {
  __m256i q = requantize8(e, acc, mult);
  if (e.lut) q = lut8(e.lut, q);
  const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  return _mm_packs_epi16(w16, w16);
}

}  // namespace
}  // namespace detail
}  // namespace mnq
