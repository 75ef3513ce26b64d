// AVX-VNNI direct general conv (the stem), without im2col: bit-identical to
// im2col + the scalar GEMM.
//
// Direct general conv (the stem; shapes vnni::direct_pack takes, out_c <= 32)
//   The scheme of x86/avx512vnni/direct_conv.cc on ymm: u8 row buffers with the
//   padding in place, a kernel row read as broadcast dwords, tiles of pixels x
//   all 8-channel blocks, 32-byte packed stores when out_c is a multiple of 8.
#include <cstring>

#include "../../internal.h"
#include "../target.h"
#include "../vnni_pack.h"
#include "table.h"

#if defined(__x86_64__) || defined(_M_X64)

namespace mnq {
namespace detail {
namespace {

constexpr int kColBlock = 8;         // output channels per packed block (one ymm of int32)
constexpr int kDirectMaxBlocks = 4;  // out_c <= 32

using vnni::direct_groups;
using vnni::direct_row_bytes;

}  // namespace
}  // namespace detail
}  // namespace mnq

MNQ_AVXVNNI_BEGIN

#include "../../direct_conv.h"  // inside the target region (see there)
#include "../byte_lut_avx2.h"
#include "epilogue.h"

namespace mnq {
namespace detail {
namespace {

using DirectCallU8 = DirectCall<uint8_t>;

// Output pixels [ox, ox + MR) of one row, all NB channel blocks.
template <int NB, int MR>
__attribute__((always_inline)) inline void direct_tile(const ByteLut* table, const DirectCallU8& c, const Epilogue& e, int ox,
                                                       int8_t* y) {
  __m256i acc[MR][NB];
#pragma GCC unroll 4
  for (int b = 0; b < NB; ++b) {
    const __m256i bias = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.bias + b * kColBlock));
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) acc[r][b] = bias;
  }
  const uint8_t* wp = c.w;
  for (int ky = 0; ky < c.kh; ++ky) {
    const uint8_t* xp = c.rows[ky] + size_t(ox) * c.step;
    for (int g = 0; g < c.groups; ++g, wp += NB * 32) {
      __m256i wv[NB];
#pragma GCC unroll 4
      for (int b = 0; b < NB; ++b) wv[b] = _mm256_load_si256(reinterpret_cast<const __m256i*>(wp + b * 32));
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        int32_t av;
        std::memcpy(&av, xp + size_t(r) * c.step + 4 * g, 4);
        const __m256i a = _mm256_set1_epi32(av);
#pragma GCC unroll 4
        for (int b = 0; b < NB; ++b) acc[r][b] = _mm256_dpbusd_avx_epi32(acc[r][b], a, wv[b]);
      }
    }
  }
  if (c.usum) {  // asymmetric weights: - w_zp[n] * patch sum
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m256i u = _mm256_set1_epi32(c.usum[size_t(ox + r) * c.step]);
#pragma GCC unroll 4
      for (int b = 0; b < NB; ++b)
        acc[r][b] = _mm256_sub_epi32(
            acc[r][b], _mm256_mullo_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.wzp + b * kColBlock)), u));
    }
  }
  int8_t* yp = y + size_t(ox) * c.n;
  if (MR * NB % 4 == 0 && c.fast) {
    // out_c == 8 * NB: the tile's outputs are contiguous; four accumulators at
    // a time (pixel-major) make one 32-byte store (the packed output stage,
    // ../epilogue.h); a table applies to the bytes.
    const PackedStage k = packed_stage(e);
    __m256 mult[NB];
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b) mult[b] = _mm256_loadu_ps(c.mult + b * kColBlock);
#pragma GCC unroll 4
    for (int i = 0; i < MR * NB; i += 4) {
      __m256i q[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) q[j] = round_packed8(acc[(i + j) / NB][(i + j) % NB], mult[(i + j) % NB]);
      __m256i o = pack_packed8(k, q, true);
      if (table) o = byte_lut(*table, o);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(yp + i * 8), o);
    }
    return;
  }
#pragma GCC unroll 4
  for (int b = 0; b < NB; ++b) {
    const int valid = imin(kColBlock, c.n - b * kColBlock);
    const __m256 mult = load_mult(c.mult + b * kColBlock, valid);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r)
      store_bytes(yp + size_t(r) * c.n + b * kColBlock, _mm256_castsi128_si256(requant8(e, acc[r][b], mult)),
                  valid);
  }
}

