// What the two AArch64 GEMMs (neon/gemm.cc, neondot/gemm.cc) share: the
// packed header and the folding of the zero points into the bias, and the
// driver around their tiles: row tiles of 4 (the last 1-3 rows together) over
// column tiles of 16 or 8, the output stage of the tiles computed in
// intrinsics, the fused table, calls of 1-3 rows.
//
// The ISA's kernel K provides
//   K::kPanelBytes                        packed weight bytes kept in L1 while rows stream past
//   K::kMull                              whether a product-by-product path exists (kMlal false)
//   K::tile4<NH, kMlal>(c, t, n0, out)    a full tile: 4 rows x 8 * NH columns, all inside the
//                                         layer, wholly in assembly (accumulate, zero points,
//                                         output stage up to the clamp, stores)
//   K::accumulate<MR, NH, kMlal>(c, t, n0, a0, a1, a2, a3)
//                                         the k loop of any other tile (accumulators a0-a3 hold
//                                         the folded bias on entry)
// and includes this file after defining MNQ_GEMM_TARGET, the target attribute
// of its kernels (empty for NEON, MNQ_DOTPROD for the SDOT kernels): every
// function here that inlines the kernel's carries it (GCC inlines a function
// only into one compiled for the same or a wider instruction set).
// Everything has internal linkage (see epilogue.h).
//
// Packed weights (gemm_pack_begin): a 64-byte header (GemmHeader), the weight
// zero points wz[n_pad] (int32), then the ISA's layout in panels of 8 columns,
// k padded to 8. Zero points:
//   sum_k (x - xz)(w - wz) + b = sum_k x w - wz * rowsum(x) + [b - xz * sum_k w + k * xz * wz]
// The bracket is bias_folded[n] (modulo 2^32, like the int32 accumulator),
// padded with zeros to n_pad; the wz * rowsum(x) term is subtracted per row
// when some wz != 0.
#pragma once

#if defined(__aarch64__)

#ifndef MNQ_GEMM_TARGET
#error "define MNQ_GEMM_TARGET (the kernels' target attribute, possibly empty) before including arm/gemm.h"
#endif

#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../internal.h"
#include "epilogue.h"

