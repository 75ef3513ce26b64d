// Scalar reference depthwise convolution (depth multiplier 1), any kernel size,
// stride, dilation and (asymmetric) padding. Padded taps read x_zero_point,
// i.e. contribute nothing to the accumulator.
#include <vector>

#include "ref.h"

namespace mnq {
namespace ref {

void depthwise_pack(detail::PackedDepthwise*) {}

size_t depthwise_scratch_size(const detail::PackedDepthwise&, int, int) { return 0; }

void depthwise(const detail::DepthwiseArgs& a) {
  const detail::PackedDepthwise& w = *a.w;
  const ConvShape& s = w.shape;
  const int c_count = s.in_c;
  const int kh = s.kernel_h, kw = s.kernel_w, taps = kh * kw;
  const int32_t xzp = w.x_zero_point;
  std::vector<int32_t> acc(static_cast<size_t>(c_count));
  for (int oy = a.row_begin; oy < a.row_end; ++oy) {
    for (int ox = 0; ox < s.out_w; ++ox) {
      for (int c = 0; c < c_count; ++c) acc[c] = w.bias[c];
      for (int ky = 0; ky < kh; ++ky) {
        const int iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
        if (iy < 0 || iy >= s.in_h) continue;  // padding: x = x_zp contributes 0
        for (int kx = 0; kx < kw; ++kx) {
          const int ix = ox * s.stride_w - s.pad_left + kx * s.dilation_w;
          if (ix < 0 || ix >= s.in_w) continue;
          const int8_t* xp = a.x + (static_cast<size_t>(iy) * s.in_w + ix) * c_count;
          const int8_t* wp = w.w.data() + ky * kw + kx;  // w[c][ky][kx]
          for (int c = 0; c < c_count; ++c)
            acc[c] += (int32_t(xp[c]) - xzp) * (int32_t(wp[static_cast<size_t>(c) * taps]) - w.w_zero_point[c]);
        }
      }
      int8_t* y = a.y + (static_cast<size_t>(oy) * s.out_w + ox) * c_count;
      for (int c = 0; c < c_count; ++c) y[c] = output_value(*a.out, c, acc[c]);
    }
  }
}

}  // namespace ref
}  // namespace mnq
