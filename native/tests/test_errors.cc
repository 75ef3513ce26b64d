// Bad parameters give std::invalid_argument (or std::runtime_error for a bad
// MNQ_ISA) with a message naming the problem; never a crash.
#include <cstdlib>
#include <limits>

#include "test_util.h"

using namespace mnq;
using namespace mnq_test;

namespace {

ConvShape pw_shape() {
  ConvShape s;
  s.in_h = s.out_h = 4; s.in_w = s.out_w = 4; s.in_c = 8; s.out_c = 16;
  return s;
}

void test_shapes() {
  ConvShape s = pw_shape();
  s.validate();  // valid
  ConvShape b = s; b.in_c = 0;
  CHECK_THROWS(std::invalid_argument, b.validate(), "in_c");
  b = s; b.out_h = 5;
  CHECK_THROWS(std::invalid_argument, b.validate(), "out_h");
  b = s; b.stride_w = 0;
  CHECK_THROWS(std::invalid_argument, b.validate(), "stride_w");
  b = s; b.pad_left = -1;
  CHECK_THROWS(std::invalid_argument, b.validate(), "pad_left");
  b = s; b.kernel_h = 9; b.out_h = 1;
  CHECK_THROWS(std::invalid_argument, b.validate(), "kernel_h");
  b = s; b.dilation_h = 0;
  CHECK_THROWS(std::invalid_argument, b.validate(), "dilation_h");
  b = s; b.in_h = b.out_h = 1 << 20; b.in_w = b.out_w = 1 << 12;
  CHECK_THROWS(std::invalid_argument, b.validate(), "2 GiB");

  CHECK(conv_kind(s, 1) == ConvKind::pointwise);
  ConvShape d = s; d.out_c = 8; d.kernel_h = d.kernel_w = 3; d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = 1;
  CHECK(conv_kind(d, 8) == ConvKind::depthwise);
  CHECK(conv_kind(d, 1) == ConvKind::general);
  CHECK_THROWS(std::invalid_argument, conv_kind(d, 2), "groups = 2");
  ConvShape m = d; m.out_c = 16;
  CHECK_THROWS(std::invalid_argument, conv_kind(m, 8), "depth multiplier");
}

void test_pack_and_run() {
  const Isa isa = Isa::scalar;
  ConvShape s = pw_shape();
  std::vector<int8_t> w(size_t(s.out_c) * s.in_c, 1), x(4 * 4 * 8, 0), y(4 * 4 * 16);
  CHECK_THROWS(std::invalid_argument, pack_conv(isa, ConvKind::pointwise, s, nullptr, nullptr, nullptr, 0), "weights");
  CHECK_THROWS(std::invalid_argument, pack_conv(isa, ConvKind::pointwise, s, w.data(), nullptr, nullptr, 200), "x_zero_point");
  CHECK_THROWS(std::invalid_argument, pack_conv(isa, ConvKind::depthwise, s, w.data(), nullptr, nullptr, 0), "depthwise");
  std::vector<int32_t> bad_zp(16, 0); bad_zp[3] = 300;
  CHECK_THROWS(std::invalid_argument, pack_conv(isa, ConvKind::pointwise, s, w.data(), bad_zp.data(), nullptr, 0), "w_zero_point[3]");
  auto p = pack_conv(isa, ConvKind::pointwise, s, w.data(), nullptr, nullptr, 0);
  std::vector<float> ws(16, 0.01f);
  OutputStage out = make_output_stage(0.1f, ws.data(), 16, 0.2f, 0);
  conv_run(*p, out, x.data(), y.data(), 0, 4, nullptr);  // valid
  CHECK_THROWS(std::invalid_argument, conv_run(*p, out, x.data(), y.data(), 0, 5, nullptr), "rows");
  CHECK_THROWS(std::invalid_argument, conv_run(*p, out, x.data(), y.data(), 3, 2, nullptr), "rows");
  CHECK_THROWS(std::invalid_argument, conv_run(*p, out, nullptr, y.data(), 0, 4, nullptr), "x is null");
  OutputStage o2 = make_output_stage(0.1f, ws.data(), 8, 0.2f, 0);
  CHECK_THROWS(std::invalid_argument, conv_run(*p, o2, x.data(), y.data(), 0, 4, nullptr), "multipliers");
  OutputStage o3 = out; o3.qmin = 10; o3.qmax = 5;
  CHECK_THROWS(std::invalid_argument, conv_run(*p, o3, x.data(), y.data(), 0, 4, nullptr), "clamp");
  CHECK_THROWS(std::invalid_argument, gemm_run_columns(*p, out, x.data(), y.data(), 16, 0, 17), "columns");
  // m is not bounded by the packed shape (4 x 4 pixels): 16 rows here, 4 + 12 in two calls.
  gemm_run_columns(*p, out, x.data(), y.data(), 4, 0, 16);
  gemm_run_columns(*p, out, x.data() + 4 * 8, y.data() + 4 * 16, 12, 0, 16);
  CHECK_THROWS(std::invalid_argument, gemm_run_columns(*p, out, x.data(), y.data(), size_t(1) << 40, 0, 16), "too large");

  // General conv needs scratch.
  ConvShape g = pw_shape(); g.kernel_h = g.kernel_w = 3; g.pad_top = g.pad_left = g.pad_bottom = g.pad_right = 1;
  std::vector<int8_t> wg(size_t(16) * 8 * 9, 1);
  auto pg = pack_conv(isa, ConvKind::general, g, wg.data(), nullptr, nullptr, 0);
  CHECK(conv_scratch_size(*pg, 0, 4) == size_t(4) * 4 * 72);
  CHECK_THROWS(std::invalid_argument, conv_run(*pg, out, x.data(), y.data(), 0, 4, nullptr), "scratch");
  CHECK_THROWS(std::invalid_argument, gemm_run_columns(*pg, out, x.data(), y.data(), 1, 0, 16), "pointwise");
}

void test_params() {
  const Isa isa = Isa::scalar;
  std::vector<float> ws(4, 0.01f);
  CHECK_THROWS(std::invalid_argument, make_output_stage(0.0f, ws.data(), 4, 0.1f, 0), "x_scale");
  CHECK_THROWS(std::invalid_argument, make_output_stage(NAN, ws.data(), 4, 0.1f, 0), "x_scale");
  CHECK_THROWS(std::invalid_argument, make_output_stage(0.1f, ws.data(), 4, INFINITY, 0), "y_scale");
  CHECK_THROWS(std::invalid_argument, make_output_stage(0.1f, ws.data(), 4, 0.1f, 128), "y_zero_point");
  CHECK_THROWS(std::invalid_argument, make_output_stage(0.1f, ws.data(), 4, 0.1f, 0, 5, 4), "clamp");
  ws[2] = -1.0f;
  CHECK_THROWS(std::invalid_argument, make_output_stage(0.1f, ws.data(), 4, 0.1f, 0), "w_scale[2]");

  int8_t table[256];
  UnaryParams f;
  CHECK_THROWS(std::invalid_argument, make_lut(f, -1.0f, 0, 0.1f, 0, table), "x_scale");
  CHECK_THROWS(std::invalid_argument, make_lut(f, 0.1f, -129, 0.1f, 0, table), "x_zero_point");
  f.fn = UnaryFn(99);
  CHECK_THROWS(std::invalid_argument, make_lut(f, 0.1f, 0, 0.1f, 0, table), "UnaryFn");
  f.fn = UnaryFn::clip; f.p0 = 6; f.p1 = 0;
  CHECK_THROWS(std::invalid_argument, make_lut(f, 0.1f, 0, 0.1f, 0, table), "clip");

  int8_t a[4] = {}, b[4] = {}, y[4];
  AddParams ap; ap.y_scale = 0;
  CHECK_THROWS(std::invalid_argument, add(isa, ap, 4, a, b, y), "y_scale");
  ap = AddParams(); ap.qmin = 100; ap.qmax = 0;
  CHECK_THROWS(std::invalid_argument, add(isa, ap, 4, a, b, y), "clamp");
  ap = AddParams();
  CHECK_THROWS(std::invalid_argument, add(isa, ap, 4, nullptr, b, y), "a is null");
  MulParams mp; mp.b_zero_point = 1000;
  CHECK_THROWS(std::invalid_argument, mul(isa, mp, 4, a, b, y), "b_zero_point");
  CHECK_THROWS(std::invalid_argument, mul_channelwise(isa, mp, 2, 2, a, b, y), "b_zero_point");
  mp = MulParams(); mp.offset = 1;
  CHECK_THROWS(std::invalid_argument, mul(isa, mp, 4, a, b, y), "offset must be 0 (int8 tensors) or 128");
  GlobalAvgPoolParams gp;
  CHECK_THROWS(std::invalid_argument, global_avg_pool(isa, gp, 0, 4, a, y), "hw");
  CHECK_THROWS(std::invalid_argument, global_avg_pool(isa, gp, size_t(1) << 24, 4, a, y), "2^24");
  float fx[4] = {}, fy[4];
  CHECK_THROWS(std::invalid_argument, quantize_nchw_to_nhwc(isa, fx, 1, 2, 2, 0.0f, 0, y), "scale");
  CHECK_THROWS(std::invalid_argument, dequantize(isa, a, 4, 1.0f, 200, fy), "zero_point");
  CHECK_THROWS(std::invalid_argument, lut_apply(isa, nullptr, 4, a, y), "table");
  // Zero-length work is a no-op, even with null pointers.
  add(isa, AddParams(), 0, nullptr, nullptr, nullptr);
  lut_apply(isa, table, 0, nullptr, nullptr);
}

void test_isa_choice() {
  // Every unsupported ISA is refused (never run an instruction the CPU lacks).
  for (Isa i : {Isa::scalar, Isa::avx2, Isa::avxvnni, Isa::avx512vnni, Isa::neon, Isa::neondot}) {
    Isa parsed;
    CHECK(parse_isa(isa_name(i), &parsed) && parsed == i);
    if (!isa_supported(i)) {
      int8_t a[1] = {}, y[1];
      CHECK_THROWS(std::invalid_argument, lut_apply(i, a, 0, a, y), "not supported");
    }
  }
  CHECK(!parse_isa("sse9", nullptr));
  CHECK(supported_isas().front() == Isa::scalar);

  const char* old = std::getenv("MNQ_ISA");
  const std::string saved = old ? old : "";
  setenv("MNQ_ISA", "bogus", 1);
  CHECK_THROWS(std::runtime_error, default_isa(), "MNQ_ISA='bogus' is not an ISA");
  setenv("MNQ_ISA", "scalar", 1);
  CHECK(default_isa() == Isa::scalar);
  for (Isa i : {Isa::avx2, Isa::avxvnni, Isa::avx512vnni, Isa::neon, Isa::neondot}) {
    setenv("MNQ_ISA", isa_name(i), 1);
    if (isa_supported(i)) CHECK(default_isa() == i);
    else CHECK_THROWS(std::runtime_error, default_isa(), "not supported on this CPU");
  }
  unsetenv("MNQ_ISA");
  CHECK(default_isa() == supported_isas().back());
  if (old) setenv("MNQ_ISA", saved.c_str(), 1);
}

}  // namespace

