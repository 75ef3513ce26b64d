// AArch64 dot-product GEMM (Cortex-A76, Raspberry Pi 5): 1x1 conv, fully
// connected, im2col'd conv. Bit-identical to ref/gemm.cc.
//
// Output tiles of up to 4 rows x 16 columns (../gemm.h's driver), k in groups
// of 4: SDOT by element, a group of 4 bytes of a row's x against 4 columns'
// 4 weights, exact int32 accumulation.
//   Packed weights: panels of 8 columns, [n_pad / 8][k_pad / 4][8 columns][4 bytes],
//   zero padded (k_pad a multiple of 8). The k loop reads 16 bytes of each row
//   per step (one 8-byte step more when k % 16 >= 8); the k tail of each row
//   (k % 8 bytes) is copied to 8 zero-padded bytes and read as one more step.
//   Zero points as in ../gemm.h: acc = sum x*w + bias_folded[n] - wz[n] * rowsum(x).
// Tiles of 4 rows and 16 (or 8) columns run wholly in assembly (tile_4_dot);
// the others (the last 1-3 rows, the last columns of a width that is not a
// multiple of 8; calls of 1-3 rows such as the classifier) through
// ../gemm.h's intrinsics tile.
#include "../../internal.h"
#include "table.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#include <cstring>

#include "target.h"
#define MNQ_GEMM_TARGET MNQ_DOTPROD
#include "../gemm.h"

