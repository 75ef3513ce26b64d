#include "fused_group.h"

#include <algorithm>
#include <cstdlib>

namespace mnq {

bool row_local(const Step& s) {
  switch (s.type) {
    case PlanOpType::conv:
    case PlanOpType::max_pool:
    case PlanOpType::lut:
    case PlanOpType::add:
    case PlanOpType::mul:
      return true;
    case PlanOpType::fully_connected:
    case PlanOpType::global_avg_pool:
      return false;
  }
  return false;
}

RowRange input_rows(const Step& s, const PlanTensor& in, RowRange out) {
  if (s.type != PlanOpType::conv && s.type != PlanOpType::max_pool) return out;  // elementwise: the same rows
  const ConvShape& k = s.shape;
  const int lo = out.lo * k.stride_h - k.pad_top;
  const int hi = (out.hi - 1) * k.stride_h - k.pad_top + (k.kernel_h - 1) * k.dilation_h + 1;
  return {std::max(0, lo), std::min(in.h, hi)};
}

namespace {

int64_t row_bytes(const PlanTensor& t) { return static_cast<int64_t>(t.w) * t.c; }

// The input each step reads through the chain (the output of the step before it; for the first, its x).
const PlanTensor& chained_input(const std::vector<PlanTensor>& tensors, const Step& s, int chained) {
  return tensors[chained == 1 ? s.b : s.x];
}

// Rows of each step's output (index j - g.begin) that output rows `out` of the last step need.
void needed_rows(const FusedGroup& g, const std::vector<Step>& steps, const std::vector<PlanTensor>& tensors,
                 RowRange out, std::vector<RowRange>* need) {
  const size_t n = g.end - g.begin;
  need->resize(n);
  (*need)[n - 1] = out;
  for (size_t j = n - 1; j > 0; --j) {
    const Step& s = steps[g.begin + j];
    (*need)[j - 1] = input_rows(s, chained_input(tensors, s, g.chained[j]), (*need)[j]);
  }
}

// MNQ_WINDOW_SLACK: extra rows per window, as a percentage of the rows a band needs (experiment).
int slack(int most) {
  const char* v = std::getenv("MNQ_WINDOW_SLACK");
  const int pct = v && *v ? std::atoi(v) : 0;
  return most * pct / 100;
}

// Windows for bands of `band` rows: each the most rows of its tensor any band needs at once (a window as
// large as its tensor holds all of it).
void size_windows(FusedGroup* g, const std::vector<Step>& steps, const std::vector<PlanTensor>& tensors, int band) {
  const size_t n = g->end - g->begin;
  const int out_h = tensors[steps[g->end - 1].y].h;
  std::vector<int> most(n - 1, 0);
  std::vector<RowRange> need;
  for (int r0 = 0; r0 < out_h; ++r0) {
    needed_rows(*g, steps, tensors, {r0, std::min(out_h, r0 + band)}, &need);
    for (size_t j = 0; j + 1 < n; ++j) most[j] = std::max(most[j], need[j].hi - need[j].lo);
  }
  g->band = band;
  g->window_rows.assign(n - 1, 0);
  g->window_offset.assign(n - 1, 0);
  g->window_bytes = 0;
  for (size_t j = 0; j + 1 < n; ++j) {
    const PlanTensor& t = tensors[steps[g->begin + j].y];
    g->window_rows[j] = std::min(t.h, most[j] + slack(most[j]));
    g->window_offset[j] = g->window_bytes;
    g->window_bytes += (static_cast<size_t>(g->window_rows[j]) * row_bytes(t) + 63) / 64 * 64;
  }
}

}  // namespace

std::vector<FusedGroup> find_fused_groups(const PlanDesc& plan, const std::vector<Step>& steps, size_t tail_begin,
                                          size_t band_bytes) {
  // Readers of each tensor: op inputs, and the plan's outputs (read by the caller).
  std::vector<int> readers(plan.tensors.size(), 0);
  for (const PlanOp& op : plan.ops)
    for (int t : op.inputs) ++readers[t];
  for (int t : plan.outputs) ++readers[t];

  // Which input of step s continues a chain from tensor t (0: x, 1: b), or -1.
  auto chains_from = [&](const Step& s, int t) {
    if (!row_local(s) || readers[t] != 1) return -1;
    if (s.x == t) return 0;
    // b carries rows only for an add and a same-shape mul (a channelwise mul's b is one pixel).
    if (s.b == t && (s.type == PlanOpType::add || (s.type == PlanOpType::mul && !s.channelwise))) return 1;
    return -1;
  };

  std::vector<FusedGroup> groups;
  for (size_t i = 0; i < tail_begin;) {
    if (!row_local(steps[i])) {
      ++i;
      continue;
    }
    FusedGroup g;
    g.begin = i;
    g.chained.push_back(0);
    size_t j = i + 1;
    for (; j < tail_begin; ++j) {
      const int c = chains_from(steps[j], steps[j - 1].y);
      if (c < 0) break;
      g.chained.push_back(c);
    }
    g.end = j;
    i = j;
    if (g.end - g.begin < 2) continue;
    for (size_t k = g.begin; k < g.end; ++k) {
      const Step& s = steps[k];
      const PlanTensor& y = plan.tensors[s.y];
      g.macs += s.type == PlanOpType::conv ? s.row_macs * static_cast<size_t>(y.h)
                                           : static_cast<size_t>(elements(y)) / 8;  // elementwise: cheap
    }
    // The band: the most rows whose windows fit band_bytes (at least one row).
    const int out_h = plan.tensors[steps[g.end - 1].y].h;
    int band = 1;
    for (int b = 2; b <= out_h; ++b) {
      FusedGroup t = g;
      size_windows(&t, steps, plan.tensors, b);
      if (t.window_bytes > band_bytes) break;
      band = b;
    }
    size_windows(&g, steps, plan.tensors, band);
    groups.push_back(std::move(g));
  }
  return groups;
}

}  // namespace mnq
