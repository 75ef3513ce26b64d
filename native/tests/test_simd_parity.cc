// Every SIMD kernel bit-identical to the scalar reference on randomized cases.
//
//   test_simd_parity [--isa NAME] [--seed N] [--cases N]     (seed also from MNQ_TEST_SEED)
//
// Tests every ISA in supported_isas() other than scalar (or only --isa NAME, or
// only MNQ_ISA when that is set), and prints which ones it tested. Cases cover
// channels 1..300 (vector-width boundaries), odd spatial sizes, strides 1 and 2,
// K = 1, 3, 5, 7, dilation, asymmetric padding (TF SAME), extreme scales and
// zero points, saturating inputs, asymmetric weights, fused clamp and table,
// row splits (conv_run over row ranges) and column splits (gemm_run_columns),
// and the shapes of the direct (no im2col) general conv path.
#include <algorithm>
#include <cmath>
#include <cinttypes>
#include <cstring>
#include <string>

#include "test_util.h"

using namespace mnq;
using namespace mnq_test;

namespace {

struct Ctx {
  Isa isa;
  Rng* rng;
  std::string what;  // current case, for failure messages
};

int first_diff(const std::vector<int8_t>& a, const std::vector<int8_t>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return int(i);
  return -1;
}

#define CHECK_SAME(ctx, ref, got)                                                              \
  do {                                                                                         \
    const int d_ = first_diff(ref, got);                                                       \
    CHECK_MSG(d_ < 0, "[%s] %s: first difference at %d: scalar %d, %s %d", isa_name(ctx.isa),  \
              ctx.what.c_str(), d_, d_ < 0 ? 0 : int(ref[d_]), isa_name(ctx.isa),              \
              d_ < 0 ? 0 : int(got[d_]));                                                      \
  } while (0)

int random_zp(Rng& r) {
  switch (r.uniform(0, 5)) {
    case 0: return -128;
    case 1: return 127;
    case 2: return 0;
    default: return r.uniform(-128, 127);
  }
}

// A random output stage: extreme multipliers sometimes, clamp, optional table.
OutputStage random_stage(Rng& r, int channels, bool* lut_out = nullptr) {
  float xs = r.log_uniform(1e-3f, 1.0f);
  std::vector<float> ws(static_cast<size_t>(channels));
  const bool extreme = r.chance(0.25f);
  for (auto& w : ws) w = extreme ? r.log_uniform(1e-6f, 10.0f) : r.log_uniform(1e-3f, 0.05f);
  float ys = extreme ? r.log_uniform(1e-4f, 10.0f) : r.log_uniform(0.01f, 0.2f);
  // Power-of-two scales sometimes: the multipliers are then exact powers of two and many acc * m land
  // on .5, where only the rounding rule (half to even) decides.
  if (!extreme && r.chance(0.25f)) {
    xs = 0.125f;
    ys = 0.125f;
    for (auto& w : ws) w = std::ldexp(1.0f, -r.uniform(4, 8));
  }
  const int zp = random_zp(r);
  int qmin = -128, qmax = 127;
  if (r.chance(0.3f)) qmin = zp;                      // ReLU
  if (r.chance(0.2f)) qmax = std::max(qmin, std::min(127, zp + r.uniform(0, 100)));  // ReLU6
  OutputStage o = make_output_stage(xs, ws.data(), ws.size(), ys, zp, qmin, qmax);
  const bool lut = r.chance(0.3f);
  if (lut) {
    UnaryParams f;
    f.fn = r.chance(0.5f) ? UnaryFn::hardswish : UnaryFn::sigmoid;
    make_lut(f, ys, zp, r.log_uniform(0.01f, 0.1f), random_zp(r), o.lut);
    o.has_lut = true;
  }
  if (lut_out) *lut_out = lut;
  return o;
}

struct ConvCase {
  ConvShape s;
  ConvKind kind;
  std::vector<int8_t> w;
  std::vector<int32_t> wzp, bias;
  int32_t xzp;
};

ConvCase random_weights(Rng& r, const ConvShape& s, ConvKind kind) {
  ConvCase c;
  c.s = s;
  c.kind = kind;
  const size_t per = kind == ConvKind::depthwise ? size_t(s.kernel_h) * s.kernel_w
                                                 : size_t(s.in_c) * s.kernel_h * s.kernel_w;
  const bool asym = r.chance(0.3f);
  const bool saturate = r.chance(0.15f);
  c.w.resize(size_t(s.out_c) * per);
  for (auto& v : c.w)
    v = int8_t(saturate ? (r.chance(0.5f) ? (asym ? -128 : -127) : 127)
                        : (asym ? r.uniform(-128, 127) : r.uniform(-127, 127)));
  if (asym) {
    c.wzp.resize(size_t(s.out_c));
    for (auto& z : c.wzp) z = r.chance(0.2f) ? 0 : random_zp(r);
  }
  c.bias.resize(size_t(s.out_c));
  for (auto& b : c.bias) b = r.uniform(-(1 << 20), 1 << 20);
  c.xzp = random_zp(r);
  return c;
}

std::vector<int8_t> random_input(Rng& r, size_t n) {
  switch (r.uniform(0, 7)) {
    case 0: return std::vector<int8_t>(n, int8_t(127));   // saturating
    case 1: return std::vector<int8_t>(n, int8_t(-128));
    case 2: {  // extremes only
      std::vector<int8_t> v(n);
      for (auto& x : v) x = r.chance(0.5f) ? int8_t(-128) : int8_t(127);
      return v;
    }
    default: return random_i8(r, n);
  }
}

// Runs one conv on scalar and on ctx.isa (with random row splits on the ISA
// side, and column splits for pointwise) and compares the outputs.
void run_conv_case(Ctx& ctx, const ConvCase& c) {
  Rng& r = *ctx.rng;
  const ConvShape& s = c.s;
  const OutputStage out = random_stage(r, s.out_c);
  const std::vector<int8_t> x = random_input(r, size_t(s.in_h) * s.in_w * s.in_c);
  const size_t ysz = size_t(s.out_h) * s.out_w * s.out_c;
  const int32_t* wzp = c.wzp.empty() ? nullptr : c.wzp.data();
  const int32_t* bias = r.chance(0.1f) ? nullptr : c.bias.data();

  auto ref_p = pack_conv(Isa::scalar, c.kind, s, c.w.data(), wzp, bias, c.xzp);
  std::vector<int8_t> y_ref(ysz, 0x55);
  std::vector<uint8_t> scratch(conv_scratch_size(*ref_p, 0, s.out_h) + 1);
  conv_run(*ref_p, out, x.data(), y_ref.data(), 0, s.out_h, scratch.data());

  auto p = pack_conv(ctx.isa, c.kind, s, c.w.data(), wzp, bias, c.xzp);
  // Whole image in one call.
  {
    std::vector<int8_t> y(ysz, 0x55);
    std::vector<uint8_t> sc(conv_scratch_size(*p, 0, s.out_h) + 1);
    conv_run(*p, out, x.data(), y.data(), 0, s.out_h, sc.data());
    CHECK_SAME(ctx, y_ref, y);
  }
  // Random row splits (each range with exactly its own scratch size).
  if (s.out_h > 1) {
    std::vector<int8_t> y(ysz, 0x55);
    int row = 0;
    while (row < s.out_h) {
      const int end = std::min(s.out_h, row + r.uniform(1, std::max(1, s.out_h / 2)));
      std::vector<uint8_t> sc(conv_scratch_size(*p, row, end));
      conv_run(*p, out, x.data(), y.data(), row, end, sc.empty() ? nullptr : sc.data());
      row = end;
    }
    ctx.what += " (row split)";
    CHECK_SAME(ctx, y_ref, y);
  }
  // Column splits through gemm_run_columns (pointwise / fully connected).
  if (c.kind == ConvKind::pointwise) {
    const int n = s.out_c, block = gemm_column_block(*p);
    const size_t m = size_t(s.out_h) * s.out_w;
    std::vector<int8_t> y(ysz, 0x55);
    int col = 0;
    while (col < n) {
      int end = col + block * r.uniform(1, 3);
      if (end > n) end = n;
      gemm_run_columns(*p, out, x.data(), y.data(), m, col, end);
      col = end;
    }
    ctx.what += " (column split, block " + std::to_string(block) + ")";
    CHECK_SAME(ctx, y_ref, y);
  }
}

std::string describe(const ConvShape& s, const char* kind, bool asym) {
  char b[256];
  std::snprintf(b, sizeof b, "%s in %dx%dx%d out %dx%dx%d k %dx%d s %d,%d d %d,%d pad t%d l%d b%d r%d%s",
                kind, s.in_h, s.in_w, s.in_c, s.out_h, s.out_w, s.out_c, s.kernel_h, s.kernel_w,
                s.stride_h, s.stride_w, s.dilation_h, s.dilation_w, s.pad_top, s.pad_left,
                s.pad_bottom, s.pad_right, asym ? " asym-w" : "");
  return b;
}

ConvShape make_shape(int ih, int iw, int ic, int oc, int k, int stride, int dil, int pt, int pl,
                     int pb, int pr) {
  ConvShape s;
  s.in_h = ih; s.in_w = iw; s.in_c = ic; s.out_c = oc;
  s.kernel_h = s.kernel_w = k;
  s.stride_h = s.stride_w = stride;
  s.dilation_h = s.dilation_w = dil;
  s.pad_top = pt; s.pad_left = pl; s.pad_bottom = pb; s.pad_right = pr;
  const int eff = (k - 1) * dil + 1;
  s.out_h = (ih + pt + pb - eff) / stride + 1;
  s.out_w = (iw + pl + pr - eff) / stride + 1;
  return s;
}

void test_pointwise(Ctx& ctx, int cases) {
  Rng& r = *ctx.rng;
  const auto& ch = channel_counts();
  for (int i = 0; i < cases; ++i) {
    const int ic = i < int(ch.size()) ? ch[size_t(i)] : r.pick(ch);
    const int oc = r.pick(ch);
    const int h = r.uniform(1, 7), w = r.pick(std::vector<int>{1, 2, 3, 5, 7, 9, 13});
    ConvShape s = make_shape(h, w, ic, oc, 1, 1, 1, 0, 0, 0, 0);
    ConvCase c = random_weights(r, s, ConvKind::pointwise);
    ctx.what = describe(s, "pointwise", !c.wzp.empty());
    run_conv_case(ctx, c);
  }
  // Fully connected: m rows of k (batch), packed as a 1x1 conv over m x 1 pixels.
  for (int i = 0; i < cases / 4 + 1; ++i) {
    const int k = r.pick(std::vector<int>{1, 16, 17, 64, 65, 300, 576, 1024, 1280});
    const int n = r.pick(std::vector<int>{1, 2, 7, 16, 17, 64, 65, 257, 1000, 1001});
    const int m = r.uniform(1, 4);
    ConvShape s = make_shape(m, 1, k, n, 1, 1, 1, 0, 0, 0, 0);
    ConvCase c = random_weights(r, s, ConvKind::pointwise);
    ctx.what = describe(s, "fully-connected", !c.wzp.empty());
    run_conv_case(ctx, c);
  }
}

void test_depthwise(Ctx& ctx, int cases) {
  Rng& r = *ctx.rng;
  const auto& ch = channel_counts();
  for (int i = 0; i < cases; ++i) {
    const int c_count = i < int(ch.size()) ? ch[size_t(i)] : r.pick(ch);
    const int k = r.pick(std::vector<int>{3, 3, 5, 5, 1, 7});
    const int stride = r.uniform(1, 2);
    const int dil = r.chance(0.1f) ? 2 : 1;
    const int eff = (k - 1) * dil + 1;
    int ih = r.uniform(1, 15), iw = r.uniform(1, 15);
    int pt, pl, pb, pr;
    switch (r.uniform(0, 3)) {
      case 0:  // symmetric "same"
        pt = pl = pb = pr = eff / 2;
        break;
      case 1:  // TF SAME: (total) split as floor before, ceil after -> 0 before, 1 after for k3 s2
        {
          const int oh = (ih + stride - 1) / stride, ow = (iw + stride - 1) / stride;
          const int th = std::max(0, (oh - 1) * stride + eff - ih);
          const int tw = std::max(0, (ow - 1) * stride + eff - iw);
          pt = th / 2; pb = th - pt; pl = tw / 2; pr = tw - pl;
        }
        break;
      case 2:  // valid
        pt = pl = pb = pr = 0;
        break;
      default:
        pt = r.uniform(0, eff - 1); pl = r.uniform(0, eff - 1);
        pb = r.uniform(0, eff - 1); pr = r.uniform(0, eff - 1);
    }
    if (ih + pt + pb < eff) ih = eff;
    if (iw + pl + pr < eff) iw = eff;
    ConvShape s = make_shape(ih, iw, c_count, c_count, k, stride, dil, pt, pl, pb, pr);
    ConvCase c = random_weights(r, s, ConvKind::depthwise);
    ctx.what = describe(s, "depthwise", !c.wzp.empty());
    run_conv_case(ctx, c);
  }
  // MobileNet shapes at reduced spatial size: 3x3 s1/s2 with TF SAME pads, 5x5.
  const int mb[][4] = {{32, 3, 1, 0}, {96, 3, 2, 1}, {144, 3, 1, 0}, {144, 3, 2, 1},
                       {192, 3, 2, 1}, {384, 3, 1, 0}, {576, 3, 2, 1}, {960, 3, 1, 0},
                       {72, 5, 2, 1}, {240, 5, 1, 0}, {672, 5, 2, 1}, {88, 3, 1, 0}};
  for (const auto& m : mb) {
    const int k = m[1], stride = m[2];
    const int ih = stride == 2 ? 14 : 7;
    ConvShape s = m[3] ? make_shape(ih, ih, m[0], m[0], k, 2, 1, (k - 2) / 2, (k - 2) / 2, k / 2, k / 2)
                       : make_shape(ih, ih, m[0], m[0], k, 1, 1, k / 2, k / 2, k / 2, k / 2);
    ConvCase c = random_weights(r, s, ConvKind::depthwise);
    ctx.what = describe(s, "depthwise-mobilenet", !c.wzp.empty());
    run_conv_case(ctx, c);
  }
  // A 3x3 depthwise over m range pieces per channel, as the runtime views it (PlanOp::input_pieces):
  // kernel 3 x 3m, stride_w and horizontal pads times m.
  for (int m : {2, 3}) {
    for (int c_count : {8, 16, 24, 32, 40, 64}) {
      for (int stride = 1; stride <= 2; ++stride) {
        const int ih = 9, iw = 11;
        ConvShape s = stride == 1 ? make_shape(ih, iw, c_count, c_count, 3, 1, 1, 1, 1, 1, 1)
                                  : make_shape(ih, iw, c_count, c_count, 3, 2, 1, 0, 0, 1, 1);
        s.in_w *= m;
        s.kernel_w *= m;
        s.stride_w *= m;
        s.pad_left *= m;
        s.pad_right *= m;
        ConvCase c = random_weights(r, s, ConvKind::depthwise);
        ctx.what = describe(s, "depthwise-pieces", !c.wzp.empty());
        run_conv_case(ctx, c);
      }
    }
  }
}

void test_general(Ctx& ctx, int cases) {
  Rng& r = *ctx.rng;
  // The stem: 3x3 s2, 3 input channels, TF SAME (0 before, 1 after) and symmetric.
  for (int oc : {8, 16, 24, 32}) {
    for (int tf = 0; tf < 2; ++tf) {
      ConvShape s = tf ? make_shape(16, 15, 3, oc, 3, 2, 1, 0, 0, 1, 1)
                       : make_shape(17, 17, 3, oc, 3, 2, 1, 1, 1, 1, 1);
      ConvCase c = random_weights(r, s, ConvKind::general);
      ctx.what = describe(s, "general-stem", !c.wzp.empty());
      run_conv_case(ctx, c);
    }
  }
  for (int i = 0; i < cases; ++i) {
    const int k = r.pick(std::vector<int>{1, 2, 3, 5});
    const int stride = r.uniform(1, 2);
    const int ic = r.pick(std::vector<int>{1, 2, 3, 4, 8, 16, 17});
    const int oc = r.pick(channel_counts());
    const int p = r.uniform(0, k - 1);
    const int q = r.uniform(0, k - 1);
    ConvShape s = make_shape(r.uniform(k, 11), r.uniform(k, 11), ic, oc, k, stride, 1, p, q, q, p);
    if (k == 1 && stride == 1 && p == 0 && q == 0) s = make_shape(5, 5, ic, oc, 1, 2, 1, 0, 0, 0, 0);
    ConvCase c = random_weights(r, s, ConvKind::general);
    ctx.what = describe(s, "general", !c.wzp.empty());
    run_conv_case(ctx, c);
  }
}

// Shapes of the direct (no im2col) general conv path: a kernel row of
// kernel_w * in_c <= 32 bytes, out_c <= 64, dilation_w 1; stems (3x3 s2 over 3
// channels, out_c 8..64) at odd sizes and pads, other kernels, strides and
// dilation_h; asymmetric weights whose w - w_zp fits int8 (these run directly
// too, including the extremes -128 and 127) or does not (im2col + GEMM).
void test_general_direct(Ctx& ctx, int cases) {
  Rng& r = *ctx.rng;
  auto run = [&](const ConvShape& s, const char* what) {
    ConvCase c = random_weights(r, s, ConvKind::general);
    if (!c.wzp.empty() && r.chance(0.7f)) {
      // Asymmetric, but w - w_zp in [-128, 127]: each channel's weights around its zero point.
      for (int o = 0; o < s.out_c; ++o) {
        const int zp = r.uniform(-128, 127);
        c.wzp[size_t(o)] = zp;
        const size_t per = size_t(s.in_c) * s.kernel_h * s.kernel_w;
        for (size_t i = 0; i < per; ++i) {
          int v = zp + (r.chance(0.1f) ? (r.chance(0.5f) ? -128 : 127) : r.uniform(-128, 127));
          v = std::max(-128, std::min(127, v));
          c.w[size_t(o) * per + i] = int8_t(v);
        }
      }
    }
    ctx.what = describe(s, what, !c.wzp.empty());
    run_conv_case(ctx, c);
  };
  for (int oc : {1, 8, 15, 16, 17, 24, 32, 33, 40, 48, 63, 64, 65})
    for (int w : {1, 2, 5, 9, 16, 31}) {
      // 3x3 s2 over 3 channels: TF SAME (pads after) and ONNX pads 1.
      run(make_shape(r.uniform(1, 9) + 2, w + 2, 3, oc, 3, 2, 1, 0, 0, 1, 1), "general-direct-stem");
      run(make_shape(r.uniform(1, 9), w, 3, oc, 3, 2, 1, 1, 1, 1, 1), "general-direct-stem");
    }
  for (int i = 0; i < cases; ++i) {
    const int k = r.pick(std::vector<int>{1, 2, 3, 5, 7});
    const int ic = r.uniform(1, std::max(1, std::min(8, 32 / k)));
    const int oc = r.pick(std::vector<int>{1, 3, 8, 12, 16, 20, 24, 32, 40, 48, 56, 64});
    const int stride = r.uniform(1, 3);
    const int pt = r.uniform(0, k - 1), pl = r.uniform(0, k - 1);
    const int pb = r.uniform(0, k - 1), pr = r.uniform(0, k - 1);
    ConvShape s = make_shape(r.uniform(k, 14), r.uniform(k, 20), ic, oc, k, stride, 1, pt, pl, pb, pr);
    if (r.chance(0.25f) && k > 1) {  // dilation_h (dilation_w > 1 takes the GEMM path)
      s = make_shape(r.uniform(2 * k, 14), r.uniform(k, 20), ic, oc, k, stride, 1, pt, pl, pb, pr);
      s.dilation_h = 2;
      s.out_h = (s.in_h + pt + pb - (2 * (k - 1) + 1)) / stride + 1;
    }
    if (k == 1 && stride == 1 && pt + pl + pb + pr == 0) s.pad_right = 1, s.out_w += 1;
    run(s, "general-direct");
  }
}

std::vector<size_t> lengths(Rng& r, int extra) {
  std::vector<size_t> v;
  for (size_t n = 0; n <= 70; ++n) v.push_back(n);
  for (size_t n : {127, 128, 129, 255, 256, 257, 1000, 4096, 4099}) v.push_back(n);
  for (int i = 0; i < extra; ++i) v.push_back(size_t(r.uniform(1, 20000)));
  return v;
}

void test_elementwise(Ctx& ctx, int extra) {
  Rng& r = *ctx.rng;
  for (size_t n : lengths(r, extra)) {
    const auto a = random_input(r, n), b = random_input(r, n);
    // add
    {
      AddParams p;
      const bool extreme = r.chance(0.3f);
      p.a_scale = extreme ? r.log_uniform(1e-5f, 1.0f) : r.log_uniform(0.01f, 0.2f);
      p.b_scale = extreme ? r.log_uniform(1e-5f, 1.0f) : r.log_uniform(0.01f, 0.2f);
      p.y_scale = extreme ? r.log_uniform(1e-4f, 1.0f) : r.log_uniform(0.01f, 0.3f);
      if (p.a_scale / p.y_scale >= 60000.0f) p.y_scale = p.a_scale / 1000.0f;
      if (p.b_scale / p.y_scale >= 60000.0f) p.y_scale = p.b_scale / 1000.0f;
      p.a_zero_point = random_zp(r);
      p.b_zero_point = random_zp(r);
      p.y_zero_point = random_zp(r);
      if (r.chance(0.3f)) p.qmin = p.y_zero_point;
      if (r.chance(0.3f)) p.offset = 128;  // tensors that were uint8
      std::vector<int8_t> y_ref(n), y(n, 0x55);
      add(Isa::scalar, p, n, a.data(), b.data(), y_ref.data());
      add(ctx.isa, p, n, a.data(), b.data(), y.data());
      ctx.what = "add n=" + std::to_string(n);
      CHECK_SAME(ctx, y_ref, y);
    }
    // mul, same shape
    {
      MulParams p;
      p.a_scale = r.log_uniform(1e-3f, 0.5f);
      p.b_scale = r.log_uniform(1e-3f, 0.5f);
      p.y_scale = r.log_uniform(1e-4f, 0.5f);
      p.a_zero_point = random_zp(r);
      p.b_zero_point = random_zp(r);
      p.y_zero_point = random_zp(r);
      if (r.chance(0.3f)) p.offset = 128;  // tensors that were uint8
      std::vector<int8_t> y_ref(n), y(n, 0x55);
      mul(Isa::scalar, p, n, a.data(), b.data(), y_ref.data());
      mul(ctx.isa, p, n, a.data(), b.data(), y.data());
      ctx.what = "mul n=" + std::to_string(n);
      CHECK_SAME(ctx, y_ref, y);
    }
    // lut
    {
      int8_t table[256];
      for (auto& t : table) t = int8_t(r.uniform(-128, 127));
      std::vector<int8_t> y_ref(n), y(n, 0x55);
      lut_apply(Isa::scalar, table, n, a.data(), y_ref.data());
      lut_apply(ctx.isa, table, n, a.data(), y.data());
      ctx.what = "lut_apply n=" + std::to_string(n);
      CHECK_SAME(ctx, y_ref, y);
    }
    // dequantize (compare float bits)
    {
      const float sc = r.log_uniform(1e-6f, 10.0f);
      const int zp = random_zp(r);
      std::vector<float> y_ref(n), y(n, -1.0f);
      dequantize(Isa::scalar, a.data(), n, sc, zp, y_ref.data());
      dequantize(ctx.isa, a.data(), n, sc, zp, y.data());
      CHECK_MSG(n == 0 || std::memcmp(y_ref.data(), y.data(), n * sizeof(float)) == 0,
                "[%s] dequantize n=%zu differs", isa_name(ctx.isa), n);
    }
  }
  // mul_channelwise (SE scale) and global average pooling over [hw][c].
  const auto& ch = channel_counts();
  for (size_t i = 0; i < ch.size() + size_t(extra); ++i) {
    const size_t c = i < ch.size() ? size_t(ch[i]) : size_t(r.pick(ch));
    const size_t hw = size_t(r.pick(std::vector<int>{1, 2, 3, 7, 9, 16, 49, 196}));
    const auto x = random_input(r, hw * c), s = random_input(r, c);
    {
      MulParams p;
      p.a_scale = r.log_uniform(1e-3f, 0.5f);
      p.b_scale = r.log_uniform(1e-3f, 0.05f);
      p.y_scale = r.log_uniform(1e-3f, 0.5f);
      p.a_zero_point = random_zp(r);
      p.b_zero_point = random_zp(r);
      p.y_zero_point = random_zp(r);
      if (r.chance(0.3f)) p.offset = 128;  // tensors that were uint8
      std::vector<int8_t> y_ref(hw * c), y(hw * c, 0x55);
      mul_channelwise(Isa::scalar, p, hw, c, x.data(), s.data(), y_ref.data());
      mul_channelwise(ctx.isa, p, hw, c, x.data(), s.data(), y.data());
      ctx.what = "mul_channelwise hw=" + std::to_string(hw) + " c=" + std::to_string(c);
      CHECK_SAME(ctx, y_ref, y);
    }
    {
      GlobalAvgPoolParams p;
      p.x_scale = r.log_uniform(1e-3f, 0.5f);
      p.y_scale = r.log_uniform(1e-3f, 0.5f);
      if (p.x_scale / p.y_scale >= 200.0f) p.y_scale = p.x_scale / 100.0f;
      p.x_zero_point = random_zp(r);
      p.y_zero_point = random_zp(r);
      const size_t hw2 = r.chance(0.2f) ? size_t(r.pick(std::vector<int>{3136, 12544})) : hw;
      const auto x2 = hw2 == hw ? x : random_input(r, hw2 * c);
      std::vector<int8_t> y_ref(c), y(c, 0x55);
      global_avg_pool(Isa::scalar, p, hw2, c, x2.data(), y_ref.data());
      global_avg_pool(ctx.isa, p, hw2, c, x2.data(), y.data());
      ctx.what = "global_avg_pool hw=" + std::to_string(hw2) + " c=" + std::to_string(c);
      CHECK_SAME(ctx, y_ref, y);
    }
  }
  // quantize NCHW float -> NHWC int8, with NaN, infinities, huge values and ties.
  for (int i = 0; i < 30 + extra; ++i) {
    const size_t c = size_t(r.pick(std::vector<int>{1, 3, 4, 7, 16, 17}));
    const size_t h = size_t(r.uniform(1, 9)), w = size_t(r.uniform(1, 37));
    const float sc = r.log_uniform(1e-4f, 1.0f);
    const int zp = random_zp(r);
    std::vector<float> x(c * h * w);
    for (auto& v : x) {
      switch (r.uniform(0, 9)) {
        case 0: v = NAN; break;
        case 1: v = r.chance(0.5f) ? INFINITY : -INFINITY; break;
        case 2: v = (r.chance(0.5f) ? 1e30f : -1e30f); break;
        case 3: v = (float(r.uniform(-300, 300)) + 0.5f) * sc; break;  // near ties
        default: v = (r.unit() * 2 - 1) * 200.0f * sc;
      }
    }
    std::vector<int8_t> y_ref(x.size()), y(x.size(), 0x55);
    quantize_nchw_to_nhwc(Isa::scalar, x.data(), c, h, w, sc, zp, y_ref.data());
    quantize_nchw_to_nhwc(ctx.isa, x.data(), c, h, w, sc, zp, y.data());
    ctx.what = "quantize_nchw_to_nhwc " + std::to_string(c) + "x" + std::to_string(h) + "x" +
               std::to_string(w);
    CHECK_SAME(ctx, y_ref, y);
  }
}

// ------------------------------------------------------------- int16 activations
// The wide convolutions (pack_conv_wide, conv_run_wide, gemm_run_columns_wide): int8 or
// int16 inputs and outputs, extreme values, input zero points, row and column splits,
// and weights whose accumulator bound exceeds int32 (the ISA's pack then hands them to
// the scalar kernel: same bits).
std::vector<uint8_t> random_wide_input(Rng& r, size_t n, Dtype d) {
  std::vector<uint8_t> b(n * dtype_bytes(d));
  const int lo = dtype_min(d), hi = dtype_max(d);
  const int mode = r.uniform(0, 6);
  for (size_t i = 0; i < n; ++i) {
    const int v = mode == 0 ? hi : mode == 1 ? lo : mode == 2 ? (r.chance(0.5f) ? lo : hi) : r.uniform(lo, hi);
    if (d == Dtype::int16) {
      const int16_t t = int16_t(v);
      std::memcpy(&b[2 * i], &t, 2);
    } else {
      b[i] = uint8_t(int8_t(v));
    }
  }
  return b;
}

void run_wide_case(Ctx& ctx, const ConvShape& s, ConvKind kind, bool huge) {
  Rng& r = *ctx.rng;
  const Dtype xd = r.chance(0.6f) ? Dtype::int16 : Dtype::int8, yd = r.chance(0.6f) ? Dtype::int16 : Dtype::int8;
  const size_t per = kind == ConvKind::depthwise ? size_t(s.kernel_h) * s.kernel_w : size_t(s.in_c) * s.kernel_h * s.kernel_w;
  // Mostly weights whose accumulators provably fit int32 (the SIMD kernel runs), sometimes any.
  const int64_t fit = (int64_t(1) << 31) / (int64_t(65536) * int64_t(per));
  const int wmax = huge ? 127 : r.chance(0.7f) ? int(std::max<int64_t>(1, std::min<int64_t>(127, fit))) : 127;
  std::vector<int8_t> w(size_t(s.out_c) * per);
  for (auto& v : w) v = int8_t(huge ? 127 : r.chance(0.1f) ? (r.chance(0.5f) ? -wmax : wmax) : r.uniform(-wmax, wmax));
  std::vector<int32_t> bias(size_t(s.out_c));
  for (auto& b : bias) b = r.uniform(-(1 << 20), 1 << 20);
  const int32_t xzp = r.chance(0.5f) ? 0 : r.uniform(dtype_min(xd), dtype_max(xd));
  std::vector<float> ws(size_t(s.out_c));
  for (auto& v : ws) v = r.log_uniform(1e-4f, 0.05f);
  const float xs = r.log_uniform(1e-5f, 0.05f), ys = r.log_uniform(1e-4f, 1.0f);
  const int32_t yzp = r.chance(0.5f) ? 0 : r.uniform(dtype_min(yd), dtype_max(yd));
  const int32_t qmin = r.chance(0.3f) ? yzp : dtype_min(yd), qmax = dtype_max(yd);
  const OutputStage out = make_output_stage(xs, ws.data(), ws.size(), ys, yzp, qmin, qmax, yd);
  const std::vector<uint8_t> x = random_wide_input(r, size_t(s.in_h) * s.in_w * s.in_c, xd);
  const size_t ybytes = size_t(s.out_h) * s.out_w * s.out_c * dtype_bytes(yd);
  ctx.what += std::string(" ") + dtype_name(xd) + " -> " + dtype_name(yd) + (huge ? " (beyond int32)" : "");

  auto ref_p = pack_conv_wide(Isa::scalar, kind, s, w.data(), bias.data(), xd, xzp);
  std::vector<uint8_t> y_ref(ybytes, 0x55), sc(conv_scratch_size(*ref_p, 0, s.out_h) + 1);
  conv_run_wide(*ref_p, out, x.data(), y_ref.data(), 0, s.out_h, sc.data());
  auto p = pack_conv_wide(ctx.isa, kind, s, w.data(), bias.data(), xd, xzp);
  {
    std::vector<uint8_t> y(ybytes, 0x55), sc2(conv_scratch_size(*p, 0, s.out_h) + 1);
    conv_run_wide(*p, out, x.data(), y.data(), 0, s.out_h, sc2.data());
    CHECK_MSG(y == y_ref, "[%s] %s: differs from scalar", isa_name(ctx.isa), ctx.what.c_str());
  }
  if (s.out_h > 1) {
    std::vector<uint8_t> y(ybytes, 0x55);
    for (int row = 0; row < s.out_h;) {
      const int end = std::min(s.out_h, row + r.uniform(1, std::max(1, s.out_h / 2)));
      std::vector<uint8_t> sc2(conv_scratch_size(*p, row, end) + 1);
      conv_run_wide(*p, out, x.data(), y.data(), row, end, sc2.data());
      row = end;
    }
    CHECK_MSG(y == y_ref, "[%s] %s (row split): differs from scalar", isa_name(ctx.isa), ctx.what.c_str());
  }
  if (kind == ConvKind::pointwise) {
    const int n = s.out_c, block = gemm_column_block(*p);
    std::vector<uint8_t> y(ybytes, 0x55);
    for (int col = 0; col < n;) {
      const int end = std::min(n, col + block * r.uniform(1, 3));
      gemm_run_columns_wide(*p, out, x.data(), y.data(), size_t(s.out_h) * s.out_w, col, end);
      col = end;
    }
    CHECK_MSG(y == y_ref, "[%s] %s (column split): differs from scalar", isa_name(ctx.isa), ctx.what.c_str());
  }
}

// Random parameters of a wide binary op: every dtype of a, b and y, scales over decades, zero points (mostly 0
// for int16, as mnq writes them), and a fused ReLU now and then.
WideBinaryParams random_wide_binary(Rng& r) {
  WideBinaryParams p;
  const auto dt = [&] { return r.chance(0.6f) ? Dtype::int16 : Dtype::int8; };
  const auto zp = [&](Dtype d) { return d == Dtype::int16 ? (r.chance(0.7f) ? 0 : r.uniform(-300, 300)) : random_zp(r); };
  for (Quant* q : {&p.a, &p.b, &p.y}) {
    q->dtype = dt();
    q->scale = r.log_uniform(1e-5f, 0.5f);
    q->zero_point = zp(q->dtype);
  }
  p.qmin = r.chance(0.3f) ? p.y.zero_point : dtype_min(p.y.dtype);
  p.qmax = dtype_max(p.y.dtype);
  return p;
}

void test_wide(Ctx& ctx, int cases) {
  Rng& r = *ctx.rng;
  const auto& ch = channel_counts();
  for (int i = 0; i < cases; ++i) {
    const int ic = i < int(ch.size()) ? ch[size_t(i)] : r.pick(ch), oc = r.pick(ch);
    ConvShape s = make_shape(r.uniform(1, 5), r.pick(std::vector<int>{1, 2, 3, 5, 7, 9}), ic, oc, 1, 1, 1, 0, 0, 0, 0);
    ctx.what = describe(s, "wide pointwise", false);
    run_wide_case(ctx, s, ConvKind::pointwise, false);
  }
  for (int i = 0; i < cases / 4 + 1; ++i) {
    const int k = r.pick(std::vector<int>{1, 16, 17, 300, 576, 1024, 1280});
    const int n = r.pick(std::vector<int>{1, 7, 16, 17, 65, 1000});
    ConvShape s = make_shape(r.uniform(1, 4), 1, k, n, 1, 1, 1, 0, 0, 0, 0);
    ctx.what = describe(s, "wide fully-connected", false);
    run_wide_case(ctx, s, ConvKind::pointwise, false);
  }
  for (int i = 0; i < cases; ++i) {
    const int c = i < int(ch.size()) ? ch[size_t(i)] : r.pick(ch);
    const int k = r.pick(std::vector<int>{3, 3, 5, 7});
    const int stride = r.uniform(1, 2), dil = r.chance(0.1f) ? 2 : 1;
    const int pad = (k - 1) * dil / 2;
    const bool same = r.chance(0.3f);  // TF SAME: pad only bottom / right
    const int eff = (k - 1) * dil + 1;
    ConvShape s = make_shape(r.uniform(eff, eff + 8), r.uniform(eff, eff + 8), c, c, k, stride, dil, same ? 0 : pad,
                             same ? 0 : pad, same ? 1 : pad, same ? 1 : pad);
    ctx.what = describe(s, "wide depthwise", false);
    run_wide_case(ctx, s, ConvKind::depthwise, false);
  }
  for (int i = 0; i < cases / 4 + 1; ++i) {
    ConvShape s = make_shape(r.uniform(3, 12), r.uniform(3, 12), r.pick(std::vector<int>{1, 3, 4, 8}),
                             r.pick(std::vector<int>{8, 16, 17, 32}), 3, r.uniform(1, 2), 1, 1, 1, 1, 1);
    ctx.what = describe(s, "wide general", false);
    run_wide_case(ctx, s, ConvKind::general, false);
  }
  // The wide channelwise mul (SE scale with int16 tensors): every dtype of x, s and y, extreme values,
  // zero points, input clamps, channel counts with and without an 8-channel tail.
  for (size_t i = 0; i < ch.size() + size_t(cases / 4); ++i) {
    const size_t c = i < ch.size() ? size_t(ch[i]) : size_t(r.pick(ch));
    const size_t hw = size_t(r.pick(std::vector<int>{1, 2, 7, 49, 196}));
    const WideBinaryParams p = random_wide_binary(r);
    const auto x = random_wide_input(r, hw * c, p.a.dtype), sv = random_wide_input(r, c, p.b.dtype);
    const size_t yb = hw * c * dtype_bytes(p.y.dtype);
    std::vector<uint8_t> y_ref(yb), y(yb, 0x55);
    mul_channelwise_wide(Isa::scalar, p, hw, c, x.data(), sv.data(), y_ref.data());
    mul_channelwise_wide(ctx.isa, p, hw, c, x.data(), sv.data(), y.data());
    ctx.what = "mul_channelwise_wide hw=" + std::to_string(hw) + " c=" + std::to_string(c);
    CHECK_MSG(y == y_ref, "[%s] %s: differs from scalar", isa_name(ctx.isa), ctx.what.c_str());
  }
  // The wide add (residuals with int16 tensors) and global average pool: every dtype, lengths with tails.
  for (int i = 0; i < 40 + cases / 4; ++i) {
    const WideBinaryParams p = random_wide_binary(r);
    const size_t n = size_t(r.uniform(0, 300));
    const auto a = random_wide_input(r, n, p.a.dtype), b = random_wide_input(r, n, p.b.dtype);
    std::vector<uint8_t> y_ref(n * dtype_bytes(p.y.dtype)), y(y_ref.size(), 0x55);
    add_wide(Isa::scalar, p, n, a.data(), b.data(), y_ref.data());
    add_wide(ctx.isa, p, n, a.data(), b.data(), y.data());
    CHECK_MSG(y == y_ref, "[%s] add_wide n=%zu: differs from scalar", isa_name(ctx.isa), n);

    WideGapParams g;
    g.x = p.a;
    g.y = p.y;
    g.y.scale = g.x.scale * r.log_uniform(0.01f, 2.0f);
    g.qmin = p.qmin;
    g.qmax = p.qmax;
    const size_t hw = size_t(r.pick(std::vector<int>{1, 4, 49, 196, 3136})), c = size_t(r.pick(ch));
    const auto x = random_wide_input(r, hw * c, g.x.dtype);
    std::vector<uint8_t> gy_ref(c * dtype_bytes(g.y.dtype)), gy(gy_ref.size(), 0x55);
    global_avg_pool_wide(Isa::scalar, g, hw, c, x.data(), gy_ref.data());
    global_avg_pool_wide(ctx.isa, g, hw, c, x.data(), gy.data());
    CHECK_MSG(gy == gy_ref, "[%s] global_avg_pool_wide hw=%zu c=%zu: differs from scalar", isa_name(ctx.isa), hw, c);
  }
  // Accumulators that may exceed int32: the pack must refuse the SIMD kernel.
  ConvShape big = make_shape(2, 1, 4096, 9, 1, 1, 1, 0, 0, 0, 0);
  ctx.what = describe(big, "wide pointwise k 4096, weights 127", false);
  run_wide_case(ctx, big, ConvKind::pointwise, true);
  ConvShape bigdw = make_shape(40, 40, 9, 9, 40, 1, 1, 0, 0, 0, 0);
  ctx.what = describe(bigdw, "wide depthwise 40x40 kernel, weights 127", false);
  run_wide_case(ctx, bigdw, ConvKind::depthwise, true);
}

}  // namespace

