// AVX2 kernels (x86-64 with AVX2 + FMA): bit-identical to the scalar reference
// in kernels/ref.
//
// Built into every x86-64 binary; only the functions in the target region use
// AVX2, and the dispatcher calls them only when cpuid reports the features. The
// target region holds internal-linkage code only and calls no std:: templates,
// so no AVX2 copy of a shared inline function can leak into the baseline code.
//
// Exactness: vpmaddubsw (u8 x s8 -> saturating int16) is not used. Both GEMM and
// depthwise multiply int16 by int16 with vpmaddwd, which cannot saturate here,
// so every weight value including -128 and any weight zero point is exact.
//
// GEMM (pointwise conv, fully connected)
//   Weights are packed once as int16 w' = w - w_zp[n] in [-255, 255]: blocks of 8
//   columns; inside a block, per pair of k: 8 columns x 2 int16 (one ymm).
//   Activations are widened to int16 in a row panel (zero-padded to an even
//   k), and one int32 broadcast of a pair (x[k], x[k+1]) meets a weight ymm in
//   vpmaddwd. The bias absorbs the activation zero point:
//     acc = sum_k x*w' + bias - x_zp * sum_k w' = bias + sum_k (x - x_zp)(w - w_zp).
//   Register tile 4 rows x 16 columns (8 accumulators).
//
// Direct general conv (the stem: few input and output channels)
//   Dilation_w 1, a kernel row of kernel_w * in_c <= 32 values and out_c <= 32
//   (any weight zero points) run straight from the input instead of im2col +
//   GEMM: per output row, the kernel_h input rows are widened to int16 into row
//   buffers with the horizontal padding (x_zp) in place (kernel rows in the
//   vertical padding read one row of x_zp), so output pixel ox finds kernel row
//   ky at buffer[ky] + ox * stride_w * in_c. A kernel row is read as
//   ceil(kernel_w * in_c / 2) broadcast int16 pairs; the value past an odd run
//   (the next pixel's) meets a zero weight. Tiles of pixels x all 8-channel blocks.
//
// Depthwise
//   8 channels per ymm in int32 lanes; weights are int32 lanes with low half
//   w - w_zp and high half zero, so vpmaddwd against sign-extended activations
//   is an exact multiply. Padding taps read a row filled with x_zp. 3x3 and
//   5x5 pixels whose taps are all inside the image keep the weights in
//   registers along the row; there, blocks of 16 channels put two taps in each
//   lane instead (depthwise_pack_pairs), which uses both products of vpmaddwd.
//   Border pixels use per-tap pointers.
//
// Elementwise (add, mul, channelwise mul, global average pool, quantize,
//   dequantize): quant.h's arithmetic 8 lanes at a time (lut_apply stays scalar).
#include <cstring>
#include <vector>

#include "../elementwise_entry.h"
#include "../internal.h"
#include "../quant.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

