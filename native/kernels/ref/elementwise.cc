// Scalar reference for pooling, elementwise, table lookup and conversion kernels.
#include "ref.h"

namespace mnq {
namespace ref {

void global_avg_pool(const GlobalAvgPoolParams& p, size_t hw, size_t c, const int8_t* x,
                     int8_t* y) {
  const float scale = quant::gap_scale(p.x_scale, p.y_scale, hw);
  const int32_t bias = -p.x_zero_point * static_cast<int32_t>(hw);
  for (size_t ch = 0; ch < c; ++ch) {
    int32_t acc = bias;
    for (size_t i = 0; i < hw; ++i) acc += x[i * c + ch];
    y[ch] = static_cast<int8_t>(quant::requantize(acc, scale, p.y_zero_point, -128, 127));
  }
}

void add(const AddParams& p, size_t n, const int8_t* a, const int8_t* b, int8_t* y) {
  const quant::AddConstants k = quant::add_constants(p.a_scale, p.a_zero_point, p.b_scale,
                                                     p.b_zero_point, p.y_scale, p.y_zero_point,
                                                     p.offset);
  for (size_t i = 0; i < n; ++i)
    y[i] = static_cast<int8_t>(quant::add_one(k, a[i], b[i], p.qmin, p.qmax));
}

void mul(const MulParams& p, size_t n, const int8_t* a, const int8_t* b, int8_t* y) {
  const float r = quant::mul_ratio(p.a_scale, p.b_scale, p.y_scale);
  for (size_t i = 0; i < n; ++i)
    y[i] = static_cast<int8_t>(quant::mul_one(r, a[i], p.a_zero_point, b[i], p.b_zero_point,
                                              p.y_zero_point, p.offset));
}

void mul_channelwise(const MulParams& p, size_t hw, size_t c, const int8_t* x, const int8_t* s,
                     int8_t* y) {
  const float r = quant::mul_ratio(p.a_scale, p.b_scale, p.y_scale);
  for (size_t i = 0; i < hw; ++i)
    for (size_t ch = 0; ch < c; ++ch)
      y[i * c + ch] = static_cast<int8_t>(quant::mul_one(r, x[i * c + ch], p.a_zero_point, s[ch],
                                                         p.b_zero_point, p.y_zero_point, p.offset));
}

void lut_apply(const int8_t table[256], size_t n, const int8_t* x, int8_t* y) {
  for (size_t i = 0; i < n; ++i) y[i] = table[int32_t(x[i]) + 128];
}

void quantize_nchw_to_nhwc(const float* x, size_t c, size_t h, size_t w, float scale,
                           int32_t zero_point, int8_t* y) {
  const size_t hw = h * w;
  for (size_t ch = 0; ch < c; ++ch)
    for (size_t i = 0; i < hw; ++i)
      y[i * c + ch] = quant::quantize_linear(x[ch * hw + i], scale, zero_point);
}

void dequantize(const int8_t* q, size_t n, float scale, int32_t zero_point, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = quant::dequantize_linear(q[i], scale, zero_point);
}

}  // namespace ref
}  // namespace mnq
