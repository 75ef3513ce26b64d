// Hand-built plans for the runtime tests: tensors, ops, convs and FCs with
// random weights (test_runtime, test_fused_group).
#pragma once

#include <string>
#include <vector>

#include "runtime/plan.h"
#include "test_util.h"

namespace mnq_test {

using mnq::ConvShape;
using mnq::PlanDesc;
using mnq::PlanOp;
using mnq::PlanOpType;
using mnq::PlanTensor;

struct Builder {
  PlanDesc p;
  Rng& rng;
  explicit Builder(Rng& r) : rng(r) {}

  int tensor(const std::string& name, int h, int w, int c, float scale, int zp) {
    PlanTensor t;
    t.name = name;
    t.h = h, t.w = w, t.c = c;
    t.scale = scale;
    t.zero_point = zp;
    p.tensors.push_back(t);
    return int(p.tensors.size()) - 1;
  }
  PlanOp& op(PlanOpType type, const std::string& name, std::vector<int> inputs, int output) {
    PlanOp o;
    o.type = type;
    o.name = name;
    o.inputs = std::move(inputs);
    o.output = output;
    p.ops.push_back(std::move(o));
    return p.ops.back();
  }
  // A conv (or FC when shape is null) with random weights; returns the output tensor.
  int conv(const std::string& name, int x, ConvShape s, int groups, float y_scale, int y_zp, bool asym_w = false) {
    const PlanTensor& xt = p.tensors[x];
    s.in_h = xt.h, s.in_w = xt.w, s.in_c = xt.c;
    if (s.out_h == 0) {
      s.out_h = (s.in_h + s.pad_top + s.pad_bottom - s.kernel_h) / s.stride_h + 1;
      s.out_w = (s.in_w + s.pad_left + s.pad_right - s.kernel_w) / s.stride_w + 1;
    }
    int y = tensor(name + ":out", s.out_h, s.out_w, s.out_c, y_scale, y_zp);
    PlanOp& o = op(PlanOpType::conv, name, {x}, y);
    o.shape = s;
    o.groups = groups;
    fill_weights(o, s.out_c, (s.in_c / groups) * s.kernel_h * s.kernel_w, asym_w);
    return y;
  }
  int fc(const std::string& name, int x, int n, float y_scale, int y_zp) {
    const PlanTensor& xt = p.tensors[x];
    const int k = xt.h * xt.w * xt.c;
    int y = tensor(name + ":out", 1, 1, n, y_scale, y_zp);
    PlanOp& o = op(PlanOpType::fully_connected, name, {x}, y);
    fill_weights(o, n, k, false);
    return y;
  }
  void fill_weights(PlanOp& o, int oc, int per_out, bool asym) {
    o.weights = mnq_test::random_i8(rng, size_t(oc) * per_out, -127, 127);
    o.w_scale.resize(oc);
    o.bias.resize(oc);
    for (int c = 0; c < oc; ++c) {
      o.w_scale[c] = rng.log_uniform(0.005f, 0.02f);
      o.bias[c] = rng.uniform(-3000, 3000);
    }
    if (asym) {
      o.w_zero_point.resize(oc);
      for (auto& z : o.w_zero_point) z = rng.uniform(-20, 20);
    }
  }
};

inline ConvShape conv_shape(int k, int stride, int pt, int pl, int pb, int pr, int out_c) {
  ConvShape s;
  s.kernel_h = s.kernel_w = k;
  s.stride_h = s.stride_w = stride;
  s.pad_top = pt, s.pad_left = pl, s.pad_bottom = pb, s.pad_right = pr;
  s.out_c = out_c;
  return s;
}

}  // namespace mnq_test