namespace mnq {
namespace detail {
namespace {

constexpr int kColBlock = 8;   // GEMM columns per packed block (one ymm of int32)
constexpr int kChanBlock = 8;  // depthwise channels per ymm

inline int ceil_div(int a, int b) { return (a + b - 1) / b; }

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

// Tap pairs (3x3, 5x5 and 3x6, the fast path's kernels): 16 channels per step, two
// taps per int32 lane, so that vpmaddwd's two products are both used. Appended
// to the 8-channel layout for the first C / 16 * 16 channels:
// [block of 16][tap pair][half][8 lanes][2 int16], where half 0 holds channels
// 0-3 and 8-11 of the block, half 1 channels 4-7 and 12-15 (the lanes
// unpack{lo,hi}_epi16 of two widened 16-channel tap vectors give), and a lane
// holds (w[tap 2p] - w_zp, w[tap 2p + 1] - w_zp), zero past the last tap.
bool dw_pairs_ok(const PackedDepthwise& w) {
  const ConvShape& s = w.shape;
  return s.in_c >= 16 && ((s.kernel_h == 3 && s.kernel_w == 3) || (s.kernel_h == 5 && s.kernel_w == 5) ||
                          (s.kernel_h == 3 && s.kernel_w == 6));
}
inline int dw_pair_channel(int half, int lane) { return (lane < 4 ? lane : lane + 4) + 4 * half; }
size_t dw_pairs_offset(const ConvShape& s) {
  return size_t(ceil_div(s.in_c, kChanBlock) * kChanBlock) * s.kernel_h * s.kernel_w * 4;
}

void depthwise_pack_pairs(PackedDepthwise* w) {
  const ConvShape& s = w->shape;
  const int taps = s.kernel_h * s.kernel_w, pairs = (taps + 1) / 2, blocks = s.in_c / 16;
  const size_t off = dw_pairs_offset(s);
  AlignedBuffer old = std::move(w->packed);
  w->packed.resize(off + size_t(blocks) * pairs * 64);
  std::memcpy(w->packed.data(), old.data(), off);
  int16_t* q = reinterpret_cast<int16_t*>(w->packed.data() + off);
  for (int b = 0; b < blocks; ++b)
    for (int p = 0; p < pairs; ++p)
      for (int half = 0; half < 2; ++half)
        for (int lane = 0; lane < 8; ++lane) {
          const int ch = 16 * b + dw_pair_channel(half, lane);
          const int32_t zpw = w->symmetric ? 0 : w->w_zero_point[ch];
          for (int j = 0; j < 2; ++j) {
            const int t = 2 * p + j;
            q[((size_t(b) * pairs + p) * 2 + half) * 16 + lane * 2 + j] =
                t < taps ? int16_t(int32_t(w->w[size_t(ch) * taps + t]) - zpw) : int16_t(0);
          }
        }
}

void depthwise_pack(PackedDepthwise* w) {
  const ConvShape& s = w->shape;
  const int c = s.in_c, taps = s.kernel_h * s.kernel_w;
  const int cpad = ceil_div(c, kChanBlock) * kChanBlock;
  // Layout: [channel block][tap][8] int32 (low half = w - w_zp, high half 0).
  w->packed.resize(size_t(cpad) * taps * 4);
  uint8_t* p = w->packed.data();
  std::memset(p, 0, w->packed.size());
  int32_t* pw = reinterpret_cast<int32_t*>(p);
  w->bias_folded.assign(cpad, 0);
  const uint32_t xzp = uint32_t(w->x_zero_point);
  for (int ch = 0; ch < c; ++ch) {
    const int32_t zpw = w->symmetric ? 0 : w->w_zero_point[ch];
    uint32_t sumw = 0;
    for (int t = 0; t < taps; ++t) {
      const int32_t v = int32_t(w->w[size_t(ch) * taps + t]) - zpw;  // [-255, 255]
      sumw += uint32_t(v);
      pw[(size_t(ch / kChanBlock) * taps + t) * kChanBlock + ch % kChanBlock] =
          int32_t(uint32_t(uint16_t(int16_t(v))));
    }
    const uint32_t b = w->bias.empty() ? 0u : uint32_t(w->bias[ch]);
    w->bias_folded[ch] = int32_t(b - xzp * sumw);
  }
  if (dw_pairs_ok(*w)) depthwise_pack_pairs(w);
}

size_t depthwise_scratch_size(const PackedDepthwise& w, int, int) {
  const int cpad = ceil_div(w.shape.in_c, 64) * 64;
  return size_t(cpad) + size_t(w.shape.kernel_h) * w.shape.kernel_w * sizeof(void*) + 64;
}

// ------------------------------------------------------ direct conv (packing)
// See "Direct general conv" above. Weights w' = w - w_zp as int16 pairs:
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

#pragma GCC push_options
#pragma GCC target("avx2,fma")

#include "byte_lut_avx2.h"  // inside the target region (see there)
#include "../direct_conv.h"

namespace mnq {
namespace detail {
namespace {

inline int imin(int a, int b) { return a < b ? a : b; }

// Requantization constants shared by all tiles of one call.
struct Epilogue {
  __m256 lo, hi;  // qmin - zp, qmax - zp (float)
  __m256i zp;
  const int8_t* lut;  // 256 + 4 readable bytes, or nullptr
};

inline Epilogue make_epilogue(const OutputStage& o, int8_t* lut_copy /* 260 bytes */) {
  Epilogue e;
  e.lo = _mm256_set1_ps(float(o.qmin - o.zero_point));
  e.hi = _mm256_set1_ps(float(o.qmax - o.zero_point));
  e.zp = _mm256_set1_epi32(o.zero_point);
  e.lut = nullptr;
  if (o.has_lut) {
    std::memcpy(lut_copy, o.lut, 256);
    std::memset(lut_copy + 256, 0, 4);
    e.lut = lut_copy;
  }
  return e;
}

// int32 accumulators (bias added) -> 8 int8 in the low 8 bytes.
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

inline void store_cols(int8_t* dst, __m128i v, int valid) {
  if (valid >= 8) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), v);
  } else {
    alignas(16) int8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), v);
    for (int i = 0; i < valid; ++i) dst[i] = tmp[i];
  }
}

inline __m256 load_mult(const float* m, int valid) {
  if (valid >= 8) return _mm256_loadu_ps(m);
  alignas(32) float tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < valid; ++i) tmp[i] = m[i];
  return _mm256_load_ps(tmp);
}

