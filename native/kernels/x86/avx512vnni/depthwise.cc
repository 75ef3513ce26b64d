// AVX-512 VNNI depthwise convolution (depth multiplier 1): bit-identical to the
// scalar reference (ref/depthwise.cc).
//
//   16 channels per zmm in int32 lanes. Weights are stored as int32 lanes whose
//   low half is w - w_zp (int16) and high half zero, so vpdpwssd against
//   sign-extended activations is an exact 16x16 -> 32 multiply-accumulate (the
//   non-saturating form); the bias absorbs -x_zp * sum_taps (w - w_zp). Padding
//   taps read a row filled with x_zp, which then contributes exactly zero.
//   3x3 and 5x5: output pixels whose taps are inside the image horizontally run
//   in a fast path (kernel rows in the vertical padding read the x_zp row);
//   stride-1 runs work on groups of 4 pixels that share widened inputs. Border
//   pixels and other kernel sizes use per-tap pointers.
#include <cstring>
#include <utility>

#include "../../internal.h"
#include "../target.h"
#include "table.h"

#if defined(__x86_64__) || defined(_M_X64)

namespace mnq {
namespace detail {
namespace {

constexpr int kChanBlock = 16; // depthwise channels per zmm
// The quad path also covers a last partial block of 64 channels when more than
// this many of them are used (else that tail runs 16 channels at a time).
constexpr int kDwqMinTail = 32;

// -------------------------------------------------------------- packing (baseline ISA)

bool dw_quad_ok(const PackedDepthwise& w);
bool dw_quad_pairs(const PackedDepthwise& w);
void depthwise_pack_quad(PackedDepthwise* w);

void depthwise_pack(PackedDepthwise* w) {
  const ConvShape& s = w->shape;
  const int c = s.in_c, taps = s.kernel_h * s.kernel_w;
  const int cpad = ceil_div(c, kChanBlock) * kChanBlock;
  // Layout: [channel block][tap][16] int32 (low half = w - w_zp, high half 0).
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
  if (dw_quad_ok(*w)) depthwise_pack_quad(w);
}

// Quad layout (symmetric 3x3 / 5x5, dilation 1, stride 1 or 2): 64 channels per
// block, four kernel rows per int32 lane, for vpdpbusd against u8 activations
// (x ^ 0x80) interleaved from four input rows (see dwq_block). Appended to the
// 16-channel layout: [block][row quad][kx][sub][16 lanes][4 rows] int8, then the
// folded bias [block][sub][16] int32 (bias - (128 + x_zp) * sum_taps w).
// Lane d of sub-vector s holds channel 16 * (d / 4) + 4 * s + d % 4 of the block:
// the order unpack{lo,hi}_epi8 then unpack{lo,hi}_epi16 leaves 64 bytes in.
bool dw_quad_ok(const PackedDepthwise& w) {
  const ConvShape& s = w.shape;
  return w.symmetric && s.dilation_w == 1 && (s.stride_w == 1 || s.stride_w == 2) &&
         ((s.kernel_h == 3 && s.kernel_w == 3) || (s.kernel_h == 5 && s.kernel_w == 5));
}
inline int dwq_channel(int s, int d) { return 16 * (d / 4) + 4 * s + d % 4; }
size_t dwq_block_bytes(const ConvShape& s) { return size_t((s.kernel_h + 3) / 4) * s.kernel_w * 4 * 64; }
size_t dwq_offset(const ConvShape& s) { return size_t(ceil_div(s.in_c, kChanBlock) * kChanBlock) * s.kernel_h * s.kernel_w * 4; }

// 32 channels, stride 1: one 64-byte load holds two adjacent input pixels, so
// the quad path runs pairs of output pixels as one 64-channel block whose lanes
// v hold channel v % 32 (weights, bias and multipliers repeated).
bool dw_quad_pairs(const PackedDepthwise& w) {
  return w.shape.in_c == 32 && w.shape.stride_w == 1;
}

void depthwise_pack_quad(PackedDepthwise* w) {
  const ConvShape& s = w->shape;
  const int kh = s.kernel_h, kw = s.kernel_w, taps = kh * kw, quads = (kh + 3) / 4;
  const bool pairs = dw_quad_pairs(*w);
  const int c = pairs ? 64 : s.in_c;  // lanes
  const int nblk = ceil_div(c, 64);
  const size_t off = dwq_offset(s), bb = dwq_block_bytes(s);
  const size_t wbytes = size_t(nblk) * bb;
  AlignedBuffer old = std::move(w->packed);
  w->packed.resize(off + wbytes + size_t(nblk) * 64 * 4);
  uint8_t* p = w->packed.data();
  std::memcpy(p, old.data(), off);
  std::memset(p + off, 0, w->packed.size() - off);
  int8_t* q = reinterpret_cast<int8_t*>(p + off);
  int32_t* qb = reinterpret_cast<int32_t*>(p + off + wbytes);
  const uint32_t xzp = uint32_t(w->x_zero_point);
  for (int b = 0; b < nblk; ++b)
    for (int sub = 0; sub < 4; ++sub)
      for (int d = 0; d < 16; ++d) {
        const int lane = 64 * b + dwq_channel(sub, d);
        if (lane >= c) continue;
        const int ch = pairs ? lane % 32 : lane;
        uint32_t sumw = 0;
        for (int t = 0; t < taps; ++t) sumw += uint32_t(int32_t(w->w[size_t(ch) * taps + t]));
        const uint32_t bias = w->bias.empty() ? 0u : uint32_t(w->bias[ch]);
        qb[64 * b + 16 * sub + d] = int32_t(bias - (128u + xzp) * sumw);
        for (int qd = 0; qd < quads; ++qd)
          for (int kx = 0; kx < kw; ++kx)
            for (int r = 0; r < 4; ++r) {
              const int ky = 4 * qd + r;
              if (ky >= kh) continue;
              q[size_t(b) * bb + ((size_t(qd) * kw + kx) * 4 + sub) * 64 + d * 4 + r] =
                  w->w[size_t(ch) * taps + ky * kw + kx];
            }
      }
}

size_t depthwise_scratch_size(const PackedDepthwise& w, int, int) {
  // The x_zp row (the quad path reads whole 64-byte blocks of it), the tap
  // pointers, the quad path's multipliers (64-byte aligned).
  const int cpad = ceil_div(w.shape.in_c, 64) * 64;
  return size_t(cpad) + 8 + size_t(w.shape.kernel_h) * w.shape.kernel_w * sizeof(void*) + 64 +
         size_t(cpad) * sizeof(float);
}

}  // namespace
}  // namespace detail
}  // namespace mnq

