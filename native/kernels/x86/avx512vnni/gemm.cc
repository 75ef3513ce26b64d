// AVX-512 VNNI GEMM (pointwise conv, fully connected, im2col'd general conv):
// bit-identical to the scalar reference (ref/gemm.cc).
//
//   vpdpbusd multiplies u8 by s8: activations are made unsigned by u = x ^ 0x80
//   (= x + 128), so  sum_k u*w = sum_k x*w + 128 * sum_k w,  and the packed
//   bias absorbs that:
//     acc = sum_k u*w + bias - (128 + x_zp) * sum_k w + K * x_zp * w_zp[n]
//           - w_zp[n] * sum_k x          (the last term only for asymmetric weights)
//   which equals bias + sum_k (x - x_zp) * (w - w_zp[n]) modulo 2^32.
//   Weights: vnni::gemm_pack<16> (vnni_pack.h), one zmm per 4 k of a 16-column
//   block. Activations: a row panel of MR rows, xor-ed and
//   zero-padded to a multiple of 4 bytes. Register tile MR x (16 * NB).
#include <cstring>

#include "../../internal.h"
#include "../target.h"
#include "../vnni_pack.h"
#include "table.h"

#if defined(__x86_64__) || defined(_M_X64)

namespace mnq {
namespace detail {
namespace {

constexpr int kColBlock = 16;  // GEMM columns per packed block (one zmm of int32)

}  // namespace
}  // namespace detail
}  // namespace mnq

MNQ_AVX512VNNI_BEGIN

#include "../vnni_gemm.h"
#include "epilogue.h"

namespace mnq {
namespace detail {
namespace {

// The packed output stage (../epilogue.h) of one tile: no table, every
// |multiplier| of its columns < 1; the 16 * NB columns of a row leave in one store.
template <int MR, int NB>
__attribute__((always_inline)) inline void gemm_store_fast(const GemmCall& c, const Epilogue& e, int nb,
                                                           const __m512i (*acc)[NB]) {
  const int col0 = nb * kColBlock;
  const int valid = imin(NB * kColBlock, c.n - col0);
  __m512 mult[NB];
#pragma GCC unroll 4
  for (int b = 0; b < NB; ++b) {
    const int v = valid - b * kColBlock;
    const __mmask16 m = v >= 16 ? __mmask16(0xFFFF) : v <= 0 ? __mmask16(0) : __mmask16((1u << v) - 1);
    mult[b] = _mm512_maskz_loadu_ps(m, c.mult + col0 + b * kColBlock);
  }
  const PackedStage k = packed_stage(e);
  const __mmask64 store_mask = valid >= 64 ? ~__mmask64(0) : (__mmask64(1) << valid) - 1;
  const __m512i wzp0 = c.asym ? _mm512_loadu_si512(c.wzp + col0) : _mm512_setzero_si512();
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    if (r >= c.rows) break;
    __m512i q[4];
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b) {
      __m512i v = acc[r][b];
      if (c.asym) {
        const __m512i wzp = b == 0 ? wzp0 : _mm512_loadu_si512(c.wzp + col0 + b * kColBlock);
        v = _mm512_sub_epi32(v, _mm512_mullo_epi32(wzp, _mm512_set1_epi32(c.rowsum[r])));
      }
      q[b] = round_packed16(v, mult[b]);
    }
#pragma GCC unroll 4
    for (int b = NB; b < 4; ++b) q[b] = q[0];
    const __m512i o = pack_packed16(k, q, NB > 2);
    int8_t* dst = c.y + size_t(r) * c.ys + col0;
    if (NB == 4 && valid >= 64) _mm512_storeu_si512(dst, o);
    else if (NB == 2 && valid >= 32) _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_castsi512_si256(o));
    else if (NB == 1 && valid >= 16) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm512_castsi512_si128(o));
    else _mm512_mask_storeu_epi8(dst, store_mask, o);
  }
}

template <int MR, int NB, bool kFast>
void gemm_tile(const GemmCall& c, const Epilogue& e, int nb) {
  __m512i acc[MR][NB];
#pragma GCC unroll 4
  for (int b = 0; b < NB; ++b) {
    const __m512i bias = _mm512_loadu_si512(c.bias + (nb + b) * kColBlock);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) acc[r][b] = bias;
  }
  const uint8_t* wp = c.wpacked + size_t(nb) * c.block_bytes;
  const uint8_t* ap = c.panel;
  for (int kq = 0; kq < c.k4; ++kq) {
    __m512i wv[NB];
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b)
      wv[b] = _mm512_load_si512(wp + size_t(b) * c.block_bytes + size_t(kq) * 64);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      int32_t av;
      std::memcpy(&av, ap + size_t(r) * c.ps + size_t(kq) * 4, 4);
      const __m512i a = _mm512_set1_epi32(av);
#pragma GCC unroll 4
      for (int b = 0; b < NB; ++b) acc[r][b] = _mm512_dpbusd_epi32(acc[r][b], a, wv[b]);
    }
  }
  if (kFast) {
    gemm_store_fast<MR, NB>(c, e, nb, acc);
    return;
  }
  // Epilogue.
