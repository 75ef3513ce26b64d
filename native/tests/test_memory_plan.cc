// The runtime's memory plan (runtime/memory_plan.h): exact layouts of small
// plans worked out by hand, the invariant (memory_check.h) on many random
// plans, and the invariant check itself catching broken layouts. The real
// models' plans: memory_plan_models.cc.
#include <algorithm>
#include <string>
#include <vector>

#include "memory_check.h"
#include "runtime/memory_plan.h"
#include "test_util.h"

using namespace mnq;
using mnq_test::memory_plan_violation;
using mnq_test::Rng;

namespace {

// Topology only: plan_memory reads tensor sizes and which op reads and writes what.
struct Topology {
  PlanDesc p;
  int tensor(int h, int w, int c) {
    PlanTensor t;
    t.name = "t" + std::to_string(p.tensors.size());
    t.h = h, t.w = w, t.c = c;
    p.tensors.push_back(t);
    return int(p.tensors.size()) - 1;
  }
  void op(std::vector<int> inputs, int output) {
    PlanOp o;
    o.type = inputs.size() == 2 ? PlanOpType::add : PlanOpType::lut;
    o.name = "op" + std::to_string(p.ops.size());
    o.inputs = std::move(inputs);
    o.output = output;
    p.ops.push_back(std::move(o));
  }
};

// A chain input -> a -> b -> c: the input is read where the caller's image is (no offset), the
// largest tensor (a) at 0, b (alive with a) after it, c (alive with b only) back at 0. Sizes round up to 64.
void test_chain() {
  Topology t;
  const int in = t.tensor(1, 1, 64), a = t.tensor(1, 2, 64), b = t.tensor(1, 1, 64), c = t.tensor(1, 1, 10);
  t.p.input = in;
  t.op({in}, a);
  t.op({a}, b);
  t.op({b}, c);
  t.p.outputs = {c};
  const MemoryPlan m = plan_memory(t.p);
  CHECK((m.offsets == std::vector<int64_t>{-1, 0, 128, 0}));
  CHECK(m.bytes == 192);
  CHECK(memory_plan_violation(t.p, m).empty());
}

// A residual (the block input read again by the add), an output made early (alive to the end),
// and a tensor nothing uses (no space).
void test_lifetimes() {
  Topology t;
  const int in = t.tensor(4, 4, 8), x = t.tensor(4, 4, 8), e = t.tensor(4, 4, 32), p = t.tensor(4, 4, 8);
  const int r = t.tensor(4, 4, 8);
  t.tensor(8, 8, 8);  // used by no op: offset -1
  const int head = t.tensor(1, 1, 16);
  t.p.input = in;
  t.op({in}, x);      // 0
  t.op({x}, e);       // 1: expand
  t.op({e}, p);       // 2: project
  t.op({p, x}, r);    // 3: residual add reads x again
  t.op({r}, head);    // 4
  t.p.outputs = {head, x};
  const MemoryPlan m = plan_memory(t.p);
  CHECK_MSG(memory_plan_violation(t.p, m).empty(), "%s", memory_plan_violation(t.p, m).c_str());
  // e (512 bytes) first at 0; the input not in the arena; x (alive from op 0 to
  // the end) after both; p (alive with e and x at op 2) after x; r (alive with x and p) back at
  // 0, head (alive with x and r) after r. The most alive at once: e, x and p.
  CHECK((m.offsets == std::vector<int64_t>{-1, 512, 0, 640, 0, -1, 128}));
  CHECK(m.bytes == 512 + 128 + 128);
}

// A fused group (ops 1-3: expand, project, residual add): its steps run interleaved, so its input x,
// the residual (x again) and its output r are alive together; the tensors inside it (e, p) are in the
// group's windows, not in the arena.
void test_fused_group() {
  Topology t;
  const int in = t.tensor(4, 4, 8), x = t.tensor(4, 4, 8), e = t.tensor(4, 4, 32), p = t.tensor(4, 4, 8);
  const int r = t.tensor(4, 4, 8), head = t.tensor(1, 1, 16);
  t.p.input = in;
  t.op({in}, x);    // 0
  t.op({x}, e);     // 1
  t.op({e}, p);     // 2
  t.op({p, x}, r);  // 3
  t.op({r}, head);  // 4
  t.p.outputs = {head};
  FusedGroup g;
  g.begin = 1;
  g.end = 4;
  const std::vector<FusedGroup> groups = {g};
  const MemoryPlan m = plan_memory(t.p, groups);
  CHECK_MSG(memory_plan_violation(t.p, m, groups).empty(), "%s", memory_plan_violation(t.p, m, groups).c_str());
  CHECK(m.offsets[e] == -1 && m.offsets[p] == -1 && m.offsets[in] == -1);
  CHECK(m.offsets[x] != m.offsets[r]);  // op 3 writes r while op 1 still reads x
  CHECK(m.bytes == 128 + 128);
  // The same layout without the group is not one: r may share x's bytes only op by op.
  MemoryPlan shared = m;
  shared.offsets[r] = shared.offsets[x];
  CHECK(memory_plan_violation(t.p, shared, groups).find("overlap while both are alive") != std::string::npos);
  shared.offsets[e] = 0;
  CHECK(memory_plan_violation(t.p, shared, groups).find("not in the arena") != std::string::npos);
}

// Random DAGs: the invariant holds, nothing uses more than all tensors side by side, and a
// second call gives the same layout.
void test_random_plans() {
  Rng rng(mnq_test::env_seed(21));
  for (int round = 0; round < 300; ++round) {
    Topology t;
    t.p.input = t.tensor(rng.uniform(1, 9), rng.uniform(1, 9), rng.uniform(1, 40));
    std::vector<int> made = {t.p.input};
    const int nops = rng.uniform(1, 30);
    for (int i = 0; i < nops; ++i) {
      const int n = int(made.size());
      std::vector<int> inputs = {made[size_t(rng.uniform(std::max(0, n - 4), n - 1))]};
      if (rng.chance(0.3f)) inputs.push_back(rng.pick(made));
      const int y = t.tensor(rng.uniform(1, 9), rng.uniform(1, 9), rng.uniform(1, 40));
      if (rng.chance(0.1f)) t.tensor(2, 2, 2);  // used by no op
      t.op(inputs, y);
      made.push_back(y);
    }
    t.p.outputs = {t.p.ops.back().output};
    if (rng.chance(0.5f)) t.p.outputs.push_back(t.p.ops[size_t(rng.uniform(0, nops - 1))].output);
    const MemoryPlan m = plan_memory(t.p);
    const std::string v = memory_plan_violation(t.p, m);
    CHECK_MSG(v.empty(), "round %d: %s", round, v.c_str());
    int64_t side_by_side = 0;
    for (const PlanTensor& x : t.p.tensors) side_by_side += (elements(x) + 63) / 64 * 64;
    CHECK(m.bytes > 0 && m.bytes <= side_by_side);
    const MemoryPlan again = plan_memory(t.p);
    CHECK(again.offsets == m.offsets && again.bytes == m.bytes);
  }
}

// The check finds broken layouts (so the tests above can fail).
void test_check_catches() {
  Topology t;
  const int in = t.tensor(4, 4, 8), x = t.tensor(4, 4, 8), y = t.tensor(4, 4, 8), z = t.tensor(1, 1, 8);
  t.p.input = in;
  t.op({in}, x);
  t.op({x, in}, y);
  t.op({y}, z);
  t.p.outputs = {z};
  const MemoryPlan good = plan_memory(t.p);
  CHECK(memory_plan_violation(t.p, good).empty());
  MemoryPlan m = good;
  m.offsets[y] = m.offsets[x];  // x is read by op 1, which writes y
  CHECK(memory_plan_violation(t.p, m).find("overlap while both are alive") != std::string::npos);
  m = good;
  m.offsets[in] = 0;  // the input is read from the caller's buffer
  CHECK(memory_plan_violation(t.p, m).find("is not in the arena") != std::string::npos);
  m = good;
  m.bytes -= 64;
  CHECK(memory_plan_violation(t.p, m).find("past the region") != std::string::npos);
  m = good;
  m.offsets[z] += 8;
  CHECK(memory_plan_violation(t.p, m).find("has offset") != std::string::npos);
  m = good;
  m.offsets.pop_back();
  CHECK(!memory_plan_violation(t.p, m).empty());
}

}  // namespace

int main() {
  test_chain();
  test_lifetimes();
  test_fused_group();
  test_random_plans();
  test_check_catches();
  return mnq_test::finish("test_memory_plan");
}
