#include "plan_check.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace mnq {

namespace {

const char* op_type_name(PlanOpType t) {
  switch (t) {
    case PlanOpType::conv: return "conv";
    case PlanOpType::global_avg_pool: return "global_avg_pool";
    case PlanOpType::add: return "add";
    case PlanOpType::mul: return "mul";
    case PlanOpType::lut: return "lut";
    case PlanOpType::fully_connected: return "fully_connected";
    case PlanOpType::max_pool: return "max_pool";
  }
  return "unknown";
}

std::string tensor_where(size_t index, const PlanTensor& t) {
  std::ostringstream s;
  s << "plan tensor " << index << " ('" << t.name << "')";
  return s.str();
}

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::invalid_argument(where + ": " + what);
}

bool valid_scale(float s) { return std::isfinite(s) && s > 0; }
bool valid_int8(int32_t v) { return v >= -128 && v <= 127; }

std::string dims(const PlanTensor& t) {
  std::ostringstream s;
  s << "[h " << t.h << ", w " << t.w << ", c " << t.c << "]";
  return s.str();
}

std::string shape_triple(int a, int b, int c) {
  return "(" + std::to_string(a) + ", " + std::to_string(b) + ", " + std::to_string(c) + ")";
}

void check_tensors(const PlanDesc& plan) {
  if (plan.tensors.empty()) fail("plan", "has no tensors");
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const PlanTensor& t = plan.tensors[i];
    const std::string w = tensor_where(i, t);
    if (t.h < 1 || t.w < 1 || t.c < 1) fail(w, "h, w, c must be >= 1, got " + dims(t));
    if (!valid_scale(t.scale)) fail(w, "scale must be finite and > 0, got " + std::to_string(t.scale));
    if (!valid_int8(t.zero_point)) fail(w, "zero_point must be in [-128, 127], got " + std::to_string(t.zero_point));
    if (static_cast<int64_t>(t.h) * t.w > (int64_t{1} << 40) / t.c) fail(w, "is too large: " + dims(t));
  }
}

// Ids in range; every tensor produced once (the input: by the caller), before any op reads it.
void check_dataflow(const PlanDesc& plan) {
  const size_t nt = plan.tensors.size();
  auto check_id = [&](const std::string& where, const std::string& field, int id) {
    if (id < 0 || static_cast<size_t>(id) >= nt) {
      fail(where, field + " " + std::to_string(id) + " is not a tensor id (plan has " + std::to_string(nt) +
                      " tensors)");
    }
  };
  check_id("plan", "input", plan.input);
  if (plan.input_layout != InputLayout::nchw && plan.input_layout != InputLayout::nhwc)
    fail("plan", "input_layout " + std::to_string(static_cast<int>(plan.input_layout)) +
                     " is not an InputLayout (0 nchw, 1 nhwc)");
  if (plan.outputs.empty()) fail("plan", "outputs is empty");
  for (int id : plan.outputs) check_id("plan", "outputs[]", id);

  std::vector<bool> produced(nt, false);
  produced[plan.input] = true;
  for (size_t i = 0; i < plan.ops.size(); ++i) {
    const PlanOp& op = plan.ops[i];
    const std::string w = op_where(i, op.type, op.name);
    for (size_t k = 0; k < op.inputs.size(); ++k) {
      const int id = op.inputs[k];
      check_id(w, "inputs[" + std::to_string(k) + "]", id);
      if (!produced[id])
        fail(w, "input tensor " + std::to_string(id) + " ('" + plan.tensors[id].name +
                    "') is read before any op produces it");
    }
    check_id(w, "output", op.output);
    if (op.output == plan.input) fail(w, "output is the plan input tensor");
    if (produced[op.output])
      fail(w, "output tensor " + std::to_string(op.output) + " ('" + plan.tensors[op.output].name +
                  "') is already produced by an earlier op");
    produced[op.output] = true;
  }
  for (int id : plan.outputs) {
    if (!produced[id])
      fail("plan", "output tensor " + std::to_string(id) + " ('" + plan.tensors[id].name + "') is never produced");
  }
}

