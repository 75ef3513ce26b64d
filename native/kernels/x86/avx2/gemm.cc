// AVX2 GEMM (pointwise conv, fully connected, im2col'd general conv):
// bit-identical to the scalar reference (ref/gemm.cc).
//
// Exactness: vpmaddubsw (u8 x s8 -> saturating int16) is not used. Both GEMM and
// depthwise multiply int16 by int16 with vpmaddwd, which cannot saturate here,
// so every weight value including -128 and any weight zero point is exact.
//
//   Weights are packed once as int16 w' = w - w_zp[n] in [-255, 255]: blocks of 8
//   columns; inside a block, per pair of k: 8 columns x 2 int16 (one ymm).
//   Activations are widened to int16 in a row panel (zero-padded to an even
//   k), and one int32 broadcast of a pair (x[k], x[k+1]) meets a weight ymm in
//   vpmaddwd. The bias absorbs the activation zero point:
//     acc = sum_k x*w' + bias - x_zp * sum_k w' = bias + sum_k (x - x_zp)(w - w_zp).
//   Register tile 4 rows x 16 columns (8 accumulators).
#include <cstring>
#include <vector>

#include "../../internal.h"
#include "../target.h"
#include "table.h"

#if defined(__x86_64__) || defined(_M_X64)

namespace mnq {
namespace detail {
namespace {

constexpr int kColBlock = 8;   // GEMM columns per packed block (one ymm of int32)

// -------------------------------------------------------------- packing (baseline ISA)

void gemm_pack(PackedGemm* w) {
  const int n = w->n, k = w->k, k2 = ceil_div(k, 2);
  const int nblocks = ceil_div(n, kColBlock), npad = nblocks * kColBlock;
  const size_t block_bytes = size_t(k2) * 32;
  w->n_block = kColBlock;
  w->packed.resize(size_t(nblocks) * block_bytes);
  uint8_t* p = w->packed.data();
  std::memset(p, 0, w->packed.size());
  w->bias_folded.assign(npad, 0);
  const uint32_t xzp = uint32_t(w->x_zero_point);
  for (int j = 0; j < n; ++j) {
    int16_t* blk = reinterpret_cast<int16_t*>(p + size_t(j / kColBlock) * block_bytes) +
                   (j % kColBlock) * 2;
    const int8_t* src = w->w.data() + size_t(j) * k;
    const int32_t zpw = w->symmetric ? 0 : w->w_zero_point[j];
    uint32_t sumw = 0;
    for (int i = 0; i < k; ++i) {
      const int32_t v = int32_t(src[i]) - zpw;
      blk[size_t(i / 2) * 16 + (i % 2)] = int16_t(v);
      sumw += uint32_t(v);
    }
    const uint32_t b = w->bias.empty() ? 0u : uint32_t(w->bias[j]);
    w->bias_folded[j] = int32_t(b - xzp * sumw);
  }
}

// Per-thread activation panel for the GEMM (grown outside the target region).
uint8_t* gemm_panel(size_t bytes) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < bytes + 64) buf.resize(bytes + 64);
  uintptr_t a = reinterpret_cast<uintptr_t>(buf.data());
  return buf.data() + ((64 - (a & 63)) & 63);
}

}  // namespace
}  // namespace detail
}  // namespace mnq

MNQ_AVX2_BEGIN

#include "../epilogue_avx2.h"
#include "lanes.h"

namespace mnq {
namespace detail {
namespace {

struct GemmCall {
  const uint8_t* panel;    // [MR][ps] int16 pairs
  size_t ps;
  int rows;                // valid rows in the panel
  int k2;
  size_t block_bytes;      // k2 * 32
  const uint8_t* wpacked;  // weights of block 0
  const int32_t* bias;     // bias_folded (padded)
  const float* mult;       // [n]
  int n;
  int8_t* y;               // row 0 of the panel, column 0
  size_t ys;
};

template <int MR, int NB>
void gemm_tile(const GemmCall& c, const Epilogue& e, int nb) {
  __m256i acc[MR][NB];
#pragma GCC unroll 4
  for (int b = 0; b < NB; ++b) {
    const __m256i bias = _mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(c.bias + (nb + b) * kColBlock));
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) acc[r][b] = bias;
  }
  const uint8_t* wp = c.wpacked + size_t(nb) * c.block_bytes;
  const uint8_t* ap = c.panel;
  for (int kp = 0; kp < c.k2; ++kp) {
    __m256i wv[NB];
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b)
      wv[b] = _mm256_load_si256(
          reinterpret_cast<const __m256i*>(wp + size_t(b) * c.block_bytes + size_t(kp) * 32));
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      int32_t av;
      std::memcpy(&av, ap + size_t(r) * c.ps + size_t(kp) * 4, 4);
      const __m256i a = _mm256_set1_epi32(av);
#pragma GCC unroll 4
      for (int b = 0; b < NB; ++b)
        acc[r][b] = _mm256_add_epi32(acc[r][b], _mm256_madd_epi16(a, wv[b]));
    }
  }
  const int col0 = nb * kColBlock;
  if (NB == 2 && !e.lut && c.n - col0 >= 2 * kColBlock) {
    // Two full blocks per row: narrow both together and add the zero point in
    // int16 (values are within [-255, 255] there, so nothing saturates).
    const __m256 m0 = _mm256_loadu_ps(c.mult + col0), m1 = _mm256_loadu_ps(c.mult + col0 + kColBlock);
    const __m256i zp16 = _mm256_packs_epi32(e.zp, e.zp);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      if (r < c.rows) {
        __m256 f0 = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][0]), m0);
        __m256 f1 = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][NB - 1]), m1);
        f0 = _mm256_min_ps(_mm256_max_ps(f0, e.lo), e.hi);
        f1 = _mm256_min_ps(_mm256_max_ps(f1, e.lo), e.hi);
        __m256i w = _mm256_packs_epi32(_mm256_cvtps_epi32(f0), _mm256_cvtps_epi32(f1));
        w = _mm256_permute4x64_epi64(_mm256_add_epi16(w, zp16), 0xD8);
        const __m128i q = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(c.y + size_t(r) * c.ys + col0), q);
      }
    }
    return;
  }