#pragma GCC unroll 4
  for (int b = 0; b < NB; ++b) {
    const int col = (nb + b) * kColBlock;
    const int valid = imin(kColBlock, c.n - col);
    const __mmask16 m = valid >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << valid) - 1);
    const __m512 mult = _mm512_maskz_loadu_ps(m, c.mult + col);
    const __m512i wzp = _mm512_loadu_si512(c.wzp + col);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      if (r < c.rows) {
        __m512i v = acc[r][b];
        if (c.asym) v = _mm512_sub_epi32(v, _mm512_mullo_epi32(wzp, _mm512_set1_epi32(c.rowsum[r])));
        int8_t* dst = c.y + size_t(r) * c.ys + col;
        if (valid >= 16)
          _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), requant16(e, v, mult));
        else
          _mm_mask_storeu_epi8(dst, m, requant16(e, v, mult));
      }
    }
  }
}

template <int MR, bool kFast>
void gemm_rows(const GemmCall& c, const Epilogue& e, int nb_begin, int nb_end) {
  constexpr int kMaxNB = MR <= 6 ? 4 : MR <= 8 ? 3 : MR <= 12 ? 2 : 1;
  int nb = nb_begin;
  for (; nb + kMaxNB <= nb_end; nb += kMaxNB) gemm_tile<MR, kMaxNB, kFast>(c, e, nb);
  const int left = nb_end - nb;
  if (kMaxNB > 3 && left == 3) gemm_tile<MR, (kMaxNB > 3 ? 3 : 1), kFast>(c, e, nb);
  else if (kMaxNB > 2 && left == 2) gemm_tile<MR, (kMaxNB > 2 ? 2 : 1), kFast>(c, e, nb);
  else for (; nb < nb_end; ++nb) gemm_tile<MR, 1, kFast>(c, e, nb);
}

// Copies rows [m0, m0 + rows) of x into the panel as u8 (x ^ 0x80), zero-padded
// to ps bytes; rows beyond `rows` up to mr are zeroed. Returns row sums of x.
void build_panel(const int8_t* x, size_t xs, int k, int rows, int mr, size_t ps,
                 bool want_sums, uint8_t* panel, int32_t* rowsum) {
  const __m512i flip = _mm512_set1_epi8(char(0x80));
  for (int r = 0; r < mr; ++r) {
    uint8_t* dst = panel + size_t(r) * ps;
    if (r >= rows) {
      for (size_t i = 0; i < ps; i += 64) _mm512_store_si512(dst + i, _mm512_setzero_si512());
      rowsum[r] = 0;
      continue;
    }
    const int8_t* src = x + size_t(r) * xs;
    __m512i sum = _mm512_setzero_si512();
    for (size_t i = 0; i < ps; i += 64) {
      const int left = k - int(i);
      __mmask64 m = left >= 64 ? ~__mmask64(0) : left <= 0 ? __mmask64(0)
                                                           : ((__mmask64(1) << left) - 1);
      const __m512i v = _mm512_maskz_loadu_epi8(m, src + i);
      const __m512i u = _mm512_maskz_mov_epi8(m, _mm512_xor_si512(v, flip));
      _mm512_store_si512(dst + i, u);
      if (want_sums) sum = _mm512_add_epi64(sum, _mm512_sad_epu8(u, _mm512_setzero_si512()));
    }
    rowsum[r] = 0;
    if (want_sums) {
      const uint64_t total = uint64_t(_mm512_reduce_add_epi64(sum));
      rowsum[r] = int32_t(uint32_t(total) - 128u * uint32_t(k));
    }
  }
}

template <int MR>
void gemm_mr(const GemmArgs& a, const Epilogue& e, uint8_t* panel, size_t ps) {
  // The packed output stage: not for a few rows (e.g. a batch-1 classifier),
  // where the weights dominate.
  gemm_panels<MR, kColBlock>(a, MR > 4 && !e.has_lut, panel, ps, build_panel,
                             [&](const GemmCall& c, int nb_begin, int nb_end) {
                               if (c.fast) gemm_rows<MR, true>(c, e, nb_begin, nb_end);
                               else gemm_rows<MR, false>(c, e, nb_begin, nb_end);
                             });
}

void gemm_avx512(const GemmArgs& a, uint8_t* panel, size_t ps) {
  const Epilogue e = make_epilogue(*a.out);
  const int nblocks = (a.n_end - a.n_begin + kColBlock - 1) / kColBlock;
  // Fewer rows than a tile (a batch-1 classifier): tiles of exactly m rows.
  if (a.m == 1) gemm_mr<1>(a, e, panel, ps);
  else if (a.m == 2) gemm_mr<2>(a, e, panel, ps);
  else if (a.m <= 4) gemm_mr<4>(a, e, panel, ps);
  else if (nblocks == 1) gemm_mr<16>(a, e, panel, ps);
  else if (nblocks == 2) gemm_mr<12>(a, e, panel, ps);
  else if (nblocks % 3 == 0 && nblocks % 4 != 0) gemm_mr<8>(a, e, panel, ps);
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
  const size_t ps = size_t((a.w->k + 63) / 64) * 64;
  const int mr_max = 16;
  gemm_avx512(a, vnni::gemm_panel(ps * mr_max), ps);
}

}  // namespace

namespace avx512vnni {
void set_gemm(IsaKernels& t) {
  t.gemm_pack = vnni::gemm_pack<kColBlock>;
  t.gemm = gemm;
}
}  // namespace avx512vnni
}  // namespace detail
}  // namespace mnq

#endif
