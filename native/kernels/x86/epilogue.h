// The output stage as every x86 kernel applies it: the rules shared by the
// AVX2, AVX-VNNI and AVX-512 VNNI files, whatever their vector width. The
// vector forms are epilogue_avx2.h (8 lanes: avx2, avxvnni) and
// avx512vnni/epilogue.h (16 lanes). Include inside a target region (internal
// linkage, compiled for that ISA; ../target.h).
//
// Requantization (quant::requantize): v = float(acc) * m (cvtdq2ps: exact for
// |acc| < 2^24, else rounded to nearest even as the C++ conversion), clamped
// in float to [qmin - zp, qmax - zp], rounded half to even by cvtps2dq (the
// default MXCSR mode), then + zp; with a fused table, out = lut[q + 128].
// (quant::quantize_linear is the same with v = x / scale and the int8 bounds.) The bounds are integers, so clamping before the rounding
// equals clamping after it, and the clamped value cannot overflow cvtps2dq.
// MAXPS returns its second operand when the first is NaN, so NaN -> the lower
// bound, as the reference's comparison.
//
// The packed output stage (GEMM and direct conv of the VNNI kernels, no fused
// table, every |multiplier| < 1): |float(acc) * m| < 2^31, so cvtps2dq cannot
// overflow without the float clamp. Round, then the saturating packs int32 ->
// int16, + zp (saturating), int16 -> int8, then the clamp on bytes.
// Saturation keeps out-of-range values beyond the int8 clamp bounds, and
// rounding commutes with clamping to integer bounds, so this equals
// quant::requantize. After the packs, dword 4L + b of the 128-bit-lane-
// interleaved result holds the four values of lane L of vector b; one vpermd
// puts them in order.
#pragma once

#include <cstdint>

namespace mnq {
namespace detail {
namespace {

inline int imin(int a, int b) { return a < b ? a : b; }

}  // namespace
}  // namespace detail
}  // namespace mnq