int main(int argc, char** argv) {
  std::string only;
  uint64_t seed = env_seed(12345);
  // MNQ_TEST_QUICK (set for the sanitizer run): fewer random cases.
  int cases = std::getenv("MNQ_TEST_QUICK") ? 60 : 150;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--isa" && i + 1 < argc) only = argv[++i];
    else if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--cases" && i + 1 < argc) cases = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--isa NAME] [--seed N] [--cases N]\n", argv[0]);
      return 2;
    }
  }
  if (only.empty() && std::getenv("MNQ_ISA") && *std::getenv("MNQ_ISA")) only = std::getenv("MNQ_ISA");

  std::vector<Isa> isas;
  if (!only.empty()) {
    Isa isa;
    if (!parse_isa(only, &isa)) {
      std::fprintf(stderr, "unknown ISA '%s'\n", only.c_str());
      return 2;
    }
    if (!isa_supported(isa)) {
      std::fprintf(stderr, "ISA '%s' is not supported on this CPU / build\n", only.c_str());
      return 2;
    }
    isas.push_back(isa);
  } else {
    for (Isa i : supported_isas())
      if (i != Isa::scalar) isas.push_back(i);
  }
  std::printf("supported ISAs:");
  for (Isa i : supported_isas()) std::printf(" %s", isa_name(i));
  std::printf("\nseed %" PRIu64 ", %d cases per conv kind\n", seed, cases);
  if (isas.empty()) {
    std::printf("no SIMD ISA is built and supported here: only scalar, nothing to compare\n");
    // Still exercise the harness on scalar vs itself so it cannot rot.
    isas.push_back(Isa::scalar);
  }
  for (Isa isa : isas) {
    const int before = failures();
    Rng rng(seed);
    Ctx ctx{isa, &rng, ""};
    test_pointwise(ctx, cases);
    test_depthwise(ctx, cases);
    test_general(ctx, cases / 2);
    test_general_direct(ctx, cases / 2);
    test_elementwise(ctx, cases / 6);
    test_wide(ctx, cases / 2);
    std::printf("tested ISA %s against scalar: %s\n", isa_name(isa),
                failures() == before ? "bit-identical" : "DIFFERENCES");
  }
  return finish("test_simd_parity");
}
