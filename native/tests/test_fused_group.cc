// Depth-first execution (runtime/fused_group.h): fused groups give the op-by-op
// executor's outputs bit for bit on random MobileNet-like chains (strides,
// kernel sizes, dilations, asymmetric pads, residual adds on either operand,
// tables, squeeze-and-excite scales, max pools), on every ISA, for bands from one
// row to the whole tensor, batched and threaded; and the kernels a group runs on
// row windows read only the input rows their output rows need (checked with
// buffers holding exactly those rows: AddressSanitizer reports any other read).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "memory_check.h"
#include "plan_builder.h"
#include "runtime/fused_group.h"
#include "runtime/model.h"
#include "test_util.h"

using namespace mnq;
using mnq_test::Builder;
using mnq_test::conv_shape;
using mnq_test::Rng;

namespace {

// A random chain of inverted-residual-like blocks, then a pool and a classifier.
PlanDesc chain(Rng& rng) {
  Builder b(rng);
  const int h = rng.uniform(5, 23), w = rng.uniform(5, 23);
  int x = b.tensor("input", h, w, 3, 0.02f, rng.uniform(-20, 20));
  b.p.input = x;
  // Stem: a general conv, stride 1 or 2, TF "SAME" (asymmetric) or symmetric padding.
  const int s0 = rng.uniform(1, 2);
  x = s0 == 2 ? b.conv("stem", x, conv_shape(3, 2, 0, 0, 1, 1, 8), 1, 0.05f, -128)
              : b.conv("stem", x, conv_shape(3, 1, 1, 1, 1, 1, 8), 1, 0.05f, -128);
  b.p.ops.back().qmin = -128;
  b.p.ops.back().qmax = -8;
  const int blocks = rng.uniform(1, 4);
  for (int k = 0; k < blocks; ++k) {
    const std::string n = "b" + std::to_string(k);
    const PlanTensor in = b.p.tensors[x];
    const int block_in = x;
    // expand
    const int ce = in.c * rng.uniform(2, 5);
    int e = b.conv(n + ":expand", x, conv_shape(1, 1, 0, 0, 0, 0, ce), 1, 0.05f, rng.uniform(-20, 20), rng.chance(0.2f));
    if (rng.chance(0.5f)) {  // a fused h-swish table
      PlanOp& o = b.p.ops.back();
      o.has_activation = true;
      o.activation = {UnaryFn::hardswish, 0, 0};
      o.act_scale = 0.06f;
      o.act_zero_point = 3;
    }
    // depthwise kxk, stride 1 or 2, sometimes dilated, sometimes asymmetric padding
    const int kk = rng.chance(0.7f) ? 3 : 5, st = rng.chance(0.4f) ? 2 : 1;
    ConvShape ds = conv_shape(kk, st, kk / 2, kk / 2, kk / 2, kk / 2, ce);
    if (st == 2 && rng.chance(0.5f)) ds.pad_top = ds.pad_left = kk / 2 - 1;  // TF SAME
    if (st == 1 && rng.chance(0.2f)) {
      ds.dilation_h = ds.dilation_w = 2;
      ds.pad_top = ds.pad_left = ds.pad_bottom = ds.pad_right = kk - 1;
    }
    const PlanTensor& et0 = b.p.tensors[e];
    if (et0.h + ds.pad_top + ds.pad_bottom < (kk - 1) * ds.dilation_h + 1 ||
        et0.w + ds.pad_left + ds.pad_right < (kk - 1) * ds.dilation_w + 1)
      ds = conv_shape(3, 1, 1, 1, 1, 1, ce);
    const ConvShape dshape = ds;
    {
      ConvShape s = dshape;
      const PlanTensor& et = b.p.tensors[e];
      s.out_h = (et.h + s.pad_top + s.pad_bottom - ((s.kernel_h - 1) * s.dilation_h + 1)) / s.stride_h + 1;
      s.out_w = (et.w + s.pad_left + s.pad_right - ((s.kernel_w - 1) * s.dilation_w + 1)) / s.stride_w + 1;
      e = b.conv(n + ":dw", e, s, ce, 0.04f, rng.uniform(-50, 0));
    }
    if (rng.chance(0.3f)) {  // a standalone table
      const PlanTensor t = b.p.tensors[e];
      const int y = b.tensor(n + ":lut", t.h, t.w, t.c, 0.05f, -10);
      b.op(PlanOpType::lut, n + ":lut", {e}, y).activation = {UnaryFn::hardswish, 0, 0};
      e = y;
    }
    if (rng.chance(0.3f)) {  // squeeze-and-excite: the scale from a GAP and FCs, then a channelwise mul
      const PlanTensor t = b.p.tensors[e];
      const int g = b.tensor(n + ":se:gap", 1, 1, t.c, 0.03f, -1);
      b.op(PlanOpType::global_avg_pool, n + ":se:gap", {e}, g);
      const int f = b.fc(n + ":se:fc", g, t.c, 1.0f / 256, -128);
      const int y = b.tensor(n + ":se:mul", t.h, t.w, t.c, 0.05f, 2);
      b.op(PlanOpType::mul, n + ":se:mul", {e, f}, y);
      e = y;
    }
    // project
    const int co = rng.chance(0.5f) ? in.c : in.c + 8;
    int p = b.conv(n + ":project", e, conv_shape(1, 1, 0, 0, 0, 0, co), 1, 0.06f, rng.uniform(-10, 10));
    const PlanTensor pt = b.p.tensors[p];
    if (pt.h == in.h && pt.w == in.w && pt.c == in.c && rng.chance(0.8f)) {  // residual, either operand order
      const int y = b.tensor(n + ":add", pt.h, pt.w, pt.c, 0.07f, 1);
      if (rng.chance(0.5f)) b.op(PlanOpType::add, n + ":add", {p, block_in}, y);
      else b.op(PlanOpType::add, n + ":add", {block_in, p}, y);
      p = y;
    }
    if (rng.chance(0.15f)) {  // a max pool 3x3 stride 1 keeping the quantization
      const PlanTensor t = b.p.tensors[p];
      const int y = b.tensor(n + ":pool", t.h, t.w, t.c, t.scale, t.zero_point);
      PlanOp& mp = b.op(PlanOpType::max_pool, n + ":pool", {p}, y);
      mp.shape = conv_shape(3, 1, 1, 1, 1, 1, t.c);
      mp.shape.in_h = mp.shape.out_h = t.h;
      mp.shape.in_w = mp.shape.out_w = t.w;
      mp.shape.in_c = t.c;
      p = y;
    }
    x = p;
  }
  const PlanTensor last = b.p.tensors[x];
  const int g = b.tensor("gap", 1, 1, last.c, 0.04f, 2);
  b.op(PlanOpType::global_avg_pool, "gap", {x}, g);
  const int out = b.fc("classifier", g, 10, 0.1f, 0);
  b.p.outputs = {out};
  if (rng.chance(0.3f)) b.p.outputs.push_back(x);  // a kept tensor ends a chain
  return b.p;
}

struct EnvVar {
  std::string name;
  explicit EnvVar(const char* n, const std::string& v) : name(n) { setenv(n, v.c_str(), 1); }
  ~EnvVar() { unsetenv(name.c_str()); }
};

std::vector<std::vector<int8_t>> run(const Model& m, const std::vector<int8_t>& input, int batch) {
  return m.run_int8(input.data(), batch);
}

void test_same_as_layers() {
  Rng rng(mnq_test::env_seed(31));
  const int rounds = std::getenv("MNQ_TEST_QUICK") ? 12 : 40;
  int fused_seen = 0;
  for (int round = 0; round < rounds; ++round) {
    const PlanDesc plan = chain(rng);
    const size_t in = size_t(elements(plan.tensors[plan.input]));
    const int batch = rng.uniform(1, 3);
    const std::vector<int8_t> x = mnq_test::random_i8(rng, in * size_t(batch), -128, 127);
    const Isa isa = rng.pick(supported_isas());
    const int threads = rng.uniform(1, 3);
    Model layers(plan, isa, threads, Executor::layers);
    const auto want = run(layers, x, batch);
    for (const char* kb : {"1", "6", "64", "100000"}) {  // bands of one row ... the whole tensor
      EnvVar band("MNQ_BAND_KB", kb);
      for (const char* slack : {"0", "100"}) {
        EnvVar sl("MNQ_WINDOW_SLACK", slack);
        Model fused(plan, isa, threads, Executor::fused);
        fused_seen += fused.fused_groups().empty() ? 0 : 1;
        const MemoryPlan mp = plan_memory(plan, fused.fused_groups());
        const std::string v = mnq_test::memory_plan_violation(plan, mp, fused.fused_groups());
        CHECK_MSG(v.empty(), "round %d: %s", round, v.c_str());
        CHECK(fused.arena_bytes_per_image() <= layers.arena_bytes_per_image());
        const auto got = run(fused, x, batch);
        CHECK_MSG(got == want, "round %d (%s, %d threads, batch %d, band budget %s KB, slack %s%%): fused != layers",
                  round, isa_name(isa), threads, batch, kb, slack);
      }
    }
  }
  CHECK_MSG(fused_seen > rounds, "only %d of the models had fused groups", fused_seen);
}

// Every conv kind a group runs on a window (depthwise, general direct / im2col, any stride, dilation,
// padding), on every ISA: output rows [r0, r1) computed from a buffer holding exactly the input rows
// they need (and written to one holding exactly those output rows) equal the full run's rows.
void test_reads_only_needed_rows() {
  Rng rng(mnq_test::env_seed(32));
  const int rounds = std::getenv("MNQ_TEST_QUICK") ? 40 : 150;
  for (int round = 0; round < rounds; ++round) {
    ConvShape s;
    const bool dw = rng.chance(0.6f);
    s.kernel_h = rng.pick(std::vector<int>{1, 3, 5});
    s.kernel_w = dw && rng.chance(0.2f) ? 6 : s.kernel_h;
    s.stride_h = s.stride_w = rng.uniform(1, 2);
    if (rng.chance(0.15f)) s.dilation_h = s.dilation_w = 2;
    s.in_c = dw ? rng.pick(std::vector<int>{8, 16, 24, 32, 40, 64, 72, 96}) : rng.uniform(1, 8);
    s.out_c = dw ? s.in_c : rng.pick(std::vector<int>{8, 16, 24, 32});
    s.in_h = rng.uniform(s.kernel_h * s.dilation_h, 20);
    s.in_w = rng.uniform(s.kernel_w * s.dilation_w, 20);
    s.pad_top = rng.uniform(0, s.kernel_h / 2), s.pad_bottom = rng.uniform(0, s.kernel_h / 2);
    s.pad_left = rng.uniform(0, s.kernel_w / 2), s.pad_right = rng.uniform(0, s.kernel_w / 2);
    s.out_h = (s.in_h + s.pad_top + s.pad_bottom - ((s.kernel_h - 1) * s.dilation_h + 1)) / s.stride_h + 1;
    s.out_w = (s.in_w + s.pad_left + s.pad_right - ((s.kernel_w - 1) * s.dilation_w + 1)) / s.stride_w + 1;
    const int groups = dw ? s.in_c : 1;
    ConvKind kind;
    try {
      s.validate();
      kind = conv_kind(s, groups);
    } catch (const std::exception&) {
      continue;
    }
    if (kind == ConvKind::pointwise) continue;  // a GEMM over pixels: no rows to overread
    const std::vector<int8_t> w = mnq_test::random_i8(rng, size_t(s.out_c) * (s.in_c / groups) * s.kernel_h * s.kernel_w, -127, 127);
    std::vector<int32_t> bias(size_t(s.out_c));
    for (auto& v : bias) v = rng.uniform(-2000, 2000);
    std::vector<float> ws(size_t(s.out_c), 0.01f);
    const int xzp = rng.uniform(-20, 20);
    const OutputStage st = make_output_stage(0.05f, ws.data(), ws.size(), 0.1f, -3);
    const size_t xrow = size_t(s.in_w) * s.in_c, yrow = size_t(s.out_w) * s.out_c;
    const std::vector<int8_t> x = mnq_test::random_i8(rng, xrow * s.in_h, -128, 127);
    for (Isa isa : supported_isas()) {
      PackedConvPtr p = pack_conv(isa, kind, s, w.data(), nullptr, bias.data(), xzp);
      std::vector<int8_t> full(yrow * s.out_h);
      std::vector<uint8_t> scratch(conv_scratch_size(*p, 0, s.out_h) + 64);
      conv_run(*p, st, x.data(), full.data(), 0, s.out_h, scratch.data());
      const int r0 = rng.uniform(0, s.out_h - 1), r1 = rng.uniform(r0 + 1, s.out_h);
      Step step;
      step.type = PlanOpType::conv;
      step.shape = s;
      PlanTensor xt;
      xt.h = s.in_h, xt.w = s.in_w, xt.c = s.in_c;
      const RowRange need = input_rows(step, xt, {r0, r1});
      // Exactly the rows needed, and exactly the rows written.
      std::vector<int8_t> xs(x.begin() + ptrdiff_t(need.lo * xrow), x.begin() + ptrdiff_t(need.hi * xrow));
      std::vector<int8_t> ys(size_t(r1 - r0) * yrow);
      const int8_t* xv = reinterpret_cast<const int8_t*>(reinterpret_cast<uintptr_t>(xs.data()) - need.lo * xrow);
      int8_t* yv = reinterpret_cast<int8_t*>(reinterpret_cast<uintptr_t>(ys.data()) - size_t(r0) * yrow);
      std::vector<uint8_t> scratch2(conv_scratch_size(*p, r0, r1) + 64);
      conv_run(*p, st, xv, yv, r0, r1, scratch2.data());
      CHECK_MSG(std::equal(ys.begin(), ys.end(), full.begin() + ptrdiff_t(r0 * yrow)),
                "round %d %s: rows %d-%d of a %dx%d k%dx%d s%d d%d conv differ when run on their window", round,
                isa_name(isa), r0, r1, s.out_h, s.out_w, s.kernel_h, s.kernel_w, s.stride_h, s.dilation_h);
    }
  }
}

// The groups of a V2-like chain: expand -> depthwise -> project [-> add] runs fused, its expanded tensor
// never in the arena; MNQ_EXECUTOR picks the executor and refuses other values.
void test_groups_and_env() {
  Rng rng(mnq_test::env_seed(33));
  Builder b(rng);
  int x = b.tensor("input", 16, 16, 8, 0.02f, 0);
  b.p.input = x;
  const int e = b.conv("expand", x, conv_shape(1, 1, 0, 0, 0, 0, 48), 1, 0.05f, 0);
  const int d = b.conv("dw", e, conv_shape(3, 1, 1, 1, 1, 1, 48), 48, 0.05f, 0);
  const int p = b.conv("project", d, conv_shape(1, 1, 0, 0, 0, 0, 8), 1, 0.05f, 0);
  const int y = b.tensor("add", 16, 16, 8, 0.05f, 0);
  b.op(PlanOpType::add, "add", {x, p}, y);
  b.p.outputs = {y};
  {
    EnvVar band("MNQ_BAND_KB", "4");
    Model m(b.p, Isa::scalar, 1, Executor::fused);
    CHECK(m.fused_groups().size() == 1);
    const FusedGroup& g = m.fused_groups()[0];
    CHECK(g.begin == 0 && g.end == 4);
    CHECK((g.chained == std::vector<int>{0, 0, 0, 1}));
    CHECK(g.band >= 1 && g.band < 16);
    CHECK(g.window_rows.size() == 3 && g.window_rows[0] < 16 && g.window_rows[1] < 16);
    CHECK(m.window_bytes_per_thread() == g.window_bytes);
    // The arena holds the output only (the input is read where it is; e, d, p live in windows).
    CHECK(m.arena_bytes_per_image() == 16 * 16 * 8);
    Model l(b.p, Isa::scalar, 1, Executor::layers);
    CHECK(l.arena_bytes_per_image() >= 16 * 16 * (48 + 48));
  }
  {
    EnvVar env("MNQ_EXECUTOR", "layers");
    CHECK(default_executor() == Executor::layers);
  }
  {
    EnvVar env("MNQ_EXECUTOR", "fused");
    CHECK(default_executor() == Executor::fused);
  }
  {
    EnvVar env("MNQ_EXECUTOR", "depth");
    CHECK(mnq_test::throws<std::invalid_argument>([] { default_executor(); }, "MNQ_EXECUTOR must be 'fused' or 'layers', got 'depth'"));
  }
}

}  // namespace

int main() {
  test_groups_and_env();
  test_reads_only_needed_rows();
  test_same_as_layers();
  return mnq_test::finish("test_fused_group");
}