// ------------------------------------------------------------------------ GEMM

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

// ----------------------------------------------------------------- direct conv

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

// ------------------------------------------------------------------- depthwise

inline __m256i load8_widen(const int8_t* p) {
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
// The first n < 8 bytes at p (never reads beyond them), widened.
inline __m256i load_tail_widen(const int8_t* p, int n) {
  alignas(16) int8_t tmp[16] = {0};
  for (int i = 0; i < n; ++i) tmp[i] = p[i];
  return load8_widen(tmp);
}

struct DwCtx {
  const PackedDepthwise* p;
  const int8_t* x;
  const int8_t* zrow;       // C bytes of x_zp: what padding taps read
  const int32_t* w;         // packed weights
  const int32_t* bias;      // bias_folded (padded to 8)
  const float* mult;        // [C]
  int C, cfull, ctail, taps;
  const uint8_t* wpairs;    // tap-pair weights (depthwise_pack_pairs), or nullptr
};

// One output pixel at any position: tap pointers go to the zero-point row
// where the tap falls into the padding.
void dw_pixel(const DwCtx& d, const Epilogue& e, int oy, int ox, const int8_t** ptrs, int8_t* yp) {
  const ConvShape& s = d.p->shape;
  int t = 0;
  for (int ky = 0; ky < s.kernel_h; ++ky) {
    const int iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
    const bool row_ok = iy >= 0 && iy < s.in_h;
    for (int kx = 0; kx < s.kernel_w; ++kx, ++t) {
      const int ix = ox * s.stride_w - s.pad_left + kx * s.dilation_w;
      ptrs[t] = (row_ok && ix >= 0 && ix < s.in_w) ? d.x + (size_t(iy) * s.in_w + ix) * d.C : d.zrow;
    }
  }
  int c0 = 0;
  for (; c0 < d.cfull; c0 += kChanBlock) {
    const int32_t* wb = d.w + size_t(c0) * d.taps;
    __m256i acc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(d.bias + c0));
    for (int tt = 0; tt < d.taps; ++tt)
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(load8_widen(ptrs[tt] + c0),
                                   _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + tt * kChanBlock))));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(yp + c0), requant8(e, acc, _mm256_loadu_ps(d.mult + c0)));
  }
  if (d.ctail) {
    const int32_t* wb = d.w + size_t(c0) * d.taps;
    __m256i acc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(d.bias + c0));
    for (int tt = 0; tt < d.taps; ++tt)
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(load_tail_widen(ptrs[tt] + c0, d.ctail),
                                   _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + tt * kChanBlock))));
    store_cols(yp + c0, requant8(e, acc, load_mult(d.mult + c0, d.ctail)), d.ctail);
  }
}

