// Minimal test support for the native tests (no framework dependency):
// CHECK macros that count failures, a seeded RNG, and random case helpers.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace mnq_test {

inline int& failures() {
  static int n = 0;
  return n;
}
inline int& checks() {
  static int n = 0;
  return n;
}

#define CHECK(cond)                                                          \
  do {                                                                       \
    ++::mnq_test::checks();                                                  \
    if (!(cond)) {                                                           \
      ++::mnq_test::failures();                                              \
      if (::mnq_test::failures() <= 30)                                      \
        std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                        \
  } while (0)

#define CHECK_MSG(cond, ...)                                                 \
  do {                                                                       \
    ++::mnq_test::checks();                                                  \
    if (!(cond)) {                                                           \
      ++::mnq_test::failures();                                              \
      if (::mnq_test::failures() <= 30) {                                    \
        std::fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
        std::fprintf(stderr, __VA_ARGS__);                                   \
        std::fprintf(stderr, "\n");                                          \
      }                                                                      \
    }                                                                        \
  } while (0)

// Expects `fn` to throw exception type E whose message contains `needle`.
template <typename E>
bool throws(const std::function<void()>& fn, const char* needle = "") {
  try {
    fn();
  } catch (const E& e) {
    if (std::strstr(e.what(), needle)) return true;
    std::fprintf(stderr, "  threw the right type but message '%s' lacks '%s'\n", e.what(), needle);
    return false;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "  threw the wrong type: %s\n", e.what());
    return false;
  }
  std::fprintf(stderr, "  did not throw\n");
  return false;
}
#define CHECK_THROWS(E, stmt, needle) CHECK_MSG(::mnq_test::throws<E>([&] { stmt; }, needle), "%s", #stmt)

inline int finish(const char* name) {
  std::printf("%s: %d checks, %d failures\n", name, checks(), failures());
  return failures() == 0 ? 0 : 1;
}

// xoshiro-style small RNG (splitmix64), deterministic per seed.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int uniform(int lo, int hi) {  // inclusive
    return lo + int(next() % uint64_t(int64_t(hi) - lo + 1));
  }
  float unit() { return float(next() >> 40) / float(1 << 24); }
  bool chance(float p) { return unit() < p; }
  float log_uniform(float lo, float hi) {
    return std::exp(std::log(lo) + unit() * (std::log(hi) - std::log(lo)));
  }
  template <typename T>
  const T& pick(const std::vector<T>& v) { return v[size_t(next() % v.size())]; }
};

inline std::vector<int8_t> random_i8(Rng& r, size_t n, int lo = -128, int hi = 127) {
  std::vector<int8_t> v(n);
  for (auto& x : v) x = int8_t(r.uniform(lo, hi));
  return v;
}

// The channel counts every kernel must handle (vector-width boundaries).
inline const std::vector<int>& channel_counts() {
  static const std::vector<int> v = {1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33,
                                     40, 48, 63, 64, 65, 96, 127, 128, 129, 144, 192, 255,
                                     256, 257, 300};
  return v;
}

inline uint64_t env_seed(uint64_t def) {
  const char* s = std::getenv("MNQ_TEST_SEED");
  return s && *s ? std::strtoull(s, nullptr, 10) : def;
}

}  // namespace mnq_test
