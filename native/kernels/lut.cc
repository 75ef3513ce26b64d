// Lookup tables (kernels.h): the 256-entry table of a unary function between
// DequantizeLinear and QuantizeLinear (ReLU, Clip, HardSigmoid, HardSwish /
// h-swish, Sigmoid, Tanh, LeakyRelu, HardSigmoid * x), and its application.
#include <string>

#include "check.h"
#include "internal.h"
#include "quant.h"

namespace mnq {

using detail::fail;
using detail::check_scale;
using detail::check_zp;
using detail::check_ptr;

namespace {
float eval_unary(const UnaryParams& f, float x) {
  switch (f.fn) {
    case UnaryFn::identity: return x;
    case UnaryFn::relu: return x > 0.0f ? x : 0.0f;
    case UnaryFn::clip: {
      float v = x < f.p0 ? f.p0 : x;  // Clip: max(x, min) then min(., max)
      return v > f.p1 ? f.p1 : v;
    }
    case UnaryFn::hardsigmoid: return quant::hardsigmoid(x, f.p0, f.p1);
    case UnaryFn::hardswish: return x * quant::hardsigmoid(x, 1.0f / 6.0f, 0.5f);
    case UnaryFn::sigmoid: return quant::logistic(x);
    case UnaryFn::tanh: return quant::tanh(x);
    case UnaryFn::leakyrelu: return x >= 0.0f ? x : f.p0 * x;
    case UnaryFn::mul_hardsigmoid: return x * quant::hardsigmoid(x, f.p0, f.p1);
  }
  fail("make_lut: unknown UnaryFn " + std::to_string(int(f.fn)));
}
}  // namespace

void make_lut(const UnaryParams& f, float x_scale, int32_t x_zero_point, float y_scale,
              int32_t y_zero_point, int8_t table[256]) {
  const char* fn = "make_lut";
  check_scale(fn, "x_scale", x_scale);
  check_scale(fn, "y_scale", y_scale);
  check_zp(fn, "x_zero_point", x_zero_point);
  check_zp(fn, "y_zero_point", y_zero_point);
  check_ptr(fn, "table", table);
  if (int(f.fn) < 0 || int(f.fn) > int(UnaryFn::mul_hardsigmoid))
    fail("make_lut: unknown UnaryFn " + std::to_string(int(f.fn)));
  if (f.fn == UnaryFn::clip && !(f.p0 <= f.p1))
    fail("make_lut: clip needs min <= max, got [" + std::to_string(f.p0) + ", " +
         std::to_string(f.p1) + "]");
  for (int q = -128; q <= 127; ++q) {
    const float x = quant::dequantize_linear(q, x_scale, x_zero_point);
    table[q + 128] = quant::quantize_linear(eval_unary(f, x), y_scale, y_zero_point);
  }
}

void lut_apply(Isa isa, const int8_t table[256], size_t n, const int8_t* x, int8_t* y) {
  const auto& k = detail::resolved_kernels(isa);
  if (n == 0) return;
  check_ptr("lut_apply", "table", table);
  check_ptr("lut_apply", "x", x);
  check_ptr("lut_apply", "y", y);
  k.lut_apply(table, n, x, y);
}

}  // namespace mnq
