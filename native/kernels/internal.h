// Internal plumbing between the public kernel API (kernels.h) and the per-ISA
// implementations. Not installed, not used outside native/kernels.
//
// Each ISA provides an IsaKernels table (<isa dir>/table.cc, filled by the
// ISA's op files: gemm.cc, direct_conv.cc, depthwise.cc, elementwise.cc).
// Entries may be null: resolved_kernels (isa.cc) then uses the scalar
// reference entry (avxvnni: the AVX2 entry), so a SIMD port can grow one
// kernel at a time. Every non-null entry must be bit-identical to the scalar
// one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "kernels.h"

namespace mnq {
namespace detail {
namespace {
// ceil(a / b) for a >= 0, b > 0: the blocks of a packed layout. Internal
// linkage, as everything the target regions of the SIMD files call.
inline int ceil_div(int a, int b) { return (a + b - 1) / b; }
// v rounded up to a multiple of m (v >= 0, m > 0).
inline int round_up(int v, int m) { return (v + m - 1) / m * m; }
}  // namespace

// 64-byte aligned byte buffer (weights are read with aligned vector loads).
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes) { resize(bytes); }
  void resize(size_t bytes);
  uint8_t* data() { return data_.get(); }
  const uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }
 private:
  struct Free { void operator()(uint8_t* p) const { std::free(p); } };
  std::unique_ptr<uint8_t, Free> data_;
  size_t size_ = 0;
};

// GEMM weights y[m][n] = out(sum_k (x[m][k] - x_zp) * (w[n][k] - w_zp[n]) + bias[n]).
// The raw fields are always filled by pack_conv (conv.cc); the ISA's pack function
// fills `packed`, `n_block` and any folded bias it wants in `bias_folded`.
struct PackedGemm {
  int n = 0, k = 0;
  int32_t x_zero_point = 0;
  std::vector<int8_t> w;             // raw [n][k]
  std::vector<int32_t> bias;         // raw [n]
  std::vector<int32_t> w_zero_point; // [n]; all zero when symmetric
  bool symmetric = true;             // every w_zero_point is 0
  // ISA-owned:
  int n_block = 1;                   // column split granularity of the packed layout
  bool patch_sums = false;           // direct conv: subtract w_zp[n] * (patch sum of u8 inputs)
  std::vector<int32_t> bias_folded;  // e.g. bias - x_zp * sum_k w (+ ISA corrections)
  AlignedBuffer packed;
};
struct GemmArgs {
  const PackedGemm* w;
  const OutputStage* out;
  size_t m;                       // rows
  const int8_t* x; size_t x_stride;  // [m][k], row stride in bytes
  int8_t* y; size_t y_stride;        // [m][n], row stride in bytes
  int n_begin, n_end;             // columns to compute (multiples of n_block or n_end == n)
};

// Depthwise weights (depth multiplier 1).
struct PackedDepthwise {
  ConvShape shape;
  int32_t x_zero_point = 0;
  std::vector<int8_t> w;             // raw [c][kh][kw]
  std::vector<int32_t> bias;         // raw [c]
  std::vector<int32_t> w_zero_point; // [c]
  bool symmetric = true;
  // ISA-owned:
  std::vector<int32_t> bias_folded;
  AlignedBuffer packed;
};
struct DepthwiseArgs {
  const PackedDepthwise* w;
  const OutputStage* out;
  const int8_t* x;   // [in_h][in_w][c]
  int8_t* y;         // [out_h][out_w][c]
  int row_begin, row_end;
  void* scratch;     // depthwise_scratch_size bytes
};

// A general conv computed straight from the NHWC input, without im2col (the
// stem: few input and output channels). The weights are PackedGemm's raw fields
// (w as [out_c][kh][kw][in_c]); the ISA's pack fills the ISA-owned ones.
struct DirectConvArgs {
  const ConvShape* s;
  const PackedGemm* w;
  const OutputStage* out;
  const int8_t* x;   // [in_h][in_w][in_c]
  int8_t* y;         // [out_h][out_w][out_c]
  int row_begin, row_end;
  void* scratch;     // conv_direct_scratch_size bytes
};

