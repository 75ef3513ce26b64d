// Helpers shared by the AArch64 kernels (neon.cc, neondot.cc).
//
// Everything here has internal linkage (anonymous namespace): neondot.cc is
// compiled with the dot-product extension enabled, and an inline function with
// external linkage could otherwise be merged by the linker into the baseline
// (Cortex-A72) path with SDOT instructions in it.
//
// Output stage, exactly as docs/quantization.md / kernels.h specify:
//   q = clamp(round_half_even(float(acc) * m[c]) + zp, qmin, qmax) [-> lut[q + 128]]
// float(acc) is SCVTF (round to nearest even, as the C++ conversion), the
// product is one float32 multiply, FCVTNS rounds half to even and saturates to
// int32; the zero point is added with saturation, and the narrowing steps
// saturate, which commutes with the final clamp because [qmin, qmax] lies inside
// the int8 range. So the result equals the scalar formula for every finite
// product (and the clamp bound for out-of-range ones).
#pragma once

#if defined(__aarch64__)

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../direct_conv.h"
#include "../direct_pack.h"
#include "../internal.h"

namespace mnq {
namespace detail {
namespace {

// Per-call constants of the output stage.
struct NeonOutput {
  int32x4_t zp;
  int8x16_t qmin, qmax;
  int32_t zp_s, qmin_s, qmax_s;
  const float* m;
  const int8_t* lut;  // nullptr when no fused table
  explicit NeonOutput(const OutputStage& o)
      : zp(vdupq_n_s32(o.zero_point)),
        qmin(vdupq_n_s8(static_cast<int8_t>(o.qmin))),
        qmax(vdupq_n_s8(static_cast<int8_t>(o.qmax))),
        zp_s(o.zero_point), qmin_s(o.qmin), qmax_s(o.qmax),
        m(o.multiplier.data()), lut(o.has_lut ? o.lut : nullptr) {}
};

// One lane of the output stage in scalar code (channel tails); the same
// instructions as the vector path (SCVTF, FMUL, FCVTNS, saturating add).
inline int8_t requant_one(int32_t acc, float m, const NeonOutput& o) {
  const float v = static_cast<float>(acc) * m;
  const int32_t r = vcvtns_s32_f32(v);
  int64_t q = static_cast<int64_t>(r) + o.zp_s;
  if (q < o.qmin_s) q = o.qmin_s;
  if (q > o.qmax_s) q = o.qmax_s;
  int8_t out = static_cast<int8_t>(q);
  if (o.lut) out = o.lut[static_cast<int>(out) + 128];
  return out;
}

// int32x4 accumulators times float multipliers -> rounded, zero point added (saturating).
inline int32x4_t requant_s32(int32x4_t acc, float32x4_t m, int32x4_t zp) {
  const float32x4_t v = vmulq_f32(vcvtq_f32_s32(acc), m);
  return vqaddq_s32(vcvtnq_s32_f32(v), zp);
}

// 8 outputs: accumulators a (channels 0-3) and b (4-7), multipliers at m.
inline int8x8_t requant8(int32x4_t a, int32x4_t b, const float* m, const NeonOutput& o) {
  const int32x4_t ra = requant_s32(a, vld1q_f32(m), o.zp);
  const int32x4_t rb = requant_s32(b, vld1q_f32(m + 4), o.zp);
  const int8x8_t q = vqmovn_s16(vcombine_s16(vqmovn_s32(ra), vqmovn_s32(rb)));
  return vmin_s8(vmax_s8(q, vget_low_s8(o.qmin)), vget_low_s8(o.qmax));
}

// 16 outputs from four accumulators.
inline int8x16_t requant16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d, const float* m,
                           const NeonOutput& o) {
  const int32x4_t ra = requant_s32(a, vld1q_f32(m), o.zp);
  const int32x4_t rb = requant_s32(b, vld1q_f32(m + 4), o.zp);
  const int32x4_t rc = requant_s32(c, vld1q_f32(m + 8), o.zp);
  const int32x4_t rd = requant_s32(d, vld1q_f32(m + 12), o.zp);
  const int16x8_t lo = vcombine_s16(vqmovn_s32(ra), vqmovn_s32(rb));
  const int16x8_t hi = vcombine_s16(vqmovn_s32(rc), vqmovn_s32(rd));
  const int8x16_t q = vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi));
  return vminq_s8(vmaxq_s8(q, o.qmin), o.qmax);
}