MNQ_AVX512VNNI_BEGIN

#include "epilogue.h"

namespace mnq {
namespace detail {
namespace {

struct DwCtx {
  const PackedDepthwise* p;
  const int8_t* x;
  const int8_t* zrow;       // C bytes of x_zp: what padding taps read
  const int32_t* w;         // packed weights
  const int32_t* bias;      // bias_folded (padded to 16)
  const float* mult;        // [C]
  int C, cfull, taps;
  __mmask16 tail_mask;
  int32_t out_zp;
  // Quad path: channels [0, cquad) (a multiple of 64; 0 = not used).
  int cquad;
  const int8_t* wq;
  size_t wq_block;
  const int32_t* bq;
  bool pairs;               // quad path on pixel pairs (dw_quad_pairs), instead of cquad
  const float* mq;          // multipliers in quad order (scratch)
  __m512i zx[2];            // a padding column of the quad path, per row quad
};

// One output pixel at any position: tap pointers go to the zero-point row
// where the tap falls into the padding.
void dw_pixel(const DwCtx& d, const Epilogue& e, int oy, int ox, const int8_t** ptrs, int8_t* yp,
              int c_begin = 0) {
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
  for (int c0 = c_begin; c0 < d.C; c0 += kChanBlock) {
    const bool tail = c0 >= d.cfull;
    const __mmask16 m = tail ? d.tail_mask : __mmask16(0xFFFF);
    const int32_t* wb = d.w + size_t(c0) * d.taps;
    __m512i acc = _mm512_maskz_loadu_epi32(m, d.bias + c0);
    for (int tt = 0; tt < d.taps; ++tt) {
      const __m512i xv = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, ptrs[tt] + c0));
      acc = _mm512_dpwssd_epi32(acc, xv, _mm512_load_si512(wb + tt * kChanBlock));
    }
    _mm_mask_storeu_epi8(yp + c0, m, requant16(e, acc, _mm512_maskz_loadu_ps(m, d.mult + c0)));
  }
}

// Where the taps of one kernel row read: the input row at the first tap column
// of the first output pixel of a run, stepping `step` bytes per input column;
// a kernel row in the vertical padding reads the zero-point row with step 0.
struct TapRows {
  const int8_t* p[5];
  size_t step[5];
};

template <bool kTail>
inline __m512i load16_taps(const int8_t* src, __mmask16 m) {
  const __m128i xb = kTail ? _mm_maskz_loadu_epi8(m, src)
                           : _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
  return _mm512_cvtepi8_epi32(xb);
}

template <bool kTail>
inline void store16(int8_t* dst, __m128i q, __mmask16 m) {
  if (kTail) _mm_mask_storeu_epi8(dst, m, q);
  else _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), q);
}

