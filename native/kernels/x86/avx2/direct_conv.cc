// AVX2 direct general conv (the stem: few input and output channels), without
// im2col: bit-identical to im2col + the scalar GEMM.
//
//   Dilation_w 1, a kernel row of kernel_w * in_c <= 32 values and out_c <= 32
//   (any weight zero points) run straight from the input instead of im2col +
//   GEMM: per output row, the kernel_h input rows are widened to int16 into row
//   buffers with the horizontal padding (x_zp) in place (kernel rows in the
//   vertical padding read one row of x_zp), so output pixel ox finds kernel row
//   ky at buffer[ky] + ox * stride_w * in_c. A kernel row is read as
//   ceil(kernel_w * in_c / 2) broadcast int16 pairs; the value past an odd run
//   (the next pixel's) meets a zero weight. Tiles of pixels x all 8-channel blocks.
#include <cstring>

#include "../../internal.h"
#include "../target.h"
#include "table.h"

#if defined(__x86_64__) || defined(_M_X64)

namespace mnq {
namespace detail {
namespace {

constexpr int kColBlock = 8;  // output channels per packed block (one ymm of int32)

// ---------------------------------------------------------------- packing (baseline ISA)
// See the top of the file. Weights w' = w - w_zp as int16 pairs:
// [ky][pair][block of 8 channels][8 lanes][2 int16]; bias - x_zp * sum w'.
constexpr int kDirectMaxRun = 32;     // kernel_w * in_c
constexpr int kDirectMaxBlocks = 4;   // out_c <= 32
constexpr int kDirectMaxRows = 16;    // kernel_h

inline int direct_pairs(const ConvShape& s) { return ceil_div(s.kernel_w * s.in_c, 2); }
// Bytes of one int16 row buffer: what the last pixel of a row reads, rounded to 64.
inline size_t direct_row_bytes(const ConvShape& s) {
  const size_t used = size_t(s.out_w - 1) * s.stride_w * s.in_c + 2 * size_t(direct_pairs(s));
  return (2 * used + 63) / 64 * 64;
}
size_t direct_scratch_size(const ConvShape& s, int, int) {
  return size_t(s.kernel_h + 1) * direct_row_bytes(s) + 64;
}

bool direct_pack(const ConvShape& s, PackedGemm* w) {
  const int run = s.kernel_w * s.in_c;
  if (s.dilation_w != 1 || run > kDirectMaxRun || s.out_c > kDirectMaxBlocks * kColBlock ||
      s.kernel_h > kDirectMaxRows)
    return false;
  const int pairs = direct_pairs(s), nb = ceil_div(s.out_c, kColBlock);
  w->n_block = kColBlock;
  w->packed.resize(size_t(s.kernel_h) * pairs * nb * 32);
  int16_t* p = reinterpret_cast<int16_t*>(w->packed.data());
  std::memset(p, 0, w->packed.size());
  w->bias_folded.assign(size_t(nb) * kColBlock, 0);
  const uint32_t xzp = uint32_t(w->x_zero_point);
  for (int o = 0; o < s.out_c; ++o) {
    const int32_t zpw = w->symmetric ? 0 : w->w_zero_point[o];
    uint32_t sumw = 0;
    for (int ky = 0; ky < s.kernel_h; ++ky)
      for (int i = 0; i < run; ++i) {
        const int32_t v = int32_t(w->w[size_t(o) * w->k + size_t(ky) * run + i]) - zpw;
        sumw += uint32_t(v);
        p[((size_t(ky) * pairs + i / 2) * nb + o / kColBlock) * 16 + (o % kColBlock) * 2 + i % 2] = int16_t(v);
      }
    const uint32_t b = w->bias.empty() ? 0u : uint32_t(w->bias[o]);
    w->bias_folded[o] = int32_t(b - xzp * sumw);
  }
  return true;
}

}  // namespace
}  // namespace detail
}  // namespace mnq

MNQ_AVX2_BEGIN

#include "../../direct_conv.h"  // inside the target region (see there)
#include "../byte_lut_avx2.h"
#include "../epilogue_avx2.h"
#include "lanes.h"

