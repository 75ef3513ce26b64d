// Convolution (kernels.h): shape checks, the kind of a conv, weight packing for
// one ISA (pack_conv), and running it (conv_run: pointwise as a GEMM,
// depthwise, general convs directly or as im2col + GEMM; gemm_run_columns for
// fully connected layers split over output channels).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "check.h"
#include "internal.h"

namespace mnq {

using detail::fail;
using detail::check_zp;
using detail::check_ptr;
using detail::check_clamp;

void ConvShape::validate() const {
  auto need = [](bool ok, const std::string& msg) {
    if (!ok) fail("conv shape: " + msg);
  };
  auto pos = [&](int v, const char* name) {
    need(v > 0, std::string(name) + " must be > 0, got " + std::to_string(v));
  };
  pos(in_h, "in_h"); pos(in_w, "in_w"); pos(in_c, "in_c");
  pos(out_h, "out_h"); pos(out_w, "out_w"); pos(out_c, "out_c");
  pos(kernel_h, "kernel_h"); pos(kernel_w, "kernel_w");
  pos(stride_h, "stride_h"); pos(stride_w, "stride_w");
  pos(dilation_h, "dilation_h"); pos(dilation_w, "dilation_w");
  auto nonneg = [&](int v, const char* name) {
    need(v >= 0, std::string(name) + " must be >= 0, got " + std::to_string(v));
  };
  nonneg(pad_top, "pad_top"); nonneg(pad_left, "pad_left");
  nonneg(pad_bottom, "pad_bottom"); nonneg(pad_right, "pad_right");
  const int64_t lim = int64_t(1) << 24;
  need(in_h < lim && in_w < lim && in_c < lim && out_c < lim && kernel_h < 4096 &&
           kernel_w < 4096 && dilation_h < 4096 && dilation_w < 4096 && pad_top < lim &&
           pad_left < lim && pad_bottom < lim && pad_right < lim,
       "dimension too large");
  need(int64_t(in_h) * in_w * in_c < (int64_t(1) << 31) &&
           int64_t(out_h) * out_w * out_c < (int64_t(1) << 31),
       "tensor larger than 2 GiB");
  const int64_t eff_h = int64_t(kernel_h - 1) * dilation_h + 1;
  const int64_t eff_w = int64_t(kernel_w - 1) * dilation_w + 1;
  const int64_t span_h = int64_t(in_h) + pad_top + pad_bottom - eff_h;
  const int64_t span_w = int64_t(in_w) + pad_left + pad_right - eff_w;
  need(span_h >= 0, "kernel_h (dilated) larger than the padded input height");
  need(span_w >= 0, "kernel_w (dilated) larger than the padded input width");
  need(out_h == span_h / stride_h + 1,
       "out_h = " + std::to_string(out_h) + " but (in_h + pads - dilated kernel) / stride + 1 = " +
           std::to_string(span_h / stride_h + 1));
  need(out_w == span_w / stride_w + 1,
       "out_w = " + std::to_string(out_w) + " but (in_w + pads - dilated kernel) / stride + 1 = " +
           std::to_string(span_w / stride_w + 1));
}

ConvKind conv_kind(const ConvShape& s, int groups) {
  s.validate();
  if (groups == 1) {
    const bool pw = s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 &&
                    s.pad_top == 0 && s.pad_left == 0 && s.pad_bottom == 0 && s.pad_right == 0;
    return pw ? ConvKind::pointwise : ConvKind::general;
  }
  if (groups == s.in_c && s.out_c == s.in_c) return ConvKind::depthwise;
  if (groups == s.in_c)
    fail("conv: depthwise with depth multiplier " + std::to_string(s.out_c) + "/" +
         std::to_string(s.in_c) + " is not supported (only out_c == in_c == groups)");
  fail("conv: groups = " + std::to_string(groups) + " with in_c = " + std::to_string(s.in_c) +
       ", out_c = " + std::to_string(s.out_c) +
       " is not supported (only groups == 1 or depthwise groups == in_c == out_c)");
}

void PackedConvDeleter::operator()(PackedConv* p) const { delete p; }

size_t packed_conv_bytes(const PackedConv& p) {
  auto bytes = [](const auto& v) { return v.size() * sizeof(v[0]); };
  const detail::PackedGemm& g = p.gemm_w;
  const detail::PackedDepthwise& d = p.dw_w;
  return bytes(g.w) + bytes(g.bias) + bytes(g.w_zero_point) + bytes(g.bias_folded) + g.packed.size() + bytes(d.w) +
         bytes(d.bias) + bytes(d.w_zero_point) + bytes(d.bias_folded) + d.packed.size();
}

namespace detail {

void AlignedBuffer::resize(size_t bytes) {
  if (bytes == 0) {
    data_.reset();
    size_ = 0;
    return;
  }
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, rounded);
  data_.reset(static_cast<uint8_t*>(p));
  size_ = bytes;
}

}  // namespace detail

