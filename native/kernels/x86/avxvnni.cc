// AVX-VNNI kernels (x86-64 with AVX2 + FMA + AVX-VNNI: the VEX-encoded, 256-bit
// vpdpbusd without AVX-512, e.g. Intel Alder Lake and later, AMD Zen 5 client):
// bit-identical to the scalar reference in kernels/ref.
//
// Built into every x86-64 binary; only the functions in the target region use
// AVX2 / AVX-VNNI, and the dispatcher calls them only when cpuid reports the
// features. The target region holds internal-linkage code only and calls no
// std:: templates, so no AVX-VNNI copy of a shared inline function can leak
// into the baseline code.
//
// Only the GEMM (pointwise conv, fully connected, im2col'd general conv) and the
// direct general conv are here; the dispatcher fills every other entry from the
// AVX2 table (dispatch.cc).
//
// GEMM
//   vpdpbusd multiplies u8 by s8: activations are made unsigned by u = x ^ 0x80
//   (= x + 128), so  sum_k u*w = sum_k x*w + 128 * sum_k w,  and the packed
//   bias absorbs that:
//     acc = sum_k u*w + bias - (128 + x_zp) * sum_k w + K * x_zp * w_zp[n]
//           - w_zp[n] * sum_k x          (the last term only for asymmetric weights)
//   which equals bias + sum_k (x - x_zp) * (w - w_zp[n]) modulo 2^32. The
//   non-saturating vpdpbusd is exact for every int8 weight including -128.
//   Weights: vnni::gemm_pack<8> (vnni_pack.h), one ymm per 4 k of an 8-column
//   block. Activations: a row panel of MR rows, xor-ed and
//   zero-padded to a multiple of 32 bytes. Register tile MR x (8 * NB) with
//   MR * NB + NB + 1 <= 16 ymm registers.
//
// Direct general conv (the stem; shapes vnni::direct_pack takes, out_c <= 32)
//   The scheme of avx512vnni.cc's direct conv on ymm: u8 row buffers with the
//   padding in place, a kernel row read as broadcast dwords, tiles of pixels x
//   all 8-channel blocks, 32-byte packed stores when out_c is a multiple of 8.
#include <cstring>
#include <vector>

#include "../internal.h"
#include "vnni_pack.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

namespace mnq {
namespace detail {
namespace {

constexpr int kColBlock = 8;  // GEMM columns per packed block (one ymm of int32)
constexpr int kMaxRows = 12;  // the tallest register tile
constexpr int kDirectMaxBlocks = 4;  // direct conv: out_c <= 32

using vnni::ceil_div;
using vnni::direct_groups;
using vnni::direct_row_bytes;
using vnni::kDirectMaxRows;

}  // namespace
}  // namespace detail
}  // namespace mnq

#pragma GCC push_options
#pragma GCC target("avx2,fma,avxvnni")

#include "byte_lut_avx2.h"  // inside the target region (see there)
#include "../direct_conv.h"
#include "vnni_gemm.h"

namespace mnq {
namespace detail {
namespace {

inline int imin(int a, int b) { return a < b ? a : b; }

// Requantization constants shared by all tiles of one call.
struct Epilogue {
  __m256 lo, hi;      // qmin - zp, qmax - zp (float)
  __m256i zp;
  const int8_t* lut;  // 256 + 4 readable bytes, or nullptr
  int32_t zp16, qmin, qmax;
};

inline Epilogue make_epilogue(const OutputStage& o, int8_t* lut_copy /* 260 bytes */) {
  Epilogue e;
  e.lo = _mm256_set1_ps(float(o.qmin - o.zero_point));
  e.hi = _mm256_set1_ps(float(o.qmax - o.zero_point));
  e.zp = _mm256_set1_epi32(o.zero_point);
  e.zp16 = o.zero_point;
  e.qmin = o.qmin;
  e.qmax = o.qmax;
  e.lut = nullptr;
  if (o.has_lut) {
    std::memcpy(lut_copy, o.lut, 256);
    std::memset(lut_copy + 256, 0, 4);
    e.lut = lut_copy;
  }
  return e;
}

// int32 accumulators (bias added) -> 8 int8 in the low 8 bytes:
// quant::requantize, then the table if there is one.
inline __m128i requant8(const Epilogue& e, __m256i acc, __m256 mult) {
  __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), mult);
  f = _mm256_min_ps(_mm256_max_ps(f, e.lo), e.hi);
  __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(f), e.zp);
  if (e.lut) {
    const __m256i idx = _mm256_add_epi32(q, _mm256_set1_epi32(128));
    q = _mm256_i32gather_epi32(reinterpret_cast<const int*>(e.lut), idx, 1);
    q = _mm256_srai_epi32(_mm256_slli_epi32(q, 24), 24);  // sign-extend the low byte
  }
  const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  return _mm_packs_epi16(w16, w16);
}

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

