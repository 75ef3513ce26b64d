// The IsaKernels entries of the quantized elementwise kernels (add, mul,
// channelwise mul, global average pool), written once for every ISA.
//
// An ISA writes each kernel on the constants of quant.h's arithmetic (scale
// ratios, folded bias), which these templates compute from the public
// parameters once per call, in baseline code (never inside a target region).
#pragma once

#include <cstddef>
#include <cstdint>

#include "internal.h"
#include "quant.h"

namespace mnq {
namespace detail {

// quant::add_one over n values, with ra, rb, fixed, offset of quant::AddConstants.
using AddKernel = void (*)(float ra, float rb, float fixed, float offset, int32_t qmin, int32_t qmax,
                           size_t n, const int8_t* a, const int8_t* b, int8_t* y);
// quant::mul_one over n values.
using MulKernel = void (*)(float ratio, int32_t za, int32_t zb, int32_t zc, int32_t offset, size_t n,
                           const int8_t* a, const int8_t* b, int8_t* y);
// quant::mul_one of x [hw][c] and s [c] broadcast over pixels.
using MulChannelwiseKernel = void (*)(float ratio, int32_t za, int32_t zb, int32_t zc, int32_t offset,
                                      size_t hw, size_t c, const int8_t* x, const int8_t* s, int8_t* y);
// Per channel: requantize(bias + sum of hw pixels, scale, zy, -128, 127).
using GapKernel = void (*)(float scale, int32_t bias, int32_t zy, size_t hw, size_t c, const int8_t* x,
                           int8_t* y);

template <AddKernel K>
void add_entry(const AddParams& p, size_t n, const int8_t* a, const int8_t* b, int8_t* y) {
  const quant::AddConstants k = quant::add_constants(p.a_scale, p.a_zero_point, p.b_scale,
                                                     p.b_zero_point, p.y_scale, p.y_zero_point,
                                                     p.offset);
  K(k.ra, k.rb, k.fixed, k.offset, p.qmin, p.qmax, n, a, b, y);
}

template <MulKernel K>
void mul_entry(const MulParams& p, size_t n, const int8_t* a, const int8_t* b, int8_t* y) {
  K(quant::mul_ratio(p.a_scale, p.b_scale, p.y_scale), p.a_zero_point, p.b_zero_point,
    p.y_zero_point, p.offset, n, a, b, y);
}

template <MulChannelwiseKernel K>
void mul_channelwise_entry(const MulParams& p, size_t hw, size_t c, const int8_t* x, const int8_t* s,
                           int8_t* y) {
  K(quant::mul_ratio(p.a_scale, p.b_scale, p.y_scale), p.a_zero_point, p.b_zero_point,
    p.y_zero_point, p.offset, hw, c, x, s, y);
}

// bias = -x_zp * hw (hw < 2^24, so it fits int32; computed without signed overflow).
template <GapKernel K>
void global_avg_pool_entry(const GlobalAvgPoolParams& p, size_t hw, size_t c, const int8_t* x,
                           int8_t* y) {
  K(quant::gap_scale(p.x_scale, p.y_scale, hw), int32_t(uint32_t(-p.x_zero_point) * uint32_t(hw)),
    p.y_zero_point, hw, c, x, y);
}

}  // namespace detail
}  // namespace mnq
