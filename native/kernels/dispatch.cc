// The public kernel API (kernels.h): ISA detection and choice, parameter
// validation, weight packing and dispatch to the per-ISA tables (internal.h).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

#include "internal.h"
#include "quant.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define MNQ_X86 1
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#define MNQ_ARM64_LINUX 1
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

namespace mnq {

// ------------------------------------------------------------------ helpers
namespace {

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

// ---------------------------------------------------------- CPU features
struct CpuFeatures {
  bool avx2 = false;        // AVX2 + FMA + OS saves YMM
  bool avxvnni = false;     // AVX2 + AVX-VNNI (VEX vpdpbusd)
  bool avx512vnni = false;  // AVX-512 F/BW/VL/DQ + VNNI + OS saves ZMM
  bool neon = false;
  bool neondot = false;
};

CpuFeatures detect_cpu() {
  CpuFeatures f;
#if defined(MNQ_X86)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
  if (!osxsave || !avx) return f;
  uint32_t xcr0_lo, xcr0_hi;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const bool ymm = (xcr0_lo & 0x6) == 0x6;
  const bool zmm = (xcr0_lo & 0xe6) == 0xe6;
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  const unsigned max_subleaf7 = a;
  const bool avx2 = (b >> 5) & 1;
  const bool avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
             avx512vl = (b >> 31) & 1, vnni = (c >> 11) & 1;
  f.avx2 = ymm && avx2 && fma;
  f.avx512vnni = f.avx2 && zmm && avx512f && avx512dq && avx512bw && avx512vl && vnni;
  if (max_subleaf7 >= 1) {
    __cpuid_count(7, 1, a, b, c, d);
    f.avxvnni = f.avx2 && ((a >> 4) & 1);  // CPUID.(EAX=7,ECX=1):EAX[4] AVX-VNNI
  }
#elif defined(MNQ_ARM64_LINUX)
  const unsigned long hw = getauxval(AT_HWCAP);
  f.neon = (hw & HWCAP_ASIMD) != 0;
  f.neondot = f.neon && (hw & HWCAP_ASIMDDP) != 0;
#elif defined(__aarch64__)
  f.neon = true;  // ASIMD is mandatory on AArch64; no portable dot-product probe here
#endif
  return f;
}

const CpuFeatures& cpu() {
  static const CpuFeatures f = detect_cpu();
  return f;
}

const detail::IsaKernels* table_of(Isa isa) {
  switch (isa) {
    case Isa::scalar: return &detail::scalar_kernels();
    case Isa::avx2: return detail::avx2_kernels();
    case Isa::avxvnni: return detail::avxvnni_kernels();
    case Isa::avx512vnni: return detail::avx512vnni_kernels();
    case Isa::neon: return detail::neon_kernels();
    case Isa::neondot: return detail::neondot_kernels();
  }
  return nullptr;
}

bool cpu_has(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return cpu().avx2;
    case Isa::avxvnni: return cpu().avxvnni;
    case Isa::avx512vnni: return cpu().avx512vnni;
    case Isa::neon: return cpu().neon;
    case Isa::neondot: return cpu().neondot;
  }
  return false;
}

// From the narrowest to the widest: default_isa() picks the last supported one.
const Isa kAllIsas[] = {Isa::scalar,     Isa::avx2, Isa::avxvnni,
                        Isa::avx512vnni, Isa::neon, Isa::neondot};

std::string isa_list(const std::vector<Isa>& v) {
  std::string s;
  for (Isa i : v) s += (s.empty() ? "" : ", ") + std::string(isa_name(i));
  return s;
}

}  // namespace

// --------------------------------------------------------------- ISA choice
const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avxvnni: return "avxvnni";
    case Isa::avx512vnni: return "avx512vnni";
    case Isa::neon: return "neon";
    case Isa::neondot: return "neondot";
  }
  return "unknown";
}

bool parse_isa(const std::string& name, Isa* out) {
  for (Isa i : kAllIsas)
    if (name == isa_name(i)) {
      if (out) *out = i;
      return true;
    }
  return false;
}

bool isa_supported(Isa isa) { return table_of(isa) != nullptr && cpu_has(isa); }