// ------------------------------------------------------------------------ GEMM

// Fast output stage (no table, every |multiplier| < 1, so |float(acc) * m| < 2^31
// and cvtps2dq cannot overflow): round, then the saturating packs int32 -> int16,
// + zp (saturating), int16 -> int8, then the clamp on bytes. Saturation keeps
// out-of-range values beyond the int8 clamp bounds, and rounding commutes with
// clamping to integer bounds, so this equals quant::requantize.
// After the packs, dword 4L + b of the 128-bit-lane-interleaved result holds
// columns 4L..4L+3 of block b; one vpermd (0, 4, 1, 5, 2, 6, 3, 7) puts the
// 8 * NB columns in order (NB < 4 duplicates block 0 into the unused slots).
template <int MR, int NB>
__attribute__((always_inline)) inline void gemm_store_fast(const GemmCall& c, const Epilogue& e, int nb,
                                                           const __m256i (*acc)[NB]) {
  const int col0 = nb * kColBlock;
  const int valid = imin(NB * kColBlock, c.n - col0);
  __m256 mult[NB];
#pragma GCC unroll 4
  for (int b = 0; b < NB; ++b) mult[b] = load_mult(c.mult + col0 + b * kColBlock, valid - b * kColBlock);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i zp16 = _mm256_set1_epi16(short(e.zp16));
  const __m256i lo8 = _mm256_set1_epi8(char(e.qmin)), hi8 = _mm256_set1_epi8(char(e.qmax));
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    if (r >= c.rows) break;
    __m256i q[4];
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b) {
      __m256i v = acc[r][b];
      if (c.asym) {
        const __m256i wzp = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.wzp + col0 + b * kColBlock));
        v = _mm256_sub_epi32(v, _mm256_mullo_epi32(wzp, _mm256_set1_epi32(c.rowsum[r])));
      }
      q[b] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_cvtepi32_ps(v), mult[b]));
    }
#pragma GCC unroll 4
    for (int b = NB; b < 4; ++b) q[b] = q[0];
    const __m256i p01 = _mm256_adds_epi16(_mm256_packs_epi32(q[0], q[1]), zp16);
    const __m256i p23 = NB > 2 ? _mm256_adds_epi16(_mm256_packs_epi32(q[2], q[3]), zp16) : p01;
    __m256i o = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), order);
    o = _mm256_min_epi8(_mm256_max_epi8(o, lo8), hi8);
    store_bytes(c.y + size_t(r) * c.ys + col0, o, valid);
  }
}

template <int MR, int NB, bool kFast>
void gemm_tile(const GemmCall& c, const Epilogue& e, int nb) {
  __m256i acc[MR][NB];
#pragma GCC unroll 4
  for (int b = 0; b < NB; ++b) {
    const __m256i bias = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.bias + (nb + b) * kColBlock));
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) acc[r][b] = bias;
  }
  const uint8_t* wp = c.wpacked + size_t(nb) * c.block_bytes;
  const uint8_t* ap = c.panel;
  for (int kq = 0; kq < c.k4; ++kq) {
    __m256i wv[NB];
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b)
      wv[b] = _mm256_load_si256(reinterpret_cast<const __m256i*>(wp + size_t(b) * c.block_bytes + size_t(kq) * 32));
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      int32_t av;
      std::memcpy(&av, ap + size_t(r) * c.ps + size_t(kq) * 4, 4);
      const __m256i a = _mm256_set1_epi32(av);
#pragma GCC unroll 4
      for (int b = 0; b < NB; ++b) acc[r][b] = _mm256_dpbusd_avx_epi32(acc[r][b], a, wv[b]);
    }
  }
  if (kFast) {
    gemm_store_fast<MR, NB>(c, e, nb, acc);
    return;
  }
  // General output stage (table, or multipliers >= 1).
