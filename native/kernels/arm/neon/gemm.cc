// AArch64 ASIMD baseline GEMM (Cortex-A72, Raspberry Pi 4: no SDOT): 1x1 conv,
// fully connected, im2col'd general conv. Bit-identical to ref/gemm.cc.
//
// Output tiles of up to 4 rows x 16 columns with the columns in int32 lanes
// (no horizontal sums), k in groups of 8:
//   Each row's 8 bytes of x are read as 4 pairs (x[2p], x[2p+1]), each pair
//   broadcast over a vector's int16 lanes (one LD4R); a packed weight vector
//   holds pair p of 8 columns (w[c][2p], w[c][2p+1]). SMULL / SMULL2 of a pair
//   vector and its weights give per column the two products in adjacent int16
//   lanes, SMLAL / SMLAL2 add the next pair's, and SADALP adds the lanes
//   pairwise into the column's int32 lane: 12 instructions per row, 8 k and 8
//   columns. An int16 lane then holds two products, exact unless both are
//   (-128) * (-128), which needs a weight of -128; symmetric weights are in
//   [-127, 127]. When a packed weight is -128 (asymmetric models) SADALP
//   follows each SMULL instead.
//   Packed weights: panels of 8 columns, [n_pad / 8][k_pad / 8][4 pairs][8 columns][2 bytes],
//   zero padded. The k tail of each row (k % 8 bytes) is copied to 8 zero-padded bytes and
//   read as a group.
//   Zero points: sum (x - xz)(w - wz) + b = sum x*w + bias_folded[n] - wz[n] * rowsum(x),
//   bias_folded precomputed at pack time, rowsum per row when some wz != 0.
// Tiles of 4 rows and 16 (or 8) columns run wholly in assembly (tile_4_asm);
// the others (the last 1-3 rows, the last columns of a width that is not a
// multiple of 8) in intrinsics with the k loop in assembly (tile). Calls of
// fewer than 4 rows (the classifier, squeeze-and-excite convs: one pixel) run
// gemm_few_rows_neon, which streams every weight once.
#include "../../internal.h"
#include "table.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "../epilogue.h"
#include "../gemm.h"

