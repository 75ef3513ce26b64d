// The parameter checks of the public kernel entry points (kernels.h): each
// throws std::invalid_argument("mnq: <fn>: ...") with a message a caller can
// act on. Baseline code only (never called inside a SIMD target region).
#pragma once

#include <cstdint>
#include <string>

namespace mnq {
namespace detail {

[[noreturn]] void fail(const std::string& what);
// scale is a finite positive float.
void check_scale(const char* fn, const char* name, float s);
// zp is an int8 zero point, in [-128, 127].
void check_zp(const char* fn, const char* name, int32_t zp);
void check_ptr(const char* fn, const char* name, const void* p);
// -128 <= qmin <= qmax <= 127.
void check_clamp(const char* fn, int32_t qmin, int32_t qmax);

}  // namespace detail
}  // namespace mnq
