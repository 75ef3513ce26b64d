// AArch64 ASIMD direct general conv (the stem: 3x3 s2 over 3 channels, few
// output channels), without im2col: bit-identical to im2col + ref/gemm.cc.
//
// Stem-like general convs (../direct_conv.h's direct path): 2-byte groups, so the
// weights are [ky][pair][block of 16 channels][16 channels][2 bytes] (w - w_zp,
// direct_pack.h), then one flag byte: no packed weight is -128.
// Per pixel, a pair (x[2p], x[2p+1]) is broadcast to every int16 lane (LD1R),
// and SMULL / SMULL2 against a block's pair vector give, per channel, the two
// products of the pair in adjacent int16 lanes; SMLAL / SMLAL2 add the next
// pair's, and SADALP adds the lanes pairwise into the channel's int32 lane. An
// int16 lane holds two products, exact as in the GEMM unless a weight is -128
// (then SMULL + SADALP per pair).
#include "../../internal.h"
#include "table.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#include <cstring>
#include <utility>

#include "../direct_conv.h"

namespace mnq {
namespace detail {
namespace {

constexpr int kDirectPairMaxOut = kDirectMaxBlocks * kDirectBlock;

// Pixels per tile: 3 for one block (12 accumulators; with 16 GCC spills some,
// the int16 products and the weights need registers too), else 1 (two pixels
// of two blocks spill as well).
constexpr int direct_tile_pixels_neon(int nb) { return nb == 1 ? 3 : 1; }

// Accumulates one pair for MR pixels (xa[r]) against the NB blocks at w;
// when kTwo, also the next pair (xb[r], weights at w + NB * 32), its products
// added in int16 to the first pair's.
template <int NB, int MR, bool kTwo>
__attribute__((always_inline)) inline void direct_pairs(int32x4_t (*acc)[NB][4], const int8_t* w,
                                                        const int8x16_t* xa, const int8x16_t* xb) {
#pragma GCC unroll 4
  for (int b = 0; b < NB; ++b)
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const int8x16_t wa = vld1q_s8(w + b * 32 + h * 16);
      const int8x16_t wb = kTwo ? vld1q_s8(w + NB * 32 + b * 32 + h * 16) : wa;
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        int16x8_t lo = vmull_s8(vget_low_s8(xa[r]), vget_low_s8(wa));
        int16x8_t hi = vmull_high_s8(xa[r], wa);
        if (kTwo) {
          lo = vmlal_s8(lo, vget_low_s8(xb[r]), vget_low_s8(wb));
          hi = vmlal_high_s8(hi, xb[r], wb);
        }
        acc[r][b][2 * h] = vpadalq_s16(acc[r][b][2 * h], lo);
        acc[r][b][2 * h + 1] = vpadalq_s16(acc[r][b][2 * h + 1], hi);
      }
    }
}

// Output pixels [ox, ox + MR) of one row, all NB channel blocks.
template <int NB, int MR, bool kMlal>
__attribute__((always_inline)) inline void direct_tile_neon(const DirectCall<int8_t>& c, const NeonOutput& o,
                                                            const NeonLut* lut, int ox, int8_t* y) {
  int32x4_t acc[MR][NB][4];
  direct_tile_init<NB, MR>(acc, c.bias);
  const int8_t* wp = reinterpret_cast<const int8_t*>(c.w);
  const int pairs = c.groups;
  for (int ky = 0; ky < c.kh; ++ky) {
    const int8_t* xp = c.rows[ky] + static_cast<size_t>(ox) * c.step;
    int p = 0;
    int8x16_t xa[MR], xb[MR];
    if (kMlal) {
      for (; p + 2 <= pairs; p += 2, wp += 2 * NB * 32) {
#pragma GCC unroll 4
        for (int r = 0; r < MR; ++r) {
          xa[r] = load_dup2(xp + static_cast<size_t>(r) * c.step + 2 * p);
          xb[r] = load_dup2(xp + static_cast<size_t>(r) * c.step + 2 * p + 2);
        }
        direct_pairs<NB, MR, true>(acc, wp, xa, xb);
      }
    }
    for (; p < pairs; ++p, wp += NB * 32) {
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) xa[r] = load_dup2(xp + static_cast<size_t>(r) * c.step + 2 * p);
      direct_pairs<NB, MR, false>(acc, wp, xa, xa);
    }
  }
  direct_tile_store<NB, MR>(acc, c, o, lut, ox, y);
}

template <int NB, bool kMlal>
__attribute__((noinline)) void direct_row_neon(const DirectCall<int8_t>& c, const NeonOutput& o,
                                               const NeonLut* lut, int out_w, int8_t* y) {
  constexpr int MR = direct_tile_pixels_neon(NB);
  int ox = 0;
  for (; ox + MR <= out_w; ox += MR) direct_tile_neon<NB, MR, kMlal>(c, o, lut, ox, y);
  for (; ox < out_w; ++ox) direct_tile_neon<NB, 1, kMlal>(c, o, lut, ox, y);
}

inline size_t direct_pair_weight_bytes(const ConvShape& s) {
  return static_cast<size_t>(s.kernel_h) * direct::groups(s, 2) *
         ((s.out_c + kDirectBlock - 1) / kDirectBlock) * 2 * kDirectBlock;
}

bool conv_direct_pack_neon(const ConvShape& s, PackedGemm* w) {
  if (!direct::pack<kDirectBlock, 2>(s, w, kDirectPairMaxOut, 0u, false)) return false;
  const size_t wbytes = direct_pair_weight_bytes(s);
  AlignedBuffer packed = std::move(w->packed);
  w->packed.resize(wbytes + 1);
  std::memcpy(w->packed.data(), packed.data(), wbytes);
  bool mlal_safe = true;
  for (size_t i = 0; i < wbytes; ++i) mlal_safe = mlal_safe && packed.data()[i] != 0x80;
  w->packed.data()[wbytes] = mlal_safe ? 1 : 0;
  return true;
}

size_t conv_direct_scratch_size_neon(const ConvShape& s, int, int) { return direct_scratch_bytes(s, 2); }

void conv_direct_neon(const DirectConvArgs& a) {
  const ConvShape& s = *a.s;
  const bool mlal_safe = a.w->packed.data()[direct_pair_weight_bytes(s)] != 0;
  const int nb = (s.out_c + kDirectBlock - 1) / kDirectBlock;
  direct_conv_neon_rows(a, 2, [&](const DirectCall<int8_t>& c, const NeonOutput& o, const NeonLut* lut, int8_t* y) {
    with_direct_blocks(nb, [&](auto blocks) {
      constexpr int NB = decltype(blocks)::value;
      if (mlal_safe)
        direct_row_neon<NB, true>(c, o, lut, s.out_w, y);
      else
        direct_row_neon<NB, false>(c, o, lut, s.out_w, y);
    });
  });
}

}  // namespace

namespace neon {
void set_direct_conv(IsaKernels& t) {
  t.conv_direct_pack = conv_direct_pack_neon;
  t.conv_direct_scratch_size = conv_direct_scratch_size_neon;
  t.conv_direct = conv_direct_neon;
}
}  // namespace neon
}  // namespace detail
}  // namespace mnq

#endif  // __aarch64__