// `count` output pixels of one row whose taps are all inside the image
// horizontally, channels [c0, c0 + 16), any stride and dilation.
template <int KH, int KW, bool kTail>
void dw_run_block(const DwCtx& d, const Epilogue& e, const TapRows& rows, int count, int8_t* yp,
                  int c0, int sw, int dw) {
  const __mmask16 m = kTail ? d.tail_mask : __mmask16(0xFFFF);
  const int32_t* wb = d.w + size_t(c0) * KH * KW;
  __m512i wv[KH * KW];
#pragma GCC unroll 25
  for (int t = 0; t < KH * KW; ++t) wv[t] = _mm512_load_si512(wb + t * kChanBlock);
  const __m512i bias = _mm512_maskz_loadu_epi32(m, d.bias + c0);
  const __m512 mult = _mm512_maskz_loadu_ps(m, d.mult + c0);
  const int8_t* rp[KH];
  size_t adv[KH], tap[KH];
  for (int ky = 0; ky < KH; ++ky) {
    rp[ky] = rows.p[ky] + c0;
    adv[ky] = size_t(sw) * rows.step[ky];
    tap[ky] = size_t(dw) * rows.step[ky];
  }
  for (int i = 0; i < count; ++i) {
    __m512i acc = bias;
#pragma GCC unroll 5
    for (int ky = 0; ky < KH; ++ky) {
#pragma GCC unroll 5
      for (int kx = 0; kx < KW; ++kx)
        acc = _mm512_dpwssd_epi32(acc, load16_taps<kTail>(rp[ky] + kx * tap[ky], m), wv[ky * KW + kx]);
      rp[ky] += adv[ky];
    }
    store16<kTail>(yp + size_t(i) * d.C + c0, requant16(e, acc, mult), m);
  }
}

// Dilation 1, stride S: four adjacent output pixels share input columns, so
// each input vector is widened once per group instead of once per tap.
template <int KH, int KW, int S, bool kTail>
void dw_run_block_grouped(const DwCtx& d, const Epilogue& e, const TapRows& rows, int count,
                          int8_t* yp, int c0) {
  constexpr int G = 4, U = (G - 1) * S + KW;
  const __mmask16 m = kTail ? d.tail_mask : __mmask16(0xFFFF);
  const int32_t* wb = d.w + size_t(c0) * KH * KW;
  const __m512i bias = _mm512_maskz_loadu_epi32(m, d.bias + c0);
  const __m512 mult = _mm512_maskz_loadu_ps(m, d.mult + c0);
  int i = 0;
  for (; i + G <= count; i += G) {
    __m512i acc[G];
#pragma GCC unroll 4
    for (int j = 0; j < G; ++j) acc[j] = bias;
#pragma GCC unroll 5
    for (int ky = 0; ky < KH; ++ky) {
      const size_t step = rows.step[ky];
      const int8_t* base = rows.p[ky] + c0 + size_t(i) * S * step;
      __m512i xin[U];
#pragma GCC unroll 16
      for (int u = 0; u < U; ++u) xin[u] = load16_taps<kTail>(base + size_t(u) * step, m);
#pragma GCC unroll 5
      for (int kx = 0; kx < KW; ++kx) {
        const __m512i w = _mm512_load_si512(wb + (ky * KW + kx) * kChanBlock);
#pragma GCC unroll 4
        for (int j = 0; j < G; ++j) acc[j] = _mm512_dpwssd_epi32(acc[j], xin[j * S + kx], w);
      }
    }
#pragma GCC unroll 4
    for (int j = 0; j < G; ++j) store16<kTail>(yp + size_t(i + j) * d.C + c0, requant16(e, acc[j], mult), m);
  }
  if (i < count) {
    TapRows rest = rows;
    for (int ky = 0; ky < KH; ++ky) rest.p[ky] += size_t(i) * S * rows.step[ky];
    dw_run_block<KH, KW, kTail>(d, e, rest, count - i, yp + size_t(i) * d.C, c0, S, 1);
  }
}

