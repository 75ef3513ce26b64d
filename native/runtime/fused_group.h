// Depth-first execution: a fused group is a chain of consecutive steps, each
// reading the one before it, whose tensors between them are never laid out in
// the arena. The group runs over bands of its last step's output rows: for a
// band, each step computes just the rows of its output that the next step's
// band needs (a kxk stride-s conv needs (rows - 1) * s + k input rows), kept in
// a per-thread window of rows that slides down the tensor. An inverted residual
// block (expand 1x1 -> depthwise kxk -> project 1x1 [-> residual add], with
// their tables) so never materializes its expanded tensor: the MobileNetV2
// paper's memory-efficient inference.
//
// Found at Model creation from the plan (find_fused_groups), run by the
// executor (run_fused_group). Exactness: every step computes each of its output
// values with the same kernel and the same inputs as the op-by-op path (a conv's
// rows and a GEMM's pixels are independent of how they are split), so the
// outputs are bit-identical; the kernels read only the input rows their output
// rows need, which the windows hold (test_fused_group checks both).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "plan.h"
#include "step.h"

namespace mnq {

// Rows [lo, hi) of a tensor.
struct RowRange {
  int lo = 0, hi = 0;
};

// The rows of step s's chained input (tensor `in`) that its output rows `out` read.
RowRange input_rows(const Step& s, const PlanTensor& in, RowRange out);

// Whether a step can run on any range of its output rows from a window of its
// chained input's rows (conv, max_pool, lut, add, mul).
bool row_local(const Step& s);

struct FusedGroup {
  size_t begin = 0, end = 0;  // steps [begin, end)
  // Per step j of the group (index j - begin): which input is the chained one
  // (0: x, 1: b; the first step's chained input is the group's input tensor).
  std::vector<int> chained;
  int band = 1;               // output rows of the last step per band
  // Per step j < end - 1: its output's window, rows and byte offset in the
  // thread's window memory (each window holds 2 * rows rows: it slides, and
  // moves its rows back to the start only when it reaches its end).
  std::vector<int> window_rows;
  std::vector<size_t> window_offset;
  size_t window_bytes = 0;    // one thread's window memory for this group
  size_t macs = 0;            // multiply-adds of one image through the group (splitting over threads)
};

// The fused groups of a model: maximal chains of at least two consecutive
// row-local steps before `tail_begin`, each reading the previous step's output,
// which nothing else reads and which is not a plan output. `band_bytes`: the
// window memory a group aims at per thread (the band is the largest number of
// rows whose windows fit, at least one).
std::vector<FusedGroup> find_fused_groups(const PlanDesc& plan, const std::vector<Step>& steps, size_t tail_begin,
                                          size_t band_bytes);

}  // namespace mnq
