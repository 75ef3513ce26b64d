// The output stage of the AVX-VNNI GEMM and direct conv: ../epilogue_avx2.h's
// requantization, the packed output stage (../epilogue.h) on ymm, masked
// multiplier loads and partial stores. Include inside the target region
// (internal linkage, compiled for AVX-VNNI).
#pragma once

#include <cstdint>
#include <cstring>

#include "../../internal.h"
#include "../epilogue_avx2.h"
#include "../target.h"

namespace mnq {
namespace detail {
namespace {

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

// The packed output stage (../epilogue.h): its rounding, without the float clamp.
__attribute__((always_inline)) inline __m256i round_packed8(__m256i acc, __m256 m) {
  return _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_cvtepi32_ps(acc), m));
}
// Its constants for one call.
struct PackedStage {
  __m256i order, zp16, lo8, hi8;
};
__attribute__((always_inline)) inline PackedStage packed_stage(const Epilogue& e) {
  PackedStage k;
  k.order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  k.zp16 = _mm256_set1_epi16(short(e.zp16));
  k.lo8 = _mm256_set1_epi8(char(e.qmin));
  k.hi8 = _mm256_set1_epi8(char(e.qmax));
  return k;
}
// Four vectors q[0..3] of round_packed8 values -> 32 int8 in order: the 8
// values of q[0], then q[1], q[2], q[3]. four false: only q[0] and q[1]
// matter (the upper 16 bytes are then undefined).
__attribute__((always_inline)) inline __m256i pack_packed8(const PackedStage& k, const __m256i* q, bool four) {
  const __m256i p01 = _mm256_adds_epi16(_mm256_packs_epi32(q[0], q[1]), k.zp16);
  const __m256i p23 = four ? _mm256_adds_epi16(_mm256_packs_epi32(q[2], q[3]), k.zp16) : p01;
  __m256i o = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), k.order);
  return _mm256_min_epi8(_mm256_max_epi8(o, k.lo8), k.hi8);
}

}  // namespace
}  // namespace detail
}  // namespace mnq
