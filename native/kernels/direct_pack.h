// Weight packing of the direct general conv (no im2col; the row driver is
// direct_conv.h), shared by the kernels that read a kernel row of the input as
// byte groups: the VNNI kernels (4-byte groups, vpdpbusd on u8 x ^ 0x80),
// arm/neondot (4-byte groups, SDOT on int8 x) and arm/neon (2-byte groups,
// SMULL / SMLAL on int8 x against int16 lanes of (w, w) pairs). Baseline-ISA
// code: include it outside any `#pragma GCC target` region.
//
// Shapes: dilation_w 1, a kernel row of run = kernel_w * in_c <= 32 bytes,
// kernel_h <= 16, out_c <= the caller's maximum. A kernel row is read as
// G = ceil(run / kGroup) groups of a row buffer, output pixel ox finding
// kernel row ky at buffer[ky] + ox * stride_w * in_c; the bytes past the run
// (the next pixel's) meet zero weights.
// Layout: [ky][g][block of kCols channels][kCols lanes][kGroup bytes].
// Activations are a = x + offset (offset 128 for u8 x ^ 0x80, 0 for int8 x).
//   - Weights whose w' = w - w_zp[n] all fit in int8 (always for symmetric
//     weights) are packed as w': (x - x_zp) * (w - w_zp) = (x - x_zp) * w'
//     exactly; bias_folded = bias - (offset + x_zp) * sum w'.
//   - Other asymmetric weights (uint8 models use the whole range), where the
//     kernel supports it (patch_sums_ok), are packed as w with patch_sums set,
//     and K = kernel_h * kernel_w * in_c <= 256: the kernels subtract
//     w_zp[n] * U, U = the sum of the activation patch (padding = x_zp +
//     offset), and bias_folded = bias - (offset + x_zp) * sum w + K * (offset +
//     x_zp) * w_zp[n], since sum (x - x_zp) = U - K * (offset + x_zp). Then
//     w_zp follows the weights as [blocks * kCols] int32.
#pragma once

#include <cstdint>
#include <cstring>

#include "internal.h"

namespace mnq {
namespace detail {
namespace direct {

constexpr int kMaxRun = 32;   // bytes of one kernel row (kernel_w * in_c)
constexpr int kMaxRows = 16;  // kernel_h

inline int groups(const ConvShape& s, int group_bytes) {
  return (s.kernel_w * s.in_c + group_bytes - 1) / group_bytes;
}
// Bytes of one row buffer of bytes: what the last pixel of a row reads, rounded to 64.
inline size_t row_bytes(const ConvShape& s, int group_bytes) {
  const size_t used = size_t(s.out_w - 1) * s.stride_w * s.in_c + size_t(group_bytes) * groups(s, group_bytes);
  return (used + 63) / 64 * 64;
}

// Packs for the direct path; false (nothing changed) for shapes it does not take.
template <int kCols, int kGroup>
bool pack(const ConvShape& s, PackedGemm* w, int max_out_c, uint32_t offset, bool patch_sums_ok) {
  const int run = s.kernel_w * s.in_c;
  if (s.dilation_w != 1 || run > kMaxRun || s.out_c > max_out_c || s.kernel_h > kMaxRows) return false;
  bool fits = true;  // every w - w_zp in int8
  for (int o = 0; o < s.out_c && fits && !w->symmetric; ++o)
    for (size_t i = 0; i < size_t(w->k) && fits; ++i) {
      const int32_t v = int32_t(w->w[size_t(o) * w->k + i]) - w->w_zero_point[o];
      fits = v >= -128 && v <= 127;
    }
  if (!fits && (!patch_sums_ok || w->k > 256)) return false;  // the kernels' patch sums are uint16
  const bool sums = !fits;
  // The packed value of weight i of channel o: w - w_zp, or w itself with patch sums.
  auto shifted = [&](int o, size_t i) {
    return int32_t(w->w[size_t(o) * w->k + i]) - (w->symmetric || sums ? 0 : w->w_zero_point[o]);
  };
  const int g_count = groups(s, kGroup), nb = (s.out_c + kCols - 1) / kCols;
  const size_t wbytes = size_t(s.kernel_h) * g_count * nb * kGroup * kCols;
  w->n_block = kCols;
  w->patch_sums = sums;
  w->packed.resize(wbytes + (sums ? size_t(nb) * kCols * 4 : 0));
  uint8_t* p = w->packed.data();
  std::memset(p, 0, w->packed.size());
  w->bias_folded.assign(size_t(nb) * kCols, 0);
  const uint32_t xoff = offset + uint32_t(w->x_zero_point);
  for (int o = 0; o < s.out_c; ++o) {
    uint32_t sumw = 0;
    for (int ky = 0; ky < s.kernel_h; ++ky)
      for (int i = 0; i < run; ++i) {
        const int8_t v = int8_t(shifted(o, size_t(ky) * run + i));
        sumw += uint32_t(int32_t(v));
        p[((size_t(ky) * g_count + i / kGroup) * nb + o / kCols) * kGroup * kCols + (o % kCols) * kGroup +
          i % kGroup] = uint8_t(v);
      }
    const uint32_t b = w->bias.empty() ? 0u : uint32_t(w->bias[o]);
    w->bias_folded[o] = int32_t(b - xoff * sumw);
    if (sums) {
      const uint32_t zpw = uint32_t(w->w_zero_point[o]);
      w->bias_folded[o] = int32_t(uint32_t(w->bias_folded[o]) + uint32_t(w->k) * xoff * zpw);
      reinterpret_cast<int32_t*>(p + wbytes)[o] = int32_t(zpw);
    }
  }
  return true;
}

}  // namespace direct
}  // namespace detail
}  // namespace mnq