namespace mnq {
namespace detail {
namespace {

void gemm_pack_dot(PackedGemm* w) {
  int8_t* dst = gemm_pack_begin(w);
  const int n = w->n, k = w->k;
  const size_t groups = static_cast<size_t>(round_up(std::max(k, 1), kGemmKg) / 4);
  for (int c = 0; c < n; ++c) {
    const int8_t* src = w->w.data() + static_cast<size_t>(c) * k;
    for (int i = 0; i < k; ++i)
      dst[(((c / kGemmNr) * groups + i / 4) * kGemmNr + c % kGemmNr) * 4 + i % 4] = src[i];
  }
}

// The full tiles (4 rows x 16 or 8 columns, all of them in the layer), wholly
// in assembly: accumulators from the folded bias, the k loop, the output stage
// of ../gemm.h up to the clamp and the stores (a fused table is applied by the
// caller). Registers: accumulators v0-v15 (see ../gemm.h), the rows' x v16-v19,
// weights v20-v23 (columns 0-7, two groups) and v24-v27 (columns 8-15).
#define MNQ_D_DOT16(LANE, WA, WB, WC, WD)                             \
  "sdot v0.4s, " WA ".16b, v16.4b[" LANE "]\n"                        \
  "sdot v1.4s, " WB ".16b, v16.4b[" LANE "]\n"                        \
  "sdot v2.4s, " WC ".16b, v16.4b[" LANE "]\n"                        \
  "sdot v3.4s, " WD ".16b, v16.4b[" LANE "]\n"                        \
  "sdot v4.4s, " WA ".16b, v17.4b[" LANE "]\n"                        \
  "sdot v5.4s, " WB ".16b, v17.4b[" LANE "]\n"                        \
  "sdot v6.4s, " WC ".16b, v17.4b[" LANE "]\n"                        \
  "sdot v7.4s, " WD ".16b, v17.4b[" LANE "]\n"                        \
  "sdot v8.4s, " WA ".16b, v18.4b[" LANE "]\n"                        \
  "sdot v9.4s, " WB ".16b, v18.4b[" LANE "]\n"                        \
  "sdot v10.4s, " WC ".16b, v18.4b[" LANE "]\n"                       \
  "sdot v11.4s, " WD ".16b, v18.4b[" LANE "]\n"                       \
  "sdot v12.4s, " WA ".16b, v19.4b[" LANE "]\n"                       \
  "sdot v13.4s, " WB ".16b, v19.4b[" LANE "]\n"                       \
  "sdot v14.4s, " WC ".16b, v19.4b[" LANE "]\n"                       \
  "sdot v15.4s, " WD ".16b, v19.4b[" LANE "]\n"
#define MNQ_D_DOT8(LANE, WA, WB)                                      \
  "sdot v0.4s, " WA ".16b, v16.4b[" LANE "]\n"                        \
  "sdot v1.4s, " WB ".16b, v16.4b[" LANE "]\n"                        \
  "sdot v2.4s, " WA ".16b, v17.4b[" LANE "]\n"                        \
  "sdot v3.4s, " WB ".16b, v17.4b[" LANE "]\n"                        \
  "sdot v4.4s, " WA ".16b, v18.4b[" LANE "]\n"                        \
  "sdot v5.4s, " WB ".16b, v18.4b[" LANE "]\n"                        \
  "sdot v6.4s, " WA ".16b, v19.4b[" LANE "]\n"                        \
  "sdot v7.4s, " WB ".16b, v19.4b[" LANE "]\n"
// x of the 4 rows: 16 (Q) or 8 (D) bytes each.
#define MNQ_D_X(R, N)                                                 \
  "ldr " R "16, [%[x0]], #" N "\n"                                    \
  "ldr " R "17, [%[x1]], #" N "\n"                                    \
  "ldr " R "18, [%[x2]], #" N "\n"                                    \
  "ldr " R "19, [%[x3]], #" N "\n"
#define MNQ_D_W16                                                     \
  "ld1 {v20.16b-v23.16b}, [%[w0]], #64\n"                             \
  "ld1 {v24.16b-v27.16b}, [%[w1]], #64\n"
#define MNQ_D_W8 "ld1 {v20.16b-v23.16b}, [%[w0]], #64\n"
#define MNQ_D_STEP16_16                                               \
  MNQ_D_X("q", "16") MNQ_D_W16                                        \
  MNQ_D_DOT16("0", "v20", "v21", "v24", "v25")                        \
  MNQ_D_DOT16("1", "v22", "v23", "v26", "v27")                        \
  MNQ_D_W16                                                           \
  MNQ_D_DOT16("2", "v20", "v21", "v24", "v25")                        \
  MNQ_D_DOT16("3", "v22", "v23", "v26", "v27")
#define MNQ_D_STEP8_16                                                \
  MNQ_D_X("d", "8") MNQ_D_W16                                         \
  MNQ_D_DOT16("0", "v20", "v21", "v24", "v25")                        \
  MNQ_D_DOT16("1", "v22", "v23", "v26", "v27")
#define MNQ_D_STEP16_8                                                \
  MNQ_D_X("q", "16") MNQ_D_W8                                         \
  MNQ_D_DOT8("0", "v20", "v21")                                       \
  MNQ_D_DOT8("1", "v22", "v23")                                       \
  MNQ_D_W8                                                            \
  MNQ_D_DOT8("2", "v20", "v21")                                       \
  MNQ_D_DOT8("3", "v22", "v23")
#define MNQ_D_STEP8_8                                                 \
  MNQ_D_X("d", "8") MNQ_D_W8                                          \
  MNQ_D_DOT8("0", "v20", "v21")                                       \
  MNQ_D_DOT8("1", "v22", "v23")
#define MNQ_D_LOOP(STEP16, STEP8)                                     \
  "lsr %w[scratch], %w[groups], #1\n"                                 \
  "cbz %w[scratch], 2f\n"                                             \
  "1:\n"                                                              \
  STEP16                                                              \
  "subs %w[scratch], %w[scratch], #1\n"                               \
  "b.ne 1b\n"                                                         \
  "2:\n"                                                              \
  "tbz %w[groups], #0, 3f\n"                                          \
  STEP8                                                               \
  "3:\n"                                                              \
  "cbz %w[tail], 4f\n"                                                \
  MNQ_GEMM_ASM_TAILS                                                  \
  STEP8                                                               \
  "4:\n"

template <int NH>
MNQ_DOTPROD __attribute__((always_inline)) inline void tile_4_dot(const GemmCall& c, const TileRows<4>& t, int n0,
                                                                  const AsmOutput* out) {
  AsmTile a(c, t, n0, out);
  if (NH == 2)
    __asm__ volatile(MNQ_GEMM_ASM_INIT16 MNQ_D_LOOP(MNQ_D_STEP16_16, MNQ_D_STEP8_16) MNQ_GEMM_ASM_OUTPUT16
                     MNQ_GEMM_ASM_OPERANDS(a));
  else
    __asm__ volatile(MNQ_GEMM_ASM_INIT8 MNQ_D_LOOP(MNQ_D_STEP16_8, MNQ_D_STEP8_8) MNQ_GEMM_ASM_OUTPUT8
                     MNQ_GEMM_ASM_OPERANDS(a));
}
#undef MNQ_D_LOOP
#undef MNQ_D_STEP8_8
#undef MNQ_D_STEP16_8
#undef MNQ_D_STEP8_16
#undef MNQ_D_STEP16_16
#undef MNQ_D_W8
#undef MNQ_D_W16
#undef MNQ_D_X
#undef MNQ_D_DOT8
#undef MNQ_D_DOT16

// One row, 8 k (x), against NH panels' two groups (w0: columns 0-7, w1: 8-15).
template <int NH>
MNQ_DOTPROD __attribute__((always_inline)) inline void dot_row(Acc16& a, int8x8_t x, const int8x16x4_t& w0,
                                                               const int8x16x4_t& w1) {
  a.v0 = vdotq_lane_s32(a.v0, w0.val[0], x, 0);
  a.v1 = vdotq_lane_s32(a.v1, w0.val[1], x, 0);
  a.v0 = vdotq_lane_s32(a.v0, w0.val[2], x, 1);
  a.v1 = vdotq_lane_s32(a.v1, w0.val[3], x, 1);
  if (NH == 2) {
    a.v2 = vdotq_lane_s32(a.v2, w1.val[0], x, 0);
    a.v3 = vdotq_lane_s32(a.v3, w1.val[1], x, 0);
    a.v2 = vdotq_lane_s32(a.v2, w1.val[2], x, 1);
    a.v3 = vdotq_lane_s32(a.v3, w1.val[3], x, 1);
  }
}

struct DotGemm {
  static constexpr int kPanelBytes = 32768;  // of the A76's 64 KiB L1
  static constexpr bool kMull = false;

