// Weight packing shared by the two VNNI kernel files, which run the same scheme
// on different vector widths: avx512vnni.cc (blocks of 16 int32 columns, one
// zmm) and avxvnni.cc (blocks of 8, one ymm). Baseline-ISA code: include it
// outside any `#pragma GCC target` region.
//
// GEMM weights
//   Blocks of kCols columns; inside a block, per group of 4 k: kCols columns x 4
//   bytes (one vector), then w_zero_point padded to a whole block, as int32.
//   vpdpbusd multiplies u8 activations (u = x ^ 0x80 = x + 128) by s8 weights,
//   so the folded bias is
//     bias - (128 + x_zp) * sum_k w + K * x_zp * w_zp[n]
//   (the kernels subtract w_zp[n] * sum_k x for asymmetric weights).
//
// Direct general conv (no im2col; see the kernel files)
//   Dilation_w 1, a kernel row of kernel_w * in_c <= 32 bytes. A kernel row is
//   read as G = ceil(kernel_w * in_c / 4) dwords of a u8 row buffer (u = x ^
//   0x80); weights [ky][g][block of kCols channels][kCols lanes][4 bytes], zero
//   past the row's bytes.
//   - Weights whose w' = w - w_zp[n] all fit in int8 (always for symmetric
//     weights) are packed as w': (x - x_zp) * (w - w_zp) = (x - x_zp) * w'
//     exactly; bias_folded = bias - (128 + x_zp) * sum w'.
//   - Other asymmetric weights (uint8 models use the whole range) are packed as
//     w with patch_sums set, and K = kernel_h * kernel_w * in_c <= 256: the
//     kernels subtract w_zp[n] * U, U = the sum of the u8 patch (padding = x_zp
//     ^ 0x80), and bias_folded = bias - (128 + x_zp) * sum w + K * (128 + x_zp)
//     * w_zp[n], since sum (x - x_zp) = U - K * (128 + x_zp). Then w_zp follows
//     the weights as [blocks * kCols] int32.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "../internal.h"

namespace mnq {
namespace detail {
namespace vnni {

inline int ceil_div(int a, int b) { return (a + b - 1) / b; }

template <int kCols>
void gemm_pack(PackedGemm* w) {
  const int n = w->n, k = w->k, k4 = ceil_div(k, 4);
  const int nblocks = ceil_div(n, kCols), npad = nblocks * kCols;
  const size_t block_bytes = size_t(k4) * 4 * kCols;
  const size_t wbytes = size_t(nblocks) * block_bytes;
  w->n_block = kCols;
  w->packed.resize(wbytes + size_t(npad) * 4);
  uint8_t* p = w->packed.data();
  std::memset(p, 0, w->packed.size());
  for (int j = 0; j < n; ++j) {
    uint8_t* blk = p + size_t(j / kCols) * block_bytes + (j % kCols) * 4;
    const int8_t* src = w->w.data() + size_t(j) * k;
    for (int i = 0; i < k; ++i) blk[size_t(i / 4) * 4 * kCols + (i % 4)] = uint8_t(src[i]);
  }
  int32_t* wzp = reinterpret_cast<int32_t*>(p + wbytes);
  w->bias_folded.assign(npad, 0);
  const uint32_t xzp = uint32_t(w->x_zero_point);
  for (int j = 0; j < n; ++j) {
    const int8_t* src = w->w.data() + size_t(j) * k;
    uint32_t sumw = 0;
    for (int i = 0; i < k; ++i) sumw += uint32_t(int32_t(src[i]));
    const uint32_t zpw = w->symmetric ? 0u : uint32_t(w->w_zero_point[j]);
    const uint32_t b = w->bias.empty() ? 0u : uint32_t(w->bias[j]);
    w->bias_folded[j] = int32_t(b - (128u + xzp) * sumw + uint32_t(k) * xzp * zpw);
    wzp[j] = int32_t(zpw);
  }
}

// The w_zero_point row of a gemm_pack'ed PackedGemm.
template <int kCols>
const int32_t* gemm_packed_wzp(const PackedGemm& w) {
  const size_t block_bytes = size_t(ceil_div(w.k, 4)) * 4 * kCols;
  return reinterpret_cast<const int32_t*>(w.packed.data() + size_t(ceil_div(w.n, kCols)) * block_bytes);
}

// Per-thread activation panel for the GEMM, 64-byte aligned.
inline uint8_t* gemm_panel(size_t bytes) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < bytes + 64) buf.resize(bytes + 64);
  uintptr_t a = reinterpret_cast<uintptr_t>(buf.data());
  return buf.data() + ((64 - (a & 63)) & 63);
}

// ------------------------------------------------------------- direct conv
constexpr int kDirectMaxRun = 32;   // bytes of one kernel row (kernel_w * in_c)
constexpr int kDirectMaxRows = 16;  // kernel_h

inline int direct_groups(const ConvShape& s) { return ceil_div(s.kernel_w * s.in_c, 4); }
// Bytes of one row buffer: what the last pixel of a row reads, rounded to 64.
inline size_t direct_row_bytes(const ConvShape& s) {
  const size_t used = size_t(s.out_w - 1) * s.stride_w * s.in_c + 4 * size_t(direct_groups(s));
  return (used + 63) / 64 * 64;
}
inline size_t direct_sums_bytes(const ConvShape& s);
// One padding row, kernel_h input rows and the patch sums, 64-byte aligned.
inline size_t direct_scratch_size(const ConvShape& s, int, int) {
  return size_t(s.kernel_h + 1) * direct_row_bytes(s) + direct_sums_bytes(s) + 64;
}
inline uint8_t* direct_scratch_base(void* scratch) {
  return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(scratch) + 63) & ~uintptr_t(63));
}

