// AVX-VNNI GEMM (pointwise conv, fully connected, im2col'd general conv):
// bit-identical to the scalar reference (ref/gemm.cc).
//
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
#include <cstring>

#include "../../internal.h"
#include "../target.h"
#include "../vnni_pack.h"
#include "table.h"

#if defined(__x86_64__) || defined(_M_X64)

namespace mnq {
namespace detail {
namespace {

constexpr int kColBlock = 8;  // GEMM columns per packed block (one ymm of int32)
constexpr int kMaxRows = 12;  // the tallest register tile

}  // namespace
}  // namespace detail
}  // namespace mnq

MNQ_AVXVNNI_BEGIN

#include "../vnni_gemm.h"
#include "epilogue.h"

namespace mnq {
namespace detail {
namespace {

// ------------------------------------------------------------------------ GEMM

// The packed output stage (../epilogue.h) of one tile: no table, every
// |multiplier| of its columns < 1; the 8 * NB columns of a row leave in one
// store (NB < 4 duplicates block 0 into the unused slots).
template <int MR, int NB>
__attribute__((always_inline)) inline void gemm_store_fast(const GemmCall& c, const Epilogue& e, int nb,
                                                           const __m256i (*acc)[NB]) {
  const int col0 = nb * kColBlock;
  const int valid = imin(NB * kColBlock, c.n - col0);
  __m256 mult[NB];
#pragma GCC unroll 4
  for (int b = 0; b < NB; ++b) mult[b] = load_mult(c.mult + col0 + b * kColBlock, valid - b * kColBlock);
  const PackedStage k = packed_stage(e);
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
      q[b] = round_packed8(v, mult[b]);
    }
#pragma GCC unroll 4
    for (int b = NB; b < 4; ++b) q[b] = q[0];
    const __m256i o = pack_packed8(k, q, NB > 2);
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

MNQ_TARGET_END

namespace mnq {
namespace detail {
namespace {

void gemm(const GemmArgs& a) {
  if (a.m == 0 || a.n_end <= a.n_begin) return;
  const size_t ps = size_t((a.w->k + 31) / 32) * 32;
  gemm_avxvnni(a, vnni::gemm_panel(ps * kMaxRows), ps);
}

}  // namespace

namespace avxvnni {
void set_gemm(IsaKernels& t) {
  t.gemm_pack = vnni::gemm_pack<kColBlock>;
  t.gemm = gemm;
}
}  // namespace avxvnni
}  // namespace detail
}  // namespace mnq

#endif
