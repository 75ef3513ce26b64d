// MaxPool over int8 NHWC: the one implementation (see kernels.h).
#include <algorithm>
#include <cstring>

#include "kernels.h"

namespace mnq {

void max_pool(const ConvShape& s, const int8_t* x, int8_t* y, int row_begin, int row_end) {
  const size_t c = static_cast<size_t>(s.in_c);
  for (int oy = row_begin; oy < row_end; ++oy) {
    for (int ox = 0; ox < s.out_w; ++ox) {
      int8_t* out = y + (static_cast<size_t>(oy) * s.out_w + ox) * c;
      std::memset(out, 0x80, c);  // -128
      for (int ky = 0; ky < s.kernel_h; ++ky) {
        const int iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
        if (iy < 0 || iy >= s.in_h) continue;
        for (int kx = 0; kx < s.kernel_w; ++kx) {
          const int ix = ox * s.stride_w - s.pad_left + kx * s.dilation_w;
          if (ix < 0 || ix >= s.in_w) continue;
          const int8_t* in = x + (static_cast<size_t>(iy) * s.in_w + ix) * c;
          for (size_t ch = 0; ch < c; ++ch) out[ch] = std::max(out[ch], in[ch]);
        }
      }
    }
  }
}

}  // namespace mnq