std::vector<Isa> supported_isas() {
  std::vector<Isa> v;
  for (Isa i : kAllIsas)
    if (isa_supported(i)) v.push_back(i);
  return v;
}

Isa default_isa() {
  const std::vector<Isa> sup = supported_isas();
  const char* env = std::getenv("MNQ_ISA");
  if (env && *env) {
    Isa isa;
    if (!parse_isa(env, &isa))
      throw std::runtime_error(std::string("mnq: MNQ_ISA='") + env +
                               "' is not an ISA mnq knows (scalar, avx2, avxvnni, avx512vnni, neon, "
                               "neondot); this CPU supports: " + isa_list(sup));
    if (!isa_supported(isa))
      throw std::runtime_error(std::string("mnq: MNQ_ISA='") + env +
                               "' is not supported on this CPU / build; supported: " +
                               isa_list(sup));
    return isa;
  }
  return sup.back();  // ordered from scalar to the widest
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

const IsaKernels& resolved_kernels(Isa isa) {
  if (!parse_isa(isa_name(isa), nullptr)) fail("unknown ISA value " + std::to_string(int(isa)));
  if (!isa_supported(isa))
    fail(std::string("ISA ") + isa_name(isa) + " is not supported on this CPU / build (supported: " +
         isa_list(supported_isas()) + ")");
  // Tables are immutable: resolve every ISA once (thread-safe static init).
  struct Resolved {
    IsaKernels k[sizeof(kAllIsas) / sizeof(kAllIsas[0])];
  };
  static const Resolved resolved = [] {
    Resolved r;
    const IsaKernels& s = scalar_kernels();
    for (Isa i : kAllIsas) {
      const IsaKernels* t = table_of(i);
      // Null entries fall back to scalar; avxvnni (which implies AVX2) falls
      // back to the resolved AVX2 table, resolved before it in kAllIsas.
      IsaKernels k = i == Isa::avxvnni ? r.k[int(Isa::avx2)] : s;
      if (t) {
        // A GEMM / depthwise kernel always runs on weights packed by its own table.
        if (t->gemm) { k.gemm = t->gemm; k.gemm_pack = t->gemm_pack ? t->gemm_pack : s.gemm_pack; }
        if (t->depthwise) {
          k.depthwise = t->depthwise;
          k.depthwise_pack = t->depthwise_pack ? t->depthwise_pack : s.depthwise_pack;
          k.depthwise_scratch_size =
              t->depthwise_scratch_size ? t->depthwise_scratch_size : s.depthwise_scratch_size;
        }
        if (t->conv_direct) {
          k.conv_direct = t->conv_direct;
          k.conv_direct_pack = t->conv_direct_pack;
          k.conv_direct_scratch_size = t->conv_direct_scratch_size;
        }
        if (t->global_avg_pool) k.global_avg_pool = t->global_avg_pool;
        if (t->add) k.add = t->add;
        if (t->mul) k.mul = t->mul;
        if (t->mul_channelwise) k.mul_channelwise = t->mul_channelwise;
        if (t->lut_apply) k.lut_apply = t->lut_apply;
        if (t->quantize_nchw_to_nhwc) k.quantize_nchw_to_nhwc = t->quantize_nchw_to_nhwc;
        if (t->dequantize) k.dequantize = t->dequantize;
      }
      r.k[int(i)] = k;
    }
    return r;
  }();
  return resolved.k[int(isa)];
}

}  // namespace detail

// ------------------------------------------------------------ output stage
OutputStage make_output_stage(float x_scale, const float* w_scale, size_t channels,
                              float y_scale, int32_t y_zero_point, int32_t qmin, int32_t qmax) {
  const char* fn = "make_output_stage";
  check_scale(fn, "x_scale", x_scale);
  check_scale(fn, "y_scale", y_scale);
  check_zp(fn, "y_zero_point", y_zero_point);
  check_clamp(fn, qmin, qmax);
  if (channels == 0) fail("make_output_stage: channels must be > 0");
  check_ptr(fn, "w_scale", w_scale);
  OutputStage o;
  o.multiplier.resize(channels);
  for (size_t c = 0; c < channels; ++c) {
    if (!(std::isfinite(w_scale[c]) && w_scale[c] > 0.0f))
      fail("make_output_stage: w_scale[" + std::to_string(c) +
           "] must be a finite positive float, got " + std::to_string(w_scale[c]));
    const float xw = x_scale * w_scale[c];  // float32, ORT's order: (x * w) / y
    o.multiplier[c] = xw / y_scale;
  }
  o.zero_point = y_zero_point;
  o.qmin = qmin;
  o.qmax = qmax;
  return o;
}

