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
void check_zp(const char* fn, const char* name, int32_t zp, Dtype d) {
  if (zp < dtype_min(d) || zp > dtype_max(d))
    fail(std::string(fn) + ": " + name + " must be in [" + std::to_string(dtype_min(d)) + ", " +
         std::to_string(dtype_max(d)) + "] (" + dtype_name(d) + "), got " + std::to_string(zp));
}
void check_ptr(const char* fn, const char* name, const void* p) {
  if (!p) fail(std::string(fn) + ": " + name + " is null");
}
void check_clamp(const char* fn, int32_t qmin, int32_t qmax, Dtype d) {
  if (qmin < dtype_min(d) || qmax > dtype_max(d) || qmin > qmax)
    fail(std::string(fn) + ": clamp bounds must satisfy " + std::to_string(dtype_min(d)) +
         " <= qmin <= qmax <= " + std::to_string(dtype_max(d)) + " (" + dtype_name(d) + "), got [" +
         std::to_string(qmin) + ", " + std::to_string(qmax) + "]");
}
void check_dtype(const char* fn, const char* name, Dtype d) {
  if (d != Dtype::int8 && d != Dtype::int16)
    fail(std::string(fn) + ": " + name + " " + std::to_string(int(d)) + " is not a Dtype (0 int8, 1 int16)");
}
void check_quant(const char* fn, const char* name, const Quant& q) {
  check_dtype(fn, (std::string(name) + ".dtype").c_str(), q.dtype);
  check_scale(fn, (std::string(name) + ".scale").c_str(), q.scale);
  check_zp(fn, (std::string(name) + ".zero_point").c_str(), q.zero_point, q.dtype);
}

}  // namespace detail
}  // namespace mnq
