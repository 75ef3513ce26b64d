// The runtime (native/runtime) on hand-built plans: every op type, batched and
// threaded execution, run and run_int8, concurrent runs on one Model, and plan
// validation. The expected result comes from a straightforward executor below:
// one image at a time, one buffer per tensor, the scalar kernels called directly
// (no arena, no batching, no threads), so any difference is the runtime's.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <memory>
#include <thread>
#include <vector>

#include "memory_check.h"
#include "plan_builder.h"
#include "runtime/model.h"
#include "test_util.h"

using namespace mnq;
using mnq_test::Builder;
using mnq_test::conv_shape;
using mnq_test::make_int16;
using mnq_test::Rng;

namespace {

// A small MobileNetV3-like network using every op type.
PlanDesc network(Rng& rng) {
  Builder b(rng);
  const int in = b.tensor("input", 9, 11, 3, 0.02f, -5);
  b.p.input = in;
  // Stem: general 3x3 stride 2, TF "SAME" padding, ReLU6 as a clamp.
  int t0 = b.conv("stem", in, conv_shape(3, 2, 0, 0, 1, 1, 8), 1, 0.05f, -128);
  b.p.ops.back().qmin = -128;
  b.p.ops.back().qmax = -128 + 120;
  // Depthwise 3x3 with a fused h-swish table.
  int t1 = b.conv("dw", t0, conv_shape(3, 1, 1, 1, 1, 1, 8), 8, 0.04f, -100);
  b.p.ops.back().has_activation = true;
  b.p.ops.back().activation = {UnaryFn::hardswish, 0, 0};
  b.p.ops.back().act_scale = 0.06f;
  b.p.ops.back().act_zero_point = 3;
  // Expand and project (pointwise), asymmetric weights on one of them.
  int t2 = b.conv("expand", t1, conv_shape(1, 1, 0, 0, 0, 0, 16), 1, 0.05f, 7, true);
  int t3 = b.conv("project", t2, conv_shape(1, 1, 0, 0, 0, 0, 8), 1, 0.06f, -2);
  // Residual.
  int t4 = b.tensor("residual", 4, 5, 8, 0.07f, 1);
  b.op(PlanOpType::add, "add", {t3, t0}, t4);
  // Squeeze-and-excite: GAP -> FC + ReLU -> FC + h-sigmoid -> channel scale.
  int t5 = b.tensor("se:gap", 1, 1, 8, 0.03f, -1);
  b.op(PlanOpType::global_avg_pool, "se:gap", {t4}, t5);
  int t6 = b.fc("se:fc1", t5, 4, 0.02f, -128);
  b.p.ops.back().qmin = -128;  // ReLU
  int t7 = b.fc("se:fc2", t6, 8, 1.0f / 256, -128);
  b.p.ops.back().has_activation = true;
  b.p.ops.back().activation = {UnaryFn::hardsigmoid, 1.0f / 6, 0.5f};
  b.p.ops.back().act_scale = 0.05f;
  b.p.ops.back().act_zero_point = 0;
  int t8 = b.tensor("se:scaled", 4, 5, 8, 0.06f, 4);
  b.op(PlanOpType::mul, "se:mul", {t4, t7}, t8);
  // Standalone h-swish, then a same-shape mul with a clamp and a GAP with a fused table.
  int t9 = b.tensor("hswish", 4, 5, 8, 0.05f, -20);
  b.op(PlanOpType::lut, "hswish", {t8}, t9).activation = {UnaryFn::hardswish, 0, 0};
  int t10 = b.tensor("square", 4, 5, 8, 0.08f, -30);
  PlanOp& sq = b.op(PlanOpType::mul, "square", {t9, t9}, t10);
  sq.qmin = -100;
  sq.qmax = 90;
  // Max pool 3x3 stride 2 pad 1, requantized through an identity table.
  int t10p = b.tensor("maxpool", 2, 3, 8, 0.11f, -7);
  PlanOp& mp = b.op(PlanOpType::max_pool, "maxpool", {t10}, t10p);
  mp.shape = conv_shape(3, 2, 1, 1, 1, 1, 8);
  mp.shape.in_h = 4; mp.shape.in_w = 5; mp.shape.in_c = 8;
  mp.shape.out_h = 2; mp.shape.out_w = 3;
  mp.has_activation = true;
  mp.activation = {UnaryFn::identity, 0, 0};
  mp.act_scale = 0.08f;
  mp.act_zero_point = -30;
  int t11 = b.tensor("gap", 1, 1, 8, 0.04f, 2);
  PlanOp& gap = b.op(PlanOpType::global_avg_pool, "gap", {t10p}, t11);
  gap.has_activation = true;
  gap.activation = {UnaryFn::sigmoid, 0, 0};
  gap.act_scale = 0.05f;
  gap.act_zero_point = 0;
  // Classifier.
  int t12 = b.fc("classifier", t11, 10, 0.1f, 0);
  b.p.outputs = {t12, t9};
  return b.p;
}

// A MobileNetV3-like network with int16 activations in most places (docs/quantization.md, "int16
// activations"): every wide op type, int8 <-> int16 boundaries both ways, an int16 tensor with a zero
// point, and a batched tail (GAP -> classifier) that reads an int16 tensor.
PlanDesc mixed_network(Rng& rng) {
  Builder b(rng);
  const int in = b.tensor("input", 9, 11, 3, 0.02f, -5);
  b.p.input = in;
  int t0 = b.conv("stem", in, conv_shape(3, 2, 0, 0, 1, 1, 8), 1, 0.002f, 0);  // int8 -> int16
  make_int16(b, t0, 0);
  int t1 = b.tensor("hswish", 4, 5, 8, 0.002f, 0);
  b.op(PlanOpType::lut, "hswish", {t0}, t1).activation = {UnaryFn::hardswish, 0, 0};
  make_int16(b, t1, 0);
  int t2 = b.conv("dw", t1, conv_shape(3, 1, 1, 1, 1, 1, 8), 8, 0.002f, 0);  // int16 -> int16, ReLU
  make_int16(b, t2, 0);
  b.p.ops.back().qmin = 0;
  int t3 = b.conv("project", t2, conv_shape(1, 1, 0, 0, 0, 0, 8), 1, 0.05f, 3);  // int16 -> int8
  int t4 = b.conv("expand", t3, conv_shape(1, 1, 0, 0, 0, 0, 16), 1, 0.003f, 100);  // int8 -> int16, zp 100
  make_int16(b, t4, 100);
  int t5 = b.conv("project2", t4, conv_shape(1, 1, 0, 0, 0, 0, 8), 1, 0.01f, 0);
  make_int16(b, t5, 0);
  int t6 = b.tensor("residual", 4, 5, 8, 0.01f, 0);
  b.op(PlanOpType::add, "add", {t5, t0}, t6);
  make_int16(b, t6, 0);
  b.p.ops.back().qmin = 0;  // ReLU
  int t7 = b.tensor("se:gap", 1, 1, 8, 0.005f, 0);
  b.op(PlanOpType::global_avg_pool, "se:gap", {t6}, t7);
  make_int16(b, t7, 0);
  int t8 = b.fc("se:fc1", t7, 4, 0.02f, 0);
  make_int16(b, t8, 0);
  int t9 = b.fc("se:fc2", t8, 8, 0.05f, 0);  // int16 -> int8
  for (float& w : b.p.ops.back().w_scale) w *= 0.01f;  // values in the h-sigmoid's slope
  int t10 = b.tensor("se:hsigmoid", 1, 1, 8, 1.0f / 32768, 0);
  b.op(PlanOpType::lut, "se:hsigmoid", {t9}, t10).activation = {UnaryFn::hardsigmoid, 1.0f / 6, 0.5f};
  make_int16(b, t10, 0);
  b.p.ops.back().qmin = -128;  // a lut's clamp is in its input's type (int8 here)
  b.p.ops.back().qmax = 127;
  int t11 = b.tensor("se:scaled", 4, 5, 8, 0.01f, 0);
  b.op(PlanOpType::mul, "se:mul", {t6, t10}, t11);
  make_int16(b, t11, 0);
  int t12 = b.tensor("requantized", 4, 5, 8, 0.8f, -3);
  b.op(PlanOpType::lut, "requantize", {t11}, t12).activation = {UnaryFn::identity, 0, 0};
  b.p.ops.back().qmin = -32768;  // a lut's clamp is in its input's type
  b.p.ops.back().qmax = 32767;
  int t13 = b.tensor("gap", 1, 1, 8, 0.005f, 0);
  b.op(PlanOpType::global_avg_pool, "gap", {t12}, t13);  // int8 -> int16
  make_int16(b, t13, 0);
  int t14 = b.fc("classifier", t13, 10, 1.0f, 0);  // int16 -> int8, in the batched tail
  b.p.outputs = {t14, t12};
  return b.p;
}

// ------------------------------------------------------------ reference executor
// An op with int16 tensors, by the scalar wide kernels (t: each tensor's bytes).
void reference_wide(const PlanDesc& p, const PlanOp& op, std::vector<std::vector<int8_t>>& t) {
  const PlanTensor& x = p.tensors[op.inputs[0]];
  const PlanTensor& y = p.tensors[op.output];
  const Quant xq = quant_of(x), yq = quant_of(y);
  const void* a = t[op.inputs[0]].data();
  void* out = t[op.output].data();
  const size_t n = size_t(elements(y));
  switch (op.type) {
    case PlanOpType::conv:
    case PlanOpType::fully_connected: {
      ConvShape s = op.type == PlanOpType::conv ? op.shape : fully_connected_shape(x, y);
      PackedConvPtr pk = pack_conv_wide(Isa::scalar, conv_kind(s, op.type == PlanOpType::conv ? op.groups : 1), s,
                                        op.weights.data(), op.bias.empty() ? nullptr : op.bias.data(), x.dtype,
                                        x.zero_point);
      OutputStage st = make_output_stage(x.scale, op.w_scale.data(), op.w_scale.size(), y.scale, y.zero_point,
                                         op.qmin, op.qmax, y.dtype);
      std::vector<uint8_t> scratch(conv_scratch_size(*pk, 0, s.out_h) + 64);
      conv_run_wide(*pk, st, a, out, 0, s.out_h, scratch.data());
      break;
    }
    case PlanOpType::global_avg_pool:
      global_avg_pool_wide(Isa::scalar, WideGapParams{xq, yq, op.qmin, op.qmax}, size_t(x.h) * x.w, size_t(x.c), a, out);
      break;
    case PlanOpType::add:
    case PlanOpType::mul: {
      const PlanTensor& bt = p.tensors[op.inputs[1]];
      const WideBinaryParams bp{xq, quant_of(bt), yq, op.qmin, op.qmax};
      const void* b = t[op.inputs[1]].data();
      if (op.type == PlanOpType::add) add_wide(Isa::scalar, bp, n, a, b, out);
      else if (bt.h == 1 && bt.w == 1 && !(x.h == 1 && x.w == 1)) mul_channelwise_wide(Isa::scalar, bp, size_t(x.h) * x.w, size_t(x.c), a, b, out);
      else mul_wide(Isa::scalar, bp, n, a, b, out);
      break;
    }
    case PlanOpType::lut:
      unary_wide(Isa::scalar, WideUnaryParams{op.activation, xq, yq, op.qmin, op.qmax}, n, a, out);
      break;
    case PlanOpType::max_pool:
      throw std::logic_error("no wide max_pool");
  }
}

std::vector<std::vector<int8_t>> reference(const PlanDesc& p, const int8_t* input) {
  std::vector<std::vector<int8_t>> t(p.tensors.size());
  auto size = [&](int id) { return size_t(bytes(p.tensors[id])); };
  t[p.input].assign(input, input + size(p.input));
  for (const PlanOp& op : p.ops) {
    const PlanTensor& x = p.tensors[op.inputs[0]];
    const PlanTensor& y = p.tensors[op.output];
    std::vector<int8_t>& out = t[op.output];
    out.assign(size(op.output), 0);
    if (op_is_wide(op, p.tensors)) {
      reference_wide(p, op, t);
      continue;
    }
    const std::vector<int8_t>& a = t[op.inputs[0]];
    const float mid_s = op.has_activation ? op.act_scale : y.scale;
    const int mid_z = op.has_activation ? op.act_zero_point : y.zero_point;
    int8_t table[256];
    if (op.has_activation) make_lut(op.activation, op.act_scale, op.act_zero_point, y.scale, y.zero_point, table);
    auto clamp_then_table = [&] {
      for (auto& v : out) {
        int q = std::min(std::max(int(v), op.qmin), op.qmax);
        v = op.has_activation ? table[q + 128] : int8_t(q);
      }
    };
    switch (op.type) {
      case PlanOpType::conv:
      case PlanOpType::fully_connected: {
        ConvShape s = op.shape;
        int groups = op.groups;
        if (op.type == PlanOpType::fully_connected) {
          s = ConvShape();
          s.in_c = x.h * x.w * x.c;
          s.out_c = y.c;
          s.in_h = s.in_w = s.out_h = s.out_w = 1;
          groups = 1;
        }
        PackedConvPtr pk = pack_conv(Isa::scalar, conv_kind(s, groups), s, op.weights.data(),
                                     op.w_zero_point.empty() ? nullptr : op.w_zero_point.data(),
                                     op.bias.empty() ? nullptr : op.bias.data(), x.zero_point);
        OutputStage st = make_output_stage(x.scale, op.w_scale.data(), op.w_scale.size(), mid_s, mid_z,
                                           op.qmin, op.qmax);
        if (op.has_activation) {
          st.has_lut = true;
          std::copy(table, table + 256, st.lut);
        }
        std::vector<uint8_t> scratch(conv_scratch_size(*pk, 0, s.out_h) + 64);
        conv_run(*pk, st, a.data(), out.data(), 0, s.out_h, scratch.data());
        break;
      }
      case PlanOpType::global_avg_pool: {
        GlobalAvgPoolParams g{x.scale, x.zero_point, mid_s, mid_z};
        global_avg_pool(Isa::scalar, g, size_t(x.h) * x.w, size_t(x.c), a.data(), out.data());
        clamp_then_table();
        break;
      }
      case PlanOpType::add: {
        const PlanTensor& bt = p.tensors[op.inputs[1]];
        AddParams ap{x.scale, x.zero_point, bt.scale, bt.zero_point, mid_s, mid_z, op.qmin, op.qmax, op.add_offset};
        add(Isa::scalar, ap, out.size(), a.data(), t[op.inputs[1]].data(), out.data());
        if (op.has_activation) clamp_then_table();
        break;
      }
      case PlanOpType::mul: {
        const PlanTensor& bt = p.tensors[op.inputs[1]];
        MulParams mp{x.scale, x.zero_point, bt.scale, bt.zero_point, mid_s, mid_z, op.add_offset};
        if (bt.h == 1 && bt.w == 1 && !(x.h == 1 && x.w == 1))
          mul_channelwise(Isa::scalar, mp, size_t(x.h) * x.w, size_t(x.c), a.data(), t[op.inputs[1]].data(),
                          out.data());
        else
          mul(Isa::scalar, mp, out.size(), a.data(), t[op.inputs[1]].data(), out.data());
        clamp_then_table();
        break;
      }
      case PlanOpType::max_pool: {
        const ConvShape& s = op.shape;
        for (int oy = 0; oy < s.out_h; ++oy)
          for (int ox = 0; ox < s.out_w; ++ox)
            for (int c = 0; c < s.in_c; ++c) {
              int m = -128;
              for (int ky = 0; ky < s.kernel_h; ++ky)
                for (int kx = 0; kx < s.kernel_w; ++kx) {
                  const int iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
                  const int ix = ox * s.stride_w - s.pad_left + kx * s.dilation_w;
                  if (iy >= 0 && iy < s.in_h && ix >= 0 && ix < s.in_w) m = std::max(m, int(a[(iy * s.in_w + ix) * s.in_c + c]));
                }
              out[(oy * s.out_w + ox) * s.in_c + c] = int8_t(m);
            }
        clamp_then_table();
        break;
      }
      case PlanOpType::lut: {
        int8_t lt[256];
        make_lut(op.activation, x.scale, x.zero_point, y.scale, y.zero_point, lt);
        for (size_t i = 0; i < out.size(); ++i) {
          int q = std::min(std::max(int(a[i]), op.qmin), op.qmax);
          out[i] = lt[q + 128];
        }
        break;
      }
    }
  }
  std::vector<std::vector<int8_t>> outs;
  for (int id : p.outputs) outs.push_back(t[id]);
  return outs;
}

// Quantizes a float NCHW image as the runtime's input stage does.
std::vector<int8_t> quantize_input(const PlanDesc& p, const float* nchw) {
  const PlanTensor& in = p.tensors[p.input];
  std::vector<int8_t> q(size_t(in.h) * in.w * in.c);
  quantize_nchw_to_nhwc(Isa::scalar, nchw, in.c, in.h, in.w, in.scale, in.zero_point, q.data());
  return q;
}

// Expected outputs of a batch (per output, [batch][h][w][c]) from the reference.
std::vector<std::vector<int8_t>> expected(const PlanDesc& p, const std::vector<float>& input, int batch) {
  const PlanTensor& in = p.tensors[p.input];
  const size_t per = size_t(in.h) * in.w * in.c;
  std::vector<std::vector<int8_t>> out(p.outputs.size());
  for (int i = 0; i < batch; ++i) {
    auto q = quantize_input(p, input.data() + i * per);
    auto r = reference(p, q.data());
    for (size_t o = 0; o < r.size(); ++o) out[o].insert(out[o].end(), r[o].begin(), r[o].end());
  }
  return out;
}

std::vector<float> random_input(Rng& rng, const PlanDesc& p, int batch) {
  const PlanTensor& in = p.tensors[p.input];
  std::vector<float> x(size_t(batch) * in.h * in.w * in.c);
  for (auto& v : x) v = (rng.unit() - 0.5f) * 6.0f;  // saturates some pixels
  x[0] = NAN;
  x[1] = INFINITY;
  x[2] = -INFINITY;
  return x;
}

// ------------------------------------------------------------ tests
void test_network_matches_reference() {
  Rng rng(mnq_test::env_seed(11));
  const PlanDesc plan = network(rng);
  for (Isa isa : supported_isas()) {
    for (int threads : {1, 2, 3}) {
      Model m(plan, isa, threads);
      CHECK(m.isa() == isa);
      CHECK(m.threads() == threads);
      for (int batch : {1, 2, 5}) {
        auto input = random_input(rng, plan, batch);
        auto want = expected(plan, input, batch);
        for (const auto& w : want) {  // the network is not degenerate: outputs take many values
          std::vector<int8_t> v = w;
          std::sort(v.begin(), v.end());
          CHECK_MSG(std::unique(v.begin(), v.end()) - v.begin() >= 8, "degenerate output");
        }
        auto got = m.run(input.data(), batch);
        CHECK_MSG(got == want, "isa %s threads %d batch %d: run differs from the reference", isa_name(isa),
                  threads, batch);
        // run_int8 on the same pixels, quantized by the caller.
        std::vector<int8_t> q;
        const size_t per = m.input_elements();
        for (int i = 0; i < batch; ++i) {
          auto qi = quantize_input(plan, input.data() + i * per);
          q.insert(q.end(), qi.begin(), qi.end());
        }
        const std::vector<int8_t> q_copy = q;
        auto got8 = m.run_int8(q.data(), batch);
        CHECK_MSG(got8 == want, "isa %s threads %d batch %d: run_int8 differs", isa_name(isa), threads, batch);
        CHECK(q == q_copy);  // the input is never written
      }
    }
  }
}

// The same on a network with int16 activations: the wide steps (the ISA's wide kernels, row / column
// splits over threads, the batched tail) give the scalar wide kernels' bytes.
void test_mixed_network_matches_reference() {
  Rng rng(mnq_test::env_seed(16));
  const PlanDesc plan = mixed_network(rng);
  for (Isa isa : supported_isas()) {
    for (int threads : {1, 2, 3}) {
      Model m(plan, isa, threads);
      for (int batch : {1, 2, 5}) {
        auto input = random_input(rng, plan, batch);
        auto want = expected(plan, input, batch);
        for (const auto& w : want) {
          std::vector<int8_t> v = w;
          std::sort(v.begin(), v.end());
          CHECK_MSG(std::unique(v.begin(), v.end()) - v.begin() >= 8, "mixed network: degenerate output");
        }
        auto got = m.run(input.data(), batch);
        CHECK_MSG(got == want, "mixed network, isa %s threads %d batch %d: run differs from the reference",
                  isa_name(isa), threads, batch);
      }
    }
  }
  // The arena holds int16 tensors at two bytes per value.
  const MemoryPlan mp = plan_memory(plan);
  const std::string v = mnq_test::memory_plan_violation(plan, mp);
  CHECK_MSG(v.empty(), "%s", v.c_str());
  int64_t largest = 0;
  for (const PlanTensor& t : plan.tensors) largest = std::max(largest, bytes(t));
  CHECK(mp.bytes >= largest && largest == 4 * 5 * 16 * 2);  // the int16 expand output
}

// Plan validation of int16 tensors: what the wide kernels do not take is a clear error.
void test_mixed_validation() {
  Rng rng(mnq_test::env_seed(17));
  const PlanDesc good = mixed_network(rng);
  auto expect_error = [&](const char* what, const std::function<void(PlanDesc&)>& mutate, const char* needle) {
    PlanDesc p = good;
    mutate(p);
    bool ok = mnq_test::throws<std::invalid_argument>([&] { Model m(p, Isa::scalar, 1); }, needle);
    CHECK_MSG(ok, "%s", what);
  };
  auto find = [](PlanDesc& p, const char* name) -> PlanOp& {
    for (auto& o : p.ops)
      if (o.name == name) return o;
    throw std::logic_error("no op");
  };
  auto out_of = [&](PlanDesc& p, const char* name) -> PlanTensor& { return p.tensors[find(p, name).output]; };
  { Model ok(good, Isa::scalar, 1); }
  expect_error("dtype", [&](PlanDesc& p) { out_of(p, "stem").dtype = Dtype(3); }, "dtype 3 is not a Dtype");
  expect_error("int16 zp", [&](PlanDesc& p) { out_of(p, "stem").zero_point = 40000; }, "zero_point must be in [-32768, 32767] (int16)");
  expect_error("int16 input", [](PlanDesc& p) { p.tensors[p.input].dtype = Dtype::int16; }, "the plan input must be int8");
  expect_error("int16 output", [&](PlanDesc& p) { p.outputs.push_back(find(p, "add").output); }, "plan outputs must be int8");
  expect_error("int8 clamp on int16", [&](PlanDesc& p) { find(p, "stem").qmax = 40000; }, "-32768 <= qmin <= qmax <= 32767 (int16)");
  expect_error("fused activation", [&](PlanDesc& p) {
    PlanOp& o = find(p, "dw");
    o.has_activation = true;
    o.act_scale = 0.1f;
  }, "'dw'): an op with int16 tensors takes no fused activation or table");
  expect_error("table", [&](PlanDesc& p) { find(p, "hswish").table.assign(256, 0); }, "takes no fused activation or table");
  expect_error("asymmetric weights", [&](PlanDesc& p) { find(p, "project").w_zero_point.assign(8, 1); },
               "'project'): a convolution with int16 tensors needs symmetric weights (inputs int16, output int8)");
  expect_error("offset", [&](PlanDesc& p) { find(p, "add").add_offset = 128; }, "add_offset must be 0 for an op with int16 tensors");
  // The wide kernels' own parameter checks run when the model is built, not first when it runs.
  expect_error("wide clip bounds", [&](PlanDesc& p) { find(p, "hswish").activation = {UnaryFn::clip, 1.0f, -1.0f}; },
               "(lut 'hswish'): mnq: unary_wide: clip needs min <= max");
}

void test_concurrent_runs() {
  Rng rng(mnq_test::env_seed(12));
  const PlanDesc plan = network(rng);
  Model m(plan, default_isa(), 2);
  const int kThreads = 6, kRuns = 8;
  std::vector<std::vector<float>> inputs;
  std::vector<std::vector<std::vector<int8_t>>> wants;
  for (int i = 0; i < kThreads; ++i) {
    int batch = 1 + i % 3;
    inputs.push_back(random_input(rng, plan, batch));
    wants.push_back(expected(plan, inputs.back(), batch));
  }
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < kThreads; ++i) {
    ts.emplace_back([&, i] {
      for (int r = 0; r < kRuns; ++r) {
        if (m.run(inputs[i].data(), 1 + i % 3) != wants[i]) ++bad;
      }
    });
  }
  for (auto& t : ts) t.join();
  CHECK_MSG(bad.load() == 0, "%d of %d concurrent runs differ", bad.load(), kThreads * kRuns);
}