// ------------------------------------------------------------ lookup tables
namespace {
float eval_unary(const UnaryParams& f, float x) {
  switch (f.fn) {
    case UnaryFn::identity: return x;
    case UnaryFn::relu: return x > 0.0f ? x : 0.0f;
    case UnaryFn::clip: {
      float v = x < f.p0 ? f.p0 : x;  // Clip: max(x, min) then min(., max)
      return v > f.p1 ? f.p1 : v;
    }
    case UnaryFn::hardsigmoid: return quant::hardsigmoid(x, f.p0, f.p1);
    case UnaryFn::hardswish: return x * quant::hardsigmoid(x, 1.0f / 6.0f, 0.5f);
    case UnaryFn::sigmoid: return quant::logistic(x);
    case UnaryFn::tanh: return quant::tanh(x);
    case UnaryFn::leakyrelu: return x >= 0.0f ? x : f.p0 * x;
    case UnaryFn::mul_hardsigmoid: return x * quant::hardsigmoid(x, f.p0, f.p1);
  }
  fail("make_lut: unknown UnaryFn " + std::to_string(int(f.fn)));
}
}  // namespace

void make_lut(const UnaryParams& f, float x_scale, int32_t x_zero_point, float y_scale,
              int32_t y_zero_point, int8_t table[256]) {
  const char* fn = "make_lut";
  check_scale(fn, "x_scale", x_scale);
  check_scale(fn, "y_scale", y_scale);
  check_zp(fn, "x_zero_point", x_zero_point);
  check_zp(fn, "y_zero_point", y_zero_point);
  check_ptr(fn, "table", table);
  if (int(f.fn) < 0 || int(f.fn) > int(UnaryFn::mul_hardsigmoid))
    fail("make_lut: unknown UnaryFn " + std::to_string(int(f.fn)));
  if (f.fn == UnaryFn::clip && !(f.p0 <= f.p1))
    fail("make_lut: clip needs min <= max, got [" + std::to_string(f.p0) + ", " +
         std::to_string(f.p1) + "]");
  for (int q = -128; q <= 127; ++q) {
    const float x = quant::dequantize_linear(q, x_scale, x_zero_point);
    table[q + 128] = quant::quantize_linear(eval_unary(f, x), y_scale, y_zero_point);
  }
}

void lut_apply(Isa isa, const int8_t table[256], size_t n, const int8_t* x, int8_t* y) {
  const auto& k = detail::resolved_kernels(isa);
  if (n == 0) return;
  check_ptr("lut_apply", "table", table);
  check_ptr("lut_apply", "x", x);
  check_ptr("lut_apply", "y", y);
  k.lut_apply(table, n, x, y);
}

// ------------------------------------------------- input / output conversion
void quantize_nchw_to_nhwc(Isa isa, const float* x, size_t c, size_t h, size_t w, float scale,
                           int32_t zero_point, int8_t* y) {
  const auto& k = detail::resolved_kernels(isa);
  const char* fn = "quantize_nchw_to_nhwc";
  check_scale(fn, "scale", scale);
  check_zp(fn, "zero_point", zero_point);
  if (c == 0 || h == 0 || w == 0) return;
  check_ptr(fn, "x", x);
  check_ptr(fn, "y", y);
  k.quantize_nchw_to_nhwc(x, c, h, w, scale, zero_point, y);
}

void dequantize(Isa isa, const int8_t* q, size_t n, float scale, int32_t zero_point, float* y) {
  const auto& k = detail::resolved_kernels(isa);
  const char* fn = "dequantize";
  check_scale(fn, "scale", scale);
  check_zp(fn, "zero_point", zero_point);
  if (n == 0) return;
  check_ptr(fn, "q", q);
  check_ptr(fn, "y", y);
  k.dequantize(q, n, scale, zero_point, y);
}