namespace {
void fill_gemm(detail::PackedGemm* g, int n, int k, const int8_t* w, const int32_t* w_zero_point,
               const int32_t* bias, int32_t x_zero_point) {
  g->n = n;
  g->k = k;
  g->x_zero_point = x_zero_point;
  g->w.assign(w, w + size_t(n) * k);
  g->bias.assign(size_t(n), 0);
  if (bias) g->bias.assign(bias, bias + n);
  g->w_zero_point.assign(size_t(n), 0);
  if (w_zero_point) g->w_zero_point.assign(w_zero_point, w_zero_point + n);
  g->symmetric = std::all_of(g->w_zero_point.begin(), g->w_zero_point.end(),
                             [](int32_t z) { return z == 0; });
}
}  // namespace

PackedConvPtr pack_conv(Isa isa, ConvKind kind, const ConvShape& s, const int8_t* weights,
                        const int32_t* w_zero_point, const int32_t* bias, int32_t x_zero_point) {
  const auto& k = detail::resolved_kernels(isa);
  const char* fn = "pack_conv";
  s.validate();
  check_ptr(fn, "weights", weights);
  check_zp(fn, "x_zero_point", x_zero_point);
  if (kind == ConvKind::depthwise && s.in_c != s.out_c)
    fail("pack_conv: a depthwise convolution needs out_c == in_c (depth multiplier 1), got in_c = " +
         std::to_string(s.in_c) + ", out_c = " + std::to_string(s.out_c));
  if (kind == ConvKind::pointwise && conv_kind(s, 1) != ConvKind::pointwise)
    fail("pack_conv: the shape is not a pointwise convolution (1x1, stride 1, no padding)");
  if (int(kind) < 0 || int(kind) > int(ConvKind::general))
    fail("pack_conv: unknown ConvKind " + std::to_string(int(kind)));
  if (w_zero_point)
    for (int c = 0; c < s.out_c; ++c)
      if (w_zero_point[c] < -128 || w_zero_point[c] > 127)
        fail("pack_conv: w_zero_point[" + std::to_string(c) + "] = " +
             std::to_string(w_zero_point[c]) + " is outside [-128, 127]");
  PackedConvPtr p(new PackedConv);
  p->isa = isa;
  p->kind = kind;
  p->shape = s;
  if (kind == ConvKind::depthwise) {
    detail::PackedDepthwise& d = p->dw_w;
    const size_t taps = size_t(s.kernel_h) * s.kernel_w;
    d.shape = s;
    d.x_zero_point = x_zero_point;
    d.w.assign(weights, weights + size_t(s.out_c) * taps);
    d.bias.assign(size_t(s.out_c), 0);
    if (bias) d.bias.assign(bias, bias + s.out_c);
    d.w_zero_point.assign(size_t(s.out_c), 0);
    if (w_zero_point) d.w_zero_point.assign(w_zero_point, w_zero_point + s.out_c);
    d.symmetric = std::all_of(d.w_zero_point.begin(), d.w_zero_point.end(),
                              [](int32_t z) { return z == 0; });
    p->depthwise = k.depthwise;
    p->depthwise_scratch_size = k.depthwise_scratch_size;
    k.depthwise_pack(&d);
  } else if (kind == ConvKind::pointwise) {
    fill_gemm(&p->gemm_w, s.out_c, s.in_c, weights, w_zero_point, bias, x_zero_point);
    p->gemm = k.gemm;
    k.gemm_pack(&p->gemm_w);
  } else {
    // OIHW -> [out_c][kh][kw][in_c], the order of an NHWC im2col row.
    const int kh = s.kernel_h, kw = s.kernel_w, ic = s.in_c;
    const size_t kk = size_t(kh) * kw * ic;
    std::vector<int8_t> w(size_t(s.out_c) * kk);
    for (int o = 0; o < s.out_c; ++o)
      for (int c = 0; c < ic; ++c)
        for (int y = 0; y < kh; ++y)
          for (int x = 0; x < kw; ++x)
            w[o * kk + (size_t(y) * kw + x) * ic + c] =
                weights[((size_t(o) * ic + c) * kh + y) * kw + x];
    if (kk >= (size_t(1) << 24)) fail("pack_conv: kernel_h * kernel_w * in_c too large");
    fill_gemm(&p->gemm_w, s.out_c, int(kk), w.data(), w_zero_point, bias, x_zero_point);
    if (k.conv_direct && k.conv_direct_pack(s, &p->gemm_w)) {
      p->direct = k.conv_direct;
      p->direct_scratch_size = k.conv_direct_scratch_size;
    } else {
      p->gemm = k.gemm;
      k.gemm_pack(&p->gemm_w);
    }
  }
  return p;
}

