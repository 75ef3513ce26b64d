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
// multiple of 8; calls of 1-3 rows such as the classifier) through
// ../gemm.h's intrinsics tile with the k loop in assembly (group_row).
#include "../../internal.h"
#include "table.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#include <cstring>

#define MNQ_GEMM_TARGET
#include "../gemm.h"

namespace mnq {
namespace detail {
namespace {

void gemm_pack_neon(PackedGemm* w) {
  int8_t* dst = gemm_pack_begin(w);
  const int n = w->n, k = w->k;
  const size_t groups = static_cast<size_t>(round_up(std::max(k, 1), kGemmKg) / kGemmKg);
  for (int c = 0; c < n; ++c) {
    const int8_t* src = w->w.data() + static_cast<size_t>(c) * k;
    for (int i = 0; i < k; ++i) {
      const size_t g = i / kGemmKg, pair = (i % kGemmKg) / 2;
      dst[(((c / kGemmNr) * groups + g) * 4 + pair) * (kGemmNr * 2) + (c % kGemmNr) * 2 + i % 2] = src[i];
    }
  }
}

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

// The full tiles (4 rows x 16 or 8 columns, all of them in the layer), wholly
// in assembly: accumulators from the folded bias, the k loop (two groups per
// iteration; then the k tail from the rows' padded copies), the output stage
// of ../gemm.h up to the clamp and the stores (a fused table is applied by the
// caller). In intrinsics GCC shuffles the 16 accumulators between registers
// around the loop. Registers: accumulators v0-v15 (see ../gemm.h), weights
// v16-v23, a row's pairs v24-v27, products v28-v31.
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
#define MNQ_A_ROW16(PAIRS, X, A0, A1, A2, A3)                         \
  "ld4r {v24.8h-v27.8h}, [%[" X "]], #8\n"                            \
  PAIRS(A0, A1, "v24", "v25", "v16", "v17", "v28", "v29")             \
  PAIRS(A2, A3, "v24", "v25", "v20", "v21", "v30", "v31")             \
  PAIRS(A0, A1, "v26", "v27", "v18", "v19", "v28", "v29")             \
  PAIRS(A2, A3, "v26", "v27", "v22", "v23", "v30", "v31")
#define MNQ_A_GROUP16(PAIRS)                                          \
  "ld1 {v16.16b-v19.16b}, [%[w0]], #64\n"                             \
  "ld1 {v20.16b-v23.16b}, [%[w1]], #64\n"                             \
  MNQ_A_ROW16(PAIRS, "x0", "v0", "v1", "v2", "v3")                    \
  MNQ_A_ROW16(PAIRS, "x1", "v4", "v5", "v6", "v7")                    \
  MNQ_A_ROW16(PAIRS, "x2", "v8", "v9", "v10", "v11")                  \
  MNQ_A_ROW16(PAIRS, "x3", "v12", "v13", "v14", "v15")
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
#define MNQ_A_LOOP(GROUP)                                             \
  "lsr %w[scratch], %w[groups], #1\n"                                 \
  "cbz %w[scratch], 2f\n"                                             \
  "1:\n"                                                              \
  GROUP                                                               \
  GROUP                                                               \
  "subs %w[scratch], %w[scratch], #1\n"                               \
  "b.ne 1b\n"                                                         \
  "2:\n"                                                              \
  "tbz %w[groups], #0, 3f\n"                                          \
  GROUP                                                               \
  "3:\n"                                                              \
  "cbz %w[tail], 4f\n"                                                \
  MNQ_GEMM_ASM_TAILS                                                  \
  GROUP                                                               \
  "4:\n"

template <int NH, bool kMlal>
__attribute__((always_inline)) inline void tile_4_asm(const GemmCall& c, const TileRows<4>& t, int n0,
                                                      const AsmOutput* out) {
  AsmTile a(c, t, n0, out);
  if (NH == 2 && kMlal)
    __asm__ volatile(MNQ_GEMM_ASM_INIT16 MNQ_A_LOOP(MNQ_A_GROUP16(MNQ_A_PAIRS_MLAL)) MNQ_GEMM_ASM_OUTPUT16
                     MNQ_GEMM_ASM_OPERANDS(a));
  if (NH == 2 && !kMlal)
    __asm__ volatile(MNQ_GEMM_ASM_INIT16 MNQ_A_LOOP(MNQ_A_GROUP16(MNQ_A_PAIRS_MULL)) MNQ_GEMM_ASM_OUTPUT16
                     MNQ_GEMM_ASM_OPERANDS(a));
  if (NH == 1 && kMlal)
    __asm__ volatile(MNQ_GEMM_ASM_INIT8 MNQ_A_LOOP(MNQ_A_GROUP8(MNQ_A_PAIRS_MLAL)) MNQ_GEMM_ASM_OUTPUT8
                     MNQ_GEMM_ASM_OPERANDS(a));
  if (NH == 1 && !kMlal)
    __asm__ volatile(MNQ_GEMM_ASM_INIT8 MNQ_A_LOOP(MNQ_A_GROUP8(MNQ_A_PAIRS_MULL)) MNQ_GEMM_ASM_OUTPUT8
                     MNQ_GEMM_ASM_OPERANDS(a));
}
#undef MNQ_A_LOOP
#undef MNQ_A_GROUP8
#undef MNQ_A_ROW8
#undef MNQ_A_GROUP16
#undef MNQ_A_ROW16
#undef MNQ_A_PAIRS_MULL
#undef MNQ_A_PAIRS_MLAL

struct NeonGemm {
  static constexpr int kPanelBytes = 16384;  // of the A72's 32 KiB L1
  static constexpr bool kMull = true;

  template <int NH, bool kMlal>
  __attribute__((always_inline)) static void tile4(const GemmCall& c, const TileRows<4>& t, int n0,
                                                   const AsmOutput* out) {
    tile_4_asm<NH, kMlal>(c, t, n0, out);
  }

  // The full groups, then (one more pass of the same loop) the k tail from the rows' padded copies.
  template <int MR, int NH, bool kMlal>
  __attribute__((always_inline)) static void accumulate(const GemmCall& c, const TileRows<MR>& t, int n0, Acc16& a0,
                                                        Acc16& a1, Acc16& a2, Acc16& a3) {
    const int8_t* wp0 = c.packed + static_cast<size_t>(n0 / kGemmNr) * c.panel_bytes;
    const int8_t* wp1 = wp0 + c.panel_bytes;
    const int8_t *x0 = t.x[0], *x1 = MR > 1 ? t.x[1] : nullptr, *x2 = MR > 2 ? t.x[2] : nullptr,
                 *x3 = MR > 3 ? t.x[3] : nullptr;
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
  }
};

void gemm_neon(const GemmArgs& a) { gemm_run<NeonGemm>(a); }

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
