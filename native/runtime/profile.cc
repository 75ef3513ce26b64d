#include "profile.h"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace mnq {

namespace {
const char* const kNames[Profile::kKinds] = {"quantize input", "conv 1x1 (gemm)", "conv depthwise", "conv general",
                                             "fully connected", "global avg pool", "add", "mul", "lut",
                                             "max pool", "arena + outputs", "fused groups"};
}  // namespace

int Profile::kind_of(PlanOpType type, ConvKind kind) {
  switch (type) {
    case PlanOpType::conv: return kind == ConvKind::pointwise ? 1 : kind == ConvKind::depthwise ? 2 : 3;
    case PlanOpType::fully_connected: return 4;
    case PlanOpType::global_avg_pool: return 5;
    case PlanOpType::add: return 6;
    case PlanOpType::mul: return 7;
    case PlanOpType::lut: return 8;
    case PlanOpType::max_pool: return 9;
  }
  return kOutputs;
}

bool Profile::enabled() {
  const char* v = std::getenv("MNQ_PROFILE");
  return v && *v && std::string(v) != "0";
}

void Profile::report(Isa isa, int threads) const {
  if (runs.load() == 0) return;
  const double n = static_cast<double>(runs.load());
  int64_t total = 0;
  for (int k = 0; k < kKinds; ++k) total += ns[k].load();
  std::fprintf(stderr, "mnq profile (%s, %d threads): %lld runs, %lld images, %.3f ms per run\n", isa_name(isa),
               threads, static_cast<long long>(runs.load()), static_cast<long long>(images.load()), total / 1e6 / n);
  for (int k = 0; k < kKinds; ++k) {
    if (calls[k].load() == 0) continue;
    std::fprintf(stderr, "  %-18s %8.3f ms/run %5.1f%%  %6.1f calls/run\n", kNames[k], ns[k].load() / 1e6 / n,
                 total ? 100.0 * ns[k].load() / total : 0.0, calls[k].load() / n);
  }
}

}  // namespace mnq
