// The wide ops that do not accumulate (kernels.h, "int16 activations": add, mul,
// channelwise mul, unary functions and requantization between int8 and int16) and
// the wide global average pool: parameter checks and dispatch.
#include <string>
#include <vector>

#include "check.h"
#include "internal.h"

namespace mnq {

using detail::fail;
using detail::check_ptr;
using detail::check_quant;

namespace {
void check_binary(const char* fn, const WideBinaryParams& p) {
  check_quant(fn, "a", p.a);
  check_quant(fn, "b", p.b);
  check_quant(fn, "y", p.y);
  detail::check_clamp(fn, p.qmin, p.qmax, p.y.dtype);
}
}  // namespace

void check_binary_wide(const WideBinaryParams& p) { check_binary("add_wide / mul_wide", p); }

void check_unary_wide(const WideUnaryParams& p) {
  const char* fn = "unary_wide";
  check_quant(fn, "x", p.x);
  check_quant(fn, "y", p.y);
  detail::check_clamp(fn, p.qmin, p.qmax, p.x.dtype);
  if (int(p.f.fn) < 0 || int(p.f.fn) > int(UnaryFn::mul_hardsigmoid))
    fail("unary_wide: unknown UnaryFn " + std::to_string(int(p.f.fn)));
  if (p.f.fn == UnaryFn::clip && !(p.f.p0 <= p.f.p1))
    fail("unary_wide: clip needs min <= max, got [" + std::to_string(p.f.p0) + ", " + std::to_string(p.f.p1) + "]");
}

void check_global_avg_pool_wide(const WideGapParams& p, size_t hw) {
  const char* fn = "global_avg_pool_wide";
  check_quant(fn, "x", p.x);
  check_quant(fn, "y", p.y);
  detail::check_clamp(fn, p.qmin, p.qmax, p.y.dtype);
  if (hw == 0 || hw >= (size_t(1) << 24))
    fail("global_avg_pool_wide: hw must be in [1, 2^24), got " + std::to_string(hw));
}

void add_wide(Isa isa, const WideBinaryParams& p, size_t n, const void* a, const void* b, void* y) {
  const auto& k = detail::resolved_kernels(isa);
  check_binary("add_wide", p);
  if (n == 0) return;
  check_ptr("add_wide", "a", a);
  check_ptr("add_wide", "b", b);
  check_ptr("add_wide", "y", y);
  k.add_wide(p, n, a, b, y);
}

void mul_wide(Isa isa, const WideBinaryParams& p, size_t n, const void* a, const void* b, void* y) {
  const auto& k = detail::resolved_kernels(isa);
  check_binary("mul_wide", p);
  if (n == 0) return;
  check_ptr("mul_wide", "a", a);
  check_ptr("mul_wide", "b", b);
  check_ptr("mul_wide", "y", y);
  k.mul_wide(p, n, a, b, y);
}

void mul_channelwise_wide(Isa isa, const WideBinaryParams& p, size_t hw, size_t c, const void* x,
                          const void* s, void* y) {
  const auto& k = detail::resolved_kernels(isa);
  check_binary("mul_channelwise_wide", p);
  if (hw == 0 || c == 0) return;
  check_ptr("mul_channelwise_wide", "x", x);
  check_ptr("mul_channelwise_wide", "s", s);
  check_ptr("mul_channelwise_wide", "y", y);
  k.mul_channelwise_wide(p, hw, c, x, s, y);
}

void unary_wide(Isa isa, const WideUnaryParams& p, size_t n, const void* x, void* y) {
  const auto& k = detail::resolved_kernels(isa);
  const char* fn = "unary_wide";
  check_unary_wide(p);
  if (n == 0) return;
  check_ptr(fn, "x", x);
  check_ptr(fn, "y", y);
  k.unary_wide(p, n, x, y);
}

std::vector<int16_t> make_wide_lut(const WideUnaryParams& p) {
  check_unary_wide(p);
  const bool x16 = p.x.dtype == Dtype::int16;
  const int32_t lo = dtype_min(p.x.dtype);
  const size_t n = size_t(dtype_max(p.x.dtype) - lo + 1);
  std::vector<int16_t> x16v(x16 ? n : 0), y16(n);
  std::vector<int8_t> x8v(x16 ? 0 : n), y8(p.y.dtype == Dtype::int16 ? 0 : n);
  for (size_t i = 0; i < n; ++i) {
    if (x16) x16v[i] = static_cast<int16_t>(lo + int32_t(i));
    else x8v[i] = static_cast<int8_t>(lo + int32_t(i));
  }
  const void* x = x16 ? static_cast<const void*>(x16v.data()) : static_cast<const void*>(x8v.data());
  if (p.y.dtype == Dtype::int16) {
    detail::scalar_kernels().unary_wide(p, n, x, y16.data());
  } else {
    detail::scalar_kernels().unary_wide(p, n, x, y8.data());
    for (size_t i = 0; i < n; ++i) y16[i] = y8[i];
  }
  return y16;
}

namespace {
template <typename X, typename Y>
void lut_loop(const int16_t* table, int32_t lo, size_t n, const X* x, Y* y) {
  for (size_t i = 0; i < n; ++i) y[i] = static_cast<Y>(table[int32_t(x[i]) - lo]);
}
}  // namespace

void wide_lut_apply(const WideUnaryParams& p, const int16_t* table, size_t n, const void* x, void* y) {
  const char* fn = "wide_lut_apply";
  if (n == 0) return;
  check_ptr(fn, "table", table);
  check_ptr(fn, "x", x);
  check_ptr(fn, "y", y);
  const bool x16 = p.x.dtype == Dtype::int16, y16 = p.y.dtype == Dtype::int16;
  const int32_t lo = dtype_min(p.x.dtype);
  if (x16 && y16) lut_loop(table, lo, n, static_cast<const int16_t*>(x), static_cast<int16_t*>(y));
  else if (x16) lut_loop(table, lo, n, static_cast<const int16_t*>(x), static_cast<int8_t*>(y));
  else if (y16) lut_loop(table, lo, n, static_cast<const int8_t*>(x), static_cast<int16_t*>(y));
  else lut_loop(table, lo, n, static_cast<const int8_t*>(x), static_cast<int8_t*>(y));
}

void global_avg_pool_wide(Isa isa, const WideGapParams& p, size_t hw, size_t c, const void* x, void* y) {
  const auto& k = detail::resolved_kernels(isa);
  const char* fn = "global_avg_pool_wide";
  check_global_avg_pool_wide(p, hw);
  if (c == 0) return;
  check_ptr(fn, "x", x);
  check_ptr(fn, "y", y);
  k.global_avg_pool_wide(p, hw, c, x, y);
}

}  // namespace mnq
