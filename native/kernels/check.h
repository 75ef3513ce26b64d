// The parameter checks of the public kernel entry points (kernels.h): each
// throws std::invalid_argument("mnq: <fn>: ...") with a message a caller can
// act on. Baseline code only (never called inside a SIMD target region).
#pragma once

#include <cstdint>
#include <string>

#include "kernels.h"

namespace mnq {
namespace detail {

[[noreturn]] void fail(const std::string& what);
// scale is a finite positive float.
void check_scale(const char* fn, const char* name, float s);
// zp is a zero point of type d ([-128, 127] for int8).
void check_zp(const char* fn, const char* name, int32_t zp, Dtype d = Dtype::int8);
void check_ptr(const char* fn, const char* name, const void* p);
// dtype_min(d) <= qmin <= qmax <= dtype_max(d).
void check_clamp(const char* fn, int32_t qmin, int32_t qmax, Dtype d = Dtype::int8);
// d is a Dtype value.
void check_dtype(const char* fn, const char* name, Dtype d);
// q's scale is a finite positive float, its dtype valid and its zero point in range.
void check_quant(const char* fn, const char* name, const Quant& q);

}  // namespace detail
}  // namespace mnq