#pragma GCC unroll 4
  for (int b = 0; b < NB; ++b) {
    const int col = (nb + b) * kColBlock;
    const int valid = imin(kColBlock, c.n - col);
    const __m256 mult = load_mult(c.mult + col, valid);
    const __m256i wzp = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.wzp + col));
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      if (r < c.rows) {
        __m256i v = acc[r][b];
        if (c.asym) v = _mm256_sub_epi32(v, _mm256_mullo_epi32(wzp, _mm256_set1_epi32(c.rowsum[r])));
        store_bytes(c.y + size_t(r) * c.ys + col, _mm256_castsi128_si256(requant8(e, v, mult)), valid);
      }
    }
  }
}

template <int MR, bool kFast>
void gemm_rows(const GemmCall& c, const Epilogue& e, int nb_begin, int nb_end) {
  // MR * NB accumulators + NB weights + 1 broadcast activation <= 16 ymm.
  constexpr int kMaxNB = MR <= 2 ? 4 : MR <= 4 ? 3 : MR <= 6 ? 2 : 1;
  int nb = nb_begin;
  for (; nb + kMaxNB <= nb_end; nb += kMaxNB) gemm_tile<MR, kMaxNB, kFast>(c, e, nb);
  const int left = nb_end - nb;
  if (kMaxNB > 3 && left == 3) gemm_tile<MR, (kMaxNB > 3 ? 3 : 1), kFast>(c, e, nb);
  else if (kMaxNB > 2 && left == 2) gemm_tile<MR, (kMaxNB > 2 ? 2 : 1), kFast>(c, e, nb);
  else for (; nb < nb_end; ++nb) gemm_tile<MR, 1, kFast>(c, e, nb);
}

// Copies rows of x into the panel as u8 (x ^ 0x80), zero-padded to ps (a
// multiple of 32) bytes; rows beyond `rows` up to mr are zeroed. Never reads
// past the k bytes of a row. Returns row sums of x when asked.
void build_panel(const int8_t* x, size_t xs, int k, int rows, int mr, size_t ps,
                 bool want_sums, uint8_t* panel, int32_t* rowsum) {
  const __m256i flip = _mm256_set1_epi8(char(0x80));
  const __m256i zero = _mm256_setzero_si256();
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i byte_index = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                              17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31);
  const int kfull = k / 32 * 32, left = k - kfull;  // tail bytes: left / 4 dwords, then left % 4 bytes
  const __m256i dword_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(left / 4), lane);
  const __m256i byte_mask = _mm256_cmpgt_epi8(_mm256_set1_epi8(char(left)), byte_index);
  for (int r = 0; r < mr; ++r) {
    uint8_t* dst = panel + size_t(r) * ps;
    rowsum[r] = 0;
    if (r >= rows) {
      for (size_t i = 0; i < ps; i += 32) _mm256_store_si256(reinterpret_cast<__m256i*>(dst + i), zero);
      continue;
    }
    const int8_t* src = x + size_t(r) * xs;
    __m256i sum = zero;
    for (int i = 0; i < kfull; i += 32) {
      const __m256i u = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)), flip);
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + i), u);
      if (want_sums) sum = _mm256_add_epi64(sum, _mm256_sad_epu8(u, zero));
    }
    if (left > 0) {
      const int8_t* t = src + kfull;
      __m256i v = _mm256_maskload_epi32(reinterpret_cast<const int*>(t), dword_mask);
      if (left % 4) {
        uint32_t last = 0;
        for (int j = left / 4 * 4; j < left; ++j) last |= uint32_t(uint8_t(t[j])) << (8 * (j % 4));
        const __m256i at = _mm256_cmpeq_epi32(lane, _mm256_set1_epi32(left / 4));
        v = _mm256_or_si256(v, _mm256_and_si256(at, _mm256_set1_epi32(int(last))));
      }
      const __m256i u = _mm256_and_si256(_mm256_xor_si256(v, flip), byte_mask);
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + kfull), u);
      if (want_sums) sum = _mm256_add_epi64(sum, _mm256_sad_epu8(u, zero));
    }
    for (size_t i = size_t(kfull) + (left > 0 ? 32 : 0); i < ps; i += 32)
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + i), zero);
    if (want_sums) {
      const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
      const uint64_t total = uint64_t(_mm_cvtsi128_si64(s)) + uint64_t(_mm_extract_epi64(s, 1));
      rowsum[r] = int32_t(uint32_t(total) - 128u * uint32_t(k));
    }
  }
}