// All kernel rows inside the image: taps at constant offsets from one pointer,
// weights in registers across the run.
template <int KH, int KW, bool kTail>
void dw_run_block_inside(const DwCtx& d, const Epilogue& e, const int8_t* xbase, int count,
                         int8_t* yp, int c0, const size_t* off, size_t xstep) {
  constexpr int T = KH * KW;
  const __mmask16 m = kTail ? d.tail_mask : __mmask16(0xFFFF);
  const int32_t* wb = d.w + size_t(c0) * T;
  __m512i wv[T];
#pragma GCC unroll 25
  for (int t = 0; t < T; ++t) wv[t] = _mm512_load_si512(wb + t * kChanBlock);
  const __m512i bias = _mm512_maskz_loadu_epi32(m, d.bias + c0);
  const __m512 mult = _mm512_maskz_loadu_ps(m, d.mult + c0);
  const int8_t* xp = xbase + c0;
  int8_t* yq = yp + c0;
  for (int i = 0; i < count; ++i, xp += xstep, yq += d.C) {
    __m512i acc = bias;
#pragma GCC unroll 25
    for (int t = 0; t < T; ++t) acc = _mm512_dpwssd_epi32(acc, load16_taps<kTail>(xp + off[t], m), wv[t]);
    store16<kTail>(yq, requant16(e, acc, mult), m);
  }
}

// Quad path (see dw_quad_ok): one block of 64 channels. Each input column of a
// run is loaded once from each of four kernel rows (a missing fifth..eighth row
// is zero), flipped to u8 and interleaved into four sub-vectors of 16 lanes x 4
// rows; one vpdpbusd then applies four kernel rows of one tap column. G adjacent
// output pixels share the columns. The result comes back in channel order
// through the packs that undo the unpacks.
struct DwqBlock {
  const int8_t* w;     // [quad][kx][sub][64] int8
  const int32_t* bias; // [sub][16]
  const float* mult;   // [sub][16]
  __m512i zp16;
  __mmask64 m;         // channels of the block that exist
};

inline DwqBlock dwq_block(const DwCtx& d, int c0) {
  DwqBlock b;
  b.w = d.wq + size_t(c0 / 64) * d.wq_block;
  b.bias = d.bq + c0;
  b.mult = d.mq + c0;
  b.zp16 = _mm512_set1_epi16(short(d.out_zp));
  const int left = d.C - c0;
  b.m = left >= 64 ? ~__mmask64(0) : (__mmask64(1) << left) - 1;
  return b;
}

template <bool kMask, bool kLut>
__attribute__((always_inline)) inline void dwq_store(const Epilogue& e, const DwqBlock& b, const __m512i* acc, int8_t* dst) {
  __m512i q[4];
#pragma GCC unroll 4
  for (int s = 0; s < 4; ++s) {
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[s]), _mm512_load_ps(b.mult + 16 * s));
    f = _mm512_min_ps(_mm512_max_ps(f, e.lo), e.hi);
    q[s] = _mm512_cvtps_epi32(f);
    if (kLut) q[s] = _mm512_srai_epi32(_mm512_slli_epi32(lut16(e, _mm512_add_epi32(q[s], e.zp)), 24), 24);
  }
  // Values are in [qmin - zp, qmax - zp] (or int8 after the table): the
  // saturating packs are exact and put the channels back in order.
  __m512i p01 = _mm512_packs_epi32(q[0], q[1]), p23 = _mm512_packs_epi32(q[2], q[3]);
  if (!kLut) {
    p01 = _mm512_adds_epi16(p01, b.zp16);
    p23 = _mm512_adds_epi16(p23, b.zp16);
  }
  const __m512i out = _mm512_packs_epi16(p01, p23);
  if (kMask) _mm512_mask_storeu_epi8(dst, b.m, out);
  else _mm512_storeu_si512(dst, out);
}

// Rows 4q..4q+3 of one input column -> four sub-vectors of 16 lanes x 4 rows
// (u8). Rows beyond the kernel (KH) are zero (their weights are zero too).
template <int KH, bool kMask>
__attribute__((always_inline)) inline void dwq_column(const DwqBlock& b, int q, const int8_t* const* src, __m512i* x) {
  const __m512i flip = _mm512_set1_epi8(char(0x80));
  __m512i v[4];
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r)
    v[r] = 4 * q + r < KH ? _mm512_xor_si512(kMask ? _mm512_maskz_loadu_epi8(b.m, src[r])
                                                   : _mm512_loadu_si512(src[r]), flip)
                          : _mm512_setzero_si512();
  const __m512i ab_lo = _mm512_unpacklo_epi8(v[0], v[1]), ab_hi = _mm512_unpackhi_epi8(v[0], v[1]);
  const __m512i cd_lo = _mm512_unpacklo_epi8(v[2], v[3]), cd_hi = _mm512_unpackhi_epi8(v[2], v[3]);
  x[0] = _mm512_unpacklo_epi16(ab_lo, cd_lo);
  x[1] = _mm512_unpackhi_epi16(ab_lo, cd_lo);
  x[2] = _mm512_unpacklo_epi16(ab_hi, cd_hi);
  x[3] = _mm512_unpackhi_epi16(ab_hi, cd_hi);
}

