// The GEMM driver common to the two VNNI GEMMs (avx512vnni/gemm.cc: 16
// columns per zmm block, avxvnni/gemm.cc: 8 per ymm block): the call state the
// tiles read and the loop over row panels. Each file includes it inside its
// target region, after vnni_pack.h; everything here has internal linkage and is
// compiled for that ISA. The vector code (panel building, tiles, stores) stays
// in the files.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../internal.h"
#include "vnni_pack.h"

namespace mnq {
namespace detail {
namespace {

struct GemmCall {
  const uint8_t* panel;    // [MR][ps] u8
  size_t ps;
  const int32_t* rowsum;   // [MR] sum_k x (asymmetric weights only)
  int rows;                // valid rows in the panel
  int k4;
  size_t block_bytes;      // k4 * 4 * kCols
  const uint8_t* wpacked;  // weights of block 0
  const int32_t* bias;     // bias_folded (padded)
  const int32_t* wzp;      // padded w zero points
  const float* mult;       // [n]
  int n;                   // total columns
  bool asym;
  bool fast;               // the packed output stage applies (no table, every |multiplier| < 1)
  int8_t* y;               // row 0 of the panel, column 0
  size_t ys;
};

// Rows of a GEMM call MR at a time: build_panel(x, x_stride, k, rows, MR, ps,
// want_sums, panel, rowsum) fills the panel, then tiles(c, nb_begin, nb_end)
// computes its column blocks. fast_ok: whether the packed output stage may be
// used at all (then every multiplier of the columns must be below 1 too).
template <int MR, int kCols, class BuildPanel, class Tiles>
void gemm_panels(const GemmArgs& a, bool fast_ok, uint8_t* panel, size_t ps, BuildPanel build_panel,
                 Tiles tiles) {
  const PackedGemm& w = *a.w;
  GemmCall c;
  int32_t rowsum[MR];
  c.panel = panel;
  c.ps = ps;
  c.rowsum = rowsum;
  c.k4 = (w.k + 3) / 4;
  c.block_bytes = size_t(c.k4) * 4 * kCols;
  c.wpacked = w.packed.data();
  c.bias = w.bias_folded.data();
  c.wzp = vnni::gemm_packed_wzp<kCols>(w);
  c.mult = a.out->multiplier.data();
  c.n = w.n;
  c.asym = !w.symmetric;
  c.ys = a.y_stride;
  c.fast = fast_ok;
  for (int j = a.n_begin; j < a.n_end && c.fast; ++j) c.fast = c.mult[j] < 1.0f && c.mult[j] > -1.0f;
  const int nb_begin = a.n_begin / kCols;
  const int nb_end = (a.n_end + kCols - 1) / kCols;
  for (size_t m0 = 0; m0 < a.m; m0 += MR) {
    const int rows = int(a.m - m0 < size_t(MR) ? a.m - m0 : size_t(MR));
    build_panel(a.x + m0 * a.x_stride, a.x_stride, w.k, rows, MR, ps, c.asym, panel, rowsum);
    c.rows = rows;
    c.y = a.y + m0 * a.y_stride;
    tiles(c, nb_begin, nb_end);
  }
}

}  // namespace
}  // namespace detail
}  // namespace mnq