// Large pointwise layers (more pixels than one GEMM call takes) and wide FCs split by columns.
void test_gemm_splits() {
  Rng rng(mnq_test::env_seed(13));
  Builder b(rng);
  const int in = b.tensor("input", 70, 70, 5, 0.03f, 0);
  b.p.input = in;
  int t0 = b.conv("pw", in, conv_shape(1, 1, 0, 0, 0, 0, 24), 1, 0.04f, -3);
  int t1 = b.tensor("gap", 1, 1, 24, 0.04f, 0);
  b.op(PlanOpType::global_avg_pool, "gap", {t0}, t1);
  int t2 = b.fc("fc", t1, 300, 0.05f, 1);
  b.p.outputs = {t2, t0};
  for (Isa isa : supported_isas()) {
    for (int threads : {1, 3}) {
      Model m(b.p, isa, threads);
      for (int batch : {1, 2}) {
        auto input = random_input(rng, b.p, batch);
        CHECK_MSG(m.run(input.data(), batch) == expected(b.p, input, batch), "isa %s threads %d batch %d",
                  isa_name(isa), threads, batch);
      }
    }
  }
}

// A plan whose float input is NHWC: the same outputs as the NCHW plan on the same images (the
// quantized input is NHWC either way), from run and quantize_input; the input is not written.
void test_nhwc_input() {
  Rng rng(mnq_test::env_seed(16));
  const PlanDesc nchw = network(rng);
  PlanDesc nhwc = nchw;
  nhwc.input_layout = InputLayout::nhwc;
  const PlanTensor& in = nchw.tensors[nchw.input];
  const size_t hw = size_t(in.h) * in.w, per = hw * in.c;
  for (Isa isa : supported_isas()) {
    for (int threads : {1, 2}) {
      Model a(nchw, isa, threads), b(nhwc, isa, threads);
      CHECK(b.input_layout() == InputLayout::nhwc && a.input_layout() == InputLayout::nchw);
      for (int batch : {1, 3}) {
        const std::vector<float> x = random_input(rng, nchw, batch);  // NCHW
        std::vector<float> y(x.size());                              // the same images, NHWC
        for (int i = 0; i < batch; ++i)
          for (int c = 0; c < in.c; ++c)
            for (size_t p = 0; p < hw; ++p) y[i * per + p * in.c + c] = x[i * per + c * hw + p];
        const std::vector<float> y_copy = y;
        CHECK_MSG(b.run(y.data(), batch) == a.run(x.data(), batch), "isa %s threads %d batch %d: NHWC run differs",
                  isa_name(isa), threads, batch);
        std::vector<int8_t> qa(per * batch), qb(per * batch);
        a.quantize_input(x.data(), batch, qa.data());
        b.quantize_input(y.data(), batch, qb.data());
        CHECK(qa == qb);
        CHECK(std::memcmp(y.data(), y_copy.data(), y.size() * sizeof(float)) == 0);  // (NaN != NaN)
      }
    }
  }
}