namespace mnq {
namespace detail {
namespace {

constexpr int kNr = 8;          // columns per packed panel
constexpr int kKg = 8;          // k bytes per group (4 pairs)
constexpr int kMr = 4;          // rows per tile
constexpr size_t kHeader = 64;  // packed header: GemmHeader, then wz[n_pad] int32, then weights

struct GemmHeader {
  int32_t n_pad, k_pad;
  int32_t mlal_safe;  // no weight equals -128
  int32_t asymmetric;
};

void gemm_pack_neon(PackedGemm* w) {
  const int n = w->n, k = w->k;
  const int n_pad = round_up(std::max(n, 1), kNr), k_pad = round_up(std::max(k, 1), kKg);
  const size_t wz_bytes = static_cast<size_t>(n_pad) * sizeof(int32_t);
  w->packed.resize(kHeader + wz_bytes + static_cast<size_t>(n_pad) * k_pad);
  uint8_t* base = w->packed.data();
  std::memset(base, 0, w->packed.size());
  GemmHeader h{n_pad, k_pad, 1, w->symmetric ? 0 : 1};
  int32_t* wz = reinterpret_cast<int32_t*>(base + kHeader);
  int8_t* dst = reinterpret_cast<int8_t*>(base + kHeader + wz_bytes);
  const size_t groups = static_cast<size_t>(k_pad / kKg);
  for (int c = 0; c < n; ++c) {
    wz[c] = w->w_zero_point.empty() ? 0 : w->w_zero_point[c];
    const int8_t* src = w->w.data() + static_cast<size_t>(c) * k;
    for (int i = 0; i < k; ++i) {
      if (src[i] == -128) h.mlal_safe = 0;
      const size_t g = i / kKg, pair = (i % kKg) / 2;
      dst[(((c / kNr) * groups + g) * 4 + pair) * (kNr * 2) + (c % kNr) * 2 + i % 2] = src[i];
    }
  }
  std::memcpy(base, &h, sizeof h);
  w->n_block = kNr;
  fold_gemm_bias(w, n_pad);
}

// Two int32x4 from p (any alignment) in one instruction; volatile, so that
// each row's accumulators are loaded rather than copied from one load.
inline void load_pair(const int32_t* p, int32x4_t& a, int32x4_t& b) {
  __asm__ volatile("ldp %q0, %q1, [%2]" : "=w"(a), "=w"(b) : "r"(p), "m"(*reinterpret_cast<const int32_t(*)[8]>(p)));
}

// One row's accumulators: columns 0-3, 4-7, 8-11, 12-15 of the tile (v2, v3
// unused in 8-column tiles). Named members, not an array: GCC keeps a tile's
// rows in registers only then.
struct Acc16 {
  int32x4_t v0, v1, v2, v3;
};

// One group of 8 k of one row, in assembly (the intrinsics version spills): the
// row's pairs go to v24-v27 (LD4R, x advanced by 8), the products to v28-v31;
// the weights w0-w3 (columns 0-7) and w4-w7 (8-15) and the accumulators stay
// in the compiler's registers.
#define MNQ_PAIRS_MLAL(A, B, XA, XB, WA, WB, T0, T1)        \
  "smull  " T0 ".8h, " XA ".8b, %[" WA "].8b\n"               \
  "smull2 " T1 ".8h, " XA ".16b, %[" WA "].16b\n"             \
  "smlal  " T0 ".8h, " XB ".8b, %[" WB "].8b\n"               \
  "smlal2 " T1 ".8h, " XB ".16b, %[" WB "].16b\n"             \
  "sadalp %[" A "].4s, " T0 ".8h\n"                           \
  "sadalp %[" B "].4s, " T1 ".8h\n"
#define MNQ_PAIRS_MULL(A, B, XA, XB, WA, WB, T0, T1)        \
  "smull  " T0 ".8h, " XA ".8b, %[" WA "].8b\n"               \
  "smull2 " T1 ".8h, " XA ".16b, %[" WA "].16b\n"             \
  "sadalp %[" A "].4s, " T0 ".8h\n"                           \
  "sadalp %[" B "].4s, " T1 ".8h\n"                           \
  "smull  " T0 ".8h, " XB ".8b, %[" WB "].8b\n"               \
  "smull2 " T1 ".8h, " XB ".16b, %[" WB "].16b\n"             \
  "sadalp %[" A "].4s, " T0 ".8h\n"                           \
  "sadalp %[" B "].4s, " T1 ".8h\n"
#define MNQ_ROW8(PAIRS)                                                 \
  "ld4r {v24.8h-v27.8h}, [%[x]], #8\n"                                  \
  PAIRS("a0", "a1", "v24", "v25", "w0", "w1", "v28", "v29")             \
  PAIRS("a0", "a1", "v26", "v27", "w2", "w3", "v30", "v31")
#define MNQ_ROW16(PAIRS)                                                \
  "ld4r {v24.8h-v27.8h}, [%[x]], #8\n"                                  \
  PAIRS("a0", "a1", "v24", "v25", "w0", "w1", "v28", "v29")             \
  PAIRS("a2", "a3", "v24", "v25", "w4", "w5", "v30", "v31")             \
  PAIRS("a0", "a1", "v26", "v27", "w2", "w3", "v28", "v29")             \
  PAIRS("a2", "a3", "v26", "v27", "w6", "w7", "v30", "v31")
#define MNQ_ROW_ASM(BODY, OUTS, INS)                                                                   \
  __asm__(BODY : OUTS, [x] "+r"(x)                                                                     \
          : INS                                                                                        \
          : "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31")
#define MNQ_OUTS16 [a0] "+w"(a.v0), [a1] "+w"(a.v1), [a2] "+w"(a.v2), [a3] "+w"(a.v3)
#define MNQ_OUTS8 [a0] "+w"(a.v0), [a1] "+w"(a.v1)
#define MNQ_INS16                                                                                      \
  [w0] "w"(w0.val[0]), [w1] "w"(w0.val[1]), [w2] "w"(w0.val[2]), [w3] "w"(w0.val[3]), [w4] "w"(w1.val[0]), \
      [w5] "w"(w1.val[1]), [w6] "w"(w1.val[2]), [w7] "w"(w1.val[3])
#define MNQ_INS8 [w0] "w"(w0.val[0]), [w1] "w"(w0.val[1]), [w2] "w"(w0.val[2]), [w3] "w"(w0.val[3])

template <int NH, bool kMlal>
__attribute__((always_inline)) inline void group_row(Acc16& a, const int8_t*& x, const int8x16x4_t& w0,
                                                     const int8x16x4_t& w1) {
  if constexpr (NH == 2 && kMlal) MNQ_ROW_ASM(MNQ_ROW16(MNQ_PAIRS_MLAL), MNQ_OUTS16, MNQ_INS16);
  if constexpr (NH == 2 && !kMlal) MNQ_ROW_ASM(MNQ_ROW16(MNQ_PAIRS_MULL), MNQ_OUTS16, MNQ_INS16);
  if constexpr (NH == 1 && kMlal) MNQ_ROW_ASM(MNQ_ROW8(MNQ_PAIRS_MLAL), MNQ_OUTS8, MNQ_INS8);
  if constexpr (NH == 1 && !kMlal) MNQ_ROW_ASM(MNQ_ROW8(MNQ_PAIRS_MULL), MNQ_OUTS8, MNQ_INS8);
}
#undef MNQ_INS8
#undef MNQ_INS16
#undef MNQ_OUTS8
#undef MNQ_OUTS16
#undef MNQ_ROW_ASM
#undef MNQ_ROW16
#undef MNQ_ROW8
#undef MNQ_PAIRS_MULL
#undef MNQ_PAIRS_MLAL

// What every tile of one call shares.
struct GemmCall {
  const int8_t* packed;   // panel 0, group 0
  size_t panel_bytes;     // k_pad * kNr
  const int32_t* bias;    // bias_folded
  const int32_t* wz;      // [n_pad]
  int n;                  // columns of the layer (multipliers past it are not read)
  int groups;             // full groups of 8 k
  int k_tail;             // k % 8
  bool asym;
  NeonOutput o;
  explicit GemmCall(const GemmArgs& a, const GemmHeader& h)
      : packed(reinterpret_cast<const int8_t*>(a.w->packed.data() + kHeader + static_cast<size_t>(h.n_pad) * 4)),
        panel_bytes(static_cast<size_t>(h.k_pad) * kNr),
        bias(a.w->bias_folded.data()),
        wz(reinterpret_cast<const int32_t*>(a.w->packed.data() + kHeader)),
        n(a.w->n), groups(a.w->k / kKg), k_tail(a.w->k % kKg), asym(h.asymmetric != 0), o(*a.out) {}
};

// The rows of a row tile: x rows, their k tails (zero padded to 8 bytes), row sums, y rows.
template <int MR>
struct TileRows {
  const int8_t* x[MR];
  alignas(8) int8_t tail[MR][kKg];
  int32_t rowsum[MR];
  int8_t* y[MR];
};

template <int MR>
__attribute__((always_inline)) inline void tile_rows(const GemmCall& c, const GemmArgs& a, size_t r0, int k,
                                                     TileRows<MR>& t) {
  for (int r = 0; r < MR; ++r) {
    t.x[r] = a.x + (r0 + r) * a.x_stride;
    t.y[r] = a.y + (r0 + r) * a.y_stride;
    t.rowsum[r] = c.asym ? row_sum(t.x[r], static_cast<size_t>(k)) : 0;
    if (c.k_tail) {
      const int8_t* p = t.x[r] + static_cast<size_t>(c.groups) * kKg;
      for (int i = 0; i < kKg; ++i) t.tail[r][i] = i < c.k_tail ? p[i] : 0;
    }
  }
}

// The multipliers of 16 columns (8 * NH read).
struct Mult16 {
  float32x4_t v0, v1, v2, v3;
};

// Row r of a tile through the output stage, before the clamp: 8 * NH int8 (NH == 1: the low half).
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
  constexpr int kVecs = NH == 2 ? MR : (MR + 1) / 2;
  if (o.clamps) {
    q0 = clamp16(q0, o);
    if (kVecs > 1) (NH == 2 ? q1 : q2) = clamp16(NH == 2 ? q1 : q2, o);
    if (NH == 2 && kVecs > 2) q2 = clamp16(q2, o);
    if (NH == 2 && kVecs > 3) q3 = clamp16(q3, o);
  }
  if (o.lut) {
    const NeonLut lut(o.lut);
    q0 = lut.apply(q0);
    if (kVecs > 1) (NH == 2 ? q1 : q2) = lut.apply(NH == 2 ? q1 : q2);
    if (NH == 2 && kVecs > 2) q2 = lut.apply(q2);
    if (NH == 2 && kVecs > 3) q3 = lut.apply(q3);
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

// The 4 pair vectors of one panel's group, p advanced past them (two LDPs: any
// registers, unlike an LD1 of four, which leaves GCC moving accumulators about).
__attribute__((always_inline)) inline int8x16x4_t load_weights(const int8_t*& p) {
  int8x16x4_t w;
  __asm__("ldp %q0, %q1, [%4], #32\n"
          "ldp %q2, %q3, [%4], #32"
          : "=w"(w.val[0]), "=w"(w.val[1]), "=w"(w.val[2]), "=w"(w.val[3]), "+r"(p)
          : "m"(*reinterpret_cast<const int8_t(*)[64]>(p)));
  return w;
}

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

// The full tile (4 rows x 16 columns, all of them in the layer), wholly in
// assembly: accumulators from the folded bias, the k loop (then the k tail from
// the rows' padded copies), the weight zero-point correction, the output stage
// up to the clamp, the stores (a fused table is applied by the caller). In
// intrinsics GCC shuffles the 16 accumulators between registers around the loop.
// Registers: accumulators v0-v15 (row r: v4r-v4r+3), weights v16-v23, a row's
// pairs v24-v27, products v28-v31.
#define MNQ_A_PAIRS_MLAL(A, B, XA, XB, WA, WB, T0, T1)        \
  "smull  " T0 ".8h, " XA ".8b, " WA ".8b\n"                    \
  "smull2 " T1 ".8h, " XA ".16b, " WA ".16b\n"                  \
  "smlal  " T0 ".8h, " XB ".8b, " WB ".8b\n"                    \
  "smlal2 " T1 ".8h, " XB ".16b, " WB ".16b\n"                  \
  "sadalp " A ".4s, " T0 ".8h\n"                                \
  "sadalp " B ".4s, " T1 ".8h\n"
#define MNQ_A_PAIRS_MULL(A, B, XA, XB, WA, WB, T0, T1)        \
  "smull  " T0 ".8h, " XA ".8b, " WA ".8b\n"                    \
  "smull2 " T1 ".8h, " XA ".16b, " WA ".16b\n"                  \
  "sadalp " A ".4s, " T0 ".8h\n"                                \
  "sadalp " B ".4s, " T1 ".8h\n"                                \
  "smull  " T0 ".8h, " XB ".8b, " WB ".8b\n"                    \
  "smull2 " T1 ".8h, " XB ".16b, " WB ".16b\n"                  \
  "sadalp " A ".4s, " T0 ".8h\n"                                \
  "sadalp " B ".4s, " T1 ".8h\n"
#define MNQ_A_ROW(PAIRS, X, A0, A1, A2, A3)                           \
  "ld4r {v24.8h-v27.8h}, [%[" X "]], #8\n"                            \
  PAIRS(A0, A1, "v24", "v25", "v16", "v17", "v28", "v29")             \
  PAIRS(A2, A3, "v24", "v25", "v20", "v21", "v30", "v31")             \
  PAIRS(A0, A1, "v26", "v27", "v18", "v19", "v28", "v29")             \
  PAIRS(A2, A3, "v26", "v27", "v22", "v23", "v30", "v31")
#define MNQ_A_GROUP(PAIRS)                                            \
  "ld1 {v16.16b-v19.16b}, [%[w0]], #64\n"                             \
  "ld1 {v20.16b-v23.16b}, [%[w1]], #64\n"                             \
  MNQ_A_ROW(PAIRS, "x0", "v0", "v1", "v2", "v3")                      \
  MNQ_A_ROW(PAIRS, "x1", "v4", "v5", "v6", "v7")                      \
  MNQ_A_ROW(PAIRS, "x2", "v8", "v9", "v10", "v11")                    \
  MNQ_A_ROW(PAIRS, "x3", "v12", "v13", "v14", "v15")
#define MNQ_A_ROW8(PAIRS, X, A0, A1)                                  \
  "ld4r {v24.8h-v27.8h}, [%[" X "]], #8\n"                            \
  PAIRS(A0, A1, "v24", "v25", "v16", "v17", "v28", "v29")             \
  PAIRS(A0, A1, "v26", "v27", "v18", "v19", "v30", "v31")
#define MNQ_A_GROUP8(PAIRS)                                           \
  "ld1 {v16.16b-v19.16b}, [%[w0]], #64\n"                             \
  MNQ_A_ROW8(PAIRS, "x0", "v0", "v1")                                 \
  MNQ_A_ROW8(PAIRS, "x1", "v2", "v3")                                 \
  MNQ_A_ROW8(PAIRS, "x2", "v4", "v5")                                 \
  MNQ_A_ROW8(PAIRS, "x3", "v6", "v7")
#define MNQ_A_REQUANT_ROW8(A0, A1, Y)                                 \
  "scvtf " A0 ".4s, " A0 ".4s\n"                                      \
  "scvtf " A1 ".4s, " A1 ".4s\n"                                      \
  "fmul " A0 ".4s, " A0 ".4s, v16.4s\n"                               \
  "fmul " A1 ".4s, " A1 ".4s, v17.4s\n"                               \
  "fcvtns " A0 ".4s, " A0 ".4s\n"                                     \
  "fcvtns " A1 ".4s, " A1 ".4s\n"                                     \
  "sqxtn v24.4h, " A0 ".4s\n"                                         \
  "sqxtn2 v24.8h, " A1 ".4s\n"                                        \
  "sqadd v24.8h, v24.8h, v20.8h\n"                                    \
  "sqxtn v24.8b, v24.8h\n"                                            \
  "smax v24.8b, v24.8b, v21.8b\n"                                     \
  "smin v24.8b, v24.8b, v22.8b\n"                                     \
  "str d24, [%[" Y "]]\n"
#define MNQ_A_ZERO_POINTS8(A0, A1, LANE)                              \
  "mls " A0 ".4s, v16.4s, v20.s[" LANE "]\n"                          \
  "mls " A1 ".4s, v17.4s, v20.s[" LANE "]\n"
#define MNQ_A_TILE8(PAIRS)                                            \
  "ldp q0, q1, [%[bias]]\n"                                           \
  "ldp q2, q3, [%[bias]]\n"                                           \
  "ldp q4, q5, [%[bias]]\n"                                           \
  "ldp q6, q7, [%[bias]]\n"                                           \
  "lsr %w[pairs], %w[groups], #1\n"                                  \
  "cbz %w[pairs], 5f\n"                                               \
  "1:\n"                                                              \
  MNQ_A_GROUP8(PAIRS)                                                 \
  MNQ_A_GROUP8(PAIRS)                                                 \
  "subs %w[pairs], %w[pairs], #1\n"                                   \
  "b.ne 1b\n"                                                         \
  "5:\n"                                                              \
  "tbz %w[groups], #0, 2f\n"                                          \
  MNQ_A_GROUP8(PAIRS)                                                 \
  "2:\n"                                                              \
  "cbz %w[tail], 3f\n"                                                \
  "mov %[x0], %[tails]\n"                                             \
  "add %[x1], %[tails], #8\n"                                         \
  "add %[x2], %[tails], #16\n"                                        \
  "add %[x3], %[tails], #24\n"                                        \
  MNQ_A_GROUP8(PAIRS)                                                 \
  "3:\n"                                                              \
  "cbz %w[asym], 4f\n"                                                \
  "ldp q16, q17, [%[wz]]\n"                                           \
  "ldr q20, [%[rowsum]]\n"                                            \
  MNQ_A_ZERO_POINTS8("v0", "v1", "0")                                 \
  MNQ_A_ZERO_POINTS8("v2", "v3", "1")                                 \
  MNQ_A_ZERO_POINTS8("v4", "v5", "2")                                 \
  MNQ_A_ZERO_POINTS8("v6", "v7", "3")                                 \
  "4:\n"                                                              \
  "ldp q16, q17, [%[m]]\n"                                            \
  "ld1r {v20.8h}, [%[k]]\n"                                           \
  "add %[k], %[k], #2\n"                                              \
  "ld1r {v21.16b}, [%[k]], #1\n"                                      \
  "ld1r {v22.16b}, [%[k]]\n"                                          \
  MNQ_A_REQUANT_ROW8("v0", "v1", "y0")                                \
  MNQ_A_REQUANT_ROW8("v2", "v3", "y1")                                \
  MNQ_A_REQUANT_ROW8("v4", "v5", "y2")                                \
  MNQ_A_REQUANT_ROW8("v6", "v7", "y3")
#define MNQ_A_REQUANT_ROW(A0, A1, A2, A3, Y)                          \
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
  "fcvtns " A3 ".4s, " A3 ".4s\n"                                     \
  "sqxtn v24.4h, " A0 ".4s\n"                                         \
  "sqxtn v25.4h, " A2 ".4s\n"                                         \
  "sqxtn2 v24.8h, " A1 ".4s\n"                                        \
  "sqxtn2 v25.8h, " A3 ".4s\n"                                        \
  "sqadd v24.8h, v24.8h, v20.8h\n"                                    \
  "sqadd v25.8h, v25.8h, v20.8h\n"                                    \
  "sqxtn v24.8b, v24.8h\n"                                            \
  "sqxtn2 v24.16b, v25.8h\n"                                          \
  "smax v24.16b, v24.16b, v21.16b\n"                                  \
  "smin v24.16b, v24.16b, v22.16b\n"                                  \
  "str q24, [%[" Y "]]\n"
#define MNQ_A_ZERO_POINTS(A0, A1, A2, A3, LANE)                       \
  "mls " A0 ".4s, v16.4s, v20.s[" LANE "]\n"                          \
  "mls " A1 ".4s, v17.4s, v20.s[" LANE "]\n"                          \
  "mls " A2 ".4s, v18.4s, v20.s[" LANE "]\n"                          \
  "mls " A3 ".4s, v19.4s, v20.s[" LANE "]\n"
#define MNQ_A_TILE(PAIRS)                                             \
  "ldp q0, q1, [%[bias]]\n"                                           \
  "ldp q2, q3, [%[bias], #32]\n"                                      \
  "ldp q4, q5, [%[bias]]\n"                                           \
  "ldp q6, q7, [%[bias], #32]\n"                                      \
  "ldp q8, q9, [%[bias]]\n"                                           \
  "ldp q10, q11, [%[bias], #32]\n"                                    \
  "ldp q12, q13, [%[bias]]\n"                                         \
  "ldp q14, q15, [%[bias], #32]\n"                                    \
  "lsr %w[pairs], %w[groups], #1\n"                                  \
  "cbz %w[pairs], 5f\n"                                               \
  "1:\n"                                                              \
  MNQ_A_GROUP(PAIRS)                                                 \
  MNQ_A_GROUP(PAIRS)                                                 \
  "subs %w[pairs], %w[pairs], #1\n"                                   \
  "b.ne 1b\n"                                                         \
  "5:\n"                                                              \
  "tbz %w[groups], #0, 2f\n"                                          \
  MNQ_A_GROUP(PAIRS)                                                 \
  "2:\n"                                                              \
  "cbz %w[tail], 3f\n"                                                \
  "mov %[x0], %[tails]\n"                                             \
  "add %[x1], %[tails], #8\n"                                         \
  "add %[x2], %[tails], #16\n"                                        \
  "add %[x3], %[tails], #24\n"                                        \
  MNQ_A_GROUP(PAIRS)                                                  \
  "3:\n"                                                              \
  "cbz %w[asym], 4f\n"                                                \
  "ldp q16, q17, [%[wz]]\n"                                           \
  "ldp q18, q19, [%[wz], #32]\n"                                      \
  "ldr q20, [%[rowsum]]\n"                                            \
  MNQ_A_ZERO_POINTS("v0", "v1", "v2", "v3", "0")                      \
  MNQ_A_ZERO_POINTS("v4", "v5", "v6", "v7", "1")                      \
  MNQ_A_ZERO_POINTS("v8", "v9", "v10", "v11", "2")                    \
  MNQ_A_ZERO_POINTS("v12", "v13", "v14", "v15", "3")                  \
  "4:\n"                                                              \
  "ldp q16, q17, [%[m]]\n"                                            \
  "ldp q18, q19, [%[m], #32]\n"                                       \
  "ld1r {v20.8h}, [%[k]]\n"                                           \
  "add %[k], %[k], #2\n"                                              \
  "ld1r {v21.16b}, [%[k]], #1\n"                                      \
  "ld1r {v22.16b}, [%[k]]\n"                                          \
  MNQ_A_REQUANT_ROW("v0", "v1", "v2", "v3", "y0")                     \
  MNQ_A_REQUANT_ROW("v4", "v5", "v6", "v7", "y1")                     \
  MNQ_A_REQUANT_ROW("v8", "v9", "v10", "v11", "y2")                   \
  MNQ_A_REQUANT_ROW("v12", "v13", "v14", "v15", "y3")

// The output stage's constants as the assembly tile reads them.
struct AsmOutput {
  int16_t zp;
  int8_t qmin, qmax;
};

template <int NH, bool kMlal>
__attribute__((always_inline)) inline void tile_4_asm(const GemmCall& c, const TileRows<4>& t, int n0,
                                                      const AsmOutput* k) {
  const int8_t* w0 = c.packed + static_cast<size_t>(n0 / kNr) * c.panel_bytes;
  const int8_t* w1 = w0 + c.panel_bytes;
  const int8_t *x0 = t.x[0], *x1 = t.x[1], *x2 = t.x[2], *x3 = t.x[3];
  int groups = c.groups, pairs;
  const int tail = c.k_tail != 0, asym = c.asym;
#define MNQ_A_OPERANDS                                                                                           \
  : [x0] "+r"(x0), [x1] "+r"(x1), [x2] "+r"(x2), [x3] "+r"(x3), [w0] "+r"(w0), [w1] "+r"(w1),                   \
    [groups] "+r"(groups), [k] "+r"(k), [pairs] "=&r"(pairs)                                                     \
  : [bias] "r"(c.bias + n0), [m] "r"(c.o.m + n0), [wz] "r"(c.wz + n0), [rowsum] "r"(t.rowsum),                   \
    [tails] "r"(&t.tail[0][0]), [tail] "r"(tail), [asym] "r"(asym), [y0] "r"(t.y[0] + n0), [y1] "r"(t.y[1] + n0), \
    [y2] "r"(t.y[2] + n0), [y3] "r"(t.y[3] + n0)                                                                 \
  : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13",       \
    "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28",     \
    "v29", "v30", "v31"
  if (NH == 2 && kMlal) __asm__ volatile(MNQ_A_TILE(MNQ_A_PAIRS_MLAL) MNQ_A_OPERANDS);
  if (NH == 2 && !kMlal) __asm__ volatile(MNQ_A_TILE(MNQ_A_PAIRS_MULL) MNQ_A_OPERANDS);
  if (NH == 1 && kMlal) __asm__ volatile(MNQ_A_TILE8(MNQ_A_PAIRS_MLAL) MNQ_A_OPERANDS);
  if (NH == 1 && !kMlal) __asm__ volatile(MNQ_A_TILE8(MNQ_A_PAIRS_MULL) MNQ_A_OPERANDS);
#undef MNQ_A_OPERANDS
}
#undef MNQ_A_TILE
#undef MNQ_A_ZERO_POINTS
#undef MNQ_A_REQUANT_ROW
#undef MNQ_A_GROUP
#undef MNQ_A_ROW
#undef MNQ_A_TILE8
#undef MNQ_A_ZERO_POINTS8
#undef MNQ_A_REQUANT_ROW8
#undef MNQ_A_GROUP8
#undef MNQ_A_ROW8
#undef MNQ_A_PAIRS_MULL
#undef MNQ_A_PAIRS_MLAL

// MR rows x 8 * NH columns from column n0 (a multiple of 8): accumulators
// loaded from the folded bias, the k loop, the output stage.
template <int MR, int NH, bool kMlal>
__attribute__((always_inline)) inline void tile(const GemmCall& c, const TileRows<MR>& t, int n0, int cols) {
  const int8_t* wp0 = c.packed + static_cast<size_t>(n0 / kNr) * c.panel_bytes;
  const int8_t* wp1 = wp0 + c.panel_bytes;
  Acc16 a0, a1, a2, a3;
  const int8_t *x0 = t.x[0], *x1 = MR > 1 ? t.x[1] : nullptr, *x2 = MR > 2 ? t.x[2] : nullptr,
               *x3 = MR > 3 ? t.x[3] : nullptr;
  init_acc<NH>(a0, c.bias + n0);
  if constexpr (MR > 1) init_acc<NH>(a1, c.bias + n0);
  if constexpr (MR > 2) init_acc<NH>(a2, c.bias + n0);
  if constexpr (MR > 3) init_acc<NH>(a3, c.bias + n0);
  // The full groups, then (one more pass of the same loop) the k tail from the rows' padded copies.
  int groups = c.groups;
  for (int pass = 0; pass < 2; ++pass) {
    for (int g = groups; g > 0; --g) {
      const int8x16x4_t w0 = load_weights(wp0);
      const int8x16x4_t w1 = NH == 2 ? load_weights(wp1) : w0;
      group_row<NH, kMlal>(a0, x0, w0, w1);
      if constexpr (MR > 1) group_row<NH, kMlal>(a1, x1, w0, w1);
      if constexpr (MR > 2) group_row<NH, kMlal>(a2, x2, w0, w1);
      if constexpr (MR > 3) group_row<NH, kMlal>(a3, x3, w0, w1);
    }
    if (!c.k_tail) break;
    groups = pass == 0 ? 1 : 0;
    x0 = t.tail[0];
    if constexpr (MR > 1) x1 = t.tail[1];
    if constexpr (MR > 2) x2 = t.tail[2];
    if constexpr (MR > 3) x3 = t.tail[3];
  }
  // Output stage.
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

// The fused table over COLS (16 or 8) stored columns of each row.
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
template <int MR, bool kMlal>
__attribute__((always_inline)) inline void row_tile(const GemmCall& c, const GemmArgs& a, size_t r0, int n_begin,
                                                    int n_end) {
  TileRows<MR> t;
  tile_rows<MR>(c, a, r0, a.w->k, t);
  int n0 = n_begin;
  if constexpr (MR == 4) {
    const AsmOutput k{static_cast<int16_t>(c.o.zp_s), static_cast<int8_t>(c.o.qmin_s),
                      static_cast<int8_t>(c.o.qmax_s)};
    for (; n0 + 16 <= n_end; n0 += 16) {
      tile_4_asm<2, kMlal>(c, t, n0, &k);
      if (c.o.lut) gemm_lut_rows<MR, 16>(c.o.lut, t, n0);
    }
    if (n0 + 8 <= n_end) {
      tile_4_asm<1, kMlal>(c, t, n0, &k);
      if (c.o.lut) gemm_lut_rows<MR, 8>(c.o.lut, t, n0);
      n0 += 8;
    }
  }
  for (; n0 + 8 < n_end; n0 += 16) tile<MR, 2, kMlal>(c, t, n0, std::min(16, n_end - n0));
  if (n0 < n_end) tile<MR, 1, kMlal>(c, t, n0, n_end - n0);
}

// Calls of 4 rows or more: column panels whose packed weights stay in L1 while the rows stream past.
template <bool kMlal>
void gemm_rows_neon(const GemmArgs& a, const GemmCall& c, int k_pad) {
  const int panel = std::max(2 * kNr, (16384 / k_pad) / (2 * kNr) * (2 * kNr));
  for (int p0 = a.n_begin; p0 < a.n_end; p0 += panel) {
    const int p1 = std::min(a.n_end, p0 + panel);
    size_t r0 = 0;
    for (; r0 + kMr <= a.m; r0 += kMr) row_tile<kMr, kMlal>(c, a, r0, p0, p1);
    switch (a.m - r0) {
      case 3: row_tile<3, kMlal>(c, a, r0, p0, p1); break;
      case 2: row_tile<2, kMlal>(c, a, r0, p0, p1); break;
      case 1: row_tile<1, kMlal>(c, a, r0, p0, p1); break;
      default: break;
    }
  }
}

// Calls of 1-3 rows (the classifier; 1x1 convs on one pixel): every column at once.
template <bool kMlal>
void gemm_few_rows_neon(const GemmArgs& a, const GemmCall& c) {
  switch (a.m) {
    case 3: row_tile<3, kMlal>(c, a, 0, a.n_begin, a.n_end); break;
    case 2: row_tile<2, kMlal>(c, a, 0, a.n_begin, a.n_end); break;
    default: row_tile<1, kMlal>(c, a, 0, a.n_begin, a.n_end); break;
  }
}

void gemm_neon(const GemmArgs& a) {
  if (a.m == 0 || a.n_begin >= a.n_end) return;
  GemmHeader h;
  std::memcpy(&h, a.w->packed.data(), sizeof h);
  const GemmCall c(a, h);
  if (a.m < static_cast<size_t>(kMr)) {
    if (h.mlal_safe)
      gemm_few_rows_neon<true>(a, c);
    else
      gemm_few_rows_neon<false>(a, c);
  } else {
    if (h.mlal_safe)
      gemm_rows_neon<true>(a, c, h.k_pad);
    else
      gemm_rows_neon<false>(a, c, h.k_pad);
  }
}

}  // namespace

namespace neon {
void set_gemm(IsaKernels& t) {
  t.gemm_pack = gemm_pack_neon;
  t.gemm = gemm_neon;
}
}  // namespace neon
}  // namespace detail
}  // namespace mnq

#endif  // __aarch64__
