// What the two AArch64 depthwise convs (neon/depthwise.cc, neondot/depthwise.cc)
// share: the packed header (which weight layout the pack chose, read back by
// the run and the scratch size) and the folding of the input zero point into
// the bias for symmetric weights:
//   sum_t (x - xz) w + b = sum_t x w + [b - xz * sum_t w]
// (padding reads x = xz, so the fold holds for padded taps too). The bracket
// is bias_folded[c] (modulo 2^32, like the int32 accumulator).
// Everything has internal linkage (see epilogue.h).
#pragma once
#if defined(__aarch64__)

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../internal.h"

namespace mnq {
namespace detail {
namespace {

constexpr size_t kDwHeader = 16;  // packed header bytes, then the layout's weights

enum class DwLayout : int32_t {
  int16 = 0,  // neon: int16 (w - wz), [c_pad / 16][taps][16]
  pairs = 1,  // neon: int8 w, two taps per int16 lane, [c_pad / 16][taps][16]
  dot = 2,    // neondot: int8 w, 4-byte groups of kernel rows (neondot/depthwise.cc)
};

struct DwHeader {
  DwLayout layout;
};

inline DwLayout dw_layout(const PackedDepthwise& w) {
  DwHeader h;
  std::memcpy(&h, w.packed.data(), sizeof h);
  return h.layout;
}

// Allocates the packed weights (zeroed, weight_bytes after the header), writes the header and
// bias_folded[c_pad] (zero padded; the bias with the input zero point folded in when fold);
// returns where the layout's weights start.
inline uint8_t* dw_pack_begin(PackedDepthwise* w, DwLayout layout, size_t weight_bytes, int c_pad, bool fold) {
  w->packed.resize(kDwHeader + weight_bytes);
  uint8_t* base = w->packed.data();
  std::memset(base, 0, w->packed.size());
  const DwHeader h{layout};
  std::memcpy(base, &h, sizeof h);
  const ConvShape& s = w->shape;
  const int c = s.in_c, taps = s.kernel_h * s.kernel_w;
  w->bias_folded.assign(static_cast<size_t>(std::max(c_pad, c)), 0);
  for (int ch = 0; ch < c; ++ch) {
    int64_t sum_w = 0;
    for (int t = 0; t < taps; ++t) sum_w += w->w[static_cast<size_t>(ch) * taps + t];
    const int64_t b = w->bias.empty() ? 0 : w->bias[ch];
    const uint64_t folded = static_cast<uint64_t>(fold ? b - w->x_zero_point * sum_w : b);
    w->bias_folded[ch] = static_cast<int32_t>(static_cast<uint32_t>(folded));
  }
  return base + kDwHeader;
}

}  // namespace
}  // namespace detail
}  // namespace mnq

#endif  // __aarch64__