// Output pixels [i, count) of a run in steps of G; returns the first pixel not done.
template <int KH, int KW, int S, int G, bool kMask, bool kLut>
int dwq_steps(const DwCtx& d, const Epilogue& e, const TapRows& rows, int i, int count, int8_t* yp,
              int c0, const DwqBlock& b) {
  constexpr int Q = (KH + 3) / 4, U = (G - 1) * S + KW;
  for (; i + G <= count; i += G) {
    __m512i acc[G][4];
#pragma GCC unroll 4
    for (int s = 0; s < 4; ++s) {
      const __m512i bias = _mm512_load_si512(b.bias + 16 * s);
#pragma GCC unroll 4
      for (int j = 0; j < G; ++j) acc[j][s] = bias;
    }
#pragma GCC unroll 2
    for (int q = 0; q < Q; ++q) {
      const int8_t* base[4];
      size_t step[4];
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r) {
        const int ky = 4 * q + r < KH ? 4 * q + r : 0;
        step[r] = rows.step[ky];
        base[r] = rows.p[ky] + c0 + size_t(i) * S * step[r];
      }
#pragma GCC unroll 16
      for (int u = 0; u < U; ++u) {
        const int8_t* src[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r) src[r] = 4 * q + r < KH ? base[r] + size_t(u) * step[r] : nullptr;
        __m512i x[4];
        dwq_column<KH, kMask>(b, q, src, x);
#pragma GCC unroll 4
        for (int j = 0; j < G; ++j) {
          const int kx = u - j * S;
          if (kx < 0 || kx >= KW) continue;
#pragma GCC unroll 4
          for (int s = 0; s < 4; ++s)
            acc[j][s] = _mm512_dpbusd_epi32(acc[j][s], x[s],
                                            _mm512_load_si512(b.w + ((q * KW + kx) * 4 + s) * 64));
        }
      }
    }
#pragma GCC unroll 4
    for (int j = 0; j < G; ++j) dwq_store<kMask, kLut>(e, b, acc[j], yp + size_t(i + j) * d.C + c0);
  }
  return i;
}

template <int KH, int KW, int S, bool kMask, bool kLut>
void dwq_run_block(const DwCtx& d, const Epilogue& e, const TapRows& rows, int count, int8_t* yp,
                   int c0, const DwqBlock& b) {
  int i = dwq_steps<KH, KW, S, 4, kMask, kLut>(d, e, rows, 0, count, yp, c0, b);
  i = dwq_steps<KH, KW, S, 2, kMask, kLut>(d, e, rows, i, count, yp, c0, b);
  dwq_steps<KH, KW, S, 1, kMask, kLut>(d, e, rows, i, count, yp, c0, b);
}

// A run of output pixels, channels [0, cquad).
template <int KH, int KW>
void dwq_run(const DwCtx& d, const Epilogue& e, const TapRows& rows, int count, int8_t* yp) {
  const int stride = d.p->shape.stride_w;
  for (int c0 = 0; c0 < d.cquad; c0 += 64) {
    const DwqBlock b = dwq_block(d, c0);
    const bool mask = c0 + 64 > d.C;
#define MNQ_DWQ(S_, M_, L_) dwq_run_block<KH, KW, S_, M_, L_>(d, e, rows, count, yp, c0, b)
    if (stride == 1) {
      if (mask) { if (e.has_lut) MNQ_DWQ(1, true, true); else MNQ_DWQ(1, true, false); }
      else { if (e.has_lut) MNQ_DWQ(1, false, true); else MNQ_DWQ(1, false, false); }
    } else {
      if (mask) { if (e.has_lut) MNQ_DWQ(2, true, true); else MNQ_DWQ(2, true, false); }
      else { if (e.has_lut) MNQ_DWQ(2, false, true); else MNQ_DWQ(2, false, false); }
    }
#undef MNQ_DWQ
  }
}