namespace mnq {
namespace detail {
namespace {

using DirectCall16 = DirectCall<int16_t>;

// Output pixels [ox, ox + MR) of one row, all NB channel blocks.
template <int NB, int MR>
__attribute__((always_inline)) inline void direct_tile(const ByteLut* table, const DirectCall16& c, const Epilogue& e, int ox,
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
    const int16_t* xp = c.rows[ky] + size_t(ox) * c.step;
    for (int q = 0; q < c.groups; ++q, wp += NB * 32) {
      __m256i wv[NB];
#pragma GCC unroll 4
      for (int b = 0; b < NB; ++b) wv[b] = _mm256_load_si256(reinterpret_cast<const __m256i*>(wp + b * 32));
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        int32_t av;
        std::memcpy(&av, xp + size_t(r) * c.step + 2 * q, 4);
        const __m256i a = _mm256_set1_epi32(av);
#pragma GCC unroll 4
        for (int b = 0; b < NB; ++b) acc[r][b] = _mm256_add_epi32(acc[r][b], _mm256_madd_epi16(a, wv[b]));
      }
    }
  }
  int8_t* yp = y + size_t(ox) * c.n;
  if (MR * NB % 4 == 0 && c.fast) {
    // The tile's outputs are contiguous: four accumulators at a time (pixel-major)
    // make one 32-byte store. After the float clamp the values are within
    // [-255, 255], so the int16 packs and the zero point add are exact (any
    // multiplier: c.fast's bound is not needed here); a table applies to the bytes.
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i zp16 = _mm256_packs_epi32(e.zp, e.zp);
    __m256 mult[NB];
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b) mult[b] = _mm256_loadu_ps(c.mult + b * kColBlock);
#pragma GCC unroll 4
    for (int i = 0; i < MR * NB; i += 4) {
      __m256i q[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[(i + j) / NB][(i + j) % NB]), mult[(i + j) % NB]);
        q[j] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(f, e.lo), e.hi));
      }
      const __m256i p01 = _mm256_add_epi16(_mm256_packs_epi32(q[0], q[1]), zp16);
      const __m256i p23 = _mm256_add_epi16(_mm256_packs_epi32(q[2], q[3]), zp16);
      __m256i o = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), order);
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
    for (int r = 0; r < MR; ++r) store_cols(yp + size_t(r) * c.n + b * kColBlock, requant8(e, acc[r][b], mult), valid);
  }
}

template <int NB>
void direct_row(const ByteLut* table, const DirectCall16& c, const Epilogue& e, int out_w, int8_t* y) {
  constexpr int MR = NB <= 2 ? 4 : 2;  // accumulators, weights, a broadcast and a product in 16 ymm
  int ox = 0;
  for (; ox + MR <= out_w; ox += MR) direct_tile<NB, MR>(table, c, e, ox, y);
  for (; ox < out_w; ++ox) direct_tile<NB, 1>(table, c, e, ox, y);
}

// Row buffer: padded input columns widened to int16, x_zp outside the input.
void direct_fill_row(const ConvShape& s, const int8_t* xrow, int16_t pad, size_t len, int16_t* dst) {
  const size_t lo = size_t(s.pad_left) * s.in_c < len ? size_t(s.pad_left) * s.in_c : len;
  const size_t in_vals = size_t(s.in_w) * s.in_c;
  const size_t hi = lo + (in_vals < len - lo ? in_vals : len - lo);
  size_t i = 0;
  for (; i < lo; ++i) dst[i] = pad;
  for (; i + 16 <= hi; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xrow + (i - lo)))));
  for (; i < hi; ++i) dst[i] = xrow[i - lo];
  for (; i < len; ++i) dst[i] = pad;
}

void conv_direct_avx2(const DirectConvArgs& a) {
  const ConvShape& s = *a.s;
  alignas(16) int8_t lut[260];
  const Epilogue e = make_epilogue(*a.out, lut);
  ByteLut table_storage;
  const ByteLut* table = nullptr;  // the fused table, applied to packed bytes
  if (e.lut) {
    make_byte_lut(e.lut, &table_storage);
    table = &table_storage;
  }
  DirectCall16 c;
  direct_call_init(a, direct_pairs(s), kColBlock, &c);
  c.fast = s.out_c % kColBlock == 0;  // the packed stores clamp in float: any multiplier
  const size_t len = direct_row_bytes(s) / 2;  // int16 values
  int16_t* base = reinterpret_cast<int16_t*>((reinterpret_cast<uintptr_t>(a.scratch) + 63) & ~uintptr_t(63));
  const int16_t pad = int16_t(a.w->x_zero_point);
  for (size_t i = 0; i < len; ++i) base[i] = pad;  // the padding row
  const int nb = ceil_div(s.out_c, kColBlock);
  direct_conv_rows(
      a, c, base, base + len, len, [&](const int8_t* x, int16_t* buf) { direct_fill_row(s, x, pad, len, buf); },
      [&](int8_t* y) {
        with_direct_blocks(nb, [&](auto blocks) { direct_row<decltype(blocks)::value>(table, c, e, s.out_w, y); });
      });
}

}  // namespace
}  // namespace detail
}  // namespace mnq

MNQ_TARGET_END

namespace mnq {
namespace detail {
namespace avx2 {
void set_direct_conv(IsaKernels& t) {
  t.conv_direct_pack = direct_pack;
  t.conv_direct_scratch_size = direct_scratch_size;
  t.conv_direct = conv_direct_avx2;
}
}  // namespace avx2
}  // namespace detail
}  // namespace mnq

#endif