// The model lays out its arena with plan_memory (the invariant holds on these plans too) and
// reports the bytes of one image's region and of its packed weights.
void test_memory() {
  Rng rng(mnq_test::env_seed(15));
  const PlanDesc plan = network(rng);
  const MemoryPlan mp = plan_memory(plan);
  const std::string v = mnq_test::memory_plan_violation(plan, mp);
  CHECK_MSG(v.empty(), "%s", v.c_str());
  size_t given = 0;  // the weights and biases in the plan
  for (const PlanOp& op : plan.ops) given += op.weights.size() + 4 * op.bias.size();
  CHECK(given > 0);
  for (Isa isa : supported_isas()) {
    Model layers(plan, isa, 1, Executor::layers);
    CHECK(layers.arena_bytes_per_image() == mp.bytes);
    CHECK(layers.fused_groups().empty() && layers.window_bytes_per_thread() == 0);
    Model m(plan, isa, 1, Executor::fused);
    const MemoryPlan fused = plan_memory(plan, m.fused_groups());
    const std::string vf = mnq_test::memory_plan_violation(plan, fused, m.fused_groups());
    CHECK_MSG(vf.empty(), "%s", vf.c_str());
    CHECK(m.arena_bytes_per_image() == fused.bytes);
    CHECK_MSG(m.weight_bytes() >= given, "isa %s: weight_bytes %zu < %zu given", isa_name(isa), m.weight_bytes(), given);
  }
}