// One output pixel near the left or right edge, channels [0, cquad). row0: the
// kernel rows at input column 0 (the x_zp row with step 0 in the vertical
// padding); a tap column in the horizontal padding uses d.zx (x_zp ^ 0x80 in
// every row of the kernel, the same for all channels).
template <int KH, int KW, bool kMask, bool kLut>
void dwq_pixel_block(const DwCtx& d, const Epilogue& e, const TapRows& row0, int ox, int8_t* yp,
                     int c0, const DwqBlock& b) {
  const ConvShape& s = d.p->shape;
  constexpr int Q = (KH + 3) / 4;
  __m512i acc[4];
#pragma GCC unroll 4
  for (int sb = 0; sb < 4; ++sb) acc[sb] = _mm512_load_si512(b.bias + 16 * sb);
#pragma GCC unroll 2
  for (int q = 0; q < Q; ++q) {
#pragma GCC unroll 5
    for (int kx = 0; kx < KW; ++kx) {
      const int ix = ox * s.stride_w - s.pad_left + kx;
      __m512i x[4];
      if (ix >= 0 && ix < s.in_w) {
        const int8_t* src[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r) {
          const int ky = 4 * q + r < KH ? 4 * q + r : 0;
          src[r] = row0.p[ky] + c0 + size_t(ix) * row0.step[ky];
        }
        dwq_column<KH, kMask>(b, q, src, x);
      } else {
        x[0] = x[1] = x[2] = x[3] = d.zx[q];
      }
#pragma GCC unroll 4
      for (int sb = 0; sb < 4; ++sb)
        acc[sb] = _mm512_dpbusd_epi32(acc[sb], x[sb], _mm512_load_si512(b.w + ((q * KW + kx) * 4 + sb) * 64));
    }
  }
  dwq_store<kMask, kLut>(e, b, acc, yp + c0);
}

template <int KH, int KW>
void dwq_pixel(const DwCtx& d, const Epilogue& e, const TapRows& row0, int ox, int8_t* yp) {
  for (int c0 = 0; c0 < d.cquad; c0 += 64) {
    const DwqBlock b = dwq_block(d, c0);
    const bool mask = c0 + 64 > d.C;
    if (mask) { if (e.has_lut) dwq_pixel_block<KH, KW, true, true>(d, e, row0, ox, yp, c0, b);
                else dwq_pixel_block<KH, KW, true, false>(d, e, row0, ox, yp, c0, b); }
    else { if (e.has_lut) dwq_pixel_block<KH, KW, false, true>(d, e, row0, ox, yp, c0, b);
           else dwq_pixel_block<KH, KW, false, false>(d, e, row0, ox, yp, c0, b); }
  }
}

// Multipliers of the quad blocks in sub-vector order (sub s = 128-bit lane s of
// each 16-channel chunk), zero beyond C.
void dwq_multipliers(const DwCtx& d, const float* mult, float* mq) {
  const int lanes = d.pairs ? 64 : d.cquad;
  for (int c0 = 0; c0 < lanes; c0 += 64) {
    __m512 mc[4];
    for (int l = 0; l < 4; ++l) {
      const int n = d.C - c0 - 16 * l;
      const __mmask16 mm = n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
      mc[l] = d.pairs ? _mm512_loadu_ps(mult + 16 * (l % 2)) : _mm512_maskz_loadu_ps(mm, mult + c0 + 16 * l);
    }
    const __m512 t0 = _mm512_shuffle_f32x4(mc[0], mc[1], 0x44), t1 = _mm512_shuffle_f32x4(mc[0], mc[1], 0xEE);
    const __m512 t2 = _mm512_shuffle_f32x4(mc[2], mc[3], 0x44), t3 = _mm512_shuffle_f32x4(mc[2], mc[3], 0xEE);
    _mm512_store_ps(mq + c0 + 0, _mm512_shuffle_f32x4(t0, t2, 0x88));
    _mm512_store_ps(mq + c0 + 16, _mm512_shuffle_f32x4(t0, t2, 0xDD));
    _mm512_store_ps(mq + c0 + 32, _mm512_shuffle_f32x4(t1, t3, 0x88));
    _mm512_store_ps(mq + c0 + 48, _mm512_shuffle_f32x4(t1, t3, 0xDD));
  }
}

