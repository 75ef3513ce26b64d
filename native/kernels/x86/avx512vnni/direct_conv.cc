// AVX-512 VNNI direct general conv (the stem: 3x3 over 3 input channels, few
// output channels), without im2col: bit-identical to im2col + the scalar GEMM.
//
//   im2col + GEMM spends more on building the patch rows than on the products
//   when K = 27 and out_c = 16. The shapes vnni::direct_pack takes (vnni_pack.h)
//   with out_c <= 64 run straight from the input: per
//   output row, the kernel_h input rows are copied as u8 (x ^ 0x80) into row
//   buffers with the horizontal padding (x_zp ^ 0x80) in place (kernel rows in
//   the vertical padding read one such padding row), so output pixel ox finds
//   kernel row ky at buffer[ky] + ox * stride_w * in_c, without bounds checks.
//   A kernel row is read as G = ceil(kernel_w * in_c / 4) broadcast dwords; the
//   bytes past the run (the next pixel's) meet zero weights. Tiles of 4
//   pixels x all channel blocks; when out_c is a multiple of 16 the tile's output
//   is contiguous and leaves in 64-byte stores (gemm_store_fast's packing).
#include <cstring>

#include "../../internal.h"
#include "../target.h"
#include "../vnni_pack.h"
#include "table.h"

#if defined(__x86_64__) || defined(_M_X64)

namespace mnq {
namespace detail {
namespace {

constexpr int kColBlock = 16;  // output channels per packed block (one zmm of int32)

using vnni::direct_groups;
using vnni::direct_row_bytes;

}  // namespace
}  // namespace detail
}  // namespace mnq

MNQ_AVX512VNNI_BEGIN

#include "../../direct_conv.h"  // inside the target region (see there)
#include "epilogue.h"

namespace mnq {
namespace detail {
namespace {

using DirectCallU8 = DirectCall<uint8_t>;

// Output pixels [ox, ox + MR) of one row, all NB channel blocks.
template <int NB, int MR>
__attribute__((always_inline)) inline void direct_tile(const DirectCallU8& c, const Epilogue& e, int ox,
                                                       int8_t* y) {
  __m512i acc[MR][NB];
#pragma GCC unroll 4
  for (int b = 0; b < NB; ++b) {
    const __m512i bias = _mm512_loadu_si512(c.bias + b * kColBlock);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) acc[r][b] = bias;
  }
  const uint8_t* wp = c.w;
  for (int ky = 0; ky < c.kh; ++ky) {
    const uint8_t* xp = c.rows[ky] + size_t(ox) * c.step;
    for (int g = 0; g < c.groups; ++g, wp += NB * 64) {
      __m512i wv[NB];
#pragma GCC unroll 4
      for (int b = 0; b < NB; ++b) wv[b] = _mm512_load_si512(wp + b * 64);
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        int32_t av;
        std::memcpy(&av, xp + size_t(r) * c.step + 4 * g, 4);
        const __m512i a = _mm512_set1_epi32(av);
#pragma GCC unroll 4
        for (int b = 0; b < NB; ++b) acc[r][b] = _mm512_dpbusd_epi32(acc[r][b], a, wv[b]);
      }
    }
  }
  if (c.usum) {  // asymmetric weights: - w_zp[n] * patch sum
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m512i u = _mm512_set1_epi32(c.usum[size_t(ox + r) * c.step]);
#pragma GCC unroll 4
      for (int b = 0; b < NB; ++b)
        acc[r][b] = _mm512_sub_epi32(acc[r][b], _mm512_mullo_epi32(_mm512_loadu_si512(c.wzp + b * kColBlock), u));
    }
  }
  int8_t* yp = y + size_t(ox) * c.n;
  if (MR * NB % 4 == 0 && c.fast && !e.has_lut) {
    // out_c == 16 * NB: the tile's MR * NB * 16 outputs are contiguous; four
    // accumulators at a time (in pixel-major order) make one 64-byte store
    // (the packed output stage, ../epilogue.h).
    const PackedStage k = packed_stage(e);
    __m512 mult[NB];
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b) mult[b] = _mm512_loadu_ps(c.mult + b * kColBlock);
#pragma GCC unroll 4
    for (int i = 0; i < MR * NB; i += 4) {
      __m512i q[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) q[j] = round_packed16(acc[(i + j) / NB][(i + j) % NB], mult[(i + j) % NB]);
      const __m512i o = pack_packed16(k, q, true);
      _mm512_storeu_si512(yp + i * 16, o);
    }
    return;
  }
#pragma GCC unroll 4
  for (int b = 0; b < NB; ++b) {
    const int valid = imin(kColBlock, c.n - b * kColBlock);
    const __mmask16 m = valid >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << valid) - 1);
    const __m512 mult = _mm512_maskz_loadu_ps(m, c.mult + b * kColBlock);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r)
      _mm_mask_storeu_epi8(yp + size_t(r) * c.n + b * kColBlock, m, requant16(e, acc[r][b], mult));
  }
}