#pragma GCC unroll 4
  for (int b = 0; b < NB; ++b) {
    const int col = (nb + b) * kColBlock;
    const int valid = imin(kColBlock, c.n - col);
    const __m256 mult = load_mult(c.mult + col, valid);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      if (r < c.rows) store_cols(c.y + size_t(r) * c.ys + col, requant8(e, acc[r][b], mult), valid);
    }
  }
}

template <int MR>
void gemm_rows(const GemmCall& c, const Epilogue& e, int nb_begin, int nb_end) {
  constexpr int kMaxNB = MR == 1 ? 4 : MR == 2 ? 3 : MR <= 5 ? 2 : 1;
  int nb = nb_begin;
  for (; nb + kMaxNB <= nb_end; nb += kMaxNB) gemm_tile<MR, kMaxNB>(c, e, nb);
  for (; nb < nb_end; ++nb) gemm_tile<MR, 1>(c, e, nb);
}

// Widens rows of x to int16 in the panel, zero-padded to an even length; rows
// beyond `rows` up to mr are zeroed.
void build_panel(const int8_t* x, size_t xs, int k, int rows, int mr, size_t ps, uint8_t* panel) {
  for (int r = 0; r < mr; ++r) {
    int16_t* dst = reinterpret_cast<int16_t*>(panel + size_t(r) * ps);
    const int n16 = int(ps / 2);
    if (r >= rows) {
      for (int i = 0; i < n16; i += 16)
        _mm256_store_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_setzero_si256());
      continue;
    }
    const int8_t* src = x + size_t(r) * xs;
    int i = 0;
    for (; i + 16 <= k; i += 16)
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + i),
                         _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
    for (; i < k; ++i) dst[i] = src[i];
    if (k & 1) dst[k] = 0;  // the last pair's second half (its weight is 0 too)
  }
}

template <int MR>
void gemm_mr(const GemmArgs& a, const Epilogue& e, uint8_t* panel, size_t ps) {
  const PackedGemm& w = *a.w;
  GemmCall c;
  c.panel = panel;
  c.ps = ps;
  c.k2 = (w.k + 1) / 2;
  c.block_bytes = size_t(c.k2) * 32;
  c.wpacked = w.packed.data();
  c.bias = w.bias_folded.data();
  c.mult = a.out->multiplier.data();
  c.n = w.n;
  c.ys = a.y_stride;
  const int nb_begin = a.n_begin / kColBlock;
  const int nb_end = (a.n_end + kColBlock - 1) / kColBlock;
  for (size_t m0 = 0; m0 < a.m; m0 += MR) {
    const int rows = int(a.m - m0 < size_t(MR) ? a.m - m0 : size_t(MR));
    build_panel(a.x + m0 * a.x_stride, a.x_stride, w.k, rows, MR, ps, panel);
    c.rows = rows;
    c.y = a.y + m0 * a.y_stride;
    gemm_rows<MR>(c, e, nb_begin, nb_end);
  }
}

void gemm_avx2(const GemmArgs& a, uint8_t* panel, size_t ps) {
  alignas(16) int8_t lut[260];
  const Epilogue e = make_epilogue(*a.out, lut);
  const int nblocks = (a.n_end - a.n_begin + kColBlock - 1) / kColBlock;
  // 4 x 16 (8 accumulators) leaves registers for the madd temporaries and row
  // pointers; 6 x 16 spills. One column block: 8 x 8.
  // Fewer rows than a tile (a batch-1 classifier): tiles of exactly m rows.
  if (a.m == 1) gemm_mr<1>(a, e, panel, ps);
  else if (a.m == 2) gemm_mr<2>(a, e, panel, ps);
  else if (a.m == 3) gemm_mr<3>(a, e, panel, ps);
  else if (nblocks == 1) gemm_mr<8>(a, e, panel, ps);
  else gemm_mr<4>(a, e, panel, ps);
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
  const size_t ps = size_t((a.w->k + 31) / 32) * 64;  // int16, padded to 32 values
  gemm_avx2(a, gemm_panel(ps * 8), ps);
}

}  // namespace

namespace avx2 {
void set_gemm(IsaKernels& t) {
  t.gemm_pack = gemm_pack;
  t.gemm = gemm;
}
}  // namespace avx2
}  // namespace detail
}  // namespace mnq

#endif
