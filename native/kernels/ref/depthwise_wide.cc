// Scalar reference wide depthwise convolution (int16 activations; depth multiplier 1), any kernel size,
// stride, dilation and padding: exact int64 accumulation, padded taps skipped (x = x_zp contributes 0).
#include <vector>

#include "ref.h"

namespace mnq {
namespace ref {

bool depthwise_wide_pack(detail::PackedDepthwise*) { return true; }

void depthwise_wide(const detail::WideDepthwiseArgs& a) {
  const detail::PackedDepthwise& w = *a.w;
  const ConvShape& s = w.shape;
  const int c_count = s.in_c;
  const int kh = s.kernel_h, kw = s.kernel_w, taps = kh * kw;
  const int32_t xzp = w.x_zero_point;
  std::vector<int64_t> acc(static_cast<size_t>(c_count));
  for (int oy = a.row_begin; oy < a.row_end; ++oy) {
    for (int ox = 0; ox < s.out_w; ++ox) {
      for (int c = 0; c < c_count; ++c) acc[c] = w.bias[c];
      for (int ky = 0; ky < kh; ++ky) {
        const int iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
        if (iy < 0 || iy >= s.in_h) continue;
        for (int kx = 0; kx < kw; ++kx) {
          const int ix = ox * s.stride_w - s.pad_left + kx * s.dilation_w;
          if (ix < 0 || ix >= s.in_w) continue;
          const size_t xi = (static_cast<size_t>(iy) * s.in_w + ix) * c_count;
          const int8_t* wp = w.w.data() + ky * kw + kx;  // w[c][ky][kx]
          for (int c = 0; c < c_count; ++c)
            acc[c] += int64_t(load(a.x, a.x_dtype, xi + c) - xzp) * wp[static_cast<size_t>(c) * taps];
        }
      }
      const size_t yi = (static_cast<size_t>(oy) * s.out_w + ox) * c_count;
      for (int c = 0; c < c_count; ++c) store(a.y, a.out->dtype, yi + c, wide_output_value(*a.out, c, acc[c]));
    }
  }
}

}  // namespace ref
}  // namespace mnq