void test_validation() {
  Rng rng(mnq_test::env_seed(14));
  const PlanDesc good = network(rng);
  const Isa isa = Isa::scalar;
  auto expect_error = [&](const char* what, const std::function<void(PlanDesc&)>& mutate, const char* needle) {
    PlanDesc p = good;
    mutate(p);
    bool ok = mnq_test::throws<std::invalid_argument>([&] { Model m(p, isa, 1); }, needle);
    CHECK_MSG(ok, "%s", what);
  };
  // Locate ops by name.
  auto find = [](PlanDesc& p, const char* name) -> PlanOp& {
    for (auto& o : p.ops)
      if (o.name == name) return o;
    throw std::logic_error("no op");
  };
  { Model ok(good, isa, 1); CHECK(ok.num_outputs() == 2); }
  expect_error("bad input id", [](PlanDesc& p) { p.input = 99; }, "input 99 is not a tensor id");
  expect_error("no outputs", [](PlanDesc& p) { p.outputs.clear(); }, "outputs is empty");
  expect_error("input layout", [](PlanDesc& p) { p.input_layout = InputLayout(5); }, "input_layout 5 is not an InputLayout");
  expect_error("huge tensor", [](PlanDesc& p) { p.tensors[1].h = p.tensors[1].w = 1 << 30; }, "is too large");
  expect_error("bad scale", [](PlanDesc& p) { p.tensors[1].scale = NAN; }, "scale must be finite");
  expect_error("bad zp", [](PlanDesc& p) { p.tensors[1].zero_point = 200; }, "zero_point must be in");
  expect_error("bad dims", [](PlanDesc& p) { p.tensors[1].c = 0; }, "h, w, c must be >= 1");
  expect_error("op input id", [&](PlanDesc& p) { find(p, "dw").inputs = {-1}; }, "plan op 1 (conv 'dw'): inputs[0] -1");
  expect_error("op input count", [&](PlanDesc& p) { find(p, "add").inputs.pop_back(); }, "expected 2");
  expect_error("op type", [&](PlanDesc& p) { find(p, "add").type = PlanOpType(42); }, "not a known op type");
  expect_error("weights", [&](PlanDesc& p) { find(p, "stem").weights.pop_back(); }, "'stem'): weights has 215 elements, expected 216");
  expect_error("w_scale", [&](PlanDesc& p) { find(p, "expand").w_scale.resize(3); }, "w_scale has 3 elements");
  expect_error("w_scale value", [&](PlanDesc& p) { find(p, "expand").w_scale[2] = -1; }, "w_scale[2]");
  expect_error("w_zero_point", [&](PlanDesc& p) { find(p, "expand").w_zero_point.resize(2); }, "w_zero_point has 2");
  expect_error("bias", [&](PlanDesc& p) { find(p, "se:fc1").bias.resize(7); }, "bias has 7 elements");
  expect_error("fc weights", [&](PlanDesc& p) { find(p, "classifier").weights.resize(3); }, "'classifier'): weights has 3");
  expect_error("shape vs tensor", [&](PlanDesc& p) { find(p, "dw").shape.out_c = 9; }, "'dw')");
  expect_error("shape inconsistent", [&](PlanDesc& p) { find(p, "stem").shape.stride_h = 1; }, "'stem'): shape");
  expect_error("groups", [&](PlanDesc& p) { find(p, "dw").groups = 3; }, "groups 3");
  expect_error("input_pieces", [&](PlanDesc& p) { find(p, "dw").input_pieces = 0; }, "input_pieces must be >= 1");
  expect_error("input_pieces shape", [&](PlanDesc& p) { find(p, "dw").input_pieces = 2; },
               "'dw'): input_pieces 2 needs groups == out_c, in_c == input_pieces * groups");
  expect_error("max_pool shape", [&](PlanDesc& p) { find(p, "maxpool").shape.out_w = 2; }, "'maxpool'): shape");
  expect_error("max_pool channels", [&](PlanDesc& p) { find(p, "maxpool").shape.in_c = 4; }, "'maxpool'): shape");
  expect_error("max_pool requantization", [&](PlanDesc& p) { find(p, "maxpool").has_activation = false; },
               "set has_activation (identity) to requantize");
  expect_error("qmin/qmax", [&](PlanDesc& p) { find(p, "stem").qmin = 100; find(p, "stem").qmax = 0; }, "qmin / qmax");
  expect_error("act scale", [&](PlanDesc& p) { find(p, "dw").act_scale = 0; }, "act_scale must be finite");
  expect_error("activation fn", [&](PlanDesc& p) { find(p, "hswish").activation.fn = UnaryFn(77); }, "activation.fn 77");
  expect_error("table size", [&](PlanDesc& p) { find(p, "hswish").table.resize(5); }, "table has 5 entries");
  expect_error("add shapes", [&](PlanDesc& p) { find(p, "add").inputs[1] = find(p, "expand").output; }, "shapes differ");
  expect_error("read before write", [&](PlanDesc& p) { find(p, "stem").inputs[0] = find(p, "add").output; },
               "is read before any op produces it");
  expect_error("two producers", [&](PlanDesc& p) { find(p, "square").output = find(p, "hswish").output; },
               "already produced");
  expect_error("output never produced", [](PlanDesc& p) {
    p.tensors.push_back(p.tensors[1]);
    p.outputs.push_back(int(p.tensors.size()) - 1);
  }, "is never produced");
  // The kernels' own parameter limits are checked when the model is built, not first when it runs.
  expect_error("add scale ratio", [&](PlanDesc& p) {
    PlanOp& a = find(p, "add");
    p.tensors[a.output].scale = a.act_scale = 1e-30f;
  }, "(add 'add'): mnq: add: a_scale / y_scale and b_scale / y_scale must be < 65536");
  expect_error("mul scale ratio", [&](PlanDesc& p) {
    PlanOp& m = find(p, "square");
    p.tensors[m.output].scale = m.act_scale = 1e-30f;
  }, "(mul 'square'): mnq: mul: a_scale * b_scale / y_scale must be < 32768");
  CHECK(mnq_test::throws<std::invalid_argument>([&] { Model m(good, isa, 0); }, "threads must be"));

  // A precomputed table replaces make_lut.
  {
    PlanDesc p = good;
    PlanOp& h = find(p, "hswish");
    PlanDesc q = good;
    const PlanTensor& x = p.tensors[h.inputs[0]];
    const PlanTensor& y = p.tensors[h.output];
    h.table.resize(256);
    make_lut(h.activation, x.scale, x.zero_point, y.scale, y.zero_point, h.table.data());
    h.activation.fn = UnaryFn::identity;  // ignored when table is set
    Model a(p, isa, 1), b(q, isa, 1);
    auto input = random_input(rng, p, 2);
    CHECK(a.run(input.data(), 2) == b.run(input.data(), 2));
  }
  // Run-time errors.
  {
    Model m(good, isa, 1);
    std::vector<float> x(m.input_elements());
    CHECK(mnq_test::throws<std::invalid_argument>([&] { m.run(x.data(), 0); }, "batch must be >= 1"));
    CHECK(mnq_test::throws<std::invalid_argument>([&] { m.run(nullptr, 1); }, "input is null"));
  }
}

}  // namespace

int main() {
  test_network_matches_reference();
  test_mixed_network_matches_reference();
  test_mixed_validation();
  test_concurrent_runs();
  test_gemm_splits();
  test_nhwc_input();
  test_memory();
  test_validation();
  return mnq_test::finish("test_runtime");
}