struct IsaKernels {
  void (*gemm_pack)(PackedGemm* w) = nullptr;   // raw fields filled; fill ISA-owned ones
  void (*gemm)(const GemmArgs& a) = nullptr;
  void (*depthwise_pack)(PackedDepthwise* w) = nullptr;
  size_t (*depthwise_scratch_size)(const PackedDepthwise& w, int row_begin, int row_end) = nullptr;
  void (*depthwise)(const DepthwiseArgs& a) = nullptr;
  // Direct general conv: the pack returns false for shapes the ISA does not run
  // directly (those run as im2col + GEMM).
  bool (*conv_direct_pack)(const ConvShape& s, PackedGemm* w) = nullptr;
  size_t (*conv_direct_scratch_size)(const ConvShape& s, int row_begin, int row_end) = nullptr;
  void (*conv_direct)(const DirectConvArgs& a) = nullptr;
  void (*global_avg_pool)(const GlobalAvgPoolParams& p, size_t hw, size_t c, const int8_t* x, int8_t* y) = nullptr;
  void (*add)(const AddParams& p, size_t n, const int8_t* a, const int8_t* b, int8_t* y) = nullptr;
  void (*mul)(const MulParams& p, size_t n, const int8_t* a, const int8_t* b, int8_t* y) = nullptr;
  void (*mul_channelwise)(const MulParams& p, size_t hw, size_t c, const int8_t* x, const int8_t* s, int8_t* y) = nullptr;
  void (*lut_apply)(const int8_t table[256], size_t n, const int8_t* x, int8_t* y) = nullptr;
  void (*quantize_nchw_to_nhwc)(const float* x, size_t c, size_t h, size_t w, float scale, int32_t zero_point, int8_t* y) = nullptr;
  void (*dequantize)(const int8_t* q, size_t n, float scale, int32_t zero_point, float* y) = nullptr;
};

}  // namespace detail

// One packed convolution (kernels.h's opaque PackedConv): the kind, the shape
// and the weights in the layout of the ISA whose kernels run it.
struct PackedConv {
  Isa isa = Isa::scalar;
  ConvKind kind = ConvKind::pointwise;
  ConvShape shape;
  // Kernels that run this conv (the ISA's entries, or the scalar ones where
  // the ISA has none); pack and run always come from the same table.
  void (*gemm)(const detail::GemmArgs& a) = nullptr;
  void (*depthwise)(const detail::DepthwiseArgs& a) = nullptr;
  size_t (*depthwise_scratch_size)(const detail::PackedDepthwise& w, int row_begin,
                                   int row_end) = nullptr;
  // General convs the ISA runs without im2col (null: im2col + gemm).
  void (*direct)(const detail::DirectConvArgs& a) = nullptr;
  size_t (*direct_scratch_size)(const ConvShape& s, int row_begin, int row_end) = nullptr;
  detail::PackedGemm gemm_w;     // pointwise and general (general: w is [out_c][kh][kw][in_c])
  detail::PackedDepthwise dw_w;  // depthwise
};

namespace detail {

// The kernel table of an ISA with null entries replaced by the scalar ones.
// Throws std::invalid_argument if the ISA is not supported on this CPU / build.
const IsaKernels& resolved_kernels(Isa isa);

// Tables; the non-scalar getters return nullptr when the ISA is not built in.
const IsaKernels& scalar_kernels();
const IsaKernels* avx2_kernels();
const IsaKernels* avxvnni_kernels();
const IsaKernels* avx512vnni_kernels();
const IsaKernels* neon_kernels();
const IsaKernels* neondot_kernels();

}  // namespace detail
}  // namespace mnq
