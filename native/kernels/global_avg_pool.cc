// ORT QLinearGlobalAveragePool (kernels.h): parameter checks and dispatch.
#include "check.h"
#include "internal.h"

namespace mnq {

using detail::fail;
using detail::check_scale;
using detail::check_zp;
using detail::check_ptr;

void check_global_avg_pool(const GlobalAvgPoolParams& p, size_t hw) {
  const char* fn = "global_avg_pool";
  check_scale(fn, "x_scale", p.x_scale);
  check_scale(fn, "y_scale", p.y_scale);
  check_zp(fn, "x_zero_point", p.x_zero_point);
  check_zp(fn, "y_zero_point", p.y_zero_point);
  if (hw == 0) fail("global_avg_pool: hw must be > 0");
  if (hw >= (size_t(1) << 24)) fail("global_avg_pool: hw must be < 2^24 (as in ONNX Runtime)");
}

void global_avg_pool(Isa isa, const GlobalAvgPoolParams& p, size_t hw, size_t c, const int8_t* x,
                     int8_t* y) {
  const auto& k = detail::resolved_kernels(isa);
  const char* fn = "global_avg_pool";
  check_global_avg_pool(p, hw);
  if (c == 0) return;
  check_ptr(fn, "x", x);
  check_ptr(fn, "y", y);
  k.global_avg_pool(p, hw, c, x, y);
}

}  // namespace mnq