template <int NB>
void direct_row(const ByteLut* table, const DirectCallU8& c, const Epilogue& e, int out_w, int8_t* y) {
  constexpr int MR = NB <= 3 ? 4 : 2;  // MR * NB accumulators + NB weights + 1 <= 16 ymm
  int ox = 0;
  for (; ox + MR <= out_w; ox += MR) direct_tile<NB, MR>(table, c, e, ox, y);
  for (; ox < out_w; ++ox) direct_tile<NB, 1>(table, c, e, ox, y);
}

// Row buffer: padded input columns as u8, x_zp ^ 0x80 outside the input.
void direct_fill_row(const ConvShape& s, const int8_t* xrow, uint8_t pad, size_t len, uint8_t* dst) {
  const size_t lo = size_t(s.pad_left) * s.in_c < len ? size_t(s.pad_left) * s.in_c : len;
  const size_t in_bytes = size_t(s.in_w) * s.in_c;
  const size_t hi = lo + (in_bytes < len - lo ? in_bytes : len - lo);
  std::memset(dst, pad, lo);
  const __m256i flip = _mm256_set1_epi8(char(0x80));
  size_t i = lo;
  for (; i + 32 <= hi; i += 32)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xrow + (i - lo))), flip));
  for (; i < hi; ++i) dst[i] = uint8_t(xrow[i - lo] ^ 0x80);
  std::memset(dst + hi, pad, len - hi);
}

// Patch sums of one output row: t[i] = sum over kernel rows of u at i, then
// usum[i] = t[i] + ... + t[i + run - 1] (the patch of the pixel at i = ox * step).
void direct_patch_sums(const DirectCallU8& c, int run, size_t len, size_t count, uint16_t* t, uint16_t* usum) {
  for (size_t i = 0; i < len; i += 16) {
    __m256i v = _mm256_setzero_si256();
    for (int ky = 0; ky < c.kh; ++ky)
      v = _mm256_add_epi16(v, _mm256_cvtepu8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(c.rows[ky] + i))));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(t + i), v);
  }
  for (size_t i = len; i < len + 64; i += 16) _mm256_storeu_si256(reinterpret_cast<__m256i*>(t + i), _mm256_setzero_si256());
  for (size_t i = 0; i < count; i += 16) {
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + i));
    for (int j = 1; j < run; ++j) v = _mm256_add_epi16(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + i + j)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(usum + i), v);
  }
}

void conv_direct_avxvnni(const DirectConvArgs& a) {
  const ConvShape& s = *a.s;
  const PackedGemm& w = *a.w;
  alignas(16) int8_t lut[260];
  const Epilogue e = make_epilogue(*a.out, lut);
  ByteLut table_storage;
  const ByteLut* table = nullptr;  // the fused table, applied to packed bytes
  if (e.lut) {
    make_byte_lut(e.lut, &table_storage);
    table = &table_storage;
  }
  const int nb = ceil_div(s.out_c, kColBlock);
  DirectCallU8 c;
  direct_call_init(a, direct_groups(s), kColBlock, &c);
  c.wzp = reinterpret_cast<const int32_t*>(w.packed.data() + size_t(s.kernel_h) * c.groups * nb * 32);
  const size_t len = direct_row_bytes(s);
  uint8_t* base = vnni::direct_scratch_base(a.scratch);  // padding row, kernel_h rows, patch sums
  const uint8_t pad = uint8_t(w.x_zero_point ^ 0x80);
  std::memset(base, pad, len);
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
        with_direct_blocks(nb, [&](auto blocks) { direct_row<decltype(blocks)::value>(table, c, e, s.out_w, y); });
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
  return vnni::direct_pack<kColBlock>(s, w, kDirectMaxBlocks * kColBlock);
}

}  // namespace

namespace avxvnni {
void set_direct_conv(IsaKernels& t) {
  t.conv_direct_pack = conv_direct_pack;
  t.conv_direct_scratch_size = vnni::direct_scratch_size;
  t.conv_direct = conv_direct_avxvnni;
}
}  // namespace avxvnni
}  // namespace detail
}  // namespace mnq

#endif
