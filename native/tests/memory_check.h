// The invariant a memory plan (runtime/memory_plan.h) must keep, checked
// independently of how plan_memory makes one: every tensor an op reads or
// writes lies inside the image's region at a 64-byte aligned offset, and no two
// tensors alive at the same time share a byte. A tensor is alive from the op
// that writes it (the input: before the first op) to the last op that reads it
// (plan outputs: to the end).
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "runtime/memory_plan.h"

namespace mnq_test {

// "" when `m` keeps the invariant for `plan`, else the first violation.
inline std::string memory_plan_violation(const mnq::PlanDesc& plan, const mnq::MemoryPlan& m) {
  const size_t n = plan.tensors.size();
  const int nops = static_cast<int>(plan.ops.size());
  if (m.offsets.size() != n) return "offsets has " + std::to_string(m.offsets.size()) + " entries for " +
                                    std::to_string(n) + " tensors";
  if (m.bytes % 64 != 0) return "bytes " + std::to_string(m.bytes) + " is not a multiple of 64";
  std::vector<int> def(n, nops + 1), last(n, -2);  // def > last: never used
  def[plan.input] = -1;
  last[plan.input] = -1;
  for (int i = 0; i < nops; ++i) {
    for (int t : plan.ops[i].inputs) last[t] = std::max(last[t], i);
    def[plan.ops[i].output] = i;
    last[plan.ops[i].output] = std::max(last[plan.ops[i].output], i);
  }
  for (int t : plan.outputs) last[t] = nops;
  auto name = [&](size_t t) { return "tensor " + std::to_string(t) + " ('" + plan.tensors[t].name + "')"; };
  for (size_t t = 0; t < n; ++t) {
    const int64_t off = m.offsets[t];
    if (def[t] > last[t]) {
      if (off != -1) return name(t) + " is never used but has offset " + std::to_string(off);
      continue;
    }
    if (off < 0 || off % 64 != 0) return name(t) + " has offset " + std::to_string(off);
    if (off + bytes(plan.tensors[t]) > m.bytes)
      return name(t) + " ends at " + std::to_string(off + bytes(plan.tensors[t])) + ", past the region's " +
             std::to_string(m.bytes) + " bytes";
  }
  for (size_t a = 0; a < n; ++a) {
    if (def[a] > last[a]) continue;
    for (size_t b = a + 1; b < n; ++b) {
      if (def[b] > last[b] || def[a] > last[b] || def[b] > last[a]) continue;  // not alive together
      const int64_t a0 = m.offsets[a], a1 = a0 + bytes(plan.tensors[a]);
      const int64_t b0 = m.offsets[b], b1 = b0 + bytes(plan.tensors[b]);
      if (a1 <= b0 || b1 <= a0) continue;
      return name(a) + " [" + std::to_string(a0) + ", " + std::to_string(a1) + ") and " + name(b) + " [" +
             std::to_string(b0) + ", " + std::to_string(b1) + ") overlap while both are alive";
    }
  }
  return "";
}

}  // namespace mnq_test
