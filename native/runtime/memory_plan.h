// The memory plan of one image: where each tensor lives in the image's arena
// region. Tensors whose lifetimes do not overlap share bytes. Made by the
// runtime at Model creation (the compiler sends none): what lives in the arena
// is the executor's business.
#pragma once

#include <cstdint>
#include <vector>

#include "fused_group.h"
#include "plan.h"

namespace mnq {

struct MemoryPlan {
  std::vector<int64_t> offsets;  // per tensor id: byte offset in an image's region, a multiple of 64;
                                 // -1 for a tensor no op reads or writes (it gets no space)
  int64_t bytes = 0;             // bytes of one image's region, a multiple of 64
};

// A tensor lives from the op that writes it (the input: from before the first
// op) to the last op that reads it (plan outputs: to the end), so an op never
// writes over its own inputs. Tensors are placed largest first, each at the
// lowest 64-byte aligned offset free of the tensors already placed whose
// lifetimes overlap its own (first fit). The steps of a fused group run at one
// time (they interleave band by band), and the tensors inside it (each step's
// output but the last's) live in the group's windows, not in the arena; nor
// does the input, which the executor reads where the caller's images are. The plan
// must have passed check_plan.
MemoryPlan plan_memory(const PlanDesc& plan, const std::vector<FusedGroup>& groups = {});

}  // namespace mnq
