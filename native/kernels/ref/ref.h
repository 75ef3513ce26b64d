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

// int16 activations (the wide kernels): gemm_wide.cc, depthwise_wide.cc, elementwise_wide.cc.
bool gemm_wide_pack(detail::PackedGemm* w);
void gemm_wide(const detail::WideGemmArgs& a);
bool depthwise_wide_pack(detail::PackedDepthwise* w);
void depthwise_wide(const detail::WideDepthwiseArgs& a);
void add_wide(const WideBinaryParams& p, size_t n, const void* a, const void* b, void* y);
void mul_wide(const WideBinaryParams& p, size_t n, const void* a, const void* b, void* y);
void mul_channelwise_wide(const WideBinaryParams& p, size_t hw, size_t c, const void* x, const void* s, void* y);
void unary_wide(const WideUnaryParams& p, size_t n, const void* x, void* y);
void global_avg_pool_wide(const WideGapParams& p, size_t hw, size_t c, const void* x, void* y);

// Element i of an activation array of type d, and storing one (v in d's range).
inline int32_t load(const void* p, Dtype d, size_t i) {
  return d == Dtype::int16 ? int32_t(static_cast<const int16_t*>(p)[i]) : int32_t(static_cast<const int8_t*>(p)[i]);
}
inline void store(void* p, Dtype d, size_t i, int32_t v) {
  if (d == Dtype::int16)
    static_cast<int16_t*>(p)[i] = static_cast<int16_t>(v);
  else
    static_cast<int8_t*>(p)[i] = static_cast<int8_t>(v);
}
// The wide output stage for one exact accumulator of output channel c.
inline int32_t wide_output_value(const OutputStage& out, int c, int64_t acc);

}  // namespace ref
}  // namespace mnq

#include "../quant.h"

namespace mnq {
namespace ref {
inline int8_t output_value(const OutputStage& out, int c, int32_t acc) {
  const int32_t q = quant::requantize(acc, out.multiplier[c], out.zero_point, out.qmin, out.qmax);
  return out.has_lut ? out.lut[q + 128] : static_cast<int8_t>(q);
}
inline int32_t wide_output_value(const OutputStage& out, int c, int64_t acc) {
  return quant::requantize64(acc, out.multiplier[c], out.zero_point, out.qmin, out.qmax);
}
}  // namespace ref
}  // namespace mnq
