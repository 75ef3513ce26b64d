// Scalar reference of the wide ops that do not accumulate (add, mul, channelwise mul, unary functions and
// requantization: ORT's float graph DQ -> op -> Q), and the wide global average pool (exact int64 sum).
#include "ref.h"

namespace mnq {
namespace ref {

namespace {
float dq(const Quant& q, int32_t v) { return quant::dequantize_linear(v, q.scale, q.zero_point); }
int32_t q_out(const Quant& q, float t, int32_t qmin, int32_t qmax) {
  return quant::quantize_linear_to(t, q.scale, q.zero_point, qmin, qmax);
}
}  // namespace

void add_wide(const WideBinaryParams& p, size_t n, const void* a, const void* b, void* y) {
  for (size_t i = 0; i < n; ++i) {
    const float t = dq(p.a, load(a, p.a.dtype, i)) + dq(p.b, load(b, p.b.dtype, i));
    store(y, p.y.dtype, i, q_out(p.y, t, p.qmin, p.qmax));
  }
}

void mul_wide(const WideBinaryParams& p, size_t n, const void* a, const void* b, void* y) {
  for (size_t i = 0; i < n; ++i) {
    const float t = dq(p.a, load(a, p.a.dtype, i)) * dq(p.b, load(b, p.b.dtype, i));
    store(y, p.y.dtype, i, q_out(p.y, t, p.qmin, p.qmax));
  }
}

void mul_channelwise_wide(const WideBinaryParams& p, size_t hw, size_t c, const void* x, const void* s, void* y) {
  for (size_t i = 0; i < hw; ++i)
    for (size_t ch = 0; ch < c; ++ch) {
      const float t = dq(p.a, load(x, p.a.dtype, i * c + ch)) * dq(p.b, load(s, p.b.dtype, ch));
      store(y, p.y.dtype, i * c + ch, q_out(p.y, t, p.qmin, p.qmax));
    }
}

void unary_wide(const WideUnaryParams& p, size_t n, const void* x, void* y) {
  const int32_t lo = dtype_min(p.y.dtype), hi = dtype_max(p.y.dtype);
  for (size_t i = 0; i < n; ++i) {
    const int32_t v = quant::clamp_i32(load(x, p.x.dtype, i), p.qmin, p.qmax);
    store(y, p.y.dtype, i, q_out(p.y, detail::eval_unary(p.f, dq(p.x, v)), lo, hi));
  }
}

void global_avg_pool_wide(const WideGapParams& p, size_t hw, size_t c, const void* x, void* y) {
  const float scale = quant::gap_scale(p.x.scale, p.y.scale, hw);
  for (size_t ch = 0; ch < c; ++ch) {
    int64_t acc = 0;
    for (size_t i = 0; i < hw; ++i) acc += load(x, p.x.dtype, i * c + ch) - p.x.zero_point;
    store(y, p.y.dtype, ch, quant::requantize64(acc, scale, p.y.zero_point, p.qmin, p.qmax));
  }
}

}  // namespace ref
}  // namespace mnq