template <int MR>
void gemm_mr(const GemmArgs& a, const Epilogue& e, uint8_t* panel, size_t ps) {
  gemm_panels<MR, kColBlock>(a, !e.lut, panel, ps, build_panel,
                             [&](const GemmCall& c, int nb_begin, int nb_end) {
                               if (c.fast) gemm_rows<MR, true>(c, e, nb_begin, nb_end);
                               else gemm_rows<MR, false>(c, e, nb_begin, nb_end);
                             });
}

// ----------------------------------------------------------------- direct conv

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
    // a time (pixel-major) make one 32-byte store, packed as in gemm_store_fast;
    // a table applies to the bytes.
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i zp16 = _mm256_set1_epi16(short(e.zp16));
    const __m256i lo8 = _mm256_set1_epi8(char(e.qmin)), hi8 = _mm256_set1_epi8(char(e.qmax));
    __m256 mult[NB];
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b) mult[b] = _mm256_loadu_ps(c.mult + b * kColBlock);
#pragma GCC unroll 4
    for (int i = 0; i < MR * NB; i += 4) {
      __m256i q[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j)
        q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[(i + j) / NB][(i + j) % NB]),
                                                mult[(i + j) % NB]));
      const __m256i p01 = _mm256_adds_epi16(_mm256_packs_epi32(q[0], q[1]), zp16);
      const __m256i p23 = _mm256_adds_epi16(_mm256_packs_epi32(q[2], q[3]), zp16);
      __m256i o = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), order);
      o = _mm256_min_epi8(_mm256_max_epi8(o, lo8), hi8);
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

void gemm_avxvnni(const GemmArgs& a, uint8_t* panel, size_t ps) {
  alignas(16) int8_t lut[260];
  const Epilogue e = make_epilogue(*a.out, lut);
  const int nblocks = (a.n_end - a.n_begin + kColBlock - 1) / kColBlock;
  // Fewer rows than a tile (a batch-1 classifier): tiles of exactly m rows.
  // Else 12 x 8, 4 x 24 when the column blocks come in threes, 6 x 16.
  if (a.m == 1) gemm_mr<1>(a, e, panel, ps);
  else if (a.m == 2) gemm_mr<2>(a, e, panel, ps);
  else if (a.m <= 4) gemm_mr<4>(a, e, panel, ps);
  else if (nblocks == 1) gemm_mr<kMaxRows>(a, e, panel, ps);
  else if (nblocks % 3 == 0) gemm_mr<4>(a, e, panel, ps);
  else gemm_mr<6>(a, e, panel, ps);
}

}  // namespace
}  // namespace detail
}  // namespace mnq

#pragma GCC pop_options

namespace mnq {
namespace detail {
namespace {

void gemm(const GemmArgs& a) {
  if (a.m == 0 || a.n_end <= a.n_begin) return;
  const size_t ps = size_t((a.w->k + 31) / 32) * 32;
  gemm_avxvnni(a, vnni::gemm_panel(ps * kMaxRows), ps);
}

bool conv_direct_pack(const ConvShape& s, PackedGemm* w) {
  return vnni::direct_pack<kColBlock>(s, w, kDirectMaxBlocks * kColBlock);
}

IsaKernels make_table() {
  IsaKernels t;
  t.gemm_pack = vnni::gemm_pack<kColBlock>;
  t.gemm = gemm;
  t.conv_direct_pack = conv_direct_pack;
  t.conv_direct_scratch_size = vnni::direct_scratch_size;
  t.conv_direct = conv_direct_avxvnni;
  return t;
}

}  // namespace

const IsaKernels* avxvnni_kernels() {
  static const IsaKernels table = make_table();
  return &table;
}

}  // namespace detail
}  // namespace mnq

#else  // not x86-64

namespace mnq {
namespace detail {
const IsaKernels* avxvnni_kernels() { return nullptr; }
}  // namespace detail
}  // namespace mnq

#endif
