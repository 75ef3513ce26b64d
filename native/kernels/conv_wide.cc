// Convolutions with int16 activations (kernels.h, "int16 activations"; the
// arithmetic: docs/quantization.md): packing for the wide kernels, and running
// them (pointwise as a GEMM over int16 rows, an int8 input widened first;
// depthwise; general convs as an int16 im2col + GEMM).
#include <algorithm>
#include <string>
#include <vector>

#include "check.h"
#include "internal.h"

namespace mnq {

using detail::fail;
using detail::check_ptr;

namespace {

// Rows of a pointwise input widened at a time (an int8 input, per thread).
constexpr size_t kWidenRows = 64;

void check_wide_stage(const char* fn, const OutputStage& out, int channels) {
  if (out.multiplier.size() != size_t(channels))
    fail(std::string(fn) + ": output stage has " + std::to_string(out.multiplier.size()) +
         " multipliers, the convolution has " + std::to_string(channels) + " output channels");
  detail::check_dtype(fn, "output dtype", out.dtype);
  detail::check_zp(fn, "output zero_point", out.zero_point, out.dtype);
  detail::check_clamp(fn, out.qmin, out.qmax, out.dtype);
  if (out.has_lut) fail(std::string(fn) + ": the wide kernels take no fused table (an activation is its own op)");
}

void check_wide(const char* fn, const PackedConv& p) {
  if (!p.wide) fail(std::string(fn) + ": the convolution was packed by pack_conv; run it with conv_run / gemm_run_columns");
}

// Runs the GEMM over m rows of x (x_dtype) in chunks: int16 rows as they are, int8 rows
// widened (exactly) into a per-thread buffer first.
void gemm_rows(const PackedConv& p, const OutputStage& out, const void* x, size_t x_stride, void* y,
               size_t y_stride, size_t m, int n_begin, int n_end) {
  detail::WideGemmArgs a;
  a.w = &p.gemm_w;
  a.out = &out;
  a.y_stride = y_stride;
  a.n_begin = n_begin;
  a.n_end = n_end;
  const size_t k = size_t(p.gemm_w.k), ysize = dtype_bytes(out.dtype);
  if (p.x_dtype == Dtype::int16) {
    a.m = m;
    a.x = static_cast<const int16_t*>(x);
    a.x_stride = x_stride;
    a.y = y;
    p.gemm_wide(a);
    return;
  }
  thread_local std::vector<int16_t> widened;
  widened.resize(kWidenRows * k);
  for (size_t r0 = 0; r0 < m; r0 += kWidenRows) {
    const size_t rows = m - r0 < kWidenRows ? m - r0 : kWidenRows;
    for (size_t r = 0; r < rows; ++r) {
      const int8_t* src = static_cast<const int8_t*>(x) + (r0 + r) * x_stride;
      for (size_t i = 0; i < k; ++i) widened[r * k + i] = src[i];
    }
    a.m = rows;
    a.x = widened.data();
    a.x_stride = k;
    a.y = static_cast<uint8_t*>(y) + r0 * y_stride * ysize;
    p.gemm_wide(a);
  }
}

// Rows of NHWC patches of x (T = int8_t or int16_t) as int16, for output rows
// [row_begin, row_end); padding reads x_zp.
template <typename T>
void im2col_wide(const ConvShape& s, int32_t x_zp, const T* x, int row_begin, int row_end, int16_t* col) {
  const size_t ic = size_t(s.in_c);
  for (int oy = row_begin; oy < row_end; ++oy)
    for (int ox = 0; ox < s.out_w; ++ox)
      for (int ky = 0; ky < s.kernel_h; ++ky) {
        const int iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
        for (int kx = 0; kx < s.kernel_w; ++kx, col += ic) {
          const int ix = ox * s.stride_w - s.pad_left + kx * s.dilation_w;
          if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) {
            for (size_t c = 0; c < ic; ++c) col[c] = int16_t(x_zp);
          } else {
            const T* src = x + (size_t(iy) * s.in_w + ix) * ic;
            for (size_t c = 0; c < ic; ++c) col[c] = src[c];
          }
        }
      }
}

}  // namespace

namespace detail {
size_t conv_wide_scratch_size(const PackedConv& p, int row_begin, int row_end) {
  return size_t(row_end - row_begin) * p.shape.out_w * size_t(p.gemm_w.k) * sizeof(int16_t);
}

bool wide_gemm_fits_int32(const PackedGemm& w, std::vector<int32_t>* folded) {
  folded->assign(size_t(w.n), 0);
  for (int j = 0; j < w.n; ++j) {
    const int8_t* src = w.w.data() + size_t(j) * w.k;
    int64_t sumw = 0, sumabs = 0;
    for (int i = 0; i < w.k; ++i) {
      sumw += src[i];
      sumabs += src[i] < 0 ? -int64_t(src[i]) : int64_t(src[i]);
    }
    const int64_t b = (w.bias.empty() ? 0 : int64_t(w.bias[j])) - int64_t(w.x_zero_point) * sumw;
    if ((b < 0 ? -b : b) + 32768 * sumabs >= (int64_t(1) << 31)) return false;
    (*folded)[size_t(j)] = int32_t(b);
  }
  return true;
}

bool wide_depthwise_fits_int32(const PackedDepthwise& w) {
  const int taps = w.shape.kernel_h * w.shape.kernel_w;
  for (int c = 0; c < w.shape.in_c; ++c) {
    int64_t sumabs = 0;
    for (int t = 0; t < taps; ++t) {
      const int v = w.w[size_t(c) * taps + t];
      sumabs += v < 0 ? -v : v;
    }
    const int64_t b = w.bias[c];
    if ((b < 0 ? -b : b) + 65535 * sumabs >= (int64_t(1) << 31)) return false;
  }
  return true;
}
}  // namespace detail

