// The output stage of the AVX2 GEMM, direct conv and depthwise kernels:
// quant::requantize 8 lanes at a time. Include inside the target region
// (internal linkage, compiled for AVX2).
#pragma once

#include <cstdint>
#include <cstring>

#include "../../internal.h"
#include "../target.h"

namespace mnq {
namespace detail {
namespace {

// Requantization constants shared by all tiles of one call.
struct Epilogue {
  __m256 lo, hi;  // qmin - zp, qmax - zp (float)
  __m256i zp;
  const int8_t* lut;  // 256 + 4 readable bytes, or nullptr
};

inline Epilogue make_epilogue(const OutputStage& o, int8_t* lut_copy /* 260 bytes */) {
  Epilogue e;
  e.lo = _mm256_set1_ps(float(o.qmin - o.zero_point));
  e.hi = _mm256_set1_ps(float(o.qmax - o.zero_point));
  e.zp = _mm256_set1_epi32(o.zero_point);
  e.lut = nullptr;
  if (o.has_lut) {
    std::memcpy(lut_copy, o.lut, 256);
    std::memset(lut_copy + 256, 0, 4);
    e.lut = lut_copy;
  }
  return e;
}

// int32 accumulators (bias added) -> 8 int8 in the low 8 bytes.
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

}  // namespace
}  // namespace detail
}  // namespace mnq
