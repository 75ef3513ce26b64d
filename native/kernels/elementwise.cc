// The quantized binary elementwise ops (kernels.h): ORT QLinearAdd, QLinearMul
// and the squeeze-and-excite channelwise Mul; parameter checks and dispatch.
#include <cmath>
#include <string>

#include "check.h"
#include "internal.h"
#include "quant.h"

namespace mnq {

using detail::fail;
using detail::check_scale;
using detail::check_zp;
using detail::check_ptr;
using detail::check_clamp;

namespace {
void check_add(const char* fn, const AddParams& p) {
  check_scale(fn, "a_scale", p.a_scale);
  check_scale(fn, "b_scale", p.b_scale);
  check_scale(fn, "y_scale", p.y_scale);
  check_zp(fn, "a_zero_point", p.a_zero_point);
  check_zp(fn, "b_zero_point", p.b_zero_point);
  check_zp(fn, "y_zero_point", p.y_zero_point);
  check_clamp(fn, p.qmin, p.qmax);
  // Scale ratios beyond 2^16 could overflow the int32 conversion; no real model has them.
  if (p.a_scale / p.y_scale >= 65536.0f || p.b_scale / p.y_scale >= 65536.0f)
    fail(std::string(fn) + ": a_scale / y_scale and b_scale / y_scale must be < 65536");
}

void check_mul(const char* fn, const MulParams& p) {
  check_scale(fn, "a_scale", p.a_scale);
  check_scale(fn, "b_scale", p.b_scale);
  check_scale(fn, "y_scale", p.y_scale);
  check_zp(fn, "a_zero_point", p.a_zero_point);
  check_zp(fn, "b_zero_point", p.b_zero_point);
  check_zp(fn, "y_zero_point", p.y_zero_point);
  if (p.offset != 0 && p.offset != 128)
    fail(std::string(fn) + ": offset must be 0 (int8 tensors) or 128 (uint8 tensors), got " + std::to_string(p.offset));
  const float r = quant::mul_ratio(p.a_scale, p.b_scale, p.y_scale);
  if (!std::isfinite(r) || r >= 32768.0f)
    fail(std::string(fn) + ": a_scale * b_scale / y_scale must be < 32768");
}
}  // namespace

void check_add(const AddParams& p) { check_add("add", p); }
void check_mul(const MulParams& p) { check_mul("mul", p); }

void add(Isa isa, const AddParams& p, size_t n, const int8_t* a, const int8_t* b, int8_t* y) {
  const auto& k = detail::resolved_kernels(isa);
  const char* fn = "add";
  check_add(fn, p);
  if (n == 0) return;
  check_ptr(fn, "a", a);
  check_ptr(fn, "b", b);
  check_ptr(fn, "y", y);
  k.add(p, n, a, b, y);
}

void mul(Isa isa, const MulParams& p, size_t n, const int8_t* a, const int8_t* b, int8_t* y) {
  const auto& k = detail::resolved_kernels(isa);
  check_mul("mul", p);
  if (n == 0) return;
  check_ptr("mul", "a", a);
  check_ptr("mul", "b", b);
  check_ptr("mul", "y", y);
  k.mul(p, n, a, b, y);
}

void mul_channelwise(Isa isa, const MulParams& p, size_t hw, size_t c, const int8_t* x,
                     const int8_t* s, int8_t* y) {
  const auto& k = detail::resolved_kernels(isa);
  check_mul("mul_channelwise", p);
  if (hw == 0 || c == 0) return;
  check_ptr("mul_channelwise", "x", x);
  check_ptr("mul_channelwise", "s", s);
  check_ptr("mul_channelwise", "y", y);
  k.mul_channelwise(p, hw, c, x, s, y);
}

}  // namespace mnq
