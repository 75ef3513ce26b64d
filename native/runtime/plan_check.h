// Validation of a plan (plan.h) before a Model is built from it: every tensor,
// id, shape, weight size and parameter, so that building and running it need no
// further checks of their own.
#pragma once

#include <cstddef>
#include <string>

#include "plan.h"

namespace mnq {

// Throws std::invalid_argument with a message naming the plan tensor or op
// (index, type, name) and the field.
void check_plan(const PlanDesc& plan);

// How messages name an op: "plan op 3 (conv 'name')".
std::string op_where(size_t index, PlanOpType type, const std::string& name);

}  // namespace mnq
