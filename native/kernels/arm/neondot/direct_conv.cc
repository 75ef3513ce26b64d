// AArch64 dot-product direct general conv (the stem), without im2col:
// bit-identical to im2col + ref/gemm.cc.
//
// Stem-like general convs (../direct_conv.h's direct path): 4-byte groups, the
// weights [ky][group][block of 16 channels][16 channels][4 bytes] (w - w_zp,
// direct_pack.h), the scheme of x86/avx512vnni/direct_conv.cc: per pixel a
// group's 4 bytes are broadcast to every int32 lane (LD1R) and meet the four
// weight vectors of each block in SDOT (exact int32 accumulation).
#include "../../internal.h"
#include "table.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#include "../direct_conv.h"
#include "target.h"

namespace mnq {
namespace detail {
namespace {

constexpr int kDirectDotMaxOut = kDirectMaxBlocks * kDirectBlock;

// Output pixels [ox, ox + MR) of one row, all NB channel blocks.
template <int NB, int MR>
MNQ_DOTPROD __attribute__((always_inline)) inline void direct_tile_dot(const DirectCall<int8_t>& c,
                                                                       const NeonOutput& o, const NeonLut* lut,
                                                                       int ox, int8_t* y) {
  int32x4_t acc[MR][NB][4];
  direct_tile_init<NB, MR>(acc, c.bias);
  const int8_t* wp = reinterpret_cast<const int8_t*>(c.w);
  for (int ky = 0; ky < c.kh; ++ky) {
    const int8_t* xp = c.rows[ky] + static_cast<size_t>(ox) * c.step;
    for (int g = 0; g < c.groups; ++g, wp += NB * 64) {
      int8x16_t wv[NB][4];
#pragma GCC unroll 4
      for (int b = 0; b < NB; ++b)
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) wv[b][j] = vld1q_s8(wp + b * 64 + j * 16);
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        const int8x16_t xa = load_dup4(xp + static_cast<size_t>(r) * c.step + 4 * g);
#pragma GCC unroll 4
        for (int b = 0; b < NB; ++b)
#pragma GCC unroll 4
          for (int j = 0; j < 4; ++j) acc[r][b][j] = vdotq_s32(acc[r][b][j], wv[b][j], xa);
      }
    }
  }
  direct_tile_store<NB, MR>(acc, c, o, lut, ox, y);
}

template <int NB>
MNQ_DOTPROD void direct_row_dot(const DirectCall<int8_t>& c, const NeonOutput& o, const NeonLut* lut, int out_w,
                                int8_t* y) {
  constexpr int MR = NB == 1 ? 4 : NB == 2 ? 2 : 1;  // 16 accumulators at most
  int ox = 0;
  for (; ox + MR <= out_w; ox += MR) direct_tile_dot<NB, MR>(c, o, lut, ox, y);
  for (; ox < out_w; ++ox) direct_tile_dot<NB, 1>(c, o, lut, ox, y);
}

bool conv_direct_pack_dot(const ConvShape& s, PackedGemm* w) {
  return direct::pack<kDirectBlock, 4>(s, w, kDirectDotMaxOut, 0u, false);
}

size_t conv_direct_scratch_size_dot(const ConvShape& s, int, int) { return direct_scratch_bytes(s, 4); }

void conv_direct_dot(const DirectConvArgs& a) {
  const int nb = (a.s->out_c + kDirectBlock - 1) / kDirectBlock;
  const int out_w = a.s->out_w;
  direct_conv_neon_rows(a, 4, [&](const DirectCall<int8_t>& c, const NeonOutput& o, const NeonLut* lut, int8_t* y) {
    with_direct_blocks(nb, [&](auto blocks) { direct_row_dot<decltype(blocks)::value>(c, o, lut, out_w, y); });
  });
}

}  // namespace

namespace neondot {
void set_direct_conv(IsaKernels& t) {
  t.conv_direct_pack = conv_direct_pack_dot;
  t.conv_direct_scratch_size = conv_direct_scratch_size_dot;
  t.conv_direct = conv_direct_dot;
}
}  // namespace neondot
}  // namespace detail
}  // namespace mnq

#endif  // __aarch64__