namespace mnq {
namespace detail {
namespace {

constexpr int kGemmNr = 8;           // columns per packed panel
constexpr int kGemmKg = 8;           // k padding, and the bytes of a row's copied k tail
constexpr int kGemmMr = 4;           // rows per tile
constexpr size_t kGemmHeader = 64;   // packed header: GemmHeader, then wz[n_pad] int32, then weights

struct GemmHeader {
  int32_t n_pad, k_pad;
  int32_t mlal_safe;  // no weight equals -128 (the NEON kernel's two products per int16 lane)
  int32_t asymmetric;
};

// Row sums of int8 x (for the weight zero-point correction of asymmetric weights).
inline int32_t row_sum(const int8_t* x, size_t k) {
  int32x4_t s = vdupq_n_s32(0);
  size_t i = 0;
  for (; i + 16 <= k; i += 16) s = vpadalq_s16(s, vpaddlq_s8(vld1q_s8(x + i)));
  int32_t r = vaddvq_s32(s);
  for (; i < k; ++i) r += x[i];
  return r;
}

// Allocates the packed weights (zeroed), writes the header and the weight zero
// points, folds the bias; returns where the ISA's weight layout starts (n_pad * k_pad bytes).
inline int8_t* gemm_pack_begin(PackedGemm* w) {
  const int n = w->n, k = w->k;
  const int n_pad = round_up(std::max(n, 1), kGemmNr), k_pad = round_up(std::max(k, 1), kGemmKg);
  const size_t wz_bytes = static_cast<size_t>(n_pad) * sizeof(int32_t);
  w->packed.resize(kGemmHeader + wz_bytes + static_cast<size_t>(n_pad) * k_pad);
  uint8_t* base = w->packed.data();
  std::memset(base, 0, w->packed.size());
  GemmHeader h{n_pad, k_pad, 1, w->symmetric ? 0 : 1};
  for (int8_t v : w->w) h.mlal_safe = h.mlal_safe && v != -128;
  std::memcpy(base, &h, sizeof h);
  int32_t* wz = reinterpret_cast<int32_t*>(base + kGemmHeader);
  for (int c = 0; c < n; ++c) wz[c] = w->w_zero_point.empty() ? 0 : w->w_zero_point[c];
  w->n_block = kGemmNr;
  w->bias_folded.assign(static_cast<size_t>(n_pad), 0);
  for (int c = 0; c < n; ++c) {
    int64_t sum_w = 0;
    const int8_t* row = w->w.data() + static_cast<size_t>(c) * k;
    for (int i = 0; i < k; ++i) sum_w += row[i];
    const int64_t wzc = wz[c];
    const int64_t b = w->bias.empty() ? 0 : w->bias[c];
    const int64_t xz = w->x_zero_point;
    const uint64_t v = static_cast<uint64_t>(b - xz * sum_w + static_cast<int64_t>(k) * xz * wzc);
    w->bias_folded[c] = static_cast<int32_t>(static_cast<uint32_t>(v));
  }
  return reinterpret_cast<int8_t*>(base + kGemmHeader + wz_bytes);
}

// What every tile of one call shares.
struct GemmCall {
  const int8_t* packed;   // panel 0 of the weights
  size_t panel_bytes;     // k_pad * kGemmNr
  const int32_t* bias;    // bias_folded
  const int32_t* wz;      // [n_pad]
  int n;                  // columns of the layer (multipliers past it are not read)
  int k;
  int groups;             // full groups of 8 k
  int k_tail;             // k % 8
  bool asym;
  NeonOutput o;
  GemmCall(const GemmArgs& a, const GemmHeader& h)
      : packed(reinterpret_cast<const int8_t*>(a.w->packed.data() + kGemmHeader + static_cast<size_t>(h.n_pad) * 4)),
        panel_bytes(static_cast<size_t>(h.k_pad) * kGemmNr),
        bias(a.w->bias_folded.data()),
        wz(reinterpret_cast<const int32_t*>(a.w->packed.data() + kGemmHeader)),
        n(a.w->n), k(a.w->k), groups(a.w->k / kGemmKg), k_tail(a.w->k % kGemmKg), asym(h.asymmetric != 0),
        o(*a.out) {}
};

// The rows of a row tile: x rows, their k tails (zero padded to 8 bytes), row sums, y rows.
template <int MR>
struct TileRows {
  const int8_t* x[MR];
  alignas(8) int8_t tail[MR][kGemmKg];
  int32_t rowsum[MR];
  int8_t* y[MR];
};

template <int MR>
__attribute__((always_inline)) inline void tile_rows(const GemmCall& c, const GemmArgs& a, size_t r0,
                                                     TileRows<MR>& t) {
  for (int r = 0; r < MR; ++r) {
    t.x[r] = a.x + (r0 + r) * a.x_stride;
    t.y[r] = a.y + (r0 + r) * a.y_stride;
    t.rowsum[r] = c.asym ? row_sum(t.x[r], static_cast<size_t>(c.k)) : 0;
    if (c.k_tail) {
      const int8_t* p = t.x[r] + static_cast<size_t>(c.groups) * kGemmKg;
      for (int i = 0; i < kGemmKg; ++i) t.tail[r][i] = i < c.k_tail ? p[i] : 0;
    }
  }
}

// Two int32x4 from p (any alignment) in one instruction; volatile, so that
// each row's accumulators are loaded rather than copied from one load.
inline void load_pair(const int32_t* p, int32x4_t& a, int32x4_t& b) {
  __asm__ volatile("ldp %q0, %q1, [%2]" : "=w"(a), "=w"(b) : "r"(p), "m"(*reinterpret_cast<const int32_t(*)[8]>(p)));
}

// One row's accumulators: columns 0-3, 4-7, 8-11, 12-15 of a tile (v2, v3
// unused in 8-column tiles). Named members, not an array: GCC keeps a tile's
// rows in registers only then.
struct Acc16 {
  int32x4_t v0, v1, v2, v3;
};

// A row's accumulators, loaded from the folded bias of its columns.
template <int NH>
__attribute__((always_inline)) inline void init_acc(Acc16& a, const int32_t* bias) {
  load_pair(bias, a.v0, a.v1);
  if (NH == 2) load_pair(bias + 8, a.v2, a.v3);
}

// Asymmetric weights: acc -= wz[n] * rowsum.
template <int NH>
__attribute__((always_inline)) inline void sub_zero_points(Acc16& a, const Acc16& wz, int32_t rowsum) {
  a.v0 = vmlsq_n_s32(a.v0, wz.v0, rowsum);
  a.v1 = vmlsq_n_s32(a.v1, wz.v1, rowsum);
  if (NH == 2) {
    a.v2 = vmlsq_n_s32(a.v2, wz.v2, rowsum);
    a.v3 = vmlsq_n_s32(a.v3, wz.v3, rowsum);
  }
}

// The multipliers of 16 columns (8 * NH read).
struct Mult16 {
  float32x4_t v0, v1, v2, v3;
};

// A row of a tile through the output stage, before the clamp: 8 * NH int8 (NH == 1: the low half).
template <int NH>
__attribute__((always_inline)) inline int8x16_t requant_row(const Acc16& a, const Mult16& m, int16x8_t zp) {
  const int16x8_t lo = requant_s16(a.v0, a.v1, m.v0, m.v1, zp);
  if (NH == 1) return vcombine_s8(vqmovn_s16(lo), vdup_n_s8(0));
  return vqmovn_high_s16(vqmovn_s16(lo), requant_s16(a.v2, a.v3, m.v2, m.v3, zp));
}

// Clamp, table, store of up to 4 rows of 8 * NH columns [n0, n0 + cols).
template <int MR, int NH>
__attribute__((always_inline)) inline void store_rows(const GemmCall& c, const TileRows<MR>& t, int n0, int cols,
                                                      int8x16_t q0, int8x16_t q1, int8x16_t q2, int8x16_t q3) {
  const NeonOutput& o = c.o;
  if (NH == 1) {  // two rows per vector
    q0 = vcombine_s8(vget_low_s8(q0), vget_low_s8(q1));
    q2 = vcombine_s8(vget_low_s8(q2), vget_low_s8(q3));
  }
  // The vectors in use: NH == 2: q0..q[MR-1]; NH == 1: q0 (rows 0, 1) and q2 (rows 2, 3).
  const bool use1 = NH == 2 && MR > 1, use2 = NH == 2 ? MR > 2 : MR > 2, use3 = NH == 2 && MR > 3;
  if (o.clamps) {
    q0 = clamp16(q0, o);
    if (use1) q1 = clamp16(q1, o);
    if (use2) q2 = clamp16(q2, o);
    if (use3) q3 = clamp16(q3, o);
  }
  if (o.lut) {
    const NeonLut lut(o.lut);
    q0 = lut.apply(q0);
    if (use1) q1 = lut.apply(q1);
    if (use2) q2 = lut.apply(q2);
    if (use3) q3 = lut.apply(q3);
  }
  if (NH == 2 && cols == 16) {
    vst1q_s8(t.y[0] + n0, q0);
    if (MR > 1) vst1q_s8(t.y[1] + n0, q1);
    if (MR > 2) vst1q_s8(t.y[2] + n0, q2);
    if (MR > 3) vst1q_s8(t.y[3] + n0, q3);
  } else if (NH == 1 && cols == 8) {
    vst1_s8(t.y[0] + n0, vget_low_s8(q0));
    if (MR > 1) vst1_s8(t.y[1] + n0, vget_high_s8(q0));
    if (MR > 2) vst1_s8(t.y[2] + n0, vget_low_s8(q2));
    if (MR > 3) vst1_s8(t.y[3] + n0, vget_high_s8(q2));
  } else {  // the last columns of a layer whose width is not a multiple of 8
    alignas(16) int8_t b[4][16];
    vst1q_s8(b[0], q0);
    vst1q_s8(b[1], q1);
    vst1q_s8(b[2], q2);
    vst1q_s8(b[3], q3);
    for (int r = 0; r < MR; ++r) {
      const int8_t* src = NH == 2 ? b[r] : b[r / 2 * 2] + 8 * (r % 2);
      for (int j = 0; j < cols; ++j) t.y[r][n0 + j] = src[j];
    }
  }
}

// The output stage's constants as the assembly tiles read them.
struct AsmOutput {
  int16_t zp;
  int8_t qmin, qmax;
  int8_t clamps;
};

// The operands of an assembly tile (4 rows x 8 * NH columns from n0).
struct AsmTile {
  const int8_t *x0, *x1, *x2, *x3;  // the rows, advanced by the k loop
  const int8_t *w0, *w1;            // panels of columns n0..n0+7 and n0+8..n0+15, advanced
  int groups;                       // full groups of 8 k
  int tail;                         // a k tail to read from the rows' padded copies
  int asym;
  const AsmOutput* out;
  const int32_t* bias;
  const float* m;
  const int32_t* wz;
  const int32_t* rowsum;
  const int8_t* tails;
  int8_t *y0, *y1, *y2, *y3;
  int64_t scratch;                  // a register the tile may use
  AsmTile(const GemmCall& c, const TileRows<4>& t, int n0, const AsmOutput* o)
      : x0(t.x[0]), x1(t.x[1]), x2(t.x[2]), x3(t.x[3]),
        w0(c.packed + static_cast<size_t>(n0 / kGemmNr) * c.panel_bytes), w1(w0 + c.panel_bytes),
        groups(c.groups), tail(c.k_tail != 0), asym(c.asym), out(o), bias(c.bias + n0), m(c.o.m + n0),
        wz(c.wz + n0), rowsum(t.rowsum), tails(&t.tail[0][0]), y0(t.y[0] + n0), y1(t.y[1] + n0),
        y2(t.y[2] + n0), y3(t.y[3] + n0), scratch(0) {}
};

// The shared parts of the assembly tiles: accumulator registers v0-v15 (NH == 2:
// row r in v4r..v4r+3) or v0-v7 (NH == 1: row r in v2r, v2r+1); the ISA's k
// loop between MNQ_GEMM_ASM_INIT and MNQ_GEMM_ASM_OUTPUT, using labels 1-7
// (8 and 9 are the output stage's). MNQ_GEMM_ASM_TAILS points the rows at their
// padded k tails. The output stage uses v16-v29.
#define MNQ_GEMM_ASM_INIT16                                           \
  "ldp q0, q1, [%[bias]]\n"                                           \
  "ldp q2, q3, [%[bias], #32]\n"                                      \
  "ldp q4, q5, [%[bias]]\n"                                           \
  "ldp q6, q7, [%[bias], #32]\n"                                      \
  "ldp q8, q9, [%[bias]]\n"                                           \
  "ldp q10, q11, [%[bias], #32]\n"                                    \
  "ldp q12, q13, [%[bias]]\n"                                         \
  "ldp q14, q15, [%[bias], #32]\n"
#define MNQ_GEMM_ASM_INIT8                                            \
  "ldp q0, q1, [%[bias]]\n"                                           \
  "ldp q2, q3, [%[bias]]\n"                                           \
  "ldp q4, q5, [%[bias]]\n"                                           \
  "ldp q6, q7, [%[bias]]\n"
#define MNQ_GEMM_ASM_TAILS                                            \
  "mov %[x0], %[tails]\n"                                             \
  "add %[x1], %[tails], #8\n"                                         \
  "add %[x2], %[tails], #16\n"                                        \
  "add %[x3], %[tails], #24\n"
// acc -= wz * rowsum (wz in v16-v19, the row sums in v20).
#define MNQ_GEMM_ASM_ZP4(A0, A1, A2, A3, LANE)                        \
  "mls " A0 ".4s, v16.4s, v20.s[" LANE "]\n"                          \
  "mls " A1 ".4s, v17.4s, v20.s[" LANE "]\n"                          \
  "mls " A2 ".4s, v18.4s, v20.s[" LANE "]\n"                          \
  "mls " A3 ".4s, v19.4s, v20.s[" LANE "]\n"
#define MNQ_GEMM_ASM_ZP2(A0, A1, LANE)                                \
  "mls " A0 ".4s, v16.4s, v20.s[" LANE "]\n"                          \
  "mls " A1 ".4s, v17.4s, v20.s[" LANE "]\n"
// Accumulators (multipliers in v16-v19, zero point in v20) rounded to int32, narrowed.
#define MNQ_GEMM_ASM_ROUND4(A0, A1, A2, A3)                           \
  "scvtf " A0 ".4s, " A0 ".4s\n"                                      \
  "scvtf " A1 ".4s, " A1 ".4s\n"                                      \
  "scvtf " A2 ".4s, " A2 ".4s\n"                                      \
  "scvtf " A3 ".4s, " A3 ".4s\n"                                      \
  "fmul " A0 ".4s, " A0 ".4s, v16.4s\n"                               \
  "fmul " A1 ".4s, " A1 ".4s, v17.4s\n"                               \
  "fmul " A2 ".4s, " A2 ".4s, v18.4s\n"                               \
  "fmul " A3 ".4s, " A3 ".4s, v19.4s\n"                               \
  "fcvtns " A0 ".4s, " A0 ".4s\n"                                     \
  "fcvtns " A1 ".4s, " A1 ".4s\n"                                     \
  "fcvtns " A2 ".4s, " A2 ".4s\n"                                     \
  "fcvtns " A3 ".4s, " A3 ".4s\n"
// 16 columns of a row -> int8 in Q (int16 halves in v28, v29).
#define MNQ_GEMM_ASM_ROW16(A0, A1, A2, A3, Q)                         \
  MNQ_GEMM_ASM_ROUND4(A0, A1, A2, A3)                                 \
  "sqxtn v28.4h, " A0 ".4s\n"                                         \
  "sqxtn v29.4h, " A2 ".4s\n"                                         \
  "sqxtn2 v28.8h, " A1 ".4s\n"                                        \
  "sqxtn2 v29.8h, " A3 ".4s\n"                                        \
  "sqadd v28.8h, v28.8h, v20.8h\n"                                    \
  "sqadd v29.8h, v29.8h, v20.8h\n"                                    \
  "sqxtn " Q ".8b, v28.8h\n"                                          \
  "sqxtn2 " Q ".16b, v29.8h\n"
// 8 columns of two rows -> int8 in Q (row A in the low half, row B in the high half).
#define MNQ_GEMM_ASM_ROWS8(A0, A1, B0, B1, Q)                         \
  MNQ_GEMM_ASM_ROUND4(A0, A1, B0, B1)                                 \
  "sqxtn v28.4h, " A0 ".4s\n"                                         \
  "sqxtn v29.4h, " B0 ".4s\n"                                         \
  "sqxtn2 v28.8h, " A1 ".4s\n"                                        \
  "sqxtn2 v29.8h, " B1 ".4s\n"                                        \
  "sqadd v28.8h, v28.8h, v20.8h\n"                                    \
  "sqadd v29.8h, v29.8h, v20.8h\n"                                    \
  "sqxtn " Q ".8b, v28.8h\n"                                          \
  "sqxtn2 " Q ".16b, v29.8h\n"
#define MNQ_GEMM_ASM_CONSTANTS                                        \
  "ld1r {v20.8h}, [%[k]]\n"                                           \
  "add %[scratch], %[k], #2\n"                                        \
  "ld1r {v21.16b}, [%[scratch]], #1\n"                                \
  "ld1r {v22.16b}, [%[scratch]], #1\n"                                \
  "ldrb %w[scratch], [%[scratch]]\n"
#define MNQ_GEMM_ASM_CLAMP(Q)                                         \
  "smax " Q ".16b, " Q ".16b, v21.16b\n"                              \
  "smin " Q ".16b, " Q ".16b, v22.16b\n"
// The output stage of a 4 x 16 tile: zero-point correction, requantization, clamp, stores.
#define MNQ_GEMM_ASM_OUTPUT16                                         \
  "cbz %w[asym], 8f\n"                                                \
  "ldp q16, q17, [%[wz]]\n"                                           \
  "ldp q18, q19, [%[wz], #32]\n"                                      \
  "ldr q20, [%[rowsum]]\n"                                            \
  MNQ_GEMM_ASM_ZP4("v0", "v1", "v2", "v3", "0")                       \
  MNQ_GEMM_ASM_ZP4("v4", "v5", "v6", "v7", "1")                       \
  MNQ_GEMM_ASM_ZP4("v8", "v9", "v10", "v11", "2")                     \
  MNQ_GEMM_ASM_ZP4("v12", "v13", "v14", "v15", "3")                   \
  "8:\n"                                                              \
  "ldp q16, q17, [%[m]]\n"                                            \
  "ldp q18, q19, [%[m], #32]\n"                                       \
  MNQ_GEMM_ASM_CONSTANTS                                              \
  MNQ_GEMM_ASM_ROW16("v0", "v1", "v2", "v3", "v24")                   \
  MNQ_GEMM_ASM_ROW16("v4", "v5", "v6", "v7", "v25")                   \
  MNQ_GEMM_ASM_ROW16("v8", "v9", "v10", "v11", "v26")                 \
  MNQ_GEMM_ASM_ROW16("v12", "v13", "v14", "v15", "v27")               \
  "cbz %w[scratch], 9f\n"                                             \
  MNQ_GEMM_ASM_CLAMP("v24")                                           \
  MNQ_GEMM_ASM_CLAMP("v25")                                           \
  MNQ_GEMM_ASM_CLAMP("v26")                                           \
  MNQ_GEMM_ASM_CLAMP("v27")                                           \
  "9:\n"                                                              \
  "str q24, [%[y0]]\n"                                                \
  "str q25, [%[y1]]\n"                                                \
  "str q26, [%[y2]]\n"                                                \
  "str q27, [%[y3]]\n"
// The output stage of a 4 x 8 tile.
#define MNQ_GEMM_ASM_OUTPUT8                                          \
  "cbz %w[asym], 8f\n"                                                \
  "ldp q16, q17, [%[wz]]\n"                                           \
  "ldr q20, [%[rowsum]]\n"                                            \
  MNQ_GEMM_ASM_ZP2("v0", "v1", "0")                                   \
  MNQ_GEMM_ASM_ZP2("v2", "v3", "1")                                   \
  MNQ_GEMM_ASM_ZP2("v4", "v5", "2")                                   \
  MNQ_GEMM_ASM_ZP2("v6", "v7", "3")                                   \
  "8:\n"                                                              \
  "ldp q16, q17, [%[m]]\n"                                            \
  "mov v18.16b, v16.16b\n"                                            \
  "mov v19.16b, v17.16b\n"                                            \
  MNQ_GEMM_ASM_CONSTANTS                                              \
  MNQ_GEMM_ASM_ROWS8("v0", "v1", "v2", "v3", "v24")                   \
  MNQ_GEMM_ASM_ROWS8("v4", "v5", "v6", "v7", "v25")                   \
  "cbz %w[scratch], 9f\n"                                             \
  MNQ_GEMM_ASM_CLAMP("v24")                                           \
  MNQ_GEMM_ASM_CLAMP("v25")                                           \
  "9:\n"                                                              \
  "str d24, [%[y0]]\n"                                                \
  "st1 {v24.d}[1], [%[y1]]\n"                                         \
  "str d25, [%[y2]]\n"                                                \
  "st1 {v25.d}[1], [%[y3]]\n"
// The operands of an assembly tile T (an AsmTile).
#define MNQ_GEMM_ASM_OPERANDS(T)                                                                                  \
  : [x0] "+r"(T.x0), [x1] "+r"(T.x1), [x2] "+r"(T.x2), [x3] "+r"(T.x3), [w0] "+r"(T.w0), [w1] "+r"(T.w1),        \
    [groups] "+r"(T.groups), [scratch] "=&r"(T.scratch)                                                          \
  : [k] "r"(T.out), [bias] "r"(T.bias), [m] "r"(T.m), [wz] "r"(T.wz), [rowsum] "r"(T.rowsum),                     \
    [tails] "r"(T.tails), [tail] "r"(T.tail), [asym] "r"(T.asym), [y0] "r"(T.y0), [y1] "r"(T.y1), [y2] "r"(T.y2), \
    [y3] "r"(T.y3)                                                                                                \
  : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13",        \
    "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28",      \
    "v29", "v30", "v31"

// MR rows x 8 * NH columns from column n0 (a multiple of 8; cols of them
// stored): accumulators from the folded bias, the kernel's k loop, the output stage.
template <class K, int MR, int NH, bool kMlal>
MNQ_GEMM_TARGET __attribute__((always_inline)) inline void gemm_tile(const GemmCall& c, const TileRows<MR>& t, int n0,
                                                                     int cols) {
  Acc16 a0, a1, a2, a3;
  init_acc<NH>(a0, c.bias + n0);
  if constexpr (MR > 1) init_acc<NH>(a1, c.bias + n0);
  if constexpr (MR > 2) init_acc<NH>(a2, c.bias + n0);
  if constexpr (MR > 3) init_acc<NH>(a3, c.bias + n0);
  K::template accumulate<MR, NH, kMlal>(c, t, n0, a0, a1, a2, a3);
  const NeonOutput& o = c.o;
  if (c.asym) {
    const int32x4_t z0 = vld1q_s32(c.wz + n0), z1 = vld1q_s32(c.wz + n0 + 4);
    const int32x4_t z2 = NH == 2 ? vld1q_s32(c.wz + n0 + 8) : z0, z3 = NH == 2 ? vld1q_s32(c.wz + n0 + 12) : z0;
    const Acc16 z{z0, z1, z2, z3};
    sub_zero_points<NH>(a0, z, t.rowsum[0]);
    if constexpr (MR > 1) sub_zero_points<NH>(a1, z, t.rowsum[1]);
    if constexpr (MR > 2) sub_zero_points<NH>(a2, z, t.rowsum[2]);
    if constexpr (MR > 3) sub_zero_points<NH>(a3, z, t.rowsum[3]);
  }
  Mult16 m;
  const float* mp = o.m + n0;
  alignas(16) float m_tail[8 * NH];
  if (n0 + 8 * NH > c.n) {  // multipliers past the layer's columns: 0
    for (int j = 0; j < 8 * NH; ++j) m_tail[j] = n0 + j < c.n ? o.m[n0 + j] : 0.0f;
    mp = m_tail;
  }
  m.v0 = vld1q_f32(mp);
  m.v1 = vld1q_f32(mp + 4);
  m.v2 = NH == 2 ? vld1q_f32(mp + 8) : m.v0;
  m.v3 = NH == 2 ? vld1q_f32(mp + 12) : m.v0;
  const int8x16_t q0 = requant_row<NH>(a0, m, o.zp);
  const int8x16_t q1 = MR > 1 ? requant_row<NH>(a1, m, o.zp) : q0;
  const int8x16_t q2 = MR > 2 ? requant_row<NH>(a2, m, o.zp) : q0;
  const int8x16_t q3 = MR > 3 ? requant_row<NH>(a3, m, o.zp) : q0;
  store_rows<MR, NH>(c, t, n0, cols, q0, q1, q2, q3);
}

// The fused table over COLS (16 or 8) stored columns of each row (after an assembly tile).
template <int MR, int COLS>
__attribute__((noinline)) void gemm_lut_rows(const int8_t* table, const TileRows<MR>& t, int n0) {
  const NeonLut lut(table);
  if (COLS == 16) {
    for (int r = 0; r < MR; ++r) vst1q_s8(t.y[r] + n0, lut.apply(vld1q_s8(t.y[r] + n0)));
  } else {
    for (int r = 0; r < MR; r += 2) {
      const int8x16_t q = lut.apply(vcombine_s8(vld1_s8(t.y[r] + n0), vld1_s8(t.y[r + 1] + n0)));
      vst1_s8(t.y[r] + n0, vget_low_s8(q));
      vst1_s8(t.y[r + 1] + n0, vget_high_s8(q));
    }
  }
}

// Rows [r0, r0 + MR), columns [n_begin, n_end).
template <class K, int MR, bool kMlal>
MNQ_GEMM_TARGET __attribute__((always_inline)) inline void gemm_row_tile(const GemmCall& c, const GemmArgs& a,
                                                                         size_t r0, int n_begin, int n_end) {
  TileRows<MR> t;
  tile_rows<MR>(c, a, r0, t);
  int n0 = n_begin;
  if constexpr (MR == kGemmMr) {
    const AsmOutput out{static_cast<int16_t>(c.o.zp_s), static_cast<int8_t>(c.o.qmin_s),
                        static_cast<int8_t>(c.o.qmax_s), static_cast<int8_t>(c.o.clamps ? 1 : 0)};
    for (; n0 + 16 <= n_end; n0 += 16) {
      K::template tile4<2, kMlal>(c, t, n0, &out);
      if (c.o.lut) gemm_lut_rows<MR, 16>(c.o.lut, t, n0);
    }
    if (n0 + 8 <= n_end) {
      K::template tile4<1, kMlal>(c, t, n0, &out);
      if (c.o.lut) gemm_lut_rows<MR, 8>(c.o.lut, t, n0);
      n0 += 8;
    }
  }
  for (; n0 + 8 < n_end; n0 += 16) gemm_tile<K, MR, 2, kMlal>(c, t, n0, std::min(16, n_end - n0));
  if (n0 < n_end) gemm_tile<K, MR, 1, kMlal>(c, t, n0, n_end - n0);
}

// Calls of 4 rows or more: column panels whose packed weights stay in L1 while the rows stream past.
template <class K, bool kMlal>
MNQ_GEMM_TARGET void gemm_rows(const GemmArgs& a, const GemmCall& c) {
  const int k_pad = static_cast<int>(c.panel_bytes / kGemmNr);
  const int panel = std::max(2 * kGemmNr, (K::kPanelBytes / k_pad) / (2 * kGemmNr) * (2 * kGemmNr));
  for (int p0 = a.n_begin; p0 < a.n_end; p0 += panel) {
    const int p1 = std::min(a.n_end, p0 + panel);
    size_t r0 = 0;
    for (; r0 + kGemmMr <= a.m; r0 += kGemmMr) gemm_row_tile<K, kGemmMr, kMlal>(c, a, r0, p0, p1);
    switch (a.m - r0) {
      case 3: gemm_row_tile<K, 3, kMlal>(c, a, r0, p0, p1); break;
      case 2: gemm_row_tile<K, 2, kMlal>(c, a, r0, p0, p1); break;
      case 1: gemm_row_tile<K, 1, kMlal>(c, a, r0, p0, p1); break;
      default: break;
    }
  }
}

// Calls of 1-3 rows (the classifier; 1x1 convs on one pixel): every column at once.
template <class K, bool kMlal>
MNQ_GEMM_TARGET void gemm_few_rows(const GemmArgs& a, const GemmCall& c) {
  switch (a.m) {
    case 3: gemm_row_tile<K, 3, kMlal>(c, a, 0, a.n_begin, a.n_end); break;
    case 2: gemm_row_tile<K, 2, kMlal>(c, a, 0, a.n_begin, a.n_end); break;
    default: gemm_row_tile<K, 1, kMlal>(c, a, 0, a.n_begin, a.n_end); break;
  }
}

// The GEMM entry of kernel K.
template <class K>
void gemm_run(const GemmArgs& a) {
  if (a.m == 0 || a.n_begin >= a.n_end) return;
  GemmHeader h;
  std::memcpy(&h, a.w->packed.data(), sizeof h);
  const GemmCall c(a, h);
  const bool few = a.m < static_cast<size_t>(kGemmMr);
  if (!K::kMull || h.mlal_safe) {
    if (few)
      gemm_few_rows<K, true>(a, c);
    else
      gemm_rows<K, true>(a, c);
  } else if constexpr (K::kMull) {
    if (few)
      gemm_few_rows<K, false>(a, c);
    else
      gemm_rows<K, false>(a, c);
  }
}

}  // namespace
}  // namespace detail
}  // namespace mnq

#endif  // __aarch64__