// 256-entry int8 table held in 16 registers; lookups 16 bytes at a time with
// TBL/TBX over four 64-byte quarters (index = q + 128).
struct NeonLut {
  uint8x16x4_t t[4];
  explicit NeonLut(const int8_t* table) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(table);
    for (int i = 0; i < 4; ++i) t[i] = vld1q_u8_x4(p + 64 * i);
  }
  int8x16_t apply(int8x16_t q) const {
    const uint8x16_t idx = veorq_u8(vreinterpretq_u8_s8(q), vdupq_n_u8(0x80));  // q + 128
    const uint8x16_t k64 = vdupq_n_u8(64);
    uint8x16_t r = vqtbl4q_u8(t[0], idx);
    uint8x16_t i = vsubq_u8(idx, k64);
    r = vqtbx4q_u8(r, t[1], i);
    i = vsubq_u8(i, k64);
    r = vqtbx4q_u8(r, t[2], i);
    i = vsubq_u8(i, k64);
    r = vqtbx4q_u8(r, t[3], i);
    return vreinterpretq_s8_u8(r);
  }
  int8x8_t apply8(int8x8_t q) const {
    return vget_low_s8(apply(vcombine_s8(q, q)));
  }
};

inline void lut_bytes(const int8_t* table, int8_t* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = table[static_cast<int>(y[i]) + 128];
}

// Row sums of int8 x (for the weight zero-point correction of asymmetric weights).
inline int32_t row_sum(const int8_t* x, size_t k) {
  int32x4_t s = vdupq_n_s32(0);
  size_t i = 0;
  for (; i + 16 <= k; i += 16) s = vpadalq_s16(s, vpaddlq_s8(vld1q_s8(x + i)));
  int32_t r = vaddvq_s32(s);
  for (; i < k; ++i) r += x[i];
  return r;
}

// GEMM bias folding shared by the GEMM packers:
//   sum_k (x - xz)(w - wz) + b = sum_k x w - wz * rowsum(x) + [b - xz * sum_k w + k * xz * wz]
// The bracket is bias_folded[n] (computed modulo 2^32, like the int32 accumulator),
// padded with zeros to n_pad; the wz * rowsum(x) term is applied per row by the kernel.
inline void fold_gemm_bias(PackedGemm* w, int n_pad) {
  w->bias_folded.assign(static_cast<size_t>(n_pad), 0);
  for (int n = 0; n < w->n; ++n) {
    int64_t sum_w = 0;
    const int8_t* row = w->w.data() + static_cast<size_t>(n) * w->k;
    for (int k = 0; k < w->k; ++k) sum_w += row[k];
    const int64_t wz = w->w_zero_point.empty() ? 0 : w->w_zero_point[n];
    const int64_t b = w->bias.empty() ? 0 : w->bias[n];
    const int64_t xz = w->x_zero_point;
    const uint64_t v = static_cast<uint64_t>(b - xz * sum_w + static_cast<int64_t>(w->k) * xz * wz);
    w->bias_folded[n] = static_cast<int32_t>(static_cast<uint32_t>(v));
  }
}


// ------------------------------------------------------------- direct conv
// The direct general conv (no im2col) of neon.cc and neondot.cc: direct_conv.h's
// row driver over int8 row buffers (the padded input row, x_zp outside the
// input; kernel rows in the vertical padding read one row of x_zp), weights
// packed by direct_pack.h with activation offset 0 in blocks of 16 output
// channels (four int32x4 accumulators per pixel), out_c <= 64.
constexpr int kDirectBlock = 16;
constexpr int kDirectMaxBlocks = 4;

inline size_t direct_scratch_bytes(const ConvShape& s, int group_bytes) {
  return static_cast<size_t>(s.kernel_h + 1) * direct::row_bytes(s, group_bytes) + 64;
}

// Row buffer: the input row at offset pad_left * in_c, x_zp around it.
inline void direct_fill_row(const ConvShape& s, const int8_t* xrow, int8_t pad, size_t len, int8_t* dst) {
  size_t lo = static_cast<size_t>(s.pad_left) * s.in_c;
  if (lo > len) lo = len;
  size_t hi = lo + static_cast<size_t>(s.in_w) * s.in_c;
  if (hi > len) hi = len;
  std::memset(dst, pad, lo);
  std::memcpy(dst + lo, xrow, hi - lo);
  std::memset(dst + hi, pad, len - hi);
}

