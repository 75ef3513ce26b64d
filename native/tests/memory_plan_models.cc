// The runtime's memory plan on the plans of real models (written by
// memory_plan_models.js from the shared int8 MobileNets): the invariant holds
// (memory_check.h: every tensor inside the region, no two alive at once
// overlap), and where tensors can share bytes the region is much smaller than
// all tensors side by side.
#include <fstream>
#include <string>
#include <vector>

#include "memory_check.h"
#include "runtime/memory_plan.h"
#include "test_util.h"

using namespace mnq;

namespace {

bool read_plan(std::istream& in, std::string* name, std::string* kind, PlanDesc* p) {
  std::string word;
  if (!(in >> word)) return false;
  if (word != "plan") throw std::runtime_error("expected 'plan', got '" + word + "'");
  size_t n = 0;
  in >> *name >> *kind >> word >> p->input >> word >> n;
  p->outputs.resize(n);
  for (int& o : p->outputs) in >> o;
  in >> word >> n;
  p->tensors.resize(n);
  for (size_t i = 0; i < n; ++i) {
    p->tensors[i].name = "t" + std::to_string(i);
    in >> p->tensors[i].h >> p->tensors[i].w >> p->tensors[i].c;
  }
  in >> word >> n;
  p->ops.resize(n);
  for (PlanOp& op : p->ops) {
    size_t k = 0;
    in >> k;
    op.inputs.resize(k);
    for (int& t : op.inputs) in >> t;
    in >> op.output;
  }
  if (!in) throw std::runtime_error("truncated plan " + *name);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: memory_plan_models <plans.txt>\n");
    return 2;
  }
  std::ifstream in(argv[1]);
  CHECK_MSG(in.good(), "cannot read %s", argv[1]);
  std::string name, kind;
  PlanDesc plan;
  int plans = 0;
  while (read_plan(in, &name, &kind, &plan)) {
    ++plans;
    const MemoryPlan m = plan_memory(plan);
    const std::string v = mnq_test::memory_plan_violation(plan, m);
    CHECK_MSG(v.empty(), "%s: %s", name.c_str(), v.c_str());
    int64_t side_by_side = 0;
    for (const PlanTensor& t : plan.tensors) side_by_side += elements(t);
    // As loaded, tensors share bytes; with every tensor an output (alive to the end) none can.
    if (kind == "as-loaded") CHECK_MSG(m.bytes < side_by_side / 3, "%s: %lld bytes of %lld", name.c_str(),
                                       static_cast<long long>(m.bytes), static_cast<long long>(side_by_side));
    std::printf("%-52s %4zu tensors %4zu ops: %9lld bytes per image (tensors side by side: %lld)\n", name.c_str(),
                plan.tensors.size(), plan.ops.size(), static_cast<long long>(m.bytes),
                static_cast<long long>(side_by_side));
    plan = PlanDesc();
  }
  CHECK_MSG(plans >= 2, "%d plans in %s", plans, argv[1]);
  return mnq_test::finish("memory_plan_models");
}