PackedConvPtr pack_conv_wide(Isa isa, ConvKind kind, const ConvShape& s, const int8_t* weights,
                             const int32_t* bias, Dtype x_dtype, int32_t x_zero_point) {
  const char* fn = "pack_conv_wide";
  const auto& k = detail::resolved_kernels(isa);
  const auto& ref = detail::scalar_kernels();
  detail::check_dtype(fn, "x_dtype", x_dtype);
  PackedConvPtr p = detail::pack_raw_conv(fn, kind, s, weights, nullptr, bias, x_zero_point, x_dtype);
  p->isa = isa;
  p->wide = true;
  if (kind == ConvKind::depthwise) {
    // The ISA's kernel when its int32 lanes hold every accumulator of these weights, else the reference.
    const bool simd = k.depthwise_wide_pack(&p->dw_w);
    p->depthwise_wide = simd ? k.depthwise_wide : ref.depthwise_wide;
    if (!simd) ref.depthwise_wide_pack(&p->dw_w);
  } else {
    const bool simd = k.gemm_wide_pack(&p->gemm_w);
    p->gemm_wide = simd ? k.gemm_wide : ref.gemm_wide;
    if (!simd) ref.gemm_wide_pack(&p->gemm_w);
  }
  return p;
}

bool packed_conv_is_wide(const PackedConv& p) { return p.wide; }

void conv_run_wide(const PackedConv& p, const OutputStage& out, const void* x, void* y, int row_begin,
                   int row_end, void* scratch) {
  const char* fn = "conv_run_wide";
  const ConvShape& s = p.shape;
  check_wide(fn, p);
  if (row_begin < 0 || row_end > s.out_h || row_begin > row_end)
    fail("conv_run_wide: rows [" + std::to_string(row_begin) + ", " + std::to_string(row_end) +
         ") outside [0, " + std::to_string(s.out_h) + "]");
  check_wide_stage(fn, out, s.out_c);
  if (row_begin == row_end) return;
  check_ptr(fn, "x", x);
  check_ptr(fn, "y", y);
  const size_t xsize = dtype_bytes(p.x_dtype), ysize = dtype_bytes(out.dtype);
  void* y_rows = static_cast<uint8_t*>(y) + size_t(row_begin) * s.out_w * s.out_c * ysize;
  const size_t m = size_t(row_end - row_begin) * s.out_w;
  switch (p.kind) {
    case ConvKind::pointwise:
      gemm_rows(p, out, static_cast<const uint8_t*>(x) + size_t(row_begin) * s.in_w * s.in_c * xsize,
                size_t(s.in_c), y_rows, size_t(s.out_c), m, 0, s.out_c);
      return;
    case ConvKind::depthwise:
      p.depthwise_wide(detail::WideDepthwiseArgs{&p.dw_w, &out, x, p.x_dtype, y, row_begin, row_end});
      return;
    case ConvKind::general: {
      check_ptr(fn, "scratch", scratch);
      int16_t* col = static_cast<int16_t*>(scratch);
      if (p.x_dtype == Dtype::int16)
        im2col_wide(s, p.gemm_w.x_zero_point, static_cast<const int16_t*>(x), row_begin, row_end, col);
      else
        im2col_wide(s, p.gemm_w.x_zero_point, static_cast<const int8_t*>(x), row_begin, row_end, col);
      detail::WideGemmArgs a;
      a.w = &p.gemm_w;
      a.out = &out;
      a.m = m;
      a.x = col;
      a.x_stride = size_t(p.gemm_w.k);
      a.y = y_rows;
      a.y_stride = size_t(s.out_c);
      a.n_begin = 0;
      a.n_end = s.out_c;
      p.gemm_wide(a);
      return;
    }
  }
}

void gemm_run_columns_wide(const PackedConv& p, const OutputStage& out, const void* x, void* y, size_t m,
                           int n_begin, int n_end) {
  const char* fn = "gemm_run_columns_wide";
  check_wide(fn, p);
  if (p.kind != ConvKind::pointwise) fail("gemm_run_columns_wide: needs a pointwise / fully connected packing");
  const int n = p.gemm_w.n, block = gemm_column_block(p);
  if (n_begin < 0 || n_end > n || n_begin > n_end)
    fail("gemm_run_columns_wide: columns [" + std::to_string(n_begin) + ", " + std::to_string(n_end) +
         ") outside [0, " + std::to_string(n) + "]");
  if (n_begin % block != 0 || (n_end % block != 0 && n_end != n))
    fail("gemm_run_columns_wide: column bounds must be multiples of gemm_column_block() = " +
         std::to_string(block) + " (or the end column)");
  if (m > (size_t(1) << 40) / size_t(std::max(1, std::max(p.gemm_w.k, n))))
    fail("gemm_run_columns_wide: m = " + std::to_string(m) + " rows is too large");
  check_wide_stage(fn, out, n);
  if (m == 0 || n_begin == n_end) return;
  check_ptr(fn, "x", x);
  check_ptr(fn, "y", y);
  gemm_rows(p, out, x, size_t(p.gemm_w.k), y, size_t(n), m, n_begin, n_end);
}

}  // namespace mnq