// ---------------------------------------------------------------- convolution
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

// ---------------------------------------------------------------- pooling
void global_avg_pool(Isa isa, const GlobalAvgPoolParams& p, size_t hw, size_t c, const int8_t* x,
                     int8_t* y) {
  const auto& k = detail::resolved_kernels(isa);
  const char* fn = "global_avg_pool";
  check_scale(fn, "x_scale", p.x_scale);
  check_scale(fn, "y_scale", p.y_scale);
  check_zp(fn, "x_zero_point", p.x_zero_point);
  check_zp(fn, "y_zero_point", p.y_zero_point);
  if (hw == 0) fail("global_avg_pool: hw must be > 0");
  if (hw >= (size_t(1) << 24)) fail("global_avg_pool: hw must be < 2^24 (as in ONNX Runtime)");
  if (c == 0) return;
  check_ptr(fn, "x", x);
  check_ptr(fn, "y", y);
  k.global_avg_pool(p, hw, c, x, y);
}

// ---------------------------------------------------------------- elementwise
void add(Isa isa, const AddParams& p, size_t n, const int8_t* a, const int8_t* b, int8_t* y) {
  const auto& k = detail::resolved_kernels(isa);
  const char* fn = "add";
  check_scale(fn, "a_scale", p.a_scale);
  check_scale(fn, "b_scale", p.b_scale);
  check_scale(fn, "y_scale", p.y_scale);
  check_zp(fn, "a_zero_point", p.a_zero_point);
  check_zp(fn, "b_zero_point", p.b_zero_point);
  check_zp(fn, "y_zero_point", p.y_zero_point);
  check_clamp(fn, p.qmin, p.qmax);
  // Scale ratios beyond 2^16 could overflow the int32 conversion; no real model has them.
  if (p.a_scale / p.y_scale >= 65536.0f || p.b_scale / p.y_scale >= 65536.0f)
    fail("add: a_scale / y_scale and b_scale / y_scale must be < 65536");
  if (n == 0) return;
  check_ptr(fn, "a", a);
  check_ptr(fn, "b", b);
  check_ptr(fn, "y", y);
  k.add(p, n, a, b, y);
}

namespace {
void check_mul(const char* fn, const MulParams& p) {
  check_scale(fn, "a_scale", p.a_scale);
  check_scale(fn, "b_scale", p.b_scale);
  check_scale(fn, "y_scale", p.y_scale);
  check_zp(fn, "a_zero_point", p.a_zero_point);
  check_zp(fn, "b_zero_point", p.b_zero_point);
  check_zp(fn, "y_zero_point", p.y_zero_point);
  if (p.offset != 0 && p.offset != 128)
    fail(std::string(fn) + ": offset must be 0 (int8 tensors) or 128 (uint8 tensors), got " + std::to_string(p.offset));
  const float r = quant::mul_ratio(p.a_scale, p.b_scale, p.y_scale);
  if (!std::isfinite(r) || r >= 32768.0f)
    fail(std::string(fn) + ": a_scale * b_scale / y_scale must be < 32768");
}
}  // namespace

void mul(Isa isa, const MulParams& p, size_t n, const int8_t* a, const int8_t* b, int8_t* y) {
  const auto& k = detail::resolved_kernels(isa);
  check_mul("mul", p);
  if (n == 0) return;
  check_ptr("mul", "a", a);
  check_ptr("mul", "b", b);
  check_ptr("mul", "y", y);
  k.mul(p, n, a, b, y);
}

void mul_channelwise(Isa isa, const MulParams& p, size_t hw, size_t c, const int8_t* x,
                     const int8_t* s, int8_t* y) {
  const auto& k = detail::resolved_kernels(isa);
  check_mul("mul_channelwise", p);
  if (hw == 0 || c == 0) return;
  check_ptr("mul_channelwise", "x", x);
  check_ptr("mul_channelwise", "s", s);
  check_ptr("mul_channelwise", "y", y);
  k.mul_channelwise(p, hw, c, x, s, y);
}

}  // namespace mnq
