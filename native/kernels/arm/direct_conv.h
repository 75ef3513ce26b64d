// The direct general conv (no im2col) of the AArch64 kernels (neon/direct_conv.cc,
// neondot/direct_conv.cc): ../direct_conv.h's row driver over int8 row buffers
// (the padded input row, x_zp outside the input; kernel rows in the vertical
// padding read one row of x_zp), weights packed by ../direct_pack.h with
// activation offset 0 in blocks of 16 output channels (four int32x4
// accumulators per pixel), out_c <= 64. Internal linkage (see epilogue.h).
#pragma once

#if defined(__aarch64__)

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../direct_conv.h"
#include "../direct_pack.h"
#include "../internal.h"
#include "epilogue.h"

namespace mnq {
namespace detail {
namespace {

constexpr int kDirectBlock = 16;
constexpr int kDirectMaxBlocks = 4;

inline size_t direct_scratch_bytes(const ConvShape& s, int group_bytes) {
  return static_cast<size_t>(s.kernel_h + 1) * direct::row_bytes(s, group_bytes) + 64;
}

// Row buffer: the input row at offset pad_left * in_c, x_zp around it.
inline void direct_fill_row(const ConvShape& s, const int8_t* xrow, int8_t pad, size_t len, int8_t* dst) {
  size_t lo = static_cast<size_t>(s.pad_left) * s.in_c;
  if (lo > len) lo = len;
  size_t hi = lo + static_cast<size_t>(s.in_w) * s.in_c;
  if (hi > len) hi = len;
  std::memset(dst, pad, lo);
  std::memcpy(dst + lo, xrow, hi - lo);
  std::memset(dst + hi, pad, len - hi);
}

// The 2 (NEON) or 4 (SDOT) bytes at p, any alignment, repeated over a vector:
// one LD1R (compilers would rather load into a general register and DUP from
// there: two instructions, and the DUP competes with the arithmetic).
inline int8x16_t load_dup2(const int8_t* p) {
  int16x8_t v;
  __asm__("ld1r {%0.8h}, [%1]" : "=w"(v) : "r"(p), "m"(*reinterpret_cast<const int8_t(*)[2]>(p)));
  return vreinterpretq_s8_s16(v);
}
inline int8x16_t load_dup4(const int8_t* p) {
  int32x4_t v;
  __asm__("ld1r {%0.4s}, [%1]" : "=w"(v) : "r"(p), "m"(*reinterpret_cast<const int8_t(*)[4]>(p)));
  return vreinterpretq_s8_s32(v);
}

// Output stage of one pixel's block of 16 channels (valid of them stored).
inline void direct_store16(const int32x4_t acc[4], const float* m, const NeonOutput& o, const NeonLut* lut,
                           int valid, int8_t* y) {
  int8x16_t q = requant16(acc[0], acc[1], acc[2], acc[3], m, o);
  if (lut) q = lut->apply(q);
  if (valid >= kDirectBlock) {
    vst1q_s8(y, q);
  } else {
    alignas(16) int8_t t[kDirectBlock];
    vst1q_s8(t, q);
    std::memcpy(y, t, static_cast<size_t>(valid));
  }
}

// A direct-conv tile's accumulators (MR pixels x NB blocks of 16 channels), each starting at the bias.
template <int NB, int MR>
__attribute__((always_inline)) inline void direct_tile_init(int32x4_t (&acc)[MR][NB][4], const int32_t* bias) {
#pragma GCC unroll 4
  for (int b = 0; b < NB; ++b)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const int32x4_t v = vld1q_s32(bias + b * kDirectBlock + 4 * j);
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) acc[r][b][j] = v;
    }
}

// Output stage of a direct-conv tile: output pixels [ox, ox + MR) of row y.
template <int NB, int MR>
__attribute__((always_inline)) inline void direct_tile_store(const int32x4_t (&acc)[MR][NB][4],
                                                             const DirectCall<int8_t>& c, const NeonOutput& o,
                                                             const NeonLut* lut, int ox, int8_t* y) {
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b)
      direct_store16(acc[r][b], c.mult + b * kDirectBlock, o, lut, c.n - b * kDirectBlock,
                     y + static_cast<size_t>(ox + r) * c.n + b * kDirectBlock);
}

// Runs output rows [row_begin, row_end): row(call, lut, y) computes one output row.
template <class Row>
void direct_conv_neon_rows(const DirectConvArgs& a, int group_bytes, Row row) {
  const ConvShape& s = *a.s;
  DirectCall<int8_t> c;
  direct_call_init(a, direct::groups(s, group_bytes), kDirectBlock, &c);
  alignas(16) float mult[kDirectMaxBlocks * kDirectBlock] = {};  // zero past out_c
  for (int j = 0; j < s.out_c; ++j) mult[j] = c.mult[j];
  c.mult = mult;
  const NeonOutput o(*a.out);
  static const int8_t kNoTable[256] = {};
  const NeonLut lut_storage(o.lut ? o.lut : kNoTable);
  const NeonLut* lut = o.lut ? &lut_storage : nullptr;
  const size_t len = direct::row_bytes(s, group_bytes);
  int8_t* base = reinterpret_cast<int8_t*>((reinterpret_cast<uintptr_t>(a.scratch) + 63) & ~uintptr_t(63));
  const int8_t pad = static_cast<int8_t>(a.w->x_zero_point);
  std::memset(base, pad, len);  // the padding row
  direct_conv_rows(
      a, c, base, base + len, len, [&](const int8_t* x, int8_t* buf) { direct_fill_row(s, x, pad, len, buf); },
      [&](int8_t* y) { row(c, o, lut, y); });
}

}  // namespace
}  // namespace detail
}  // namespace mnq

#endif  // __aarch64__
