// AArch64 dot-product depthwise convolution (depth multiplier 1): bit-identical
// to ref/depthwise.cc.
//
// Weights without zero points: sum_t (x - xz) w = sum_t x w - xz sum_t w, the
// second term folded into the bias (../depthwise.h). SDOT sums four int8
// products per int32 lane: here one channel's taps of one kernel column in four
// kernel rows. Per output row and group of four kernel rows (rows 4g..4g+3,
// missing rows weigh 0), the input rows are interleaved once into a row of
// 4-byte groups T[pixel][channel][row] (LD1 of 3 or 4 rows, ST4: 4 or 5
// instructions per 16 channel-pixels), with columns of x_zp for the left and
// right padding and a row of x_zp for rows outside the image. Then per output
// pixel and 16 channels, per group and kernel column: one 64-byte load of T and
// four SDOTs with the packed weights [c_pad / 16][group][kx][16 channels][4 rows]
// (3x3 without a table: in assembly, the weights held in registers over a row's
// pixels). Channel tails: 8, then 4 channels in vectors, then one by one in
// scalar code.
// Weights with zero points and kernels taller than 8 rows: the NEON kernel
// (neon/depthwise.cc); the pack then stores its layout (the header says which).
#include "../../internal.h"
#include "table.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "../depthwise.h"
#include "../epilogue.h"
#include "target.h"

