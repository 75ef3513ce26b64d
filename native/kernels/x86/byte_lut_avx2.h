// A 256-entry int8 table applied to 32 int8 lanes with vpshufb (AVX2): out =
// table[q + 128]. Include inside a target region that has AVX2 (internal
// linkage, compiled for that ISA).
//
// With v = q + 128 = q ^ 0x80 (u8) and T_h the 16 entries of the table's block
// h (v = 16h + j): for v < 128, XOR over h = 0..7 of pshufb(A_h, v - 16h) with
// A_0 = T_0, A_h = T_h ^ T_(h-1). For h <= v / 16 the index v - 16h lies in
// [0, 127] and has low nibble j; for larger h it wraps past 128 and pshufb
// gives 0; the XORs telescope to T_(v/16)[j]. The same chain on q = v - 128
// with the blocks 8..15 serves v >= 128, and vpblendvb picks by v's top bit.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace mnq {
namespace detail {
namespace {

struct ByteLut {
  __m256i lo[8], hi[8];  // the chained 16-entry tables of blocks 0..7 and 8..15, in both lanes
};

inline void make_byte_lut(const int8_t* table, ByteLut* t) {
  __m128i prev_lo = _mm_setzero_si128(), prev_hi = _mm_setzero_si128();
  for (int h = 0; h < 8; ++h) {
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 16 * h));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 128 + 16 * h));
    t->lo[h] = _mm256_broadcastsi128_si256(_mm_xor_si128(lo, prev_lo));
    t->hi[h] = _mm256_broadcastsi128_si256(_mm_xor_si128(hi, prev_hi));
    prev_lo = lo;
    prev_hi = hi;
  }
}

inline __m256i byte_lut(const ByteLut& t, __m256i q) {
  const __m256i k16 = _mm256_set1_epi8(16);
  const __m256i v = _mm256_xor_si256(q, _mm256_set1_epi8(char(0x80)));
  __m256i ia = v, ib = q;
  __m256i ra = _mm256_shuffle_epi8(t.lo[0], ia), rb = _mm256_shuffle_epi8(t.hi[0], ib);
#pragma GCC unroll 7
  for (int h = 1; h < 8; ++h) {
    ia = _mm256_sub_epi8(ia, k16);
    ib = _mm256_sub_epi8(ib, k16);
    ra = _mm256_xor_si256(ra, _mm256_shuffle_epi8(t.lo[h], ia));
    rb = _mm256_xor_si256(rb, _mm256_shuffle_epi8(t.hi[h], ib));
  }
  return _mm256_blendv_epi8(ra, rb, v);
}

}  // namespace
}  // namespace detail
}  // namespace mnq