// The fields every op type shares: input count, activation, clamp, table.
void check_common(const std::string& w, const PlanOp& op) {
  size_t want_inputs = 0;
  switch (op.type) {
    case PlanOpType::conv: case PlanOpType::global_avg_pool: case PlanOpType::lut:
    case PlanOpType::fully_connected: case PlanOpType::max_pool:
      want_inputs = 1; break;
    case PlanOpType::add: case PlanOpType::mul:
      want_inputs = 2; break;
    default:
      fail(w, "type " + std::to_string(static_cast<int>(op.type)) + " is not a known op type");
  }
  if (op.inputs.size() != want_inputs)
    fail(w, "inputs has " + std::to_string(op.inputs.size()) + " tensor ids, expected " +
                std::to_string(want_inputs));
  if (op.has_activation || op.type == PlanOpType::lut) {
    const int fn = static_cast<int>(op.activation.fn);
    if (fn < 0 || fn > static_cast<int>(UnaryFn::mul_hardsigmoid))
      fail(w, "activation.fn " + std::to_string(fn) + " is not a known function");
    if (!std::isfinite(op.activation.p0) || !std::isfinite(op.activation.p1))
      fail(w, "activation.p0 / p1 must be finite");
  }
  if (op.has_activation && op.type != PlanOpType::lut) {
    if (!valid_scale(op.act_scale)) fail(w, "act_scale must be finite and > 0, got " + std::to_string(op.act_scale));
    if (!valid_int8(op.act_zero_point))
      fail(w, "act_zero_point must be in [-128, 127], got " + std::to_string(op.act_zero_point));
  }
  if (!valid_int8(op.qmin) || !valid_int8(op.qmax) || op.qmin > op.qmax)
    fail(w, "qmin / qmax must satisfy -128 <= qmin <= qmax <= 127, got " + std::to_string(op.qmin) + " / " +
                std::to_string(op.qmax));
  if (!op.table.empty() && op.table.size() != 256)
    fail(w, "table has " + std::to_string(op.table.size()) + " entries, expected 0 or 256");
  if (!op.table.empty() && !op.has_activation && op.type != PlanOpType::lut)
    fail(w, "table is set but has_activation is false");
}

// conv and fully_connected: the shape against the tensors, the grouping, and the weight arrays.
void check_conv(const std::string& w, const PlanOp& op, const PlanTensor& x, const PlanTensor& y) {
  ConvShape cs;
  int groups = 1;
  if (op.type == PlanOpType::conv) {
    cs = op.shape;
    groups = op.groups;
    try {
      cs.validate();
    } catch (const std::exception& e) {
      fail(w, std::string("shape: ") + e.what());
    }
    if (cs.in_h != x.h || cs.in_w != x.w || cs.in_c != x.c)
      fail(w, "shape.in_h/in_w/in_c " + shape_triple(cs.in_h, cs.in_w, cs.in_c) + " do not match input tensor '" +
                  x.name + "' " + dims(x));
    if (cs.out_h != y.h || cs.out_w != y.w || cs.out_c != y.c)
      fail(w, "shape.out_h/out_w/out_c " + shape_triple(cs.out_h, cs.out_w, cs.out_c) +
                  " do not match output tensor '" + y.name + "' " + dims(y));
    if (groups < 1 || cs.in_c % groups != 0 || cs.out_c % groups != 0)
      fail(w, "groups " + std::to_string(groups) + " must be >= 1 and divide in_c " + std::to_string(cs.in_c) +
                  " and out_c " + std::to_string(cs.out_c));
    if (op.input_pieces < 1) fail(w, "input_pieces must be >= 1, got " + std::to_string(op.input_pieces));
    if (op.input_pieces > 1) {
      if (groups != cs.out_c || cs.in_c != op.input_pieces * groups || cs.dilation_w != 1)
        fail(w, "input_pieces " + std::to_string(op.input_pieces) +
                    " needs groups == out_c, in_c == input_pieces * groups and dilation_w 1 (groups " +
                    std::to_string(groups) + ", in_c " + std::to_string(cs.in_c) + ", out_c " +
                    std::to_string(cs.out_c) + ", dilation_w " + std::to_string(cs.dilation_w) + ")");
    } else {
      try {
        conv_kind(cs, groups);
      } catch (const std::exception& e) {
        fail(w, e.what());
      }
    }
  } else {
    if (y.h != 1 || y.w != 1) fail(w, "output tensor '" + y.name + "' must be [h 1, w 1, c n], got " + dims(y));
    if (elements(x) > std::numeric_limits<int>::max()) fail(w, "input too large");
    cs = fully_connected_shape(x, y);
  }
  const int64_t oc = cs.out_c;
  const int64_t per_out = static_cast<int64_t>(cs.in_c / groups) * cs.kernel_h * cs.kernel_w;
  if (static_cast<int64_t>(op.weights.size()) != oc * per_out)
    fail(w, "weights has " + std::to_string(op.weights.size()) + " elements, expected " +
                std::to_string(oc * per_out) + " (out_c " + std::to_string(oc) + " x in_c/groups " +
                std::to_string(cs.in_c / groups) + " x " + std::to_string(cs.kernel_h) + " x " +
                std::to_string(cs.kernel_w) + ")");
  if (static_cast<int64_t>(op.w_scale.size()) != oc)
    fail(w, "w_scale has " + std::to_string(op.w_scale.size()) + " elements, expected out_c " + std::to_string(oc));
  for (size_t c = 0; c < op.w_scale.size(); ++c)
    if (!valid_scale(op.w_scale[c]))
      fail(w, "w_scale[" + std::to_string(c) + "] must be finite and > 0, got " + std::to_string(op.w_scale[c]));
  if (!op.w_zero_point.empty()) {
    if (static_cast<int64_t>(op.w_zero_point.size()) != oc)
      fail(w, "w_zero_point has " + std::to_string(op.w_zero_point.size()) + " elements, expected 0 or out_c " +
                  std::to_string(oc));
    for (size_t c = 0; c < op.w_zero_point.size(); ++c)
      if (!valid_int8(op.w_zero_point[c]))
        fail(w, "w_zero_point[" + std::to_string(c) + "] must be in [-128, 127], got " +
                    std::to_string(op.w_zero_point[c]));
  }
  if (!op.bias.empty() && static_cast<int64_t>(op.bias.size()) != oc)
    fail(w, "bias has " + std::to_string(op.bias.size()) + " elements, expected 0 or out_c " + std::to_string(oc));
}

