// The per-output-channel requantization of the conv family (kernels.h
// "output stage"): the multipliers, computed as ONNX Runtime does.
#include <cmath>
#include <string>

#include "check.h"
#include "kernels.h"

namespace mnq {

using detail::fail;
using detail::check_scale;
using detail::check_zp;
using detail::check_ptr;
using detail::check_clamp;

OutputStage make_output_stage(float x_scale, const float* w_scale, size_t channels,
                              float y_scale, int32_t y_zero_point, int32_t qmin, int32_t qmax) {
  const char* fn = "make_output_stage";
  check_scale(fn, "x_scale", x_scale);
  check_scale(fn, "y_scale", y_scale);
  check_zp(fn, "y_zero_point", y_zero_point);
  check_clamp(fn, qmin, qmax);
  if (channels == 0) fail("make_output_stage: channels must be > 0");
  check_ptr(fn, "w_scale", w_scale);
  OutputStage o;
  o.multiplier.resize(channels);
  for (size_t c = 0; c < channels; ++c) {
    if (!(std::isfinite(w_scale[c]) && w_scale[c] > 0.0f))
      fail("make_output_stage: w_scale[" + std::to_string(c) +
           "] must be a finite positive float, got " + std::to_string(w_scale[c]));
    const float xw = x_scale * w_scale[c];  // float32, ORT's order: (x * w) / y
    o.multiplier[c] = xw / y_scale;
  }
  o.zero_point = y_zero_point;
  o.qmin = qmin;
  o.qmax = qmax;
  return o;
}

}  // namespace mnq
