// AVX2 depthwise convolution (depth multiplier 1): bit-identical to the scalar
// reference (ref/depthwise.cc).
//
//   8 channels per ymm in int32 lanes; weights are int32 lanes with low half
//   w - w_zp and high half zero, so vpmaddwd against sign-extended activations
//   is an exact multiply. Padding taps read a row filled with x_zp. 3x3 and
//   5x5 pixels whose taps are all inside the image keep the weights in
//   registers along the row; there, blocks of 16 channels put two taps in each
//   lane instead (depthwise_pack_pairs), which uses both products of vpmaddwd.
//   Border pixels use per-tap pointers.
//   (vpmaddwd multiplies int16 by int16 and cannot saturate here, so every
//   weight value including -128 and any weight zero point is exact.)
// The wide depthwise conv (int16 activations) is below depthwise_wide_pack.
#include <cstring>
#include <vector>
#include <utility>

#include "../../internal.h"
#include "../target.h"
#include "table.h"

#if defined(__x86_64__) || defined(_M_X64)

namespace mnq {
namespace detail {
namespace {

constexpr int kChanBlock = 8;  // depthwise channels per ymm

// -------------------------------------------------------------- packing (baseline ISA)

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

// The wide depthwise conv (int16 activations; ref/depthwise_wide.cc): 8 channels per ymm in int32
// lanes, the sum of (x - x_zp) * w over the taps inside the image (padded taps skipped, as in the
// reference), the bias as is. Layout: [channel block][tap][8] int32 lanes holding w in their low 16 bits
// and 0 above (zero past the last channel), so that vpmaddwd of a sign-extended (x - x_zp) lane with a
// weight lane is (x - x_zp) * w + sign * 0: one multiply-add per lane, exact whenever x - x_zp fits in
// int16 (int8 inputs; int16 inputs with zero point 0, as mnq writes them); other int16 inputs take
// vpmulld with the weights sign-extended. bias_folded is the bias padded to 8. The pack proves
// |bias| + 65535 * sum |w| < 2^31 per channel (docs/quantization.md, "int16 activations"), so the int32
// lanes hold exact sums.
bool depthwise_wide_pack(PackedDepthwise* w) {
  const ConvShape& s = w->shape;
  const int c = s.in_c, taps = s.kernel_h * s.kernel_w;
  const int cpad = ceil_div(c, kChanBlock) * kChanBlock;
  if (!wide_depthwise_fits_int32(*w)) return false;
  w->packed.resize(size_t(cpad) * taps * 4);
  std::memset(w->packed.data(), 0, w->packed.size());
  int32_t* pw = reinterpret_cast<int32_t*>(w->packed.data());
  for (int ch = 0; ch < c; ++ch)
    for (int t = 0; t < taps; ++t)
      pw[(size_t(ch / kChanBlock) * taps + t) * kChanBlock + ch % kChanBlock] = int32_t(uint16_t(int16_t(w->w[size_t(ch) * taps + t])));
  w->bias_folded.assign(cpad, 0);
  for (int ch = 0; ch < c; ++ch) w->bias_folded[ch] = w->bias[ch];
  if (dw_pairs_ok(*w)) depthwise_pack_pairs(w);  // the wide weights are symmetric: the same tap pairs
  return true;
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
    __m256i q0 = requantize8(e, lo, m_lo), q1 = requantize8(e, hi, m_hi);
    if (e.lut) {
      q0 = lut8(e.lut, q0);
      q1 = lut8(e.lut, q1);
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

// The wide depthwise conv over input values of type T (int8_t or int16_t). kMadd: x - x_zp fits in int16
// (vpmaddwd; see depthwise_wide_pack), else vpmulld. Pixels whose taps all lie inside the image run
// without bounds checks over precomputed tap offsets; the border ones skip the padded taps.
template <typename T, bool kMadd>
void depthwise_wide_rows(const WideDepthwiseArgs& a) {
  const PackedDepthwise& w = *a.w;
  const ConvShape& s = w.shape;
  const T* x = static_cast<const T*>(a.x);
  const int C = s.in_c, kw = s.kernel_w, taps = s.kernel_h * kw;
  const int32_t* pw = reinterpret_cast<const int32_t*>(w.packed.data());
  const int32_t* bias = w.bias_folded.data();
  const float* mult = a.out->multiplier.data();
  alignas(16) int8_t lut[260];
  const Epilogue e = make_epilogue(*a.out, lut);
  const __m256i xzp = _mm256_set1_epi32(w.x_zero_point);
  const bool y16 = a.out->dtype == Dtype::int16;
  const auto mac = [&](__m256i acc, __m256i xv, const int32_t* wp) {
    const __m256i wv = _mm256_load_si256(reinterpret_cast<const __m256i*>(wp));
    if (kMadd) return _mm256_add_epi32(acc, _mm256_madd_epi16(xv, wv));
    return _mm256_add_epi32(acc, _mm256_mullo_epi32(xv, _mm256_srai_epi32(_mm256_slli_epi32(wv, 16), 16)));
  };
  const auto load = [&](const T* p, int valid) {
    const __m256i v = valid == kChanBlock ? load8_widen(p) : load_tail_widen(p, valid);
    return w.x_zero_point ? _mm256_sub_epi32(v, xzp) : v;
  };
  // 16 values as int16 lanes, minus the zero point (kMadd: the differences fit in int16)
  const __m256i xzp16 = _mm256_set1_epi16(int16_t(w.x_zero_point));
  const auto load16 = [&](const T* p) {
    const __m256i v = sizeof(T) == 1 ? _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))
                                     : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return w.x_zero_point ? _mm256_sub_epi16(v, xzp16) : v;
  };
  const uint8_t* wpairs = dw_pairs_ok(w) ? w.packed.data() + dw_pairs_offset(s) : nullptr;
  const int pairs = (taps + 1) / 2;
  const auto store = [&](size_t yi, int cb, int valid, __m256i acc) {
    const __m256i q = requantize8(e, acc, load_mult(mult + cb, valid));
    const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    if (y16)
      store_cols16(static_cast<int16_t*>(a.y) + yi + cb, q16, valid);
    else
      store_cols(static_cast<int8_t*>(a.y) + yi + cb, _mm_packs_epi16(q16, q16), valid);
  };
  // tap offsets from a pixel's top-left tap, and the output columns / rows whose taps are all inside
  std::vector<size_t> off(static_cast<size_t>(taps));
  for (int ky = 0; ky < s.kernel_h; ++ky)
    for (int kx = 0; kx < kw; ++kx) off[size_t(ky * kw + kx)] = (size_t(ky) * s.dilation_h * s.in_w + size_t(kx) * s.dilation_w) * C;
  const auto inside = [](int n_out, int stride, int pad, int k, int dil, int n_in, int* lo, int* hi) {
    *lo = ceil_div(pad, stride);
    *hi = n_in - 1 + pad - (k - 1) * dil < 0 ? 0 : (n_in - 1 + pad - (k - 1) * dil) / stride + 1;
    *hi = imin(*hi, n_out);
    if (*lo > *hi) *lo = *hi;
  };
  int ox_lo, ox_hi, oy_lo, oy_hi;
  inside(s.out_w, s.stride_w, s.pad_left, kw, s.dilation_w, s.in_w, &ox_lo, &ox_hi);
  inside(s.out_h, s.stride_h, s.pad_top, s.kernel_h, s.dilation_h, s.in_h, &oy_lo, &oy_hi);
  for (int oy = a.row_begin; oy < a.row_end; ++oy) {
    const bool row_inside = oy >= oy_lo && oy < oy_hi;
    for (int ox = 0; ox < s.out_w; ++ox) {
      const size_t yi = (size_t(oy) * s.out_w + ox) * C;
      if (row_inside && ox >= ox_lo && ox < ox_hi) {
        const T* x0 = x + (size_t(oy * s.stride_h - s.pad_top) * s.in_w + size_t(ox * s.stride_w - s.pad_left)) * C;
        int c0 = 0;
        if (kMadd && wpairs)
          for (; c0 + 16 <= C; c0 += 16) {
            // 16 channels, two taps per lane (depthwise_pack_pairs), as dw_run_pairs for int8
            const __m256i* wq = reinterpret_cast<const __m256i*>(wpairs + size_t(c0 / 16) * pairs * 64);
            __m256i lo = _mm256_setr_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bias + c0)),
                                           _mm_loadu_si128(reinterpret_cast<const __m128i*>(bias + c0 + 8)));
            __m256i hi = _mm256_setr_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bias + c0 + 4)),
                                           _mm_loadu_si128(reinterpret_cast<const __m128i*>(bias + c0 + 12)));
            for (int pr = 0; pr < pairs; ++pr) {
              const __m256i a = load16(x0 + off[size_t(2 * pr)] + c0);
              const __m256i b = 2 * pr + 1 < taps ? load16(x0 + off[size_t(2 * pr + 1)] + c0) : a;  // zero weights
              lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), _mm256_load_si256(wq + 2 * pr)));
              hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), _mm256_load_si256(wq + 2 * pr + 1)));
            }
            const __m256 m_lo = _mm256_setr_m128(_mm_loadu_ps(mult + c0), _mm_loadu_ps(mult + c0 + 8));
            const __m256 m_hi = _mm256_setr_m128(_mm_loadu_ps(mult + c0 + 4), _mm_loadu_ps(mult + c0 + 12));
            // lane L of packs_epi32(q0, q1): channels 8L..8L+3 (q0) then 8L+4..8L+7 (q1)
            const __m256i w16 = _mm256_packs_epi32(requantize8(e, lo, m_lo), requantize8(e, hi, m_hi));
            if (y16) {
              _mm256_storeu_si256(reinterpret_cast<__m256i*>(static_cast<int16_t*>(a.y) + yi + c0), w16);
            } else {
              const __m128i o = _mm_packs_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));
              _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<int8_t*>(a.y) + yi + c0), o);
            }
          }
        for (int cb = c0; cb < C; cb += kChanBlock) {
          const int valid = imin(kChanBlock, C - cb);
          const int32_t* wb = pw + size_t(cb / kChanBlock) * taps * kChanBlock;
          __m256i acc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias + cb));
          for (int t = 0; t < taps; ++t) acc = mac(acc, load(x0 + off[size_t(t)] + cb, valid), wb + size_t(t) * kChanBlock);
          store(yi, cb, valid, acc);
        }
        continue;
      }
      for (int cb = 0; cb < C; cb += kChanBlock) {
        const int valid = imin(kChanBlock, C - cb);
        const int32_t* wb = pw + size_t(cb / kChanBlock) * taps * kChanBlock;
        __m256i acc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias + cb));
        for (int ky = 0; ky < s.kernel_h; ++ky) {
          const int iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
          if (iy < 0 || iy >= s.in_h) continue;
          for (int kx = 0; kx < kw; ++kx) {
            const int ix = ox * s.stride_w - s.pad_left + kx * s.dilation_w;
            if (ix < 0 || ix >= s.in_w) continue;
            acc = mac(acc, load(x + (size_t(iy) * s.in_w + ix) * C + cb, valid), wb + size_t(ky * kw + kx) * kChanBlock);
          }
        }
        store(yi, cb, valid, acc);
      }
    }
  }
}

void depthwise_wide_avx2(const WideDepthwiseArgs& a) {
  if (a.x_dtype == Dtype::int8)
    depthwise_wide_rows<int8_t, true>(a);
  else if (a.w->x_zero_point == 0)
    depthwise_wide_rows<int16_t, true>(a);
  else
    depthwise_wide_rows<int16_t, false>(a);
}

}  // namespace
}  // namespace detail
}  // namespace mnq

MNQ_TARGET_END

namespace mnq {
namespace detail {
namespace avx2 {
void set_depthwise(IsaKernels& t) {
  t.depthwise_pack = depthwise_pack;
  t.depthwise_scratch_size = depthwise_scratch_size;
  t.depthwise = depthwise_avx2;
  t.depthwise_wide_pack = depthwise_wide_pack;
  t.depthwise_wide = depthwise_wide_avx2;
}
}  // namespace avx2
}  // namespace detail
}  // namespace mnq

#endif