// `count` output pixels of one row whose taps all lie inside the image; the
// first one's top-left tap is at xbase. Weights of a channel block stay in
// registers across the run (3x3).
template <int KH, int KW, bool kTail>
inline void dw_run_block(const DwCtx& d, const Epilogue& e, const int8_t* xbase, int count,
                         int8_t* yp, int c0, const size_t* off, size_t xstep) {
  constexpr int T = KH * KW;
  const int32_t* wb = d.w + size_t(c0) * T;
  __m256i wv[T];
#pragma GCC unroll 25
  for (int t = 0; t < T; ++t) wv[t] = _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + t * kChanBlock));
  const __m256i bias = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(d.bias + c0));
  const __m256 mult = kTail ? load_mult(d.mult + c0, d.ctail) : _mm256_loadu_ps(d.mult + c0);
  const int8_t* xp = xbase + c0;
  int8_t* yq = yp + c0;
  for (int i = 0; i < count; ++i, xp += xstep, yq += d.C) {
    __m256i acc = bias;
#pragma GCC unroll 25
    for (int t = 0; t < T; ++t) {
      const __m256i xv = kTail ? load_tail_widen(xp + off[t], d.ctail) : load8_widen(xp + off[t]);
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(xv, wv[t]));
    }
    const __m128i q = requant8(e, acc, mult);
    if (kTail) store_cols(yq, q, d.ctail);
    else _mm_storel_epi64(reinterpret_cast<__m128i*>(yq), q);
  }
}

// dw_run_block for channels [c0, c0 + 16) with tap pairs (depthwise_pack_pairs):
// per pair, the two taps' 16 channels widened to int16 and interleaved, one
// vpmaddwd per half. packs_epi32 of the two halves restores the channel order.
template <int KH, int KW>
inline void dw_run_pairs(const DwCtx& d, const Epilogue& e, const int8_t* xbase, int count, int8_t* yp,
                         int c0, const size_t* off, size_t xstep) {
  constexpr int T = KH * KW, P = (T + 1) / 2;
  const __m256i* wq = reinterpret_cast<const __m256i*>(d.wpairs + size_t(c0 / 16) * P * 64);
  const __m256i bias_lo = _mm256_setr_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d.bias + c0)),
                                            _mm_loadu_si128(reinterpret_cast<const __m128i*>(d.bias + c0 + 8)));
  const __m256i bias_hi = _mm256_setr_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d.bias + c0 + 4)),
                                            _mm_loadu_si128(reinterpret_cast<const __m128i*>(d.bias + c0 + 12)));
  const __m256 m_lo = _mm256_setr_m128(_mm_loadu_ps(d.mult + c0), _mm_loadu_ps(d.mult + c0 + 8));
  const __m256 m_hi = _mm256_setr_m128(_mm_loadu_ps(d.mult + c0 + 4), _mm_loadu_ps(d.mult + c0 + 12));
  const int8_t* xp = xbase + c0;
  int8_t* yq = yp + c0;
  for (int i = 0; i < count; ++i, xp += xstep, yq += d.C) {
    __m256i lo = bias_lo, hi = bias_hi;
#pragma GCC unroll 13
    for (int p = 0; p < P; ++p) {
      const __m256i a = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xp + off[2 * p])));
      const __m256i b = 2 * p + 1 < T ? _mm256_cvtepi8_epi16(_mm_loadu_si128(
                                            reinterpret_cast<const __m128i*>(xp + off[2 * p + 1])))
                                      : a;  // (its weights are zero)
      lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), _mm256_load_si256(wq + 2 * p)));
      hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), _mm256_load_si256(wq + 2 * p + 1)));
    }
    __m256 f0 = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(lo), m_lo), e.lo), e.hi);
    __m256 f1 = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(hi), m_hi), e.lo), e.hi);
    __m256i q0 = _mm256_add_epi32(_mm256_cvtps_epi32(f0), e.zp), q1 = _mm256_add_epi32(_mm256_cvtps_epi32(f1), e.zp);
    if (e.lut) {
      const __m256i k128 = _mm256_set1_epi32(128);
      q0 = _mm256_i32gather_epi32(reinterpret_cast<const int*>(e.lut), _mm256_add_epi32(q0, k128), 1);
      q1 = _mm256_i32gather_epi32(reinterpret_cast<const int*>(e.lut), _mm256_add_epi32(q1, k128), 1);
      q0 = _mm256_srai_epi32(_mm256_slli_epi32(q0, 24), 24);
      q1 = _mm256_srai_epi32(_mm256_slli_epi32(q1, 24), 24);
    }
    // Lane L of packs_epi32(q0, q1): channels 8L..8L+3 (q0) then 8L+4..8L+7 (q1).
    const __m256i w16 = _mm256_packs_epi32(q0, q1);
    const __m128i o = _mm_packs_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(yq), o);
  }
}

