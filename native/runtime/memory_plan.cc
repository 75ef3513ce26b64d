#include "memory_plan.h"

#include <algorithm>
#include <limits>

namespace mnq {

MemoryPlan plan_memory(const PlanDesc& plan, const std::vector<FusedGroup>& groups) {
  const size_t n = plan.tensors.size();
  const int nops = static_cast<int>(plan.ops.size());
  std::vector<int> first(n, std::numeric_limits<int>::max()), last(n, std::numeric_limits<int>::min());
  // The time of each op: its index, or its group's first index.
  std::vector<int> time(nops);
  for (int i = 0; i < nops; ++i) time[i] = i;
  std::vector<bool> windowed(n, false);
  for (const FusedGroup& g : groups) {
    for (size_t k = g.begin; k < g.end; ++k) time[k] = static_cast<int>(g.begin);
    for (size_t k = g.begin; k + 1 < g.end; ++k) windowed[plan.ops[k].output] = true;
  }
  auto touch = [&](int t, int i) {
    first[t] = std::min(first[t], i);
    last[t] = std::max(last[t], i);
  };
  touch(plan.input, -1);
  for (int i = 0; i < nops; ++i) {
    for (int t : plan.ops[i].inputs) touch(t, time[i]);
    touch(plan.ops[i].output, time[i]);
  }
  for (int t : plan.outputs) touch(t, nops);

  // Largest first; among equal sizes, the earliest made first (then by id).
  std::vector<int> order;
  for (size_t t = 0; t < n; ++t)
    if (first[t] <= last[t] && !windowed[t] && static_cast<int>(t) != plan.input) order.push_back(static_cast<int>(t));
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const int64_t sa = elements(plan.tensors[a]), sb = elements(plan.tensors[b]);
    return sa != sb ? sa > sb : first[a] < first[b];
  });

  struct Block {
    int64_t begin, end;
    int tensor;
  };
  std::vector<Block> placed, overlapping;
  MemoryPlan m;
  m.offsets.assign(n, -1);
  for (int t : order) {
    const int64_t size = (elements(plan.tensors[t]) + 63) / 64 * 64;
    overlapping.clear();
    for (const Block& p : placed)
      if (first[p.tensor] <= last[t] && first[t] <= last[p.tensor]) overlapping.push_back(p);
    std::sort(overlapping.begin(), overlapping.end(), [](const Block& a, const Block& b) { return a.begin < b.begin; });
    int64_t offset = 0;
    for (const Block& p : overlapping) {
      if (offset + size <= p.begin) break;
      offset = std::max(offset, p.end);
    }
    placed.push_back({offset, offset + size, t});
    m.offsets[t] = offset;
    m.bytes = std::max(m.bytes, offset + size);
  }
  return m;
}

}  // namespace mnq