template <int NB>
void direct_row(const DirectCallU8& c, const Epilogue& e, int out_w, int8_t* y) {
  int ox = 0;
  for (; ox + 4 <= out_w; ox += 4) direct_tile<NB, 4>(c, e, ox, y);
  for (; ox < out_w; ++ox) direct_tile<NB, 1>(c, e, ox, y);
}

// Row buffer: padded input columns as u8, x_zp ^ 0x80 outside the input.
void direct_fill_row(const ConvShape& s, const int8_t* xrow, uint8_t pad, size_t len, uint8_t* dst) {
  const __m512i flip = _mm512_set1_epi8(char(0x80)), padv = _mm512_set1_epi8(char(pad));
  const int64_t lo = int64_t(s.pad_left) * s.in_c, hi = lo + int64_t(s.in_w) * s.in_c;
  for (size_t i = 0; i < len; i += 64) {
    const int64_t a = lo - int64_t(i), b = hi - int64_t(i);  // input bytes are [a, b) of this chunk
    if (a >= 64 || b <= 0) {
      _mm512_store_si512(dst + i, padv);
      continue;
    }
    const int a0 = a > 0 ? int(a) : 0, b0 = b < 64 ? int(b) : 64;
    const __mmask64 m = (b0 == 64 ? ~__mmask64(0) : (__mmask64(1) << b0) - 1) & ~((__mmask64(1) << a0) - 1);
    // Masked-off lanes are not read (no fault), so the base may lie outside the row.
    const __m512i v = _mm512_maskz_loadu_epi8(m, xrow + (int64_t(i) - lo));
    _mm512_store_si512(dst + i, _mm512_mask_blend_epi8(m, padv, _mm512_xor_si512(v, flip)));
  }
}

// Patch sums of one output row: t[i] = sum over kernel rows of u at i, then
// usum[i] = t[i] + ... + t[i + run - 1] (the patch of the pixel at i = ox * step).
void direct_patch_sums(const DirectCallU8& c, int run, size_t len, size_t count, uint16_t* t, uint16_t* usum) {
  for (size_t i = 0; i < len; i += 32) {
    __m512i v = _mm512_setzero_si512();
    for (int ky = 0; ky < c.kh; ++ky)
      v = _mm512_add_epi16(v, _mm512_cvtepu8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(c.rows[ky] + i))));
    _mm512_storeu_si512(t + i, v);
  }
  _mm512_storeu_si512(t + len, _mm512_setzero_si512());
  _mm512_storeu_si512(t + len + 32, _mm512_setzero_si512());
  for (size_t i = 0; i < count; i += 32) {
    __m512i v = _mm512_loadu_si512(t + i);
    for (int j = 1; j < run; ++j) v = _mm512_add_epi16(v, _mm512_loadu_si512(t + i + j));
    _mm512_storeu_si512(usum + i, v);
  }
}

void conv_direct_avx512(const DirectConvArgs& a) {
  const ConvShape& s = *a.s;
  const PackedGemm& w = *a.w;
  const Epilogue e = make_epilogue(*a.out);
  const int nb = ceil_div(s.out_c, kColBlock);
  DirectCallU8 c;
  direct_call_init(a, direct_groups(s), kColBlock, &c);
  c.wzp = reinterpret_cast<const int32_t*>(w.packed.data() + size_t(s.kernel_h) * c.groups * nb * 64);
  const size_t len = direct_row_bytes(s);
  uint8_t* base = vnni::direct_scratch_base(a.scratch);  // padding row, kernel_h rows, patch sums
  const uint8_t pad = uint8_t(w.x_zero_point ^ 0x80);
  const __m512i padv = _mm512_set1_epi8(char(pad));
  for (size_t i = 0; i < len; i += 64) _mm512_store_si512(base + i, padv);
  uint16_t* tsum = reinterpret_cast<uint16_t*>(base + size_t(s.kernel_h + 1) * len);
  uint16_t* usum = tsum + len + 64;
  const size_t count = size_t(s.out_w - 1) * c.step + 1;  // patch-sum positions used
  direct_conv_rows(
      a, c, base, base + len, len,
      [&](const int8_t* x, uint8_t* buf) { direct_fill_row(s, x, pad, len, buf); },
      [&](int8_t* y) {
        if (w.patch_sums) {
          direct_patch_sums(c, s.kernel_w * s.in_c, len, count, tsum, usum);
          c.usum = usum;
        }
        with_direct_blocks(nb, [&](auto blocks) { direct_row<decltype(blocks)::value>(c, e, s.out_w, y); });
      });
}

}  // namespace
}  // namespace detail
}  // namespace mnq

MNQ_TARGET_END

namespace mnq {
namespace detail {
namespace {

bool conv_direct_pack(const ConvShape& s, PackedGemm* w) {
  return vnni::direct_pack<kColBlock>(s, w, 4 * kColBlock);
}

}  // namespace

namespace avx512vnni {
void set_direct_conv(IsaKernels& t) {
  t.conv_direct_pack = conv_direct_pack;
  t.conv_direct_scratch_size = vnni::direct_scratch_size;
  t.conv_direct = conv_direct_avx512;
}
}  // namespace avx512vnni
}  // namespace detail
}  // namespace mnq

#endif
