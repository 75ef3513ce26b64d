// Weight packing shared by the two VNNI kernel files, which run the same scheme
// on different vector widths: x86/avx512vnni (blocks of 16 int32 columns, one
// zmm) and x86/avxvnni (blocks of 8, one ymm). Baseline-ISA code: include it
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
//   direct_pack.h's packing with 4-byte groups of u8 row buffers (u = x ^ 0x80,
//   offset 128), patch sums for asymmetric weights whose w - w_zp does not fit
//   in int8.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "../direct_pack.h"
#include "../internal.h"

namespace mnq {
namespace detail {
namespace vnni {

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
// The packing is direct_pack.h's with 4-byte groups and u8 activations (offset 128).
inline int direct_groups(const ConvShape& s) { return direct::groups(s, 4); }
// Bytes of one row buffer: what the last pixel of a row reads, rounded to 64.
inline size_t direct_row_bytes(const ConvShape& s) { return direct::row_bytes(s, 4); }
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
  return direct::pack<kCols, 4>(s, w, max_out_c, 128u, true);
}

// Patch-sum scratch (uint16 per row-buffer byte, two arrays), after the row buffers.
inline size_t direct_sums_bytes(const ConvShape& s) { return 2 * (2 * direct_row_bytes(s) + 128); }

}  // namespace vnni
}  // namespace detail
}  // namespace mnq
