// The row driver of the direct general conv (no im2col), common to the x86 and
// AArch64 kernel files. Each file includes it where its vector code is compiled
// (x86: inside its target region, after its own helpers): everything here has
// internal linkage and is compiled for that ISA. The vector code (row buffers,
// tiles, stores) stays in the files; the weight packing is direct_pack.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "internal.h"

namespace mnq {
namespace detail {
namespace {

// What the tiles of one output row read. Elem is the row buffers' element: u8
// (x ^ 0x80) for the VNNI kernels, int16 for AVX2, int8 (x itself) for NEON.
template <typename Elem>
struct DirectCall {
  const Elem* rows[16];    // per kernel row (kernel_h <= 16: the packs check)
  int kh;
  int groups;              // byte groups (dwords, int16 pairs) read per kernel row
  size_t step;             // elements between adjacent output pixels in a row buffer
  const uint8_t* w;        // packed weights
  const int32_t* bias;     // bias_folded (padded)
  const float* mult;       // [n]
  int n;                   // out_c
  const uint16_t* usum;    // patch sums per row-buffer position (patch_sums), or nullptr
  const int32_t* wzp;      // w zero points (padded), with usum
  bool fast;               // packed stores: out_c a multiple of the block, |multipliers| < 1
};

template <typename Elem>
void direct_call_init(const DirectConvArgs& a, int groups, int block, DirectCall<Elem>* c) {
  const ConvShape& s = *a.s;
  c->kh = s.kernel_h;
  c->groups = groups;
  c->step = size_t(s.stride_w) * s.in_c;
  c->w = a.w->packed.data();
  c->bias = a.w->bias_folded.data();
  c->mult = a.out->multiplier.data();
  c->n = s.out_c;
  c->usum = nullptr;
  c->wzp = nullptr;
  c->fast = s.out_c % block == 0;
  for (int j = 0; j < s.out_c && c->fast; ++j) c->fast = c->mult[j] < 1.0f && c->mult[j] > -1.0f;
}

// Output rows [row_begin, row_end): points c.rows at the kernel rows (those in
// the vertical padding at padrow, the others at bufs[ky], filled by
// fill(input row, buffer)), then calls row(output row).
template <typename Elem, class Fill, class Row>
void direct_conv_rows(const DirectConvArgs& a, DirectCall<Elem>& c, const Elem* padrow, Elem* bufs,
                      size_t len, Fill fill, Row row) {
  const ConvShape& s = *a.s;
  for (int oy = a.row_begin; oy < a.row_end; ++oy) {
    for (int ky = 0; ky < s.kernel_h; ++ky) {
      const int iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
      if (iy < 0 || iy >= s.in_h) {
        c.rows[ky] = padrow;
      } else {
        Elem* buf = bufs + size_t(ky) * len;
        fill(a.x + size_t(iy) * s.in_w * s.in_c, buf);
        c.rows[ky] = buf;
      }
    }
    row(a.y + size_t(oy) * s.out_w * s.out_c);
  }
}

// Calls f(DirectBlocks<nb>()) for nb in 1..4 channel blocks (the tiles' template argument).
template <int N>
struct DirectBlocks {
  static constexpr int value = N;
};
template <class F>
void with_direct_blocks(int nb, F f) {
  switch (nb) {
    case 1: f(DirectBlocks<1>()); break;
    case 2: f(DirectBlocks<2>()); break;
    case 3: f(DirectBlocks<3>()); break;
    default: f(DirectBlocks<4>()); break;
  }
}

}  // namespace
}  // namespace detail
}  // namespace mnq