  template <int NH, bool kMlal>
  MNQ_DOTPROD __attribute__((always_inline)) static void tile4(const GemmCall& c, const TileRows<4>& t, int n0,
                                                               const AsmOutput* out) {
    tile_4_dot<NH>(c, t, n0, out);
  }

  // Steps of 8 k, then (one more pass of the same loop) the k tail from the rows' padded copies.
  template <int MR, int NH, bool kMlal>
  MNQ_DOTPROD __attribute__((always_inline)) static void accumulate(const GemmCall& c, const TileRows<MR>& t, int n0,
                                                                    Acc16& a0, Acc16& a1, Acc16& a2, Acc16& a3) {
    const int8_t* wp0 = c.packed + static_cast<size_t>(n0 / kGemmNr) * c.panel_bytes;
    const int8_t* wp1 = wp0 + c.panel_bytes;
    const int8_t *x0 = t.x[0], *x1 = MR > 1 ? t.x[1] : nullptr, *x2 = MR > 2 ? t.x[2] : nullptr,
                 *x3 = MR > 3 ? t.x[3] : nullptr;
    int groups = c.groups;
    for (int pass = 0; pass < 2; ++pass) {
      for (int g = groups; g > 0; --g) {
        const int8x16x4_t w0 = vld1q_s8_x4(wp0);
        const int8x16x4_t w1 = NH == 2 ? vld1q_s8_x4(wp1) : w0;
        wp0 += 64;
        wp1 += 64;
        dot_row<NH>(a0, vld1_s8(x0), w0, w1);
        x0 += kGemmKg;
        if constexpr (MR > 1) {
          dot_row<NH>(a1, vld1_s8(x1), w0, w1);
          x1 += kGemmKg;
        }
        if constexpr (MR > 2) {
          dot_row<NH>(a2, vld1_s8(x2), w0, w1);
          x2 += kGemmKg;
        }
        if constexpr (MR > 3) {
          dot_row<NH>(a3, vld1_s8(x3), w0, w1);
          x3 += kGemmKg;
        }
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

MNQ_DOTPROD void gemm_dot(const GemmArgs& a) { gemm_run<DotGemm>(a); }

}  // namespace

namespace neondot {
void set_gemm(IsaKernels& t) {
  t.gemm_pack = gemm_pack_dot;
  t.gemm = gemm_dot;
}
}  // namespace neondot
}  // namespace detail
}  // namespace mnq

#endif  // __aarch64__