template <int KH, int KW>
void dw_run(const DwCtx& d, const Epilogue& e, const int8_t* xbase, int count, int8_t* yp) {
  const ConvShape& s = d.p->shape;
  size_t off[KH * KW];
  for (int ky = 0; ky < KH; ++ky)
    for (int kx = 0; kx < KW; ++kx)
      off[ky * KW + kx] = (size_t(ky) * s.dilation_h * s.in_w + size_t(kx) * s.dilation_w) * d.C;
  const size_t xstep = size_t(s.stride_w) * d.C;
  int c0 = 0;
  if (d.wpairs)
    for (; c0 + 16 <= d.C; c0 += 16) dw_run_pairs<KH, KW>(d, e, xbase, count, yp, c0, off, xstep);
  for (; c0 < d.cfull; c0 += kChanBlock) dw_run_block<KH, KW, false>(d, e, xbase, count, yp, c0, off, xstep);
  if (d.ctail) dw_run_block<KH, KW, true>(d, e, xbase, count, yp, c0, off, xstep);
}

void depthwise_avx2(const DepthwiseArgs& a) {
  const PackedDepthwise& p = *a.w;
  const ConvShape& s = p.shape;
  DwCtx d;
  d.p = &p;
  d.x = a.x;
  d.C = s.in_c;
  d.cfull = d.C / kChanBlock * kChanBlock;
  d.ctail = d.C - d.cfull;
  d.taps = s.kernel_h * s.kernel_w;
  d.w = reinterpret_cast<const int32_t*>(p.packed.data());
  d.bias = p.bias_folded.data();
  d.mult = a.out->multiplier.data();
  d.wpairs = dw_pairs_ok(p) ? p.packed.data() + dw_pairs_offset(s) : nullptr;
  alignas(16) int8_t lut[260];
  const Epilogue e = make_epilogue(*a.out, lut);
  // Scratch: a row of x_zp (padding taps read it), then the tap pointers.
  int8_t* zrow = static_cast<int8_t*>(a.scratch);
  const int zlen = (d.C + 63) / 64 * 64;
  std::memset(zrow, int(int8_t(p.x_zero_point)), size_t(zlen));
  d.zrow = zrow;
  uintptr_t pp = (reinterpret_cast<uintptr_t>(zrow + zlen) + 7) & ~uintptr_t(7);
  const int8_t** ptrs = reinterpret_cast<const int8_t**>(pp);
  const bool k3 = s.kernel_h == 3 && s.kernel_w == 3, k5 = s.kernel_h == 5 && s.kernel_w == 5;
  // 3x6: a 3x3 depthwise over two range pieces per channel (a grouped conv the runtime views as one)
  const bool k36 = s.kernel_h == 3 && s.kernel_w == 6;
  // Output columns whose taps are all inside the image horizontally.
  const int span_w = (s.kernel_w - 1) * s.dilation_w, span_h = (s.kernel_h - 1) * s.dilation_h;
  int ox_lo = (s.pad_left + s.stride_w - 1) / s.stride_w;
  int ox_hi = s.in_w - 1 - span_w + s.pad_left >= 0 ? (s.in_w - 1 - span_w + s.pad_left) / s.stride_w + 1 : 0;
  if (ox_hi > s.out_w) ox_hi = s.out_w;
  if (ox_lo > ox_hi) ox_lo = ox_hi;
  for (int oy = a.row_begin; oy < a.row_end; ++oy) {
    int8_t* yrow = a.y + size_t(oy) * s.out_w * d.C;
    const int iy0 = oy * s.stride_h - s.pad_top;
    const bool rows_in = iy0 >= 0 && iy0 + span_h < s.in_h;
    int ox = 0;
    if (rows_in && (k3 || k5 || k36) && ox_hi > ox_lo) {
      for (; ox < ox_lo; ++ox) dw_pixel(d, e, oy, ox, ptrs, yrow + size_t(ox) * d.C);
      const int8_t* xbase = a.x + (size_t(iy0) * s.in_w + (ox_lo * s.stride_w - s.pad_left)) * d.C;
      if (k3) dw_run<3, 3>(d, e, xbase, ox_hi - ox_lo, yrow + size_t(ox_lo) * d.C);
      else if (k5) dw_run<5, 5>(d, e, xbase, ox_hi - ox_lo, yrow + size_t(ox_lo) * d.C);
      else dw_run<3, 6>(d, e, xbase, ox_hi - ox_lo, yrow + size_t(ox_lo) * d.C);
      ox = ox_hi;
    }
    for (; ox < s.out_w; ++ox) dw_pixel(d, e, oy, ox, ptrs, yrow + size_t(ox) * d.C);
  }
}