size_t conv_scratch_size(const PackedConv& p, int row_begin, int row_end) {
  if (row_begin < 0 || row_end > p.shape.out_h || row_begin > row_end)
    fail("conv_scratch_size: rows [" + std::to_string(row_begin) + ", " + std::to_string(row_end) +
         ") outside [0, " + std::to_string(p.shape.out_h) + ")");
  switch (p.kind) {
    case ConvKind::pointwise: return 0;
    case ConvKind::depthwise: return p.depthwise_scratch_size(p.dw_w, row_begin, row_end);
    case ConvKind::general:
      if (p.direct) return p.direct_scratch_size(p.shape, row_begin, row_end);
      return size_t(row_end - row_begin) * p.shape.out_w * size_t(p.gemm_w.k);
  }
  return 0;
}

namespace {
void check_output_stage(const char* fn, const OutputStage& out, int channels) {
  if (out.multiplier.size() != size_t(channels))
    fail(std::string(fn) + ": output stage has " + std::to_string(out.multiplier.size()) +
         " multipliers, the convolution has " + std::to_string(channels) + " output channels");
  check_zp(fn, "output zero_point", out.zero_point);
  check_clamp(fn, out.qmin, out.qmax);
}

// Copies n bytes. Short runs (a stem kernel row is kernel_w * in_c = 9 bytes)
// use two overlapping fixed-size moves instead of a call.
inline void copy_bytes(int8_t* dst, const int8_t* src, size_t n) {
  if (n >= 8 && n <= 16) {
    uint64_t a, b;
    std::memcpy(&a, src, 8);
    std::memcpy(&b, src + n - 8, 8);
    std::memcpy(dst, &a, 8);
    std::memcpy(dst + n - 8, &b, 8);
  } else if (n >= 4 && n < 8) {
    uint32_t a, b;
    std::memcpy(&a, src, 4);
    std::memcpy(&b, src + n - 4, 4);
    std::memcpy(dst, &a, 4);
    std::memcpy(dst + n - 4, &b, 4);
  } else if (n < 4) {
    for (size_t i = 0; i < n; ++i) dst[i] = src[i];
  } else {
    std::memcpy(dst, src, n);
  }
}
inline void fill_bytes(int8_t* dst, int8_t v, size_t n) {
  if (n <= 16) {
    for (size_t i = 0; i < n; ++i) dst[i] = v;
  } else {
    std::memset(dst, v, n);
  }
}

// Rows of NHWC patches for output rows [row_begin, row_end), padding = x_zp.
// A patch row is kernel_h runs of kernel_w * in_c bytes; with dilation_w == 1
// each run is contiguous in the input wherever it is fully inside it.
void im2col(const ConvShape& s, int32_t x_zp, const int8_t* x, int row_begin, int row_end,
            int8_t* col) {
  const size_t ic = size_t(s.in_c);
  const size_t run = size_t(s.kernel_w) * ic;  // bytes of one kernel row
  const int8_t pad = int8_t(x_zp);
  for (int oy = row_begin; oy < row_end; ++oy)
    for (int ox = 0; ox < s.out_w; ++ox) {
      const int ix0 = ox * s.stride_w - s.pad_left;
      const bool row_inside =
          s.dilation_w == 1 && ix0 >= 0 && ix0 + s.kernel_w <= s.in_w;
      for (int ky = 0; ky < s.kernel_h; ++ky) {
        const int iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
        if (iy < 0 || iy >= s.in_h) {
          fill_bytes(col, pad, run);
        } else if (row_inside) {
          copy_bytes(col, x + (size_t(iy) * s.in_w + ix0) * ic, run);
        } else {
          const int8_t* xrow = x + size_t(iy) * s.in_w * ic;
          for (int kx = 0; kx < s.kernel_w; ++kx) {
            const int ix = ix0 + kx * s.dilation_w;
            if (ix < 0 || ix >= s.in_w)
              fill_bytes(col + size_t(kx) * ic, pad, ic);
            else
              copy_bytes(col + size_t(kx) * ic, xrow + size_t(ix) * ic, ic);
          }
        }
        col += run;
      }
    }
}

// Output rows [row_begin, row_end) of a GEMM-based conv: pixel rows of x (already
// im2col'd for a general conv) with row stride x_stride, all output channels.
void gemm_output_rows(const PackedConv& p, const OutputStage& out, const int8_t* x,
                      size_t x_stride, int8_t* y, int row_begin, int row_end) {
  const ConvShape& s = p.shape;
  detail::GemmArgs a;
  a.w = &p.gemm_w;
  a.out = &out;
  a.m = size_t(row_end - row_begin) * s.out_w;
  a.x = x;
  a.x_stride = x_stride;
  a.y = y + size_t(row_begin) * s.out_w * s.out_c;
  a.y_stride = size_t(s.out_c);
  a.n_begin = 0;
  a.n_end = s.out_c;
  p.gemm(a);
}
}  // namespace

