// The invariant a memory plan (runtime/memory_plan.h) must keep, checked
// independently of how plan_memory makes one: every tensor an op reads or
// writes lies inside the image's region at a 64-byte aligned offset, and no two
// tensors alive at the same time share a byte. A tensor is alive from the op
// that writes it (the input: before the first op) to the last op that reads it
// (plan outputs: to the end). The steps of a fused group run interleaved, so each
// reads and writes at any time from the group's first op to its last, and the
// tensors inside a group (each step's output but the last's) are not in the arena, nor is the
// plan's input (read from the caller's images).
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "runtime/memory_plan.h"

namespace mnq_test {

// "" when `m` keeps the invariant for `plan`, else the first violation.
inline std::string memory_plan_violation(const mnq::PlanDesc& plan, const mnq::MemoryPlan& m,
                                         const std::vector<mnq::FusedGroup>& groups = {}) {
  const size_t n = plan.tensors.size();
  const int nops = static_cast<int>(plan.ops.size());
  if (m.offsets.size() != n) return "offsets has " + std::to_string(m.offsets.size()) + " entries for " +
                                    std::to_string(n) + " tensors";
  if (m.bytes % 64 != 0) return "bytes " + std::to_string(m.bytes) + " is not a multiple of 64";
  std::vector<int> def(n, nops + 1), last(n, -2);  // def > last: never used
  def[plan.input] = -1;
  last[plan.input] = -1;
  std::vector<int> from(nops), to(nops);  // when each op may read and write
  for (int i = 0; i < nops; ++i) from[i] = to[i] = i;
  std::vector<bool> inside(n, false);
  for (const mnq::FusedGroup& g : groups) {
    for (size_t k = g.begin; k < g.end; ++k) {
      from[k] = static_cast<int>(g.begin);
      to[k] = static_cast<int>(g.end) - 1;
    }
    for (size_t k = g.begin; k + 1 < g.end; ++k) inside[plan.ops[k].output] = true;
  }
  for (int i = 0; i < nops; ++i) {
    for (int t : plan.ops[i].inputs) last[t] = std::max(last[t], to[i]);
    def[plan.ops[i].output] = from[i];
    last[plan.ops[i].output] = std::max(last[plan.ops[i].output], to[i]);
  }
  for (int t : plan.outputs) last[t] = nops;
  auto name = [&](size_t t) { return "tensor " + std::to_string(t) + " ('" + plan.tensors[t].name + "')"; };
  for (size_t t = 0; t < n; ++t) {
    const int64_t off = m.offsets[t];
    if (inside[t] || static_cast<int>(t) == plan.input) {  // in windows / read from the caller's buffer
      if (off != -1) return name(t) + " is not in the arena but has offset " + std::to_string(off);
      continue;
    }
    if (def[t] > last[t]) {
      if (off != -1) return name(t) + " is never used but has offset " + std::to_string(off);
      continue;
    }
    if (off < 0 || off % 64 != 0) return name(t) + " has offset " + std::to_string(off);
    if (off + elements(plan.tensors[t]) > m.bytes)
      return name(t) + " ends at " + std::to_string(off + elements(plan.tensors[t])) + ", past the region's " +
             std::to_string(m.bytes) + " bytes";
  }
  for (size_t a = 0; a < n; ++a) {
    if (def[a] > last[a] || inside[a] || static_cast<int>(a) == plan.input) continue;
    for (size_t b = a + 1; b < n; ++b) {
      if (inside[b] || static_cast<int>(b) == plan.input || def[b] > last[b] || def[a] > last[b] || def[b] > last[a]) continue;  // not alive together
      const int64_t a0 = m.offsets[a], a1 = a0 + elements(plan.tensors[a]);
      const int64_t b0 = m.offsets[b], b1 = b0 + elements(plan.tensors[b]);
      if (a1 <= b0 || b1 <= a0) continue;
      return name(a) + " [" + std::to_string(a0) + ", " + std::to_string(a1) + ") and " + name(b) + " [" +
             std::to_string(b0) + ", " + std::to_string(b1) + ") overlap while both are alive";
    }
  }
  return "";
}

}  // namespace mnq_test