// add and mul: the uint8 domain offset (PlanOp::add_offset).
void check_add_offset(const std::string& w, const PlanOp& op) {
  if (op.add_offset != 0 && op.add_offset != 128)
    fail(w, "add_offset must be 0 or 128, got " + std::to_string(op.add_offset));
}

void check_max_pool(const std::string& w, const PlanOp& op, const PlanTensor& x, const PlanTensor& y) {
  const ConvShape& ps = op.shape;
  try {
    ps.validate();
  } catch (const std::exception& e) {
    fail(w, std::string("shape: ") + e.what());
  }
  if (ps.in_h != x.h || ps.in_w != x.w || ps.in_c != x.c || ps.out_h != y.h || ps.out_w != y.w || ps.out_c != y.c ||
      ps.out_c != ps.in_c)
    fail(w, "shape (in " + std::to_string(ps.in_h) + "x" + std::to_string(ps.in_w) + "x" + std::to_string(ps.in_c) +
                ", out " + std::to_string(ps.out_h) + "x" + std::to_string(ps.out_w) + "x" +
                std::to_string(ps.out_c) + ") does not match input " + dims(x) + " and output " + dims(y) +
                " with out_c == in_c");
  if (!op.has_activation && (y.scale != x.scale || y.zero_point != x.zero_point))
    fail(w, "the output's scale and zero point differ from the input's: set has_activation (identity) to "
            "requantize");
}

void check_op(size_t index, const PlanOp& op, const std::vector<PlanTensor>& tensors) {
  const std::string w = op_where(index, op.type, op.name);
  check_common(w, op);
  const PlanTensor& x = tensors[op.inputs[0]];
  const PlanTensor& y = tensors[op.output];
  auto same_shape = [&](const PlanTensor& a, const PlanTensor& b, const char* what) {
    if (a.h != b.h || a.w != b.w || a.c != b.c)
      fail(w, std::string(what) + ": shapes differ, " + dims(a) + " vs " + dims(b));
  };
  switch (op.type) {
    case PlanOpType::conv:
    case PlanOpType::fully_connected:
      check_conv(w, op, x, y);
      break;
    case PlanOpType::max_pool:
      check_max_pool(w, op, x, y);
      break;
    case PlanOpType::global_avg_pool:
      if (y.h != 1 || y.w != 1 || y.c != x.c)
        fail(w, "output tensor '" + y.name + "' must be [h 1, w 1, c " + std::to_string(x.c) + "], got " + dims(y));
      break;
    case PlanOpType::add:
      same_shape(x, tensors[op.inputs[1]], "inputs[0] and inputs[1]");
      same_shape(x, y, "inputs[0] and output");
      check_add_offset(w, op);
      break;
    case PlanOpType::mul:
      same_shape(x, y, "inputs[0] and output");
      check_add_offset(w, op);
      if (!mul_broadcasts(x, tensors[op.inputs[1]]))
        same_shape(x, tensors[op.inputs[1]], "inputs[0] and inputs[1] (expected the same shape, or inputs[1] [h 1, w 1, c])");
      break;
    case PlanOpType::lut:
      same_shape(x, y, "inputs[0] and output");
      break;
  }
}

}  // namespace

std::string op_where(size_t index, PlanOpType type, const std::string& name) {
  std::ostringstream s;
  s << "plan op " << index << " (" << op_type_name(type) << " '" << name << "')";
  return s.str();
}

void check_plan(const PlanDesc& plan) {
  check_tensors(plan);
  check_dataflow(plan);
  for (size_t i = 0; i < plan.ops.size(); ++i) check_op(i, plan.ops[i], plan.tensors);
}

}  // namespace mnq