// The wide kernels (int16 activations): bad types, zero points, clamps and mixing the two packings.
void test_wide() {
  const Isa isa = Isa::scalar;
  ConvShape s = pw_shape();
  std::vector<int8_t> w(size_t(s.out_c) * s.in_c, 1);
  std::vector<int16_t> x(4 * 4 * 8, 0), y(4 * 4 * 16);
  std::vector<float> ws(16, 0.01f);
  CHECK_THROWS(std::invalid_argument, pack_conv_wide(isa, ConvKind::pointwise, s, w.data(), nullptr, Dtype(7), 0), "x_dtype 7 is not a Dtype");
  CHECK_THROWS(std::invalid_argument, pack_conv_wide(isa, ConvKind::pointwise, s, w.data(), nullptr, Dtype::int16, 40000),
               "x_zero_point must be in [-32768, 32767] (int16)");
  CHECK_THROWS(std::invalid_argument, pack_conv_wide(isa, ConvKind::pointwise, s, w.data(), nullptr, Dtype::int8, 300),
               "x_zero_point must be in [-128, 127] (int8)");
  CHECK_THROWS(std::invalid_argument, make_output_stage(0.1f, ws.data(), 16, 0.2f, 0, -32768, 32767), "clamp bounds");
  CHECK_THROWS(std::invalid_argument, make_output_stage(0.1f, ws.data(), 16, 0.2f, 300, -128, 127, Dtype::int8), "y_zero_point");
  const OutputStage out16 = make_output_stage(0.1f, ws.data(), 16, 0.2f, 300, -32768, 32767, Dtype::int16);
  const OutputStage out8 = make_output_stage(0.1f, ws.data(), 16, 0.2f, 0);
  auto pw = pack_conv_wide(isa, ConvKind::pointwise, s, w.data(), nullptr, Dtype::int16, 0);
  auto p8 = pack_conv(isa, ConvKind::pointwise, s, w.data(), nullptr, nullptr, 0);
  CHECK(packed_conv_is_wide(*pw) && !packed_conv_is_wide(*p8));
  conv_run_wide(*pw, out16, x.data(), y.data(), 0, 4, nullptr);  // valid
  conv_run_wide(*pw, out8, x.data(), y.data(), 0, 4, nullptr);   // valid: int8 output
  std::vector<int8_t> x8(4 * 4 * 8, 0), y8(4 * 4 * 16);
  CHECK_THROWS(std::invalid_argument, conv_run(*pw, out8, x8.data(), y8.data(), 0, 4, nullptr), "packed by pack_conv_wide");
  CHECK_THROWS(std::invalid_argument, conv_run(*p8, out16, x8.data(), y8.data(), 0, 4, nullptr), "the output stage writes int16");
  CHECK_THROWS(std::invalid_argument, conv_run_wide(*p8, out16, x.data(), y.data(), 0, 4, nullptr), "packed by pack_conv;");
  CHECK_THROWS(std::invalid_argument, gemm_run_columns(*pw, out8, x8.data(), y8.data(), 16, 0, 16), "packed by pack_conv_wide");
  CHECK_THROWS(std::invalid_argument, gemm_run_columns_wide(*pw, out16, x.data(), y.data(), 16, 0, 17), "columns");
  OutputStage lut = out8;
  lut.has_lut = true;
  CHECK_THROWS(std::invalid_argument, conv_run_wide(*pw, lut, x.data(), y.data(), 0, 4, nullptr), "no fused table");
  CHECK_THROWS(std::invalid_argument, conv_run_wide(*pw, out16, nullptr, y.data(), 0, 4, nullptr), "x is null");
  ConvShape g = pw_shape(); g.kernel_h = g.kernel_w = 3; g.pad_top = g.pad_left = g.pad_bottom = g.pad_right = 1;
  std::vector<int8_t> wg(size_t(16) * 8 * 9, 1);
  auto pg = pack_conv_wide(isa, ConvKind::general, g, wg.data(), nullptr, Dtype::int16, 0);
  CHECK(conv_scratch_size(*pg, 0, 4) == size_t(4) * 4 * 72 * 2);
  CHECK_THROWS(std::invalid_argument, conv_run_wide(*pg, out16, x.data(), y.data(), 0, 4, nullptr), "scratch");

  WideBinaryParams bp;
  bp.a = {Dtype::int16, 0.1f, 0};
  bp.b = {Dtype::int8, 0.1f, 200};
  CHECK_THROWS(std::invalid_argument, add_wide(isa, bp, 1, x.data(), x8.data(), y.data()), "b.zero_point must be in [-128, 127]");
  bp.b.zero_point = 0;
  bp.y = {Dtype::int8, 0.1f, 0};
  CHECK_THROWS(std::invalid_argument, mul_wide(isa, bp, 1, x.data(), x8.data(), y.data()), "clamp bounds");  // int16 clamp on int8 y
  bp.y.scale = -1;
  CHECK_THROWS(std::invalid_argument, mul_channelwise_wide(isa, bp, 1, 1, x.data(), x8.data(), y.data()), "y.scale");
  WideUnaryParams up;
  up.x = {Dtype::int16, 0.1f, 0};
  up.y = {Dtype::int8, 0.1f, 0};
  up.f.fn = UnaryFn(42);
  CHECK_THROWS(std::invalid_argument, unary_wide(isa, up, 1, x.data(), y8.data()), "UnaryFn");
  WideGapParams gp;
  gp.x = {Dtype::int16, 0.1f, 0};
  gp.y = {Dtype::int16, 0.1f, 0};
  CHECK_THROWS(std::invalid_argument, global_avg_pool_wide(isa, gp, 0, 8, x.data(), y.data()), "hw must be in [1, 2^24)");
}

int main() {
  test_shapes();
  test_pack_and_run();
  test_params();
  test_wide();
  test_isa_choice();
  return finish("test_errors");
}