// The 2 (NEON) or 4 (SDOT) bytes at p, any alignment, repeated over a vector:
// one LD1R (compilers would rather load into a general register and DUP from
// there: two instructions, and the DUP competes with the arithmetic).
inline int8x16_t load_dup2(const int8_t* p) {
  int16x8_t v;
  __asm__("ld1r {%0.8h}, [%1]" : "=w"(v) : "r"(p), "m"(*reinterpret_cast<const int8_t(*)[2]>(p)));
  return vreinterpretq_s8_s16(v);
}
inline int8x16_t load_dup4(const int8_t* p) {
  int32x4_t v;
  __asm__("ld1r {%0.4s}, [%1]" : "=w"(v) : "r"(p), "m"(*reinterpret_cast<const int8_t(*)[4]>(p)));
  return vreinterpretq_s8_s32(v);
}

// Output stage of one pixel's block of 16 channels (valid of them stored).
inline void direct_store16(const int32x4_t acc[4], const float* m, const NeonOutput& o, const NeonLut* lut,
                           int valid, int8_t* y) {
  int8x16_t q = requant16(acc[0], acc[1], acc[2], acc[3], m, o);
  if (lut) q = lut->apply(q);
  if (valid >= kDirectBlock) {
    vst1q_s8(y, q);
  } else {
    alignas(16) int8_t t[kDirectBlock];
    vst1q_s8(t, q);
    std::memcpy(y, t, static_cast<size_t>(valid));
  }
}

// A direct-conv tile's accumulators (MR pixels x NB blocks of 16 channels), each starting at the bias.
template <int NB, int MR>
__attribute__((always_inline)) inline void direct_tile_init(int32x4_t (&acc)[MR][NB][4], const int32_t* bias) {
#pragma GCC unroll 4
  for (int b = 0; b < NB; ++b)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const int32x4_t v = vld1q_s32(bias + b * kDirectBlock + 4 * j);
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) acc[r][b][j] = v;
    }
}

// Output stage of a direct-conv tile: output pixels [ox, ox + MR) of row y.
template <int NB, int MR>
__attribute__((always_inline)) inline void direct_tile_store(const int32x4_t (&acc)[MR][NB][4],
                                                             const DirectCall<int8_t>& c, const NeonOutput& o,
                                                             const NeonLut* lut, int ox, int8_t* y) {
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b)
      direct_store16(acc[r][b], c.mult + b * kDirectBlock, o, lut, c.n - b * kDirectBlock,
                     y + static_cast<size_t>(ox + r) * c.n + b * kDirectBlock);
}

// Runs output rows [row_begin, row_end): row(call, lut, y) computes one output row.
template <class Row>
void direct_conv_neon_rows(const DirectConvArgs& a, int group_bytes, Row row) {
  const ConvShape& s = *a.s;
  DirectCall<int8_t> c;
  direct_call_init(a, direct::groups(s, group_bytes), kDirectBlock, &c);
  alignas(16) float mult[kDirectMaxBlocks * kDirectBlock] = {};  // zero past out_c
  for (int j = 0; j < s.out_c; ++j) mult[j] = c.mult[j];
  c.mult = mult;
  const NeonOutput o(*a.out);
  static const int8_t kNoTable[256] = {};
  const NeonLut lut_storage(o.lut ? o.lut : kNoTable);
  const NeonLut* lut = o.lut ? &lut_storage : nullptr;
  const size_t len = direct::row_bytes(s, group_bytes);
  int8_t* base = reinterpret_cast<int8_t*>((reinterpret_cast<uintptr_t>(a.scratch) + 63) & ~uintptr_t(63));
  const int8_t pad = static_cast<int8_t>(a.w->x_zero_point);
  std::memset(base, pad, len);  // the padding row
  direct_conv_rows(
      a, c, base, base + len, len, [&](const int8_t* x, int8_t* buf) { direct_fill_row(s, x, pad, len, buf); },
      [&](int8_t* y) { row(c, o, lut, y); });
}

}  // namespace
}  // namespace detail
}  // namespace mnq

#endif  // __aarch64__
