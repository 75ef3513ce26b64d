// Loads and stores of 8 int8 / float lanes that never touch memory past the
// valid lanes, shared by the AVX2 kernels. Include inside the target region
// (internal linkage, compiled for AVX2).
#pragma once

#include <cstdint>

#include "../target.h"

namespace mnq {
namespace detail {
namespace {

inline void store_cols(int8_t* dst, __m128i v, int valid) {
  if (valid >= 8) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), v);
  } else {
    alignas(16) int8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), v);
    for (int i = 0; i < valid; ++i) dst[i] = tmp[i];
  }
}

inline __m256 load_mult(const float* m, int valid) {
  if (valid >= 8) return _mm256_loadu_ps(m);
  alignas(32) float tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < valid; ++i) tmp[i] = m[i];
  return _mm256_load_ps(tmp);
}

inline __m256i load8_widen(const int8_t* p) {
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
// The first n < 8 bytes at p (never reads beyond them), widened.
inline __m256i load_tail_widen(const int8_t* p, int n) {
  alignas(16) int8_t tmp[16] = {0};
  for (int i = 0; i < n; ++i) tmp[i] = p[i];
  return load8_widen(tmp);
}

}  // namespace
}  // namespace detail
}  // namespace mnq
