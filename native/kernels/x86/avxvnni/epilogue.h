// The output stage of the AVX-VNNI GEMM and direct conv: quant::requantize 8
// lanes at a time, masked multiplier loads and partial stores. Include inside
// the target region (internal linkage, compiled for AVX-VNNI).
#pragma once

#include <cstdint>
#include <cstring>

#include "../../internal.h"
#include "../target.h"

namespace mnq {
namespace detail {
namespace {

inline int imin(int a, int b) { return a < b ? a : b; }

// Requantization constants shared by all tiles of one call.
struct Epilogue {
  __m256 lo, hi;      // qmin - zp, qmax - zp (float)
  __m256i zp;
  const int8_t* lut;  // 256 + 4 readable bytes, or nullptr
  int32_t zp16, qmin, qmax;
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

// int32 accumulators (bias added) -> 8 int8 in the low 8 bytes:
// quant::requantize, then the table if there is one.
inline __m128i requant8(const Epilogue& e, __m256i acc, __m256 mult) {
  __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), mult);
  f = _mm256_min_ps(_mm256_max_ps(f, e.lo), e.hi);
  __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(f), e.zp);
  if (e.lut) {
    const __m256i idx = _mm256_add_epi32(q, _mm256_set1_epi32(128));
    q = _mm256_i32gather_epi32(reinterpret_cast<const int*>(e.lut), idx, 1);
    q = _mm256_srai_epi32(_mm256_slli_epi32(q, 24), 24);  // sign-extend the low byte
  }
  const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  return _mm_packs_epi16(w16, w16);
}

// The first `valid` (<= 8) multipliers, zero beyond (never reads past them).
inline __m256 load_mult(const float* m, int valid) {
  if (valid >= 8) return _mm256_loadu_ps(m);
  if (valid <= 0) return _mm256_setzero_ps();
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_maskload_ps(m, _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), lane));
}

// Stores the first `count` (<= 32) bytes of v.
inline void store_bytes(int8_t* dst, __m256i v, int count) {
  if (count >= 32) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), v);
    return;
  }
  __m128i h = _mm256_castsi256_si128(v);
  if (count >= 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), h);
    h = _mm256_extracti128_si256(v, 1);
    dst += 16;
    count -= 16;
  }
  if (count >= 8) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), h);
    h = _mm_srli_si128(h, 8);
    dst += 8;
    count -= 8;
  }
  if (count > 0) {
    alignas(16) int8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), h);
    for (int i = 0; i < count; ++i) dst[i] = tmp[i];
  }
}

}  // namespace
}  // namespace detail
}  // namespace mnq