// ----------------------------------------------------------------- elementwise
// Same arithmetic as quant.h, 8 lanes at a time; tails go through a small
// buffer so nothing is read or written beyond the arrays. Constants come from
// the quant.h helpers (computed by the callers outside the target region).

inline __m256i load8_widen_n(const int8_t* p, size_t left) {
  return left >= 8 ? load8_widen(p) : load_tail_widen(p, int(left));
}
// 8 int32 lanes already in int8 range -> 8 bytes.
inline __m128i narrow8(__m256i q) {
  const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  return _mm_packs_epi16(w16, w16);
}
inline void store8_n(int8_t* dst, __m256i q, size_t left) {
  store_cols(dst, narrow8(q), left >= 8 ? 8 : int(left));
}

// quant::add_one with the two clamps merged: rounding commutes with clamping to
// integer bounds, so clamp(t, max(-128, qmin), min(127, qmax)) then round.
void add_kernel(float ra, float rb, float fixed, float offset, int32_t qmin, int32_t qmax, size_t n,
                const int8_t* a, const int8_t* b, int8_t* y) {
  const __m256 vra = _mm256_set1_ps(ra), vrb = _mm256_set1_ps(rb), vfixed = _mm256_set1_ps(fixed);
  const __m256 voff = _mm256_set1_ps(offset);
  const __m256 lo = _mm256_set1_ps(float(qmin > -128 ? qmin : -128));
  const __m256 hi = _mm256_set1_ps(float(qmax < 127 ? qmax : 127));
  for (size_t i = 0; i < n; i += 8) {
    const __m256 av = _mm256_add_ps(_mm256_cvtepi32_ps(load8_widen_n(a + i, n - i)), voff);
    const __m256 bv = _mm256_add_ps(_mm256_cvtepi32_ps(load8_widen_n(b + i, n - i)), voff);
    __m256 t = _mm256_fmadd_ps(bv, vrb, vfixed);
    t = _mm256_fmadd_ps(av, vra, t);
    t = _mm256_sub_ps(t, voff);
    t = _mm256_min_ps(_mm256_max_ps(t, lo), hi);
    store8_n(y + i, _mm256_cvtps_epi32(t), n - i);
  }
}

