// The parameter checks of the public kernel entry points (check.h).
#include "check.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace mnq {
namespace detail {

[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument("mnq: " + what); }

void check_scale(const char* fn, const char* name, float s) {
  if (!(std::isfinite(s) && s > 0.0f))
    fail(std::string(fn) + ": " + name + " must be a finite positive float, got " +
         std::to_string(s));
}
void check_zp(const char* fn, const char* name, int32_t zp) {
  if (zp < -128 || zp > 127)
    fail(std::string(fn) + ": " + name + " must be in [-128, 127] (int8), got " +
         std::to_string(zp));
}
void check_ptr(const char* fn, const char* name, const void* p) {
  if (!p) fail(std::string(fn) + ": " + name + " is null");
}
void check_clamp(const char* fn, int32_t qmin, int32_t qmax) {
  if (qmin < -128 || qmax > 127 || qmin > qmax)
    fail(std::string(fn) + ": clamp bounds must satisfy -128 <= qmin <= qmax <= 127, got [" +
         std::to_string(qmin) + ", " + std::to_string(qmax) + "]");
}

}  // namespace detail
}  // namespace mnq
