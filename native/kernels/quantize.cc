// Input / output conversion (kernels.h): ORT QuantizeLinear from NCHW float to
// NHWC int8, and DequantizeLinear.
#include "check.h"
#include "internal.h"

namespace mnq {

using detail::check_scale;
using detail::check_zp;
using detail::check_ptr;

void quantize_nchw_to_nhwc(Isa isa, const float* x, size_t c, size_t h, size_t w, float scale,
                           int32_t zero_point, int8_t* y) {
  const auto& k = detail::resolved_kernels(isa);
  const char* fn = "quantize_nchw_to_nhwc";
  check_scale(fn, "scale", scale);
  check_zp(fn, "zero_point", zero_point);
  if (c == 0 || h == 0 || w == 0) return;
  check_ptr(fn, "x", x);
  check_ptr(fn, "y", y);
  k.quantize_nchw_to_nhwc(x, c, h, w, scale, zero_point, y);
}

void dequantize(Isa isa, const int8_t* q, size_t n, float scale, int32_t zero_point, float* y) {
  const auto& k = detail::resolved_kernels(isa);
  const char* fn = "dequantize";
  check_scale(fn, "scale", scale);
  check_zp(fn, "zero_point", zero_point);
  if (n == 0) return;
  check_ptr(fn, "q", q);
  check_ptr(fn, "y", y);
  k.dequantize(q, n, scale, zero_point, y);
}

}  // namespace mnq