// quant::mul_one: t = float((a - za) * (b - zb)) * ratio + float(zc + offset),
// clamped to [-128, 127] + offset, rounded, minus offset.
struct MulConsts {
  __m256 ratio, zc, lo, hi;
  __m256i offset;
  MulConsts(float r, int32_t z, int32_t off)
      : ratio(_mm256_set1_ps(r)), zc(_mm256_set1_ps(float(z + off))), lo(_mm256_set1_ps(float(-128 + off))),
        hi(_mm256_set1_ps(float(127 + off))), offset(_mm256_set1_epi32(off)) {}
};
inline __m256i mul8(__m256i a, __m256i b, const MulConsts& k) {
  __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_mullo_epi32(a, b)), k.ratio);
  f = _mm256_add_ps(f, k.zc);
  f = _mm256_min_ps(_mm256_max_ps(f, k.lo), k.hi);
  return _mm256_sub_epi32(_mm256_cvtps_epi32(f), k.offset);
}

void mul_kernel(float ratio, int32_t za, int32_t zb, int32_t zc, int32_t offset, size_t n, const int8_t* a,
                const int8_t* b, int8_t* y) {
  const MulConsts k(ratio, zc, offset);
  const __m256i vza = _mm256_set1_epi32(za), vzb = _mm256_set1_epi32(zb);
  for (size_t i = 0; i < n; i += 8) {
    const __m256i av = _mm256_sub_epi32(load8_widen_n(a + i, n - i), vza);
    const __m256i bv = _mm256_sub_epi32(load8_widen_n(b + i, n - i), vzb);
    store8_n(y + i, mul8(av, bv, k), n - i);
  }
}

void mul_channelwise_kernel(float ratio, int32_t za, int32_t zb, int32_t zc, int32_t offset, size_t hw,
                            size_t c, const int8_t* x, const int8_t* s, int8_t* y) {
  const MulConsts k(ratio, zc, offset);
  const __m256i vza = _mm256_set1_epi32(za), vzb = _mm256_set1_epi32(zb);
  for (size_t c0 = 0; c0 < c; c0 += 8) {
    const size_t left = c - c0;
    const __m256i sv = _mm256_sub_epi32(load8_widen_n(s + c0, left), vzb);
    for (size_t i = 0; i < hw; ++i) {
      const __m256i xv = _mm256_sub_epi32(load8_widen_n(x + i * c + c0, left), vza);
      store8_n(y + i * c + c0, mul8(xv, sv, k), left);
    }
  }
}

// Sum over pixels per channel, then quant::requantize(acc, scale, zy, -128, 127).
void gap_kernel(float scale, int32_t bias, int32_t zy, size_t hw, size_t c, const int8_t* x,
                int8_t* y) {
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256 lo = _mm256_set1_ps(float(-128 - zy)), hi = _mm256_set1_ps(float(127 - zy));
  const __m256i vzy = _mm256_set1_epi32(zy);
  size_t c0 = 0;
  for (; c0 + 32 <= c; c0 += 32) {  // 32 channels per pass: four independent sums
    __m256i s0 = _mm256_set1_epi32(bias), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < hw; ++i) {
      const int8_t* p = x + i * c + c0;
      s0 = _mm256_add_epi32(s0, load8_widen(p));
      s1 = _mm256_add_epi32(s1, load8_widen(p + 8));
      s2 = _mm256_add_epi32(s2, load8_widen(p + 16));
      s3 = _mm256_add_epi32(s3, load8_widen(p + 24));
    }
    const __m256i sums[4] = {s0, s1, s2, s3};
    for (int j = 0; j < 4; ++j) {
      __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(sums[j]), vs);
      f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
      store8_n(y + c0 + 8 * j, _mm256_add_epi32(_mm256_cvtps_epi32(f), vzy), 8);
    }
  }
  for (; c0 < c; c0 += 8) {
    const size_t left = c - c0;
    __m256i acc = _mm256_set1_epi32(bias);
    for (size_t i = 0; i < hw; ++i) acc = _mm256_add_epi32(acc, load8_widen_n(x + i * c + c0, left));
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), vs);
    f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
    store8_n(y + c0, _mm256_add_epi32(_mm256_cvtps_epi32(f), vzy), left);
  }
}

