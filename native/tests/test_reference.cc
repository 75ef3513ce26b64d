// The scalar reference checked against a float formulation: dequantize,
// compute in double, quantize. Agreement within 1 LSB where the float32
// rounding of the multiplier / product may differ from the exact value (and
// mostly exact), exactly where the result is determined (ties, clamps,
// NaN / Inf, conversions). Also: row splits equal whole runs.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "kernels/quant.h"
#include "test_util.h"

using namespace mnq;
using namespace mnq_test;

namespace {

const Isa S = Isa::scalar;

// Double-precision quantization with round-half-even and clamping.
int q_double(double v, int zp, int qmin = -128, int qmax = 127) {
  double r = std::nearbyint(v) + zp;
  return int(std::min<double>(qmax, std::max<double>(qmin, r)));
}

struct Stats {
  long total = 0, off1 = 0, worse = 0;
  void add(int got, int want) {
    ++total;
    const int d = std::abs(got - want);
    if (d == 1) ++off1;
    if (d > 1) ++worse;
  }
  void check(const char* what, double max_off1_fraction = 0.01) {
    CHECK_MSG(worse == 0, "%s: %ld of %ld values off by more than 1 LSB", what, worse, total);
    CHECK_MSG(double(off1) <= max_off1_fraction * double(total) + 1,
              "%s: %ld of %ld values off by 1 LSB (more than expected)", what, off1, total);
    std::printf("  %-28s %8ld values, %5ld off by 1 LSB, %ld worse\n", what, total, off1, worse);
  }
};

void test_scalar_math() {
  // Round half to even at ties, in requantize and quantize.
  CHECK(quant::requantize(5, 0.5f, 0, -128, 127) == 2);
  CHECK(quant::requantize(7, 0.5f, 0, -128, 127) == 4);
  CHECK(quant::requantize(-5, 0.5f, 0, -128, 127) == -2);
  CHECK(quant::requantize(-3, 0.5f, 10, -128, 127) == 8);
  CHECK(quant::requantize(1000000, 1.0f, 5, -128, 127) == 127);
  CHECK(quant::requantize(-1000000, 1.0f, 5, 0, 127) == 0);
  CHECK(quant::requantize(100, 1.0f, -10, -10, 50) == 50);
  CHECK(quant::quantize_linear(0.5f, 1.0f, 0) == 0);
  CHECK(quant::quantize_linear(1.5f, 1.0f, 0) == 2);
  CHECK(quant::quantize_linear(-2.5f, 1.0f, 3) == 1);
  CHECK(quant::quantize_linear(NAN, 0.1f, 7) == -128);
  CHECK(quant::quantize_linear(INFINITY, 0.1f, 7) == 127);
  CHECK(quant::quantize_linear(-INFINITY, 0.1f, 7) == -128);
  CHECK(quant::quantize_linear(1e30f, 1e-3f, -100) == 127);
  CHECK(quant::quantize_linear(0.3f, 0.1f, 0) == 3);  // true division: 0.3f / 0.1f = 3.0000002 -> 3
  CHECK(quant::dequantize_linear(-128, 0.5f, 2) == -65.0f);
  // Multiplier is float32 (x * w) / y, in that order.
  const float ws[2] = {0.003f, 0.7f};
  OutputStage o = make_output_stage(0.1f, ws, 2, 0.3f, 4, -10, 100);
  CHECK(o.multiplier[0] == (0.1f * 0.003f) / 0.3f);
  CHECK(o.multiplier[1] == (0.1f * 0.7f) / 0.3f);
  CHECK(o.zero_point == 4 && o.qmin == -10 && o.qmax == 100 && !o.has_lut);

  // requantize vs double over random accumulators.
  Rng r(1);
  Stats st;
  for (int i = 0; i < 200000; ++i) {
    const int32_t acc = r.uniform(-(1 << 22), 1 << 22) >> r.uniform(0, 16);
    const float m = r.log_uniform(1e-6f, 2.0f);
    const int zp = r.uniform(-128, 127);
    st.add(quant::requantize(acc, m, zp, -128, 127), q_double(double(acc) * m, zp));
  }
  st.check("requantize", 0.001);
  // quantize_linear vs double.
  Stats sq;
  for (int i = 0; i < 200000; ++i) {
    const float s = r.log_uniform(1e-4f, 10.0f);
    const float x = (r.unit() * 2 - 1) * 300.0f * s;
    const int zp = r.uniform(-128, 127);
    sq.add(quant::quantize_linear(x, s, zp), q_double(double(x) / s, zp));
  }
  sq.check("quantize_linear", 0.001);
}

// Direct double-precision convolution over dequantized values (padding is the
// real value 0), per-channel weight scales, bias at x_scale * w_scale.
void check_conv(ConvKind kind, const ConvShape& s, Rng& r, const char* what, bool asym) {
  const bool dw = kind == ConvKind::depthwise;
  const int per = dw ? s.kernel_h * s.kernel_w : s.in_c * s.kernel_h * s.kernel_w;
  std::vector<int8_t> w = random_i8(r, size_t(s.out_c) * per, asym ? -128 : -127, 127);
  std::vector<int32_t> wzp(size_t(s.out_c), 0), bias(size_t(s.out_c));
  if (asym)
    for (auto& z : wzp) z = r.uniform(-60, 60);
  for (auto& b : bias) b = r.uniform(-5000, 5000);
  std::vector<float> ws(size_t(s.out_c));
  for (auto& v : ws) v = r.log_uniform(0.002f, 0.05f);
  const float xs = r.log_uniform(0.01f, 0.1f), ys = r.log_uniform(0.02f, 0.3f);
  const int xzp = r.uniform(-128, 127), yzp = r.uniform(-128, 127);
  const bool relu = r.chance(0.5f);
  const int qmin = relu ? yzp : -128;
  const OutputStage out = make_output_stage(xs, ws.data(), ws.size(), ys, yzp, qmin, 127);
  const std::vector<int8_t> x = random_i8(r, size_t(s.in_h) * s.in_w * s.in_c);
  auto p = pack_conv(S, kind, s, w.data(), asym ? wzp.data() : nullptr, bias.data(), xzp);
  std::vector<int8_t> y(size_t(s.out_h) * s.out_w * s.out_c);
  std::vector<uint8_t> scratch(conv_scratch_size(*p, 0, s.out_h) + 1);
  conv_run(*p, out, x.data(), y.data(), 0, s.out_h, scratch.data());

  Stats st;
  for (int oy = 0; oy < s.out_h; ++oy)
    for (int ox = 0; ox < s.out_w; ++ox)
      for (int o = 0; o < s.out_c; ++o) {
        double sum = double(bias[size_t(o)]) * double(xs) * double(ws[size_t(o)]);
        for (int ky = 0; ky < s.kernel_h; ++ky)
          for (int kx = 0; kx < s.kernel_w; ++kx) {
            const int iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
            const int ix = ox * s.stride_w - s.pad_left + kx * s.dilation_w;
            if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
            const int c_lo = dw ? o : 0, c_hi = dw ? o + 1 : s.in_c;
            for (int c = c_lo; c < c_hi; ++c) {
              const double xv = double(xs) * (x[(size_t(iy) * s.in_w + ix) * s.in_c + c] - xzp);
              const int widx = dw ? (o * s.kernel_h + ky) * s.kernel_w + kx
                                  : ((o * s.in_c + c) * s.kernel_h + ky) * s.kernel_w + kx;
              const double wv = double(ws[size_t(o)]) * (w[size_t(widx)] - wzp[size_t(o)]);
              sum += xv * wv;
            }
          }
        st.add(y[(size_t(oy) * s.out_w + ox) * s.out_c + o], q_double(sum / ys, yzp, qmin, 127));
      }
  st.check(what);

  // Row splits give the same bytes as the whole run.
  std::vector<int8_t> y2(y.size(), 0x55);
  for (int row = 0; row < s.out_h;) {
    const int end = std::min(s.out_h, row + r.uniform(1, 3));
    std::vector<uint8_t> sc(conv_scratch_size(*p, row, end) + 1);
    conv_run(*p, out, x.data(), y2.data(), row, end, sc.data());
    row = end;
  }
  CHECK_MSG(y == y2, "%s: row split differs from the whole run", what);
}

ConvShape shape(int ih, int iw, int ic, int oc, int k, int stride, int pt, int pl, int pb, int pr,
                int dil = 1) {
  ConvShape s;
  s.in_h = ih; s.in_w = iw; s.in_c = ic; s.out_c = oc;
  s.kernel_h = s.kernel_w = k; s.stride_h = s.stride_w = stride;
  s.dilation_h = s.dilation_w = dil;
  s.pad_top = pt; s.pad_left = pl; s.pad_bottom = pb; s.pad_right = pr;
  const int eff = (k - 1) * dil + 1;
  s.out_h = (ih + pt + pb - eff) / stride + 1;
  s.out_w = (iw + pl + pr - eff) / stride + 1;
  return s;
}

void test_convs() {
  Rng r(2);
  check_conv(ConvKind::pointwise, shape(5, 7, 33, 17, 1, 1, 0, 0, 0, 0), r, "pointwise", false);
  check_conv(ConvKind::pointwise, shape(3, 3, 64, 24, 1, 1, 0, 0, 0, 0), r, "pointwise asym-w", true);
  check_conv(ConvKind::pointwise, shape(2, 1, 300, 10, 1, 1, 0, 0, 0, 0), r, "fully connected", false);
  check_conv(ConvKind::depthwise, shape(9, 9, 19, 19, 3, 1, 1, 1, 1, 1), r, "depthwise 3x3 s1", false);
  check_conv(ConvKind::depthwise, shape(10, 10, 16, 16, 3, 2, 0, 0, 1, 1), r, "depthwise 3x3 s2 TF-SAME", false);
  check_conv(ConvKind::depthwise, shape(11, 8, 7, 7, 5, 2, 1, 1, 2, 2), r, "depthwise 5x5 s2", true);
  check_conv(ConvKind::depthwise, shape(9, 9, 5, 5, 3, 1, 2, 2, 2, 2, 2), r, "depthwise 3x3 dilation 2", false);
  check_conv(ConvKind::general, shape(16, 16, 3, 16, 3, 2, 0, 0, 1, 1), r, "stem 3x3 s2 TF-SAME", false);
  check_conv(ConvKind::general, shape(9, 7, 4, 9, 5, 1, 2, 1, 2, 3), r, "general 5x5 asym pads", true);
  check_conv(ConvKind::general, shape(8, 8, 6, 5, 1, 2, 0, 0, 0, 0), r, "general 1x1 s2", false);
}

void test_elementwise() {
  Rng r(3);
  Stats sa, sm, sc, sg;
  for (int t = 0; t < 200; ++t) {
    const size_t n = 257;
    const auto a = random_i8(r, n), b = random_i8(r, n);
    AddParams ap;
    ap.a_scale = r.log_uniform(0.005f, 0.2f); ap.b_scale = r.log_uniform(0.005f, 0.2f);
    ap.y_scale = r.log_uniform(0.01f, 0.3f);
    ap.a_zero_point = r.uniform(-128, 127); ap.b_zero_point = r.uniform(-128, 127);
    ap.y_zero_point = r.uniform(-128, 127);
    std::vector<int8_t> y(n);
    add(S, ap, n, a.data(), b.data(), y.data());
    for (size_t i = 0; i < n; ++i) {
      const double v = double(ap.a_scale) * (a[i] - ap.a_zero_point) + double(ap.b_scale) * (b[i] - ap.b_zero_point);
      sa.add(y[i], q_double(v / ap.y_scale, ap.y_zero_point));
    }
    MulParams mp;
    mp.a_scale = r.log_uniform(0.005f, 0.2f); mp.b_scale = r.log_uniform(0.001f, 0.01f);
    mp.y_scale = r.log_uniform(0.005f, 0.2f);
    mp.a_zero_point = r.uniform(-128, 127); mp.b_zero_point = r.uniform(-128, 127);
    mp.y_zero_point = r.uniform(-128, 127);
    mul(S, mp, n, a.data(), b.data(), y.data());
    for (size_t i = 0; i < n; ++i) {
      const double v = double(mp.a_scale) * (a[i] - mp.a_zero_point) * double(mp.b_scale) * (b[i] - mp.b_zero_point);
      sm.add(y[i], q_double(v / mp.y_scale, mp.y_zero_point));
    }
    // channelwise: x [hw=7][c=37] * s[c]
    const size_t hw = 7, c = 37;
    const auto x = random_i8(r, hw * c), s = random_i8(r, c);
    std::vector<int8_t> yc(hw * c);
    mul_channelwise(S, mp, hw, c, x.data(), s.data(), yc.data());
    for (size_t i = 0; i < hw; ++i)
      for (size_t ch = 0; ch < c; ++ch) {
        const double v = double(mp.a_scale) * (x[i * c + ch] - mp.a_zero_point) * double(mp.b_scale) * (s[ch] - mp.b_zero_point);
        sc.add(yc[i * c + ch], q_double(v / mp.y_scale, mp.y_zero_point));
      }
    GlobalAvgPoolParams gp;
    gp.x_scale = r.log_uniform(0.01f, 0.2f); gp.y_scale = r.log_uniform(0.005f, 0.2f);
    gp.x_zero_point = r.uniform(-128, 127); gp.y_zero_point = r.uniform(-128, 127);
    const size_t ghw = size_t(r.pick(std::vector<int>{1, 7, 49, 196}));
    const auto gx = random_i8(r, ghw * c);
    std::vector<int8_t> gy(c);
    global_avg_pool(S, gp, ghw, c, gx.data(), gy.data());
    for (size_t ch = 0; ch < c; ++ch) {
      double sum = 0;
      for (size_t i = 0; i < ghw; ++i) sum += double(gp.x_scale) * (gx[i * c + ch] - gp.x_zero_point);
      sg.add(gy[ch], q_double(sum / double(ghw) / gp.y_scale, gp.y_zero_point));
    }
  }
  sa.check("add");
  sm.check("mul");
  sc.check("mul_channelwise");
  sg.check("global_avg_pool");

  // Fused ReLU clamp on add is exact.
  AddParams ap;
  ap.a_scale = 0.1f; ap.b_scale = 0.1f; ap.y_scale = 0.1f; ap.y_zero_point = -20; ap.qmin = -20;
  int8_t a[3] = {-100, 0, 50}, b[3] = {-100, 5, 50}, y[3];
  add(S, ap, 3, a, b, y);
  CHECK(y[0] == -20 && y[1] == -15 && y[2] == 80);

  // QLinearMul adds the output zero point in float before rounding, as ONNX Runtime does, in the
  // tensors' own domain. Parameters of an SE Mul of a calibrated PaddleOCR model: the product scales
  // to 36.499996, and 36.499996 - 107 rounds (float32) to the tie -70.5, so ORT gives -70
  // where rounding first, then adding the zero point, gives -71.
  MulParams mp;
  mp.a_scale = 0.023005736991763115f; mp.a_zero_point = -112; mp.b_scale = 0.002711337525397539f;
  mp.b_zero_point = -128; mp.y_scale = 0.011986508034169674f; mp.y_zero_point = -107;
  int8_t ma = -70, mb = 39, my = 0;
  mul(S, mp, 1, &ma, &mb, &my);
  CHECK_MSG(my == -70, "mul tie: %d, ONNX Runtime gives -70", my);
  // uint8 tensors (stored as int8, offset 128): ORT adds the uint8 zero point 164, giving 36 + 128 where
  // the int8 arithmetic gives 35 (ort_kernel_cases.js runs this parameter set through ORT).
  mp.a_scale = 0.018046000972390175f; mp.a_zero_point = 123; mp.b_scale = 0.0013821616303175688f;
  mp.b_zero_point = -119; mp.y_scale = 0.0298310536891222f; mp.y_zero_point = 36;
  ma = 77; mb = -106;
  mul(S, mp, 1, &ma, &mb, &my);
  CHECK_MSG(my == 35, "mul, int8 tensors: %d, expected 35", my);
  mp.offset = 128;
  mul(S, mp, 1, &ma, &mb, &my);
  CHECK_MSG(my == 36, "mul, uint8 tensors: %d, ONNX Runtime gives 36", my);
}

void test_luts() {
  struct F { UnaryParams p; double (*f)(double, double, double); const char* name; };
  const F fs[] = {
      {{UnaryFn::identity, 0, 0}, [](double x, double, double) { return x; }, "lut identity"},
      {{UnaryFn::relu, 0, 0}, [](double x, double, double) { return std::max(x, 0.0); }, "lut relu"},
      {{UnaryFn::clip, 0, 6}, [](double x, double lo, double hi) { return std::min(std::max(x, lo), hi); }, "lut clip 0..6"},
      {{UnaryFn::hardsigmoid, 0.2f, 0.5f}, [](double x, double a, double b) { return std::max(0.0, std::min(1.0, a * x + b)); }, "lut hardsigmoid"},
      {{UnaryFn::hardswish, 0, 0}, [](double x, double, double) { return x * std::max(0.0, std::min(1.0, x / 6 + 0.5)); }, "lut hardswish"},
      {{UnaryFn::sigmoid, 0, 0}, [](double x, double, double) { return 1 / (1 + std::exp(-x)); }, "lut sigmoid"},
      {{UnaryFn::tanh, 0, 0}, [](double x, double, double) { return std::tanh(x); }, "lut tanh"},
      {{UnaryFn::leakyrelu, 0.1f, 0}, [](double x, double a, double) { return x >= 0 ? x : a * x; }, "lut leakyrelu"},
      {{UnaryFn::mul_hardsigmoid, 1.0f / 6, 0.5f}, [](double x, double a, double b) { return x * std::max(0.0, std::min(1.0, a * x + b)); }, "lut x*hardsigmoid"},
  };
  Rng r(4);
  for (const F& f : fs) {
    Stats st;
    for (int t = 0; t < 50; ++t) {
      const float xs = r.log_uniform(0.005f, 0.1f), ys = r.log_uniform(0.005f, 0.1f);
      const int xzp = r.uniform(-128, 127), yzp = r.uniform(-128, 127);
      int8_t table[256];
      make_lut(f.p, xs, xzp, ys, yzp, table);
      for (int q = -128; q <= 127; ++q) {
        const double x = double(xs) * (q - xzp);
        st.add(table[q + 128], q_double(f.f(x, f.p.p0, f.p.p1) / ys, yzp));
      }
      // lut_apply is exactly a table lookup.
      const auto in = random_i8(r, 300);
      std::vector<int8_t> out(300);
      lut_apply(S, table, in.size(), in.data(), out.data());
      for (size_t i = 0; i < in.size(); ++i) CHECK(out[i] == table[in[i] + 128]);
    }
    st.check(f.name, 0.02);
  }
  // The fused table in the conv epilogue equals the standalone table applied after.
  ConvShape s = shape(3, 3, 8, 8, 3, 1, 1, 1, 1, 1);
  std::vector<int8_t> w = random_i8(r, 8 * 9, -127, 127), x = random_i8(r, 72);
  std::vector<float> ws(8, 0.01f);
  OutputStage plain = make_output_stage(0.05f, ws.data(), 8, 0.04f, 3);
  OutputStage fused = plain;
  UnaryParams hs{UnaryFn::hardswish, 0, 0};
  make_lut(hs, 0.04f, 3, 0.03f, -100, fused.lut);
  fused.has_lut = true;
  auto p = pack_conv(S, ConvKind::depthwise, s, w.data(), nullptr, nullptr, 1);
  std::vector<int8_t> y1(72), y2(72), y3(72);
  conv_run(*p, plain, x.data(), y1.data(), 0, 3, nullptr);
  lut_apply(S, fused.lut, 72, y1.data(), y3.data());
  conv_run(*p, fused, x.data(), y2.data(), 0, 3, nullptr);
  CHECK(y2 == y3);
}

void test_conversions() {
  Rng r(5);
  // quantize: NCHW -> NHWC layout and values.
  const size_t c = 3, h = 2, w = 5;
  std::vector<float> x(c * h * w);
  for (auto& v : x) v = (r.unit() * 2 - 1) * 3;
  x[1] = NAN; x[2] = INFINITY; x[3] = -INFINITY; x[4] = 0.25f;  // 0.25 / 0.1 = 2.5 -> 2 (even)
  std::vector<int8_t> y(x.size());
  quantize_nchw_to_nhwc(S, x.data(), c, h, w, 0.1f, 0, y.data());
  for (size_t ch = 0; ch < c; ++ch)
    for (size_t i = 0; i < h * w; ++i) {
      const float v = x[ch * h * w + i];
      int want;
      if (std::isnan(v)) want = -128;
      else want = q_double(double(v / 0.1f), 0);  // float division, then exact rounding
      CHECK_MSG(y[i * c + ch] == want, "quantize c=%zu i=%zu: %d vs %d", ch, i, int(y[i * c + ch]), want);
    }
  CHECK(y[4 * c + 0] == 2);
  // dequantize is exact: float(q - zp) * scale.
  std::vector<int8_t> q(256);
  for (int i = 0; i < 256; ++i) q[size_t(i)] = int8_t(i - 128);
  std::vector<float> f(256);
  dequantize(S, q.data(), 256, 0.0375f, -7, f.data());
  for (int i = 0; i < 256; ++i) CHECK(f[size_t(i)] == float(i - 128 + 7) * 0.0375f);
}


// A checksum of reference outputs over fixed inputs. The reference must give
// the same bits on every architecture (x86-64, AArch64): this value was
// computed on x86-64 and the aarch64 test run under qemu checks it too. If you
// change the reference arithmetic on purpose, update docs/quantization.md and
// this value.
// ---------------------------------------------------------------- int16 activations
// The wide kernels (docs/quantization.md, "int16 activations") against the same
// double formulation, with int8 or int16 inputs and outputs; exact where the
// result is determined (accumulators beyond int32, clamps, the float graph's
// formula written out, row splits).
std::vector<int32_t> random_values(Rng& r, size_t n, Dtype d) {
  std::vector<int32_t> v(n);
  for (auto& x : v) x = r.uniform(dtype_min(d), dtype_max(d));
  return v;
}
// Typed storage of values of type d (bytes: int8 or little-endian int16).
std::vector<uint8_t> typed(const std::vector<int32_t>& v, Dtype d) {
  std::vector<uint8_t> b(v.size() * dtype_bytes(d));
  for (size_t i = 0; i < v.size(); ++i) {
    if (d == Dtype::int16) {
      const int16_t t = int16_t(v[i]);
      std::memcpy(&b[2 * i], &t, 2);
    } else {
      b[i] = uint8_t(int8_t(v[i]));
    }
  }
  return b;
}
int32_t typed_at(const std::vector<uint8_t>& b, Dtype d, size_t i) {
  if (d == Dtype::int8) return int8_t(b[i]);
  int16_t t;
  std::memcpy(&t, &b[2 * i], 2);
  return t;
}

void check_conv_wide(ConvKind kind, const ConvShape& s, Dtype xd, Dtype yd, Rng& r, const char* what) {
  const bool dw = kind == ConvKind::depthwise;
  const int per = dw ? s.kernel_h * s.kernel_w : s.in_c * s.kernel_h * s.kernel_w;
  const std::vector<int8_t> w = random_i8(r, size_t(s.out_c) * per, -127, 127);
  std::vector<int32_t> bias(size_t(s.out_c));
  for (auto& b : bias) b = r.uniform(-500000, 500000);
  std::vector<float> ws(size_t(s.out_c));
  for (auto& v : ws) v = r.log_uniform(0.002f, 0.05f);
  const float xs = xd == Dtype::int16 ? r.log_uniform(1e-4f, 1e-3f) : r.log_uniform(0.01f, 0.1f);
  const float ys = yd == Dtype::int16 ? r.log_uniform(5e-4f, 5e-3f) : r.log_uniform(0.1f, 1.0f);
  const int xzp = r.chance(0.5f) ? 0 : r.uniform(dtype_min(xd), dtype_max(xd));
  const int yzp = r.chance(0.5f) ? 0 : r.uniform(dtype_min(yd) / 2, dtype_max(yd) / 2);
  const bool relu = r.chance(0.5f);
  const int qmin = relu ? yzp : dtype_min(yd), qmax = dtype_max(yd);
  const OutputStage out = make_output_stage(xs, ws.data(), ws.size(), ys, yzp, qmin, qmax, yd);
  const std::vector<int32_t> xv = random_values(r, size_t(s.in_h) * s.in_w * s.in_c, xd);
  const std::vector<uint8_t> x = typed(xv, xd);
  auto p = pack_conv_wide(S, kind, s, w.data(), bias.data(), xd, xzp);
  CHECK(packed_conv_is_wide(*p));
  std::vector<uint8_t> y(size_t(s.out_h) * s.out_w * s.out_c * dtype_bytes(yd));
  std::vector<uint8_t> scratch(conv_scratch_size(*p, 0, s.out_h) + 1);
  conv_run_wide(*p, out, x.data(), y.data(), 0, s.out_h, scratch.data());
  Stats st;
  for (int oy = 0; oy < s.out_h; ++oy)
    for (int ox = 0; ox < s.out_w; ++ox)
      for (int o = 0; o < s.out_c; ++o) {
        double sum = double(bias[size_t(o)]) * double(xs) * double(ws[size_t(o)]);
        for (int ky = 0; ky < s.kernel_h; ++ky)
          for (int kx = 0; kx < s.kernel_w; ++kx) {
            const int iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
            const int ix = ox * s.stride_w - s.pad_left + kx * s.dilation_w;
            if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
            const int c_lo = dw ? o : 0, c_hi = dw ? o + 1 : s.in_c;
            for (int c = c_lo; c < c_hi; ++c) {
              const double xq = double(xs) * (xv[(size_t(iy) * s.in_w + ix) * s.in_c + c] - xzp);
              const int widx = dw ? (o * s.kernel_h + ky) * s.kernel_w + kx
                                  : ((o * s.in_c + c) * s.kernel_h + ky) * s.kernel_w + kx;
              sum += xq * double(ws[size_t(o)]) * w[size_t(widx)];
            }
          }
        const size_t i = (size_t(oy) * s.out_w + ox) * s.out_c + o;
        st.add(typed_at(y, yd, i), q_double(sum / ys, yzp, qmin, qmax));
      }
  st.check(what);
  std::vector<uint8_t> y2(y.size(), 0x55);
  for (int row = 0; row < s.out_h;) {
    const int end = std::min(s.out_h, row + r.uniform(1, 3));
    std::vector<uint8_t> sc(conv_scratch_size(*p, row, end) + 1);
    conv_run_wide(*p, out, x.data(), y2.data(), row, end, sc.data());
    row = end;
  }
  CHECK_MSG(y == y2, "%s: row split differs from the whole run", what);
  if (kind == ConvKind::pointwise) {
    // gemm_run_columns_wide over all pixels, split in two column ranges: the same values
    std::vector<uint8_t> y3(y.size(), 0x55);
    const size_t m = size_t(s.out_h) * s.out_w;
    const int half = s.out_c / 2 / gemm_column_block(*p) * gemm_column_block(*p);
    gemm_run_columns_wide(*p, out, x.data(), y3.data(), m, 0, half);
    gemm_run_columns_wide(*p, out, x.data(), y3.data(), m, half, s.out_c);
    CHECK_MSG(y == y3, "%s: column split differs from conv_run_wide", what);
  }
}

void test_wide() {
  Rng r(21);
  const Dtype I8 = Dtype::int8, I16 = Dtype::int16;
  check_conv_wide(ConvKind::pointwise, shape(5, 7, 33, 17, 1, 1, 0, 0, 0, 0), I16, I16, r, "wide pointwise 16->16");
  check_conv_wide(ConvKind::pointwise, shape(3, 3, 64, 24, 1, 1, 0, 0, 0, 0), I16, I8, r, "wide pointwise 16->8");
  check_conv_wide(ConvKind::pointwise, shape(9, 9, 40, 9, 1, 1, 0, 0, 0, 0), I8, I16, r, "wide pointwise 8->16");
  check_conv_wide(ConvKind::pointwise, shape(1, 1, 600, 10, 1, 1, 0, 0, 0, 0), I16, I16, r, "wide fully connected");
  check_conv_wide(ConvKind::depthwise, shape(9, 9, 19, 19, 3, 1, 1, 1, 1, 1), I16, I16, r, "wide depthwise 3x3 s1");
  check_conv_wide(ConvKind::depthwise, shape(10, 10, 16, 16, 3, 2, 0, 0, 1, 1), I8, I16, r, "wide depthwise 8->16 s2");
  check_conv_wide(ConvKind::depthwise, shape(11, 8, 7, 7, 5, 2, 1, 1, 2, 2), I16, I8, r, "wide depthwise 5x5 16->8");
  check_conv_wide(ConvKind::general, shape(16, 16, 3, 16, 3, 2, 0, 0, 1, 1), I16, I16, r, "wide stem 3x3 s2");
  check_conv_wide(ConvKind::general, shape(9, 7, 4, 9, 5, 1, 2, 1, 2, 3), I8, I16, r, "wide general 8->16 pads");

  // An accumulator beyond int32 is exact: k = 1024 inputs 32767 times weights 127 plus bias 1000
  // = 4 261 283 816 (f32 4261283840); times m = 2^-20 -> 4063.877 -> 4064 (an int32 sum would wrap).
  {
    const int k = 1024;
    ConvShape s = shape(1, 1, k, 1, 1, 1, 0, 0, 0, 0);
    const std::vector<int8_t> w(size_t(k), 127);
    const int32_t bias = 1000;
    const float ws = 1.0f / 1024, xs = 1.0f / 1024, ys = 1.0f;
    const OutputStage out = make_output_stage(xs, &ws, 1, ys, 0, -32768, 32767, I16);
    auto p = pack_conv_wide(S, ConvKind::pointwise, s, w.data(), &bias, I16, 0);
    const std::vector<int16_t> x(size_t(k), 32767);
    int16_t y = 0;
    conv_run_wide(*p, out, x.data(), &y, 0, 1, nullptr);
    CHECK_MSG(y == 4064, "wide accumulator beyond int32: %d, expected 4064", y);
  }

  // The float graph: DQ in float32, one float32 add / mul, QuantizeLinear (true division) to y's type.
  Stats sa, sm;
  for (int t = 0; t < 100; ++t) {
    const size_t n = 129;
    WideBinaryParams p;
    p.a.dtype = r.chance(0.5f) ? I16 : I8;
    p.b.dtype = r.chance(0.5f) ? I16 : I8;
    p.y.dtype = r.chance(0.5f) ? I16 : I8;
    for (Quant* q : {&p.a, &p.b, &p.y}) {
      q->scale = q->dtype == I16 ? r.log_uniform(1e-4f, 1e-3f) : r.log_uniform(0.02f, 0.2f);
      q->zero_point = r.chance(0.5f) ? 0 : r.uniform(dtype_min(q->dtype) / 4, dtype_max(q->dtype) / 4);
    }
    p.qmin = dtype_min(p.y.dtype);
    p.qmax = dtype_max(p.y.dtype);
    const auto av = random_values(r, n, p.a.dtype), bv = random_values(r, n, p.b.dtype);
    const auto a = typed(av, p.a.dtype), b = typed(bv, p.b.dtype);
    std::vector<uint8_t> y(n * 2);
    add_wide(S, p, n, a.data(), b.data(), y.data());
    for (size_t i = 0; i < n; ++i) {
      const float fa = float(av[i] - p.a.zero_point) * p.a.scale, fb = float(bv[i] - p.b.zero_point) * p.b.scale;
      const int want = quant::quantize_linear_to(fa + fb, p.y.scale, p.y.zero_point, p.qmin, p.qmax);
      CHECK_MSG(typed_at(y, p.y.dtype, i) == want, "add_wide: the float graph's formula");
      const double v = double(p.a.scale) * (av[i] - p.a.zero_point) + double(p.b.scale) * (bv[i] - p.b.zero_point);
      sa.add(typed_at(y, p.y.dtype, i), q_double(v / p.y.scale, p.y.zero_point, p.qmin, p.qmax));
    }
    mul_wide(S, p, n, a.data(), b.data(), y.data());
    for (size_t i = 0; i < n; ++i) {
      const double v = double(p.a.scale) * (av[i] - p.a.zero_point) * double(p.b.scale) * (bv[i] - p.b.zero_point);
      sm.add(typed_at(y, p.y.dtype, i), q_double(v / p.y.scale, p.y.zero_point, p.qmin, p.qmax));
    }
    // channelwise = mul with b repeated over the pixels
    const size_t hw = 3, c = n / hw;
    std::vector<int32_t> brep(hw * c);
    for (size_t i = 0; i < hw * c; ++i) brep[i] = bv[i % c];
    const auto bfull = typed(brep, p.b.dtype);
    std::vector<uint8_t> y1(hw * c * 2), y2(hw * c * 2);
    mul_wide(S, p, hw * c, a.data(), bfull.data(), y1.data());
    mul_channelwise_wide(S, p, hw, c, a.data(), b.data(), y2.data());
    CHECK_MSG(y1 == y2, "mul_channelwise_wide differs from mul_wide with the scale repeated");
  }
  sa.check("add_wide");
  sm.check("mul_wide");

  // ReLU clamp on add, in int16.
  {
    WideBinaryParams p;
    p.a = {I16, 0.001f, 0};
    p.b = {I8, 0.05f, 3};
    p.y = {I16, 0.002f, 0};
    p.qmin = 0;
    const int16_t a[3] = {-1000, 0, 30000};
    const int8_t b[3] = {3, 13, 127};
    int16_t y[3];
    add_wide(S, p, 3, a, b, y);
    // -1 + 0 -> clamp 0; 0 + 0.5 = 250; 30 + 6.2 = 18100
    CHECK_MSG(y[0] == 0 && y[1] == 250 && y[2] == 18100, "add_wide relu: %d %d %d", y[0], y[1], y[2]);
  }

  // Unary functions and requantization: Q_y(f(DQ_x(clamp(x)))) per element, the table's numbers for int8.
  {
    const UnaryParams fs[] = {{UnaryFn::identity, 0, 0}, {UnaryFn::hardswish, 0, 0}, {UnaryFn::hardsigmoid, 1.0f / 6, 0.5f},
                              {UnaryFn::clip, 0, 6}, {UnaryFn::sigmoid, 0, 0}};
    for (const UnaryParams& f : fs) {
      WideUnaryParams p;
      p.f = f;
      p.x = {I8, 0.05f, -7};
      p.y = {I8, 0.03f, -100};
      p.qmin = -128;
      p.qmax = 127;
      int8_t table[256];
      make_lut(f, p.x.scale, p.x.zero_point, p.y.scale, p.y.zero_point, table);
      std::vector<int8_t> x(256), y(256);
      for (int q = -128; q < 128; ++q) x[size_t(q + 128)] = int8_t(q);
      unary_wide(S, p, 256, x.data(), y.data());
      bool same = true;
      for (int q = 0; q < 256; ++q) same = same && y[size_t(q)] == table[q];
      CHECK_MSG(same, "unary_wide int8 -> int8 differs from make_lut (fn %d)", int(f.fn));
      // int16 -> int16 over every input value, against the formula written out
      p.x = {I16, 6.0f / 32768, 0};
      p.y = {I16, 7.0f / 32768, 0};
      p.qmin = -32768;
      p.qmax = 32767;
      std::vector<int16_t> xs(65536), ys(65536);
      for (int q = -32768; q < 32768; ++q) xs[size_t(q + 32768)] = int16_t(q);
      unary_wide(S, p, 65536, xs.data(), ys.data());
      Stats su;
      for (int q = -32768; q < 32768; ++q) {
        const double xv = double(p.x.scale) * q;
        double fv = xv;
        if (f.fn == UnaryFn::hardswish) fv = xv * std::min(1.0, std::max(0.0, xv / 6 + 0.5));
        if (f.fn == UnaryFn::hardsigmoid) fv = std::min(1.0, std::max(0.0, xv / 6 + 0.5));
        if (f.fn == UnaryFn::clip) fv = std::min(6.0, std::max(0.0, xv));
        if (f.fn == UnaryFn::sigmoid) fv = 1 / (1 + std::exp(-xv));
        su.add(ys[size_t(q + 32768)], q_double(fv / p.y.scale, 0, -32768, 32767));
      }
      su.check((std::string("unary_wide 16->16 fn ") + std::to_string(int(f.fn))).c_str(), 0.05);
    }
    // The input clamp: relu as a clamp of the int16 input at the zero point.
    WideUnaryParams p;
    p.x = {I16, 0.001f, 100};
    p.y = {I8, 0.1f, 0};
    p.qmin = 100;
    p.qmax = 32767;
    const int16_t x[2] = {-5000, 5100};
    int8_t y[2];
    unary_wide(S, p, 2, x, y);
    CHECK_MSG(y[0] == 0 && y[1] == 50, "unary_wide input clamp: %d %d", y[0], y[1]);
  }

  // make_wide_lut + wide_lut_apply (the runtime's form of a wide unary op) equal unary_wide on every input
  // value, for each pair of dtypes, with an input clamp and non-zero zero points.
  {
    const UnaryParams fs[] = {{UnaryFn::hardswish, 0, 0}, {UnaryFn::hardsigmoid, 0.2f, 0.5f}, {UnaryFn::identity, 0, 0}};
    for (const UnaryParams& f : fs)
      for (int xd = 0; xd < 2; ++xd)
        for (int yd = 0; yd < 2; ++yd) {
          WideUnaryParams p;
          p.f = f;
          p.x = xd ? Quant{I16, 5.0f / 32768, 3} : Quant{I8, 0.04f, -5};
          p.y = yd ? Quant{I16, 4.0f / 32768, -2} : Quant{I8, 0.03f, 7};
          p.qmin = xd ? -30000 : -120;
          p.qmax = xd ? 32767 : 127;
          const size_t n = xd ? 65536 : 256;
          std::vector<int16_t> x16(n);
          std::vector<int8_t> x8(n);
          for (size_t i = 0; i < n; ++i) {
            x16[i] = int16_t(int32_t(i) - 32768);
            x8[i] = int8_t(int32_t(i) - 128);
          }
          const void* x = xd ? static_cast<const void*>(x16.data()) : static_cast<const void*>(x8.data());
          std::vector<int16_t> want16(n), got16(n);
          std::vector<int8_t> want8(n), got8(n);
          void* want = yd ? static_cast<void*>(want16.data()) : static_cast<void*>(want8.data());
          void* got = yd ? static_cast<void*>(got16.data()) : static_cast<void*>(got8.data());
          unary_wide(S, p, n, x, want);
          const std::vector<int16_t> table = make_wide_lut(p);
          CHECK_MSG(table.size() == n, "make_wide_lut: %zu entries for %zu input values", table.size(), n);
          wide_lut_apply(p, table.data(), n, x, got);
          const bool same = yd ? want16 == got16 : want8 == got8;
          CHECK_MSG(same, "wide_lut_apply differs from unary_wide (fn %d, x %s, y %s)", int(f.fn), xd ? "int16" : "int8",
                    yd ? "int16" : "int8");
        }
  }

  // Global average pool, int16 in and out.
  {
    Stats sg;
    for (int t = 0; t < 50; ++t) {
      WideGapParams p;
      p.x = {r.chance(0.5f) ? I16 : I8, 0, 0};
      p.y = {r.chance(0.5f) ? I16 : I8, 0, 0};
      p.x.scale = p.x.dtype == I16 ? r.log_uniform(1e-4f, 1e-3f) : r.log_uniform(0.02f, 0.2f);
      p.y.scale = p.y.dtype == I16 ? r.log_uniform(1e-4f, 1e-3f) : r.log_uniform(0.02f, 0.2f);
      p.x.zero_point = r.uniform(dtype_min(p.x.dtype) / 4, dtype_max(p.x.dtype) / 4);
      p.qmin = dtype_min(p.y.dtype);
      p.qmax = dtype_max(p.y.dtype);
      const size_t hw = size_t(r.pick(std::vector<int>{1, 7, 49})), c = 19;
      const auto xv = random_values(r, hw * c, p.x.dtype);
      const auto x = typed(xv, p.x.dtype);
      std::vector<uint8_t> y(c * 2);
      global_avg_pool_wide(S, p, hw, c, x.data(), y.data());
      for (size_t ch = 0; ch < c; ++ch) {
        double sum = 0;
        for (size_t i = 0; i < hw; ++i) sum += double(p.x.scale) * (xv[i * c + ch] - p.x.zero_point);
        sg.add(typed_at(y, p.y.dtype, ch), q_double(sum / double(hw) / p.y.scale, 0, p.qmin, p.qmax));
      }
    }
    sg.check("global_avg_pool_wide");
  }
}

void test_golden_checksum() {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  Rng r(77);
  // Inputs without libm (exp / log differ in the last bit between x86 and ARM libms).
  auto lin = [&](float lo, float hi) { return lo + r.unit() * (hi - lo); };
  for (int fn = 0; fn <= int(UnaryFn::mul_hardsigmoid); ++fn)
    for (int t = 0; t < 8; ++t) {
      UnaryParams f{UnaryFn(fn), 0.0f, 6.0f};
      if (f.fn == UnaryFn::hardsigmoid || f.fn == UnaryFn::mul_hardsigmoid) { f.p0 = 1.0f / 6; f.p1 = 0.5f; }
      if (f.fn == UnaryFn::leakyrelu) f.p0 = 0.01f;
      int8_t table[256];
      const float xs = lin(0.003f, 0.2f);  // one per statement: argument order is unspecified
      const int xzp = r.uniform(-128, 127);
      const float ys = lin(0.003f, 0.2f);
      const int yzp = r.uniform(-128, 127);
      make_lut(f, xs, xzp, ys, yzp, table);
      mix(table, 256);
      if (std::getenv("MNQ_GOLDEN_DEBUG")) std::printf("    lut fn %d t %d: %016llx\n", fn, t, (unsigned long long)h);
    }
  const ConvShape shapes[] = {shape(5, 5, 33, 17, 1, 1, 0, 0, 0, 0), shape(9, 9, 19, 19, 3, 2, 0, 0, 1, 1),
                              shape(8, 8, 11, 11, 5, 1, 2, 2, 2, 2), shape(12, 12, 3, 16, 3, 2, 0, 0, 1, 1)};
  const ConvKind kinds[] = {ConvKind::pointwise, ConvKind::depthwise, ConvKind::depthwise, ConvKind::general};
  for (int i = 0; i < 4; ++i) {
    const ConvShape& s = shapes[i];
    const bool dw = kinds[i] == ConvKind::depthwise;
    const auto w = random_i8(r, size_t(s.out_c) * (dw ? 1 : s.in_c) * s.kernel_h * s.kernel_w);
    std::vector<int32_t> bias(size_t(s.out_c)), wzp(size_t(s.out_c));
    for (auto& b : bias) b = r.uniform(-30000, 30000);
    for (auto& z : wzp) z = r.uniform(-20, 20);
    std::vector<float> ws(size_t(s.out_c));
    for (auto& v : ws) v = lin(0.001f, 0.05f);
    OutputStage out = make_output_stage(0.037f, ws.data(), ws.size(), 0.11f, -7, -7, 127);
    make_lut(UnaryParams{UnaryFn::hardswish, 0, 0}, 0.11f, -7, 0.05f, 3, out.lut);
    out.has_lut = i == 1;
    const auto x = random_i8(r, size_t(s.in_h) * s.in_w * s.in_c);
    auto p = pack_conv(S, kinds[i], s, w.data(), i == 2 ? wzp.data() : nullptr, bias.data(), 9);
    std::vector<int8_t> y(size_t(s.out_h) * s.out_w * s.out_c);
    std::vector<uint8_t> scratch(conv_scratch_size(*p, 0, s.out_h) + 1);
    conv_run(*p, out, x.data(), y.data(), 0, s.out_h, scratch.data());
    mix(y.data(), y.size());
    if (std::getenv("MNQ_GOLDEN_DEBUG")) std::printf("    conv %d: %016llx\n", i, (unsigned long long)h);
  }
  const auto a = random_i8(r, 4096), b = random_i8(r, 4096);
  std::vector<int8_t> y(4096);
  AddParams ap; ap.a_scale = 0.031f; ap.a_zero_point = -5; ap.b_scale = 0.047f; ap.b_zero_point = 12; ap.y_scale = 0.06f; ap.y_zero_point = -3;
  add(S, ap, 4096, a.data(), b.data(), y.data());
  mix(y.data(), y.size());
  MulParams mp; mp.a_scale = 0.031f; mp.a_zero_point = -5; mp.b_scale = 0.0039f; mp.b_zero_point = -128; mp.y_scale = 0.03f; mp.y_zero_point = 4;
  mul(S, mp, 4096, a.data(), b.data(), y.data());
  mix(y.data(), y.size());
  GlobalAvgPoolParams gp; gp.x_scale = 0.05f; gp.x_zero_point = 3; gp.y_scale = 0.02f; gp.y_zero_point = -1;
  global_avg_pool(S, gp, 49, 64, a.data(), y.data());
  mix(y.data(), 64);
  std::vector<float> f(1000);
  for (size_t i = 0; i < f.size(); ++i) f[i] = float(i) * 0.0137f - 7.0f;
  quantize_nchw_to_nhwc(S, f.data(), 10, 10, 10, 0.0271f, 6, y.data());
  mix(y.data(), 1000);
  const uint64_t expected = 0x6640ac223eeae9ecull;
  std::printf("  golden checksum %016llx\n", (unsigned long long)h);
  CHECK_MSG(h == expected, "reference checksum %016llx, expected %016llx (x86-64 value)",
            (unsigned long long)h, (unsigned long long)expected);
}

// The same for the wide kernels (int16 activations): a hash of their outputs on fixed inputs, whose
// x86-64 value the aarch64 run under qemu must reproduce.
void test_golden_checksum_wide() {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  Rng r(78);
  auto lin = [&](float lo, float hi) { return lo + r.unit() * (hi - lo); };
  const Dtype I8 = Dtype::int8, I16 = Dtype::int16;
  const ConvShape shapes[] = {shape(5, 5, 33, 17, 1, 1, 0, 0, 0, 0), shape(9, 9, 19, 19, 3, 2, 0, 0, 1, 1),
                              shape(12, 12, 3, 16, 3, 2, 0, 0, 1, 1)};
  const ConvKind kinds[] = {ConvKind::pointwise, ConvKind::depthwise, ConvKind::general};
  for (int i = 0; i < 3; ++i) {
    const ConvShape& s = shapes[i];
    const Dtype xd = i == 2 ? I8 : I16, yd = i == 1 ? I8 : I16;
    const bool dw = kinds[i] == ConvKind::depthwise;
    const auto w = random_i8(r, size_t(s.out_c) * (dw ? 1 : s.in_c) * s.kernel_h * s.kernel_w, -127, 127);
    std::vector<int32_t> bias(size_t(s.out_c));
    for (auto& b : bias) b = r.uniform(-300000, 300000);
    std::vector<float> ws(size_t(s.out_c));
    for (auto& v : ws) v = lin(0.001f, 0.05f);
    const OutputStage out = make_output_stage(xd == I16 ? 0.0003f : 0.037f, ws.data(), ws.size(), yd == I16 ? 0.002f : 0.11f,
                                              yd == I16 ? 0 : -7, yd == I16 ? 0 : -7, dtype_max(yd), yd);
    const auto xv = random_values(r, size_t(s.in_h) * s.in_w * s.in_c, xd);
    const auto x = typed(xv, xd);
    auto p = pack_conv_wide(S, kinds[i], s, w.data(), bias.data(), xd, i == 0 ? 1000 : 0);
    std::vector<uint8_t> y(size_t(s.out_h) * s.out_w * s.out_c * dtype_bytes(yd));
    std::vector<uint8_t> scratch(conv_scratch_size(*p, 0, s.out_h) + 1);
    conv_run_wide(*p, out, x.data(), y.data(), 0, s.out_h, scratch.data());
    mix(y.data(), y.size());
  }
  const auto av = random_values(r, 4096, I16), bv = random_values(r, 4096, I8);
  const auto a = typed(av, I16), b = typed(bv, I8);
  std::vector<uint8_t> y(4096 * 2);
  WideBinaryParams bp;
  bp.a = {I16, 0.0003f, 0};
  bp.b = {I8, 0.047f, 12};
  bp.y = {I16, 0.0005f, 0};
  add_wide(S, bp, 4096, a.data(), b.data(), y.data());
  mix(y.data(), y.size());
  bp.y = {I8, 0.03f, 4};
  bp.qmin = -128;
  bp.qmax = 127;
  mul_wide(S, bp, 4096, a.data(), b.data(), y.data());
  mix(y.data(), 4096);
  for (int fn = 0; fn <= int(UnaryFn::mul_hardsigmoid); ++fn) {
    UnaryParams f{UnaryFn(fn), 0.0f, 6.0f};
    if (f.fn == UnaryFn::hardsigmoid || f.fn == UnaryFn::mul_hardsigmoid) { f.p0 = 1.0f / 6; f.p1 = 0.5f; }
    if (f.fn == UnaryFn::leakyrelu) f.p0 = 0.01f;
    WideUnaryParams up;
    up.f = f;
    up.x = {I16, 0.0003f, 0};
    up.y = {I16, 0.0002f, 0};
    unary_wide(S, up, 4096, a.data(), y.data());
    mix(y.data(), y.size());
  }
  WideGapParams gp;
  gp.x = {I16, 0.0003f, 0};
  gp.y = {I16, 0.0001f, 0};
  global_avg_pool_wide(S, gp, 49, 64, a.data(), y.data());
  mix(y.data(), 128);
  const uint64_t expected = 0x0933358e5888c9fcull;
  std::printf("  golden checksum (wide) %016llx\n", (unsigned long long)h);
  CHECK_MSG(h == expected, "wide reference checksum %016llx, expected %016llx (x86-64 value)",
            (unsigned long long)h, (unsigned long long)expected);
}

}  // namespace

int main() {
  test_scalar_math();
  test_convs();
  test_elementwise();
  test_luts();
  test_conversions();
  test_wide();
  test_golden_checksum();
  test_golden_checksum_wide();
  return finish("test_reference");
}