// A run of `count` output pixels (taps inside the image horizontally). Stride 1
// runs of 8 or more use the grouped kernel; other runs whose kernel rows are
// all inside the image use constant tap offsets; the rest use TapRows.
template <int KH, int KW>
void dw_run(const DwCtx& d, const Epilogue& e, const TapRows& rows, bool rows_inside, int count,
            int8_t* yp) {
  const ConvShape& s = d.p->shape;
  const bool grouped = s.stride_w == 1 && s.dilation_w == 1 && count >= 8;
  size_t off[KH * KW];
  for (int ky = 0; ky < KH; ++ky)
    for (int kx = 0; kx < KW; ++kx)
      off[ky * KW + kx] = (size_t(ky) * s.dilation_h * s.in_w + size_t(kx) * s.dilation_w) * d.C;
  const size_t xstep = size_t(s.stride_w) * d.C;
  if (d.cquad > 0) dwq_run<KH, KW>(d, e, rows, count, yp);
  if (d.pairs && count >= 2) {
    // Pixel pairs: 64 lanes = two pixels of 32 channels; a pair advances two
    // input columns (S = 2 in column steps) and writes 64 bytes.
    DwCtx dp = d;
    dp.C = 64;
    const DwqBlock b = dwq_block(dp, 0);
    const int pairs = count / 2;
    int i = 0;
    if (e.has_lut) {
      i = dwq_steps<KH, KW, 2, 4, false, true>(dp, e, rows, i, pairs, yp, 0, b);
      dwq_steps<KH, KW, 2, 1, false, true>(dp, e, rows, i, pairs, yp, 0, b);
    } else {
      i = dwq_steps<KH, KW, 2, 4, false, false>(dp, e, rows, i, pairs, yp, 0, b);
      dwq_steps<KH, KW, 2, 1, false, false>(dp, e, rows, i, pairs, yp, 0, b);
    }
    if (count % 2 == 0) return;
    TapRows last = rows;  // the odd last pixel: 16-channel path
    for (int ky = 0; ky < KH; ++ky) last.p[ky] += size_t(count - 1) * rows.step[ky];
    for (int c0 = 0; c0 < d.C; c0 += kChanBlock)
      dw_run_block<KH, KW, false>(d, e, last, 1, yp + size_t(count - 1) * d.C, c0, 1, 1);
    return;
  }
  for (int c0 = d.cquad < d.C ? d.cquad : d.C; c0 < d.C; c0 += kChanBlock) {
    const bool tail = c0 >= d.cfull;
    if (grouped) {
      if (tail) dw_run_block_grouped<KH, KW, 1, true>(d, e, rows, count, yp, c0);
      else dw_run_block_grouped<KH, KW, 1, false>(d, e, rows, count, yp, c0);
    } else if (rows_inside) {
      if (tail) dw_run_block_inside<KH, KW, true>(d, e, rows.p[0], count, yp, c0, off, xstep);
      else dw_run_block_inside<KH, KW, false>(d, e, rows.p[0], count, yp, c0, off, xstep);
    } else {
      if (tail) dw_run_block<KH, KW, true>(d, e, rows, count, yp, c0, s.stride_w, s.dilation_w);
      else dw_run_block<KH, KW, false>(d, e, rows, count, yp, c0, s.stride_w, s.dilation_w);
    }
  }
}