// Packs for the direct path; false (nothing changed) for shapes it does not take.
template <int kCols>
bool direct_pack(const ConvShape& s, PackedGemm* w, int max_out_c) {
  const int run = s.kernel_w * s.in_c;
  if (s.dilation_w != 1 || run > kDirectMaxRun || s.out_c > max_out_c || s.kernel_h > kDirectMaxRows)
    return false;
  bool fits = true;  // every w - w_zp in int8
  for (int o = 0; o < s.out_c && fits && !w->symmetric; ++o)
    for (size_t i = 0; i < size_t(w->k) && fits; ++i) {
      const int32_t v = int32_t(w->w[size_t(o) * w->k + i]) - w->w_zero_point[o];
      fits = v >= -128 && v <= 127;
    }
  if (!fits && w->k > 256) return false;  // the kernels' patch sums are uint16
  const bool sums = !fits;
  // The packed value of weight i of channel o: w - w_zp, or w itself with patch sums.
  auto shifted = [&](int o, size_t i) {
    return int32_t(w->w[size_t(o) * w->k + i]) - (w->symmetric || sums ? 0 : w->w_zero_point[o]);
  };
  const int g_count = direct_groups(s), nb = ceil_div(s.out_c, kCols);
  const size_t wbytes = size_t(s.kernel_h) * g_count * nb * 4 * kCols;
  w->n_block = kCols;
  w->patch_sums = sums;
  w->packed.resize(wbytes + (sums ? size_t(nb) * kCols * 4 : 0));
  uint8_t* p = w->packed.data();
  std::memset(p, 0, w->packed.size());
  w->bias_folded.assign(size_t(nb) * kCols, 0);
  const uint32_t xzp = uint32_t(w->x_zero_point);
  for (int o = 0; o < s.out_c; ++o) {
    uint32_t sumw = 0;
    for (int ky = 0; ky < s.kernel_h; ++ky)
      for (int i = 0; i < run; ++i) {
        const int8_t v = int8_t(shifted(o, size_t(ky) * run + i));
        sumw += uint32_t(int32_t(v));
        p[((size_t(ky) * g_count + i / 4) * nb + o / kCols) * 4 * kCols + (o % kCols) * 4 + i % 4] =
            uint8_t(v);
      }
    const uint32_t b = w->bias.empty() ? 0u : uint32_t(w->bias[o]);
    w->bias_folded[o] = int32_t(b - (128u + xzp) * sumw);
    if (sums) {
      const uint32_t zpw = uint32_t(w->w_zero_point[o]);
      w->bias_folded[o] = int32_t(uint32_t(w->bias_folded[o]) + uint32_t(w->k) * (128u + xzp) * zpw);
      reinterpret_cast<int32_t*>(p + wbytes)[o] = int32_t(zpw);
    }
  }
  return true;
}

// Patch-sum scratch (uint16 per row-buffer byte, two arrays), after the row buffers.
inline size_t direct_sums_bytes(const ConvShape& s) { return 2 * (2 * direct_row_bytes(s) + 128); }

}  // namespace vnni
}  // namespace detail
}  // namespace mnq