namespace mnq {
namespace detail {
namespace {

constexpr int kDotBlock = 16;     // channels per packed block
constexpr int kDotMaxGroups = 2;  // groups of 4 kernel rows: kernels of up to 8 rows

inline int dot_groups(const ConvShape& s) { return ceil_div(s.kernel_h, 4); }

// Bytes of one block of 16 channels' packed weights.
inline size_t dot_block_bytes(const ConvShape& s) {
  return static_cast<size_t>(dot_groups(s)) * s.kernel_w * kDotBlock * 4;
}

void depthwise_pack_dot(PackedDepthwise* w) {
  if (!w->symmetric || dot_groups(w->shape) > kDotMaxGroups) {
    neon_kernels()->depthwise_pack(w);
    return;
  }
  const ConvShape& s = w->shape;
  const int c = s.in_c, kh = s.kernel_h, kw = s.kernel_w;
  const int c_pad = round_up(std::max(c, 1), kDotBlock);
  const size_t block = dot_block_bytes(s);
  int8_t* dst = reinterpret_cast<int8_t*>(dw_pack_begin(w, DwLayout::dot, c_pad / kDotBlock * block, c_pad, true));
  for (int ch = 0; ch < c; ++ch)
    for (int ky = 0; ky < kh; ++ky)
      for (int kx = 0; kx < kw; ++kx)
        dst[ch / kDotBlock * block + ((static_cast<size_t>(ky / 4) * kw + kx) * kDotBlock + ch % kDotBlock) * 4 +
            ky % 4] = w->w[(static_cast<size_t>(ch) * kh + ky) * kw + kx];
}

// The scratch: per group one interleaved row of (pad_left + in_w + pad_right) pixels, then a row
// of x_zp (in_w * c bytes), each rounded up to 64 bytes.
struct DotRows {
  size_t pixel;      // bytes per interleaved pixel (4 per channel)
  size_t row_bytes;  // one interleaved row
  size_t zp_bytes;
  int groups;
};
inline DotRows dot_rows(const ConvShape& s) {
  const size_t pixel = static_cast<size_t>(s.in_c) * 4;
  const size_t pixels = static_cast<size_t>(s.pad_left) + s.in_w + s.pad_right;
  return {pixel, (pixels * pixel + 63) / 64 * 64, (static_cast<size_t>(s.in_w) * s.in_c + 63) / 64 * 64,
          dot_groups(s)};
}

size_t depthwise_scratch_size_dot(const PackedDepthwise& w, int row_begin, int row_end) {
  if (dw_layout(w) != DwLayout::dot) return neon_kernels()->depthwise_scratch_size(w, row_begin, row_end);
  const DotRows r = dot_rows(w.shape);
  return static_cast<size_t>(r.groups) * r.row_bytes + r.zp_bytes + 64;
}

// dst[4 i + r] = src[r][i] for i < n, r < 3; dst[4 i + 3] = src[3][i] when kFour, else 0.
// Blocks of 64 bytes in assembly (the compiler's register moves for ST4 would double the count).
#define MNQ_DW_CHUNK(ROW3)                 \
  "ld1 {v0.16b}, [%[s0]], #16\n"          \
  "ld1 {v1.16b}, [%[s1]], #16\n"          \
  "ld1 {v2.16b}, [%[s2]], #16\n"          \
  ROW3                                     \
  "st4 {v0.16b-v3.16b}, [%[d]], #64\n"
template <bool kFour>
void dw_interleave_rows(const int8_t* const* src, size_t n, int8_t* dst) {
  const int8_t *s0 = src[0], *s1 = src[1], *s2 = src[2], *s3 = src[3];
  if (n >= 64) {
    const size_t blocks = n / 64;
    int8_t* d = dst;
    size_t left = blocks;
    if (kFour)
      __asm__ volatile("1:\n" MNQ_DW_CHUNK("ld1 {v3.16b}, [%[s3]], #16\n") MNQ_DW_CHUNK("ld1 {v3.16b}, [%[s3]], #16\n")
                           MNQ_DW_CHUNK("ld1 {v3.16b}, [%[s3]], #16\n") MNQ_DW_CHUNK("ld1 {v3.16b}, [%[s3]], #16\n")
                       "subs %[left], %[left], #1\n"
                       "b.ne 1b\n"
                       : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [d] "+r"(d), [left] "+r"(left)
                       :
                       : "cc", "memory", "v0", "v1", "v2", "v3");
    else
      __asm__ volatile("movi v3.16b, #0\n"
                       "1:\n" MNQ_DW_CHUNK("") MNQ_DW_CHUNK("") MNQ_DW_CHUNK("") MNQ_DW_CHUNK("")
                       "subs %[left], %[left], #1\n"
                       "b.ne 1b\n"
                       : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [d] "+r"(d), [left] "+r"(left)
                       :
                       : "cc", "memory", "v0", "v1", "v2", "v3");
    if (blocks * 64 == n) return;
    s0 = src[0];
    s1 = src[1];
    s2 = src[2];
    s3 = src[3];
  }
  const int8x16_t zero = vdupq_n_s8(0);
  size_t i = n / 64 * 64;
  if (n < 16) {
    for (; i < n; ++i) {
      dst[4 * i] = s0[i];
      dst[4 * i + 1] = s1[i];
      dst[4 * i + 2] = s2[i];
      dst[4 * i + 3] = kFour ? s3[i] : 0;
    }
    return;
  }
  for (; i < n; i += 16) {
    if (i + 16 > n) i = n - 16;  // the last 16 (overlapping: the same values again)
    vst4q_s8(dst + 4 * i,
             (int8x16x4_t{{vld1q_s8(s0 + i), vld1q_s8(s1 + i), vld1q_s8(s2 + i), kFour ? vld1q_s8(s3 + i) : zero}}));
  }
}
#undef MNQ_DW_CHUNK

// Everything the pixels of one call share.
struct DotCall {
  const int8_t* w;     // packed weights
  const int32_t* bias; // folded, c_pad
  size_t block;        // bytes per block of 16 channels' weights
  int c, kw, groups, out_w;
  size_t pixel;        // bytes per interleaved pixel
  size_t step;         // bytes between output pixels in an interleaved row (stride_w pixels)
  size_t col;          // bytes between kernel columns (dilation_w pixels)
};

// 4 outputs from one accumulator: the output stage of requant8 on 4 lanes.
inline int8x8_t requant4(int32x4_t a, const float* m, const NeonOutput& o) {
  const float32x4_t mv = vld1q_f32(m);
  return clamp8(vqmovn_s16(requant_s16(a, a, mv, mv, o.zp)), o);
}

// Output pixels of one row, channels [c_begin, c): t[g] = the interleaved row of group g at pixel 0.
// KW > 0: the kernel width (columns unrolled); 0: d.kw at run time.
template <int KW, bool kLut>
MNQ_DOTPROD __attribute__((noinline)) void dw_dot_row(const DotCall& d, const NeonOutput& o, const NeonLut& lut,
                                                      int c_begin, const int8_t* const* t, int8_t* y) {
  const int kw = KW > 0 ? KW : d.kw, c = d.c;
  for (int ox = 0; ox < d.out_w; ++ox, y += c) {
    const size_t at = static_cast<size_t>(ox) * d.step;
    int c0 = c_begin;
    for (; c0 + 16 <= c; c0 += 16) {
      const int32x4x4_t bv = vld1q_s32_x4(d.bias + c0);
      int32x4_t a0 = bv.val[0], a1 = bv.val[1], a2 = bv.val[2], a3 = bv.val[3];
      const int8_t* wp = d.w + static_cast<size_t>(c0 / kDotBlock) * d.block;
      for (int g = 0; g < d.groups; ++g) {
        const int8_t* xp = t[g] + at + static_cast<size_t>(c0) * 4;
#pragma GCC unroll 6
        for (int kx = 0; kx < kw; ++kx, wp += 64, xp += d.col) {
          const int8x16x4_t x = vld1q_s8_x4(xp), wv = vld1q_s8_x4(wp);
          a0 = vdotq_s32(a0, x.val[0], wv.val[0]);
          a1 = vdotq_s32(a1, x.val[1], wv.val[1]);
          a2 = vdotq_s32(a2, x.val[2], wv.val[2]);
          a3 = vdotq_s32(a3, x.val[3], wv.val[3]);
        }
      }
      int8x16_t q = requant16(a0, a1, a2, a3, o.m + c0, o);
      if (kLut) q = lut.apply(q);
      vst1q_s8(y + c0, q);
    }
    for (; c0 + 8 <= c; c0 += 8) {  // half a block
      int32x4_t a0 = vld1q_s32(d.bias + c0), a1 = vld1q_s32(d.bias + c0 + 4);
      const int8_t* wp = d.w + static_cast<size_t>(c0 / kDotBlock) * d.block + (c0 % kDotBlock) * 4;
      for (int g = 0; g < d.groups; ++g) {
        const int8_t* xp = t[g] + at + static_cast<size_t>(c0) * 4;
        for (int kx = 0; kx < kw; ++kx, wp += 64, xp += d.col) {
          a0 = vdotq_s32(a0, vld1q_s8(xp), vld1q_s8(wp));
          a1 = vdotq_s32(a1, vld1q_s8(xp + 16), vld1q_s8(wp + 16));
        }
      }
      int8x8_t q = requant8(a0, a1, o.m + c0, o);
      if (kLut) q = lut.apply8(q);
      vst1_s8(y + c0, q);
    }
    for (; c0 + 4 <= c; c0 += 4) {  // a quarter
      int32x4_t a0 = vld1q_s32(d.bias + c0);
      const int8_t* wp = d.w + static_cast<size_t>(c0 / kDotBlock) * d.block + (c0 % kDotBlock) * 4;
      for (int g = 0; g < d.groups; ++g) {
        const int8_t* xp = t[g] + at + static_cast<size_t>(c0) * 4;
        for (int kx = 0; kx < kw; ++kx, wp += 64, xp += d.col) a0 = vdotq_s32(a0, vld1q_s8(xp), vld1q_s8(wp));
      }
      int8x8_t q = requant4(a0, o.m + c0, o);
      if (kLut) q = lut.apply8(q);
      const int32_t four = vget_lane_s32(vreinterpret_s32_s8(q), 0);
      std::memcpy(y + c0, &four, sizeof four);  // unaligned
    }
    for (; c0 < c; ++c0) {  // the last 1-3 channels: the same sums in scalar code
      int32_t acc = d.bias[c0];
      const int8_t* wp = d.w + static_cast<size_t>(c0 / kDotBlock) * d.block + (c0 % kDotBlock) * 4;
      for (int g = 0; g < d.groups; ++g) {
        const int8_t* xp = t[g] + at + static_cast<size_t>(c0) * 4;
        for (int kx = 0; kx < kw; ++kx, wp += 64, xp += d.col)
          for (int r = 0; r < 4; ++r) acc += xp[r] * wp[r];
      }
      y[c0] = requant_one(acc, o.m[c0], o);
    }
  }
}

// 3x3 (one group), no table: blocks of 16 channels over the row's pixels, wholly in assembly
// (the compiler spills weights here): the block's 12 weight vectors in v0-v11, per pixel the
// bias into the accumulators v16-v19, three 64-byte loads of T (v20-v23), 12 SDOTs, the output
// stage of ../epilogue.h (requant_s16, narrowing, the clamp when kClamp) and one store: 40
// instructions (42 with the clamp) per pixel and 16 channels.
#define MNQ_DW_TAPS(W0, W1, W2, W3)                   \
  "sdot v16.4s, v20.16b, " W0 ".16b\n"                \
  "sdot v17.4s, v21.16b, " W1 ".16b\n"                \
  "sdot v18.4s, v22.16b, " W2 ".16b\n"                \
  "sdot v19.4s, v23.16b, " W3 ".16b\n"
#define MNQ_DW_ROW33(CLAMP)                                                    \
  "ld1 {v0.16b-v3.16b}, [%[w]], #64\n"                                         \
  "ld1 {v4.16b-v7.16b}, [%[w]], #64\n"                                         \
  "ld1 {v8.16b-v11.16b}, [%[w]]\n"                                             \
  "dup v28.8h, %w[zp]\n"                                                       \
  "dup v29.16b, %w[qmin]\n"                                                    \
  "dup v30.16b, %w[qmax]\n"                                                    \
  "1:\n"                                                                       \
  "ld1 {v16.4s-v19.4s}, [%[bias]]\n"                                           \
  "ld1 {v20.16b-v23.16b}, [%[p0]], %[step]\n"                                  \
  MNQ_DW_TAPS("v0", "v1", "v2", "v3")                                          \
  "ld1 {v20.16b-v23.16b}, [%[p1]], %[step]\n"                                  \
  MNQ_DW_TAPS("v4", "v5", "v6", "v7")                                          \
  "ld1 {v20.16b-v23.16b}, [%[p2]], %[step]\n"                                  \
  MNQ_DW_TAPS("v8", "v9", "v10", "v11")                                        \
  "ld1 {v24.4s-v27.4s}, [%[m]]\n"                                              \
  "scvtf v16.4s, v16.4s\n"                                                     \
  "scvtf v17.4s, v17.4s\n"                                                     \
  "scvtf v18.4s, v18.4s\n"                                                     \
  "scvtf v19.4s, v19.4s\n"                                                     \
  "fmul v16.4s, v16.4s, v24.4s\n"                                              \
  "fmul v17.4s, v17.4s, v25.4s\n"                                              \
  "fmul v18.4s, v18.4s, v26.4s\n"                                              \
  "fmul v19.4s, v19.4s, v27.4s\n"                                              \
  "fcvtns v16.4s, v16.4s\n"                                                    \
  "fcvtns v17.4s, v17.4s\n"                                                    \
  "fcvtns v18.4s, v18.4s\n"                                                    \
  "fcvtns v19.4s, v19.4s\n"                                                    \
  "sqxtn v16.4h, v16.4s\n"                                                     \
  "sqxtn2 v16.8h, v17.4s\n"                                                    \
  "sqxtn v18.4h, v18.4s\n"                                                     \
  "sqxtn2 v18.8h, v19.4s\n"                                                    \
  "sqadd v16.8h, v16.8h, v28.8h\n"                                             \
  "sqadd v18.8h, v18.8h, v28.8h\n"                                             \
  "sqxtn v16.8b, v16.8h\n"                                                     \
  "sqxtn2 v16.16b, v18.8h\n"                                                   \
  CLAMP                                                                        \
  "st1 {v16.16b}, [%[y]], %[c]\n"                                              \
  "subs %[n], %[n], #1\n"                                                      \
  "b.ne 1b\n"
// The operands of MNQ_DW_ROW33 (the variables of dw_dot_row_33's block loop).
#define MNQ_DW_ROW33_OPERANDS                                                                                     \
  : [w] "+r"(w), [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2), [y] "+r"(yp), [n] "+r"(n)                           \
  : [bias] "r"(bias), [m] "r"(m), [step] "r"(step), [c] "r"(c), [zp] "r"(o.zp_s), [qmin] "r"(o.qmin_s),             \
    [qmax] "r"(o.qmax_s)                                                                                          \
  : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v16", "v17", "v18", \
    "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30"
template <bool kClamp>
MNQ_DOTPROD __attribute__((noinline)) void dw_dot_row_33(const DotCall& d, const NeonOutput& o, const int8_t* t,
                                                         int8_t* y) {
  if (d.out_w <= 0) return;
  const int blocks = d.c / kDotBlock;
  const size_t step = d.step, col = d.col, c = static_cast<size_t>(d.c);
  for (int b = 0; b < blocks; ++b) {
    const int8_t* w = d.w + static_cast<size_t>(b) * d.block;
    const int32_t* bias = d.bias + b * kDotBlock;
    const float* m = o.m + b * kDotBlock;
    const int8_t* p0 = t + static_cast<size_t>(b) * kDotBlock * 4;
    const int8_t* p1 = p0 + col;
    const int8_t* p2 = p1 + col;
    int8_t* yp = y + b * kDotBlock;
    uint64_t n = static_cast<uint64_t>(d.out_w);
    if (kClamp)
      __asm__ volatile(MNQ_DW_ROW33("smax v16.16b, v16.16b, v29.16b\n"
                                    "smin v16.16b, v16.16b, v30.16b\n") MNQ_DW_ROW33_OPERANDS);
    else
      __asm__ volatile(MNQ_DW_ROW33("") MNQ_DW_ROW33_OPERANDS);
  }
}
#undef MNQ_DW_ROW33_OPERANDS
#undef MNQ_DW_ROW33
#undef MNQ_DW_TAPS

void depthwise_dot(const DepthwiseArgs& a) {
  const PackedDepthwise& w = *a.w;
  if (dw_layout(w) != DwLayout::dot) {
    neon_kernels()->depthwise(a);
    return;
  }
  const ConvShape& s = w.shape;
  const int c = s.in_c, kh = s.kernel_h, kw = s.kernel_w;
  const NeonOutput o(*a.out);
  static const int8_t kNoTable[256] = {};
  const NeonLut lut(o.lut ? o.lut : kNoTable);
  const DotRows geo = dot_rows(s);
  DotCall d;
  d.w = reinterpret_cast<const int8_t*>(w.packed.data() + kDwHeader);
  d.bias = w.bias_folded.data();
  d.block = dot_block_bytes(s);
  d.c = c;
  d.kw = kw;
  d.groups = geo.groups;
  d.out_w = s.out_w;
  d.pixel = geo.pixel;
  d.step = static_cast<size_t>(s.stride_w) * geo.pixel;
  d.col = static_cast<size_t>(s.dilation_w) * geo.pixel;

  // The interleaved rows (x_zp in the padding columns, written once per call) and the row of x_zp.
  int8_t* base = reinterpret_cast<int8_t*>((reinterpret_cast<uintptr_t>(a.scratch) + 63) & ~uintptr_t(63));
  const int8_t pad = static_cast<int8_t>(w.x_zero_point);
  int8_t* t[kDotMaxGroups];
  const size_t left = static_cast<size_t>(s.pad_left) * geo.pixel, row_in = static_cast<size_t>(s.in_w) * c;
  for (int g = 0; g < geo.groups; ++g) {
    t[g] = base + static_cast<size_t>(g) * geo.row_bytes;
    std::memset(t[g], pad, left);
    std::memset(t[g] + left + 4 * row_in, pad, static_cast<size_t>(s.pad_right) * geo.pixel);
  }
  int8_t* zp_row = base + static_cast<size_t>(geo.groups) * geo.row_bytes;
  bool zp_ready = false;

  const bool row33 = geo.groups == 1 && kw == 3 && !o.lut;
  const int c_tail = row33 ? c / kDotBlock * kDotBlock : 0;  // channels dw_dot_row_33 leaves to dw_dot_row
  for (int oy = a.row_begin; oy < a.row_end; ++oy) {
    const int iy0 = oy * s.stride_h - s.pad_top;
    for (int g = 0; g < geo.groups; ++g) {
      const int rows = std::min(4, kh - 4 * g);
      const int8_t* src[4];
      for (int r = 0; r < 4; ++r) {
        const int iy = iy0 + (4 * g + std::min(r, rows - 1)) * s.dilation_h;  // rows past the kernel weigh 0
        if (iy >= 0 && iy < s.in_h) {
          src[r] = a.x + static_cast<size_t>(iy) * row_in;
          continue;
        }
        if (!zp_ready) {
          std::memset(zp_row, pad, row_in);
          zp_ready = true;
        }
        src[r] = zp_row;
      }
      if (rows == 4)
        dw_interleave_rows<true>(src, row_in, t[g] + left);
      else
        dw_interleave_rows<false>(src, row_in, t[g] + left);
    }
    int8_t* y = a.y + static_cast<size_t>(oy) * s.out_w * c;
    if (row33) {
      if (o.clamps)
        dw_dot_row_33<true>(d, o, t[0], y);
      else
        dw_dot_row_33<false>(d, o, t[0], y);
      if (c_tail < c) dw_dot_row<3, false>(d, o, lut, c_tail, t, y);
    } else if (o.lut) {
      if (kw == 3)
        dw_dot_row<3, true>(d, o, lut, 0, t, y);
      else if (kw == 5)
        dw_dot_row<5, true>(d, o, lut, 0, t, y);
      else
        dw_dot_row<0, true>(d, o, lut, 0, t, y);
    } else {
      if (kw == 3)
        dw_dot_row<3, false>(d, o, lut, 0, t, y);
      else if (kw == 5)
        dw_dot_row<5, false>(d, o, lut, 0, t, y);
      else
        dw_dot_row<0, false>(d, o, lut, 0, t, y);
    }
  }
}

}  // namespace

namespace neondot {
void set_depthwise(IsaKernels& t) {
  t.depthwise_pack = depthwise_pack_dot;
  t.depthwise_scratch_size = depthwise_scratch_size_dot;
  t.depthwise = depthwise_dot;
}
}  // namespace neondot
}  // namespace detail
}  // namespace mnq

#endif  // __aarch64__