void conv_run(const PackedConv& p, const OutputStage& out, const int8_t* x, int8_t* y,
              int row_begin, int row_end, void* scratch) {
  const char* fn = "conv_run";
  const ConvShape& s = p.shape;
  if (row_begin < 0 || row_end > s.out_h || row_begin > row_end)
    fail("conv_run: rows [" + std::to_string(row_begin) + ", " + std::to_string(row_end) +
         ") outside [0, " + std::to_string(s.out_h) + "]");
  check_output_stage(fn, out, s.out_c);
  if (row_begin == row_end) return;
  check_ptr(fn, "x", x);
  check_ptr(fn, "y", y);
  if (conv_scratch_size(p, row_begin, row_end) > 0) check_ptr(fn, "scratch", scratch);
  switch (p.kind) {
    case ConvKind::pointwise:
      gemm_output_rows(p, out, x + size_t(row_begin) * s.in_w * s.in_c, size_t(s.in_c), y,
                       row_begin, row_end);
      return;
    case ConvKind::depthwise:
      p.depthwise(detail::DepthwiseArgs{&p.dw_w, &out, x, y, row_begin, row_end, scratch});
      return;
    case ConvKind::general: {
      if (p.direct) {
        p.direct(detail::DirectConvArgs{&s, &p.gemm_w, &out, x, y, row_begin, row_end, scratch});
        return;
      }
      int8_t* col = static_cast<int8_t*>(scratch);
      im2col(s, p.gemm_w.x_zero_point, x, row_begin, row_end, col);
      gemm_output_rows(p, out, col, size_t(p.gemm_w.k), y, row_begin, row_end);
      return;
    }
  }
}

int gemm_column_block(const PackedConv& p) {
  if (p.kind == ConvKind::depthwise) fail("gemm_column_block: not a GEMM (depthwise conv)");
  return std::max(1, p.gemm_w.n_block);
}

void gemm_run_columns(const PackedConv& p, const OutputStage& out, const int8_t* x, int8_t* y,
                      size_t m, int n_begin, int n_end) {
  const char* fn = "gemm_run_columns";
  if (p.kind != ConvKind::pointwise)
    fail("gemm_run_columns: needs a pointwise / fully connected packing");
  const int n = p.gemm_w.n, block = gemm_column_block(p);
  if (n_begin < 0 || n_end > n || n_begin > n_end)
    fail("gemm_run_columns: columns [" + std::to_string(n_begin) + ", " + std::to_string(n_end) +
         ") outside [0, " + std::to_string(n) + "]");
  if (n_begin % block != 0 || (n_end % block != 0 && n_end != n))
    fail("gemm_run_columns: column bounds must be multiples of gemm_column_block() = " +
         std::to_string(block) + " (or the end column)");
  if (m > (size_t(1) << 40) / size_t(std::max(1, std::max(p.gemm_w.k, n))))
    fail("gemm_run_columns: m = " + std::to_string(m) + " rows is too large");
  check_output_stage(fn, out, n);
  if (m == 0 || n_begin == n_end) return;
  check_ptr(fn, "x", x);
  check_ptr(fn, "y", y);
  detail::GemmArgs a;
  a.w = &p.gemm_w;
  a.out = &out;
  a.m = m;
  a.x = x;
  a.x_stride = size_t(p.gemm_w.k);
  a.y = y;
  a.y_stride = size_t(n);
  a.n_begin = n_begin;
  a.n_end = n_end;
  p.gemm(a);
}

}  // namespace mnq