// quant::quantize_linear: v = x / scale; v = max(v, lo) (NaN -> lo); v = min(v, hi);
// q = round(v) + zp. MAXPS returns its second operand when the first is NaN.
void quantize_kernel(const float* x, size_t c, size_t h, size_t w, float scale, int32_t zp,
                     int8_t* y) {
  const size_t hw = h * w;
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256 lo = _mm256_set1_ps(float(-128 - zp)), hi = _mm256_set1_ps(float(127 - zp));
  const __m256i vzp = _mm256_set1_epi32(zp);
  alignas(16) int8_t q[16];
  alignas(32) float tmp[8];
  for (size_t ch = 0; ch < c; ++ch) {
    const float* src = x + ch * hw;
    for (size_t i = 0; i < hw; i += 8) {
      const size_t cnt = hw - i < 8 ? hw - i : 8;
      __m256 v;
      if (cnt == 8) {
        v = _mm256_loadu_ps(src + i);
      } else {
        for (size_t j = 0; j < 8; ++j) tmp[j] = j < cnt ? src[i + j] : 0.0f;
        v = _mm256_load_ps(tmp);
      }
      v = _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(v, vs), lo), hi);
      _mm_store_si128(reinterpret_cast<__m128i*>(q), narrow8(_mm256_add_epi32(_mm256_cvtps_epi32(v), vzp)));
      int8_t* dst = y + i * c + ch;
      for (size_t j = 0; j < cnt; ++j) dst[j * c] = q[j];
    }
  }
}

void dequantize_kernel(const int8_t* q, size_t n, float scale, int32_t zp, float* y) {
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256i vzp = _mm256_set1_epi32(zp);
  alignas(32) float tmp[8];
  for (size_t i = 0; i < n; i += 8) {
    const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(load8_widen_n(q + i, n - i), vzp)), vs);
    if (n - i >= 8) {
      _mm256_storeu_ps(y + i, f);
    } else {
      _mm256_store_ps(tmp, f);
      for (size_t j = 0; j < n - i; ++j) y[i + j] = tmp[j];
    }
  }
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
  const size_t ps = size_t((a.w->k + 31) / 32) * 64;  // int16, padded to 32 values
  gemm_avx2(a, gemm_panel(ps * 8), ps);
}


IsaKernels make_table() {
  IsaKernels t;
  t.gemm_pack = gemm_pack;
  t.gemm = gemm;
  t.depthwise_pack = depthwise_pack;
  t.depthwise_scratch_size = depthwise_scratch_size;
  t.depthwise = depthwise_avx2;
  t.conv_direct_pack = direct_pack;
  t.conv_direct_scratch_size = direct_scratch_size;
  t.conv_direct = conv_direct_avx2;
  t.global_avg_pool = global_avg_pool_entry<gap_kernel>;
  t.add = add_entry<add_kernel>;
  t.mul = mul_entry<mul_kernel>;
  t.mul_channelwise = mul_channelwise_entry<mul_channelwise_kernel>;
  // lut_apply: no AVX2 byte-table lookup; the scalar entry is used.
  t.quantize_nchw_to_nhwc = quantize_kernel;
  t.dequantize = dequantize_kernel;
  return t;
}

}  // namespace

const IsaKernels* avx2_kernels() {
  static const IsaKernels table = make_table();
  return &table;
}

}  // namespace detail
}  // namespace mnq

#else  // not x86-64

namespace mnq {
namespace detail {
const IsaKernels* avx2_kernels() { return nullptr; }
}  // namespace detail
}  // namespace mnq

#endif
