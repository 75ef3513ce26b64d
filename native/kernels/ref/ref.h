// Scalar reference kernels: the specification every SIMD kernel must match bit
// for bit. Straightforward loops over quant.h; no tricks.
#pragma once

#include "../internal.h"

namespace mnq {
namespace ref {

void gemm_pack(detail::PackedGemm* w);
void gemm(const detail::GemmArgs& a);
void depthwise_pack(detail::PackedDepthwise* w);
size_t depthwise_scratch_size(const detail::PackedDepthwise& w, int row_begin, int row_end);
void depthwise(const detail::DepthwiseArgs& a);
void global_avg_pool(const GlobalAvgPoolParams& p, size_t hw, size_t c, const int8_t* x, int8_t* y);
void add(const AddParams& p, size_t n, const int8_t* a, const int8_t* b, int8_t* y);
void mul(const MulParams& p, size_t n, const int8_t* a, const int8_t* b, int8_t* y);
void mul_channelwise(const MulParams& p, size_t hw, size_t c, const int8_t* x, const int8_t* s,
                     int8_t* y);
void lut_apply(const int8_t table[256], size_t n, const int8_t* x, int8_t* y);
void quantize_nchw_to_nhwc(const float* x, size_t c, size_t h, size_t w, float scale,
                           int32_t zero_point, int8_t* y);
void dequantize(const int8_t* q, size_t n, float scale, int32_t zero_point, float* y);

// The output stage for one accumulator of output channel c (requantize, clamp,
// optional table): what every conv / gemm kernel writes.
inline int8_t output_value(const OutputStage& out, int c, int32_t acc);

}  // namespace ref
}  // namespace mnq

#include "../quant.h"

namespace mnq {
namespace ref {
inline int8_t output_value(const OutputStage& out, int c, int32_t acc) {
  const int32_t q = quant::requantize(acc, out.multiplier[c], out.zero_point, out.qmin, out.qmax);
  return out.has_lut ? out.lut[q + 128] : static_cast<int8_t>(q);
}
}  // namespace ref
}  // namespace mnq