void depthwise_avx512(const DepthwiseArgs& a) {
  const PackedDepthwise& p = *a.w;
  const ConvShape& s = p.shape;
  DwCtx d;
  d.p = &p;
  d.x = a.x;
  d.C = s.in_c;
  d.cfull = d.C / kChanBlock * kChanBlock;
  d.taps = s.kernel_h * s.kernel_w;
  d.tail_mask = __mmask16((1u << (d.C - d.cfull)) - 1);
  d.w = reinterpret_cast<const int32_t*>(p.packed.data());
  d.bias = p.bias_folded.data();
  d.mult = a.out->multiplier.data();
  const Epilogue e = make_epilogue(*a.out);
  d.out_zp = a.out->zero_point;
  d.cquad = 0;
  d.pairs = false;
  if (dw_quad_ok(p)) {
    const int rest = d.C % 64;
    d.pairs = dw_quad_pairs(p);
    d.cquad = d.pairs ? 0 : (rest == 0 || rest > kDwqMinTail) ? ceil_div(d.C, 64) * 64 : d.C / 64 * 64;
    d.wq = reinterpret_cast<const int8_t*>(p.packed.data() + dwq_offset(s));
    d.wq_block = dwq_block_bytes(s);
    d.bq = reinterpret_cast<const int32_t*>(p.packed.data() + dwq_offset(s) +
                                            size_t(ceil_div(d.C, 64)) * d.wq_block);
  }
  // Scratch: a row of x_zp (padding taps read it), then the tap pointers.
  int8_t* zrow = static_cast<int8_t*>(a.scratch);
  const int zlen = (d.C + 63) / 64 * 64;
  std::memset(zrow, int(int8_t(p.x_zero_point)), size_t(zlen));
  d.zrow = zrow;
  uintptr_t pp = (reinterpret_cast<uintptr_t>(zrow + zlen) + 7) & ~uintptr_t(7);
  const int8_t** ptrs = reinterpret_cast<const int8_t**>(pp);
  if (d.cquad > 0 || d.pairs) {  // then the quad multipliers, 64-byte aligned
    float* mq = reinterpret_cast<float*>((pp + size_t(d.taps) * sizeof(void*) + 63) & ~uintptr_t(63));
    dwq_multipliers(d, d.mult, mq);
    d.mq = mq;
    for (int q = 0; q < 2; ++q) {
      uint32_t z = 0;
      for (int r = 0; r < 4; ++r)
        if (4 * q + r < s.kernel_h) z |= uint32_t(uint8_t(p.x_zero_point ^ 0x80)) << (8 * r);
      d.zx[q] = _mm512_set1_epi32(int32_t(z));
    }
  }
  const int c_rest = d.cquad < d.C ? d.cquad : d.C;  // first channel of the 16-channel path
  const bool k3 = s.kernel_h == 3 && s.kernel_w == 3, k5 = s.kernel_h == 5 && s.kernel_w == 5;
  // 3x6: a 3x3 depthwise over two range pieces per channel (a grouped conv the runtime views as one)
  const bool k36 = s.kernel_h == 3 && s.kernel_w == 6;
  // Output columns whose taps are all inside the image horizontally.
  const int span_w = (s.kernel_w - 1) * s.dilation_w;
  int ox_lo = (s.pad_left + s.stride_w - 1) / s.stride_w;
  int ox_hi = s.in_w - 1 - span_w + s.pad_left >= 0 ? (s.in_w - 1 - span_w + s.pad_left) / s.stride_w + 1 : 0;
  if (ox_hi > s.out_w) ox_hi = s.out_w;
  if (ox_lo > ox_hi) ox_lo = ox_hi;
  const bool fast = (k3 || k5 || k36) && ox_hi > ox_lo;
  for (int oy = a.row_begin; oy < a.row_end; ++oy) {
    int8_t* yrow = a.y + size_t(oy) * s.out_w * d.C;
    TapRows row0;  // kernel rows at input column 0, for the quad path's edge pixels
    for (int ky = 0; ky < s.kernel_h && ky < 5; ++ky) {
      const int iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
      const bool in = iy >= 0 && iy < s.in_h;
      row0.p[ky] = in ? a.x + size_t(iy) * s.in_w * d.C : zrow;
      row0.step[ky] = in ? size_t(d.C) : 0;
    }
    auto edge_pixel = [&](int ox) {
      int8_t* yp = yrow + size_t(ox) * d.C;
      if (d.cquad > 0) {
        if (k3) dwq_pixel<3, 3>(d, e, row0, ox, yp);
        else dwq_pixel<5, 5>(d, e, row0, ox, yp);
      }
      if (c_rest < d.C) dw_pixel(d, e, oy, ox, ptrs, yp, c_rest);
    };
    int ox = 0;
    if (fast) {
      TapRows rows;
      bool inside = true;
      const int ix0 = ox_lo * s.stride_w - s.pad_left;
      for (int ky = 0; ky < s.kernel_h; ++ky) {
        const int iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
        const bool in = iy >= 0 && iy < s.in_h;
        inside = inside && in;
        rows.p[ky] = in ? a.x + (size_t(iy) * s.in_w + ix0) * d.C : zrow;
        rows.step[ky] = in ? size_t(d.C) : 0;
      }
      for (; ox < ox_lo; ++ox) edge_pixel(ox);
      if (k3) dw_run<3, 3>(d, e, rows, inside, ox_hi - ox_lo, yrow + size_t(ox_lo) * d.C);
      else if (k5) dw_run<5, 5>(d, e, rows, inside, ox_hi - ox_lo, yrow + size_t(ox_lo) * d.C);
      else dw_run<3, 6>(d, e, rows, inside, ox_hi - ox_lo, yrow + size_t(ox_lo) * d.C);
      ox = ox_hi;
    }
    for (; ox < s.out_w; ++ox) edge_pixel(ox);
  }
}

}  // namespace
}  // namespace detail
}  // namespace mnq

MNQ_TARGET_END

namespace mnq {
namespace detail {
namespace avx512vnni {
void set_depthwise(IsaKernels& t) {
  t.depthwise_pack = depthwise_pack;
  t.depthwise_scratch_size = depthwise_scratch_size;
  t.depthwise = depthwise_avx512;
}
}  // namespace avx512vnni
}  // namespace detail
}  // namespace mnq

#endif
