// AVX2 elementwise kernels: add, mul, channelwise mul, global average pool,
// quantize, dequantize (lut_apply stays scalar). Bit-identical to the scalar
// reference (ref/elementwise.cc).
//
// Same arithmetic as quant.h, 8 lanes at a time; tails go through a small
// buffer so nothing is read or written beyond the arrays. Constants come from
// the quant.h helpers (computed by the callers outside the target region).
#include <cstring>

#include "../../elementwise_entry.h"
#include "../../internal.h"
#include "../../quant.h"
#include "../target.h"
#include "table.h"

#if defined(__x86_64__) || defined(_M_X64)

MNQ_AVX2_BEGIN

#include "lanes.h"

namespace mnq {
namespace detail {
namespace {

inline __m256i load8_widen_n(const int8_t* p, size_t left) {
  return left >= 8 ? load8_widen(p) : load_tail_widen(p, int(left));
}
// 8 int32 lanes already in int8 range -> 8 bytes.
inline __m128i narrow8(__m256i q) {
  const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  return _mm_packs_epi16(w16, w16);
}
inline void store8_n(int8_t* dst, __m256i q, size_t left) {
  store_cols(dst, narrow8(q), left >= 8 ? 8 : int(left));
}

// quant::add_one with the two clamps merged: rounding commutes with clamping to
// integer bounds, so clamp(t, max(-128, qmin), min(127, qmax)) then round.
void add_kernel(float ra, float rb, float fixed, float offset, int32_t qmin, int32_t qmax, size_t n,
                const int8_t* a, const int8_t* b, int8_t* y) {
  const __m256 vra = _mm256_set1_ps(ra), vrb = _mm256_set1_ps(rb), vfixed = _mm256_set1_ps(fixed);
  const __m256 voff = _mm256_set1_ps(offset);
  const __m256 lo = _mm256_set1_ps(float(qmin > -128 ? qmin : -128));
  const __m256 hi = _mm256_set1_ps(float(qmax < 127 ? qmax : 127));
  for (size_t i = 0; i < n; i += 8) {
    const __m256 av = _mm256_add_ps(_mm256_cvtepi32_ps(load8_widen_n(a + i, n - i)), voff);
    const __m256 bv = _mm256_add_ps(_mm256_cvtepi32_ps(load8_widen_n(b + i, n - i)), voff);
    __m256 t = _mm256_fmadd_ps(bv, vrb, vfixed);
    t = _mm256_fmadd_ps(av, vra, t);
    t = _mm256_sub_ps(t, voff);
    t = _mm256_min_ps(_mm256_max_ps(t, lo), hi);
    store8_n(y + i, _mm256_cvtps_epi32(t), n - i);
  }
}

// quant::mul_one: t = float((a - za) * (b - zb)) * ratio + float(zc + offset),
// clamped to [-128, 127] + offset, rounded, minus offset.
struct MulConsts {
  __m256 ratio, zc, lo, hi;
  __m256i offset;
  MulConsts(float r, int32_t z, int32_t off)
      : ratio(_mm256_set1_ps(r)), zc(_mm256_set1_ps(float(z + off))), lo(_mm256_set1_ps(float(-128 + off))),
        hi(_mm256_set1_ps(float(127 + off))), offset(_mm256_set1_epi32(off)) {}
};
inline __m256i mul8(__m256i a, __m256i b, const MulConsts& k) {
  __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_mullo_epi32(a, b)), k.ratio);
  f = _mm256_add_ps(f, k.zc);
  f = _mm256_min_ps(_mm256_max_ps(f, k.lo), k.hi);
  return _mm256_sub_epi32(_mm256_cvtps_epi32(f), k.offset);
}

void mul_kernel(float ratio, int32_t za, int32_t zb, int32_t zc, int32_t offset, size_t n, const int8_t* a,
                const int8_t* b, int8_t* y) {
  const MulConsts k(ratio, zc, offset);
  const __m256i vza = _mm256_set1_epi32(za), vzb = _mm256_set1_epi32(zb);
  for (size_t i = 0; i < n; i += 8) {
    const __m256i av = _mm256_sub_epi32(load8_widen_n(a + i, n - i), vza);
    const __m256i bv = _mm256_sub_epi32(load8_widen_n(b + i, n - i), vzb);
    store8_n(y + i, mul8(av, bv, k), n - i);
  }
}

void mul_channelwise_kernel(float ratio, int32_t za, int32_t zb, int32_t zc, int32_t offset, size_t hw,
                            size_t c, const int8_t* x, const int8_t* s, int8_t* y) {
  const MulConsts k(ratio, zc, offset);
  const __m256i vza = _mm256_set1_epi32(za), vzb = _mm256_set1_epi32(zb);
  for (size_t c0 = 0; c0 < c; c0 += 8) {
    const size_t left = c - c0;
    const __m256i sv = _mm256_sub_epi32(load8_widen_n(s + c0, left), vzb);
    for (size_t i = 0; i < hw; ++i) {
      const __m256i xv = _mm256_sub_epi32(load8_widen_n(x + i * c + c0, left), vza);
      store8_n(y + i * c + c0, mul8(xv, sv, k), left);
    }
  }
}

// Sum over pixels per channel, then quant::requantize(acc, scale, zy, -128, 127).
void gap_kernel(float scale, int32_t bias, int32_t zy, size_t hw, size_t c, const int8_t* x,
                int8_t* y) {
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256 lo = _mm256_set1_ps(float(-128 - zy)), hi = _mm256_set1_ps(float(127 - zy));
  const __m256i vzy = _mm256_set1_epi32(zy);
  size_t c0 = 0;
  for (; c0 + 32 <= c; c0 += 32) {  // 32 channels per pass: four independent sums
    __m256i s0 = _mm256_set1_epi32(bias), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < hw; ++i) {
      const int8_t* p = x + i * c + c0;
      s0 = _mm256_add_epi32(s0, load8_widen(p));
      s1 = _mm256_add_epi32(s1, load8_widen(p + 8));
      s2 = _mm256_add_epi32(s2, load8_widen(p + 16));
      s3 = _mm256_add_epi32(s3, load8_widen(p + 24));
    }
    const __m256i sums[4] = {s0, s1, s2, s3};
    for (int j = 0; j < 4; ++j) {
      __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(sums[j]), vs);
      f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
      store8_n(y + c0 + 8 * j, _mm256_add_epi32(_mm256_cvtps_epi32(f), vzy), 8);
    }
  }
  for (; c0 < c; c0 += 8) {
    const size_t left = c - c0;
    __m256i acc = _mm256_set1_epi32(bias);
    for (size_t i = 0; i < hw; ++i) acc = _mm256_add_epi32(acc, load8_widen_n(x + i * c + c0, left));
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), vs);
    f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
    store8_n(y + c0, _mm256_add_epi32(_mm256_cvtps_epi32(f), vzy), left);
  }
}

// quant::quantize_linear: v = x / scale; v = max(v, lo) (NaN -> lo); v = min(v, hi);
// q = round(v) + zp. MAXPS returns its second operand when the first is NaN.
void quantize_kernel(const float* x, size_t c, size_t h, size_t w, float scale, int32_t zp,
                     int8_t* y) {
  const size_t hw = h * w;
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256 lo = _mm256_set1_ps(float(-128 - zp)), hi = _mm256_set1_ps(float(127 - zp));
  const __m256i vzp = _mm256_set1_epi32(zp);
  alignas(16) int8_t q[16];
  alignas(32) float tmp[8];
  for (size_t ch = 0; ch < c; ++ch) {
    const float* src = x + ch * hw;
    for (size_t i = 0; i < hw; i += 8) {
      const size_t cnt = hw - i < 8 ? hw - i : 8;
      __m256 v;
      if (cnt == 8) {
        v = _mm256_loadu_ps(src + i);
      } else {
        for (size_t j = 0; j < 8; ++j) tmp[j] = j < cnt ? src[i + j] : 0.0f;
        v = _mm256_load_ps(tmp);
      }
      v = _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(v, vs), lo), hi);
      _mm_store_si128(reinterpret_cast<__m128i*>(q), narrow8(_mm256_add_epi32(_mm256_cvtps_epi32(v), vzp)));
      int8_t* dst = y + i * c + ch;
      for (size_t j = 0; j < cnt; ++j) dst[j * c] = q[j];
    }
  }
}

void dequantize_kernel(const int8_t* q, size_t n, float scale, int32_t zp, float* y) {
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256i vzp = _mm256_set1_epi32(zp);
  alignas(32) float tmp[8];
  for (size_t i = 0; i < n; i += 8) {
    const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(load8_widen_n(q + i, n - i), vzp)), vs);
    if (n - i >= 8) {
      _mm256_storeu_ps(y + i, f);
    } else {
      _mm256_store_ps(tmp, f);
      for (size_t j = 0; j < n - i; ++j) y[i + j] = tmp[j];
    }
  }
}

// ---- wide ops that do not accumulate (int16 activations; ref/elementwise_wide.cc).

inline void store8_i32(int8_t* p, __m256i q) { _mm_storel_epi64(reinterpret_cast<__m128i*>(p), narrow8(q)); }
inline void store8_i32(int16_t* p, __m256i q) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)));
}

// ORT's float graph (DQ -> op -> Q) for a wide binary op, 8 lanes at a time: the same float operations in the
// same order as quant.h (the build has -ffp-contract=off: no fused multiply-add arises).
struct WideLanes {
  __m256 sa, sb, sy, lo, hi;
  __m256i za, zb, zy;
  explicit WideLanes(const WideBinaryParams& p)
      : sa(_mm256_set1_ps(p.a.scale)), sb(_mm256_set1_ps(p.b.scale)), sy(_mm256_set1_ps(p.y.scale)),
        lo(_mm256_set1_ps(static_cast<float>(p.qmin - p.y.zero_point))),
        hi(_mm256_set1_ps(static_cast<float>(p.qmax - p.y.zero_point))), za(_mm256_set1_epi32(p.a.zero_point)),
        zb(_mm256_set1_epi32(p.b.zero_point)), zy(_mm256_set1_epi32(p.y.zero_point)) {}
  static __m256 dq(__m256i v, __m256i z, __m256 s) { return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(v, z)), s); }
  template <typename T> __m256 a(const T* p) const { return dq(load8_widen(p), za, sa); }
  template <typename T> __m256 b(const T* p) const { return dq(load8_widen(p), zb, sb); }
  // quant::quantize_linear_to: t / sy, clamped (max_ps(NaN, lo) = lo), round half to even (cvtps), + zy
  template <typename Y> void q(Y* y, __m256 t) const {
    const __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(t, sy), lo), hi);
    store8_i32(y, _mm256_add_epi32(_mm256_cvtps_epi32(v), zy));
  }
};
// The same for one value (the tails).
inline float dq1(int32_t v, const Quant& q) { return quant::dequantize_linear(v, q.scale, q.zero_point); }
template <typename Y>
void q1(Y* y, float t, const WideBinaryParams& p) {
  *y = static_cast<Y>(quant::quantize_linear_to(t, p.y.scale, p.y.zero_point, p.qmin, p.qmax));
}

// Calls f(a, b, y) with the three arrays as pointers to their dtypes (int8_t / int16_t).
template <typename F>
void with_wide_types(const WideBinaryParams& p, const void* a, const void* b, void* y, F f) {
  const auto on_y = [&](auto ta, auto tb) {
    if (p.y.dtype == Dtype::int16) f(ta, tb, static_cast<int16_t*>(y));
    else f(ta, tb, static_cast<int8_t*>(y));
  };
  const auto on_b = [&](auto ta) {
    if (p.b.dtype == Dtype::int16) on_y(ta, static_cast<const int16_t*>(b));
    else on_y(ta, static_cast<const int8_t*>(b));
  };
  if (p.a.dtype == Dtype::int16) on_b(static_cast<const int16_t*>(a));
  else on_b(static_cast<const int8_t*>(a));
}

// ---- wide channelwise mul (the SE scale with int16 tensors): a' * s'[c], 8 channels a step.
void mul_channelwise_wide(const WideBinaryParams& p, size_t hw, size_t c, const void* xv, const void* sv, void* yv) {
  with_wide_types(p, xv, sv, yv, [&](auto x, auto s, auto y) {
    const WideLanes l(p);
    const size_t c8 = c & ~size_t(7);
    for (size_t c0 = 0; c0 < c8; c0 += 8) {
      const __m256 bv = l.b(s + c0);
      for (size_t i = 0; i < hw; ++i) l.q(y + i * c + c0, _mm256_mul_ps(l.a(x + i * c + c0), bv));
    }
    for (size_t ch = c8; ch < c; ++ch)
      for (size_t i = 0; i < hw; ++i) q1(y + i * c + ch, dq1(x[i * c + ch], p.a) * dq1(s[ch], p.b), p);
  });
}

// ---- wide add (residuals with int16 tensors): a' + b', 8 values a step.
void add_wide(const WideBinaryParams& p, size_t n, const void* av, const void* bv, void* yv) {
  with_wide_types(p, av, bv, yv, [&](auto a, auto b, auto y) {
    const WideLanes l(p);
    const size_t n8 = n & ~size_t(7);
    for (size_t i = 0; i < n8; i += 8) l.q(y + i, _mm256_add_ps(l.a(a + i), l.b(b + i)));
    for (size_t i = n8; i < n; ++i) q1(y + i, dq1(a[i], p.a) + dq1(b[i], p.b), p);
  });
}

// ---- wide global average pool: the exact per-channel sum of x - zp in int32 lanes, 8 channels a step (exact:
// the entry point hands hw * 65535 >= 2^31 to the scalar kernel), then quant::requantize64 as the reference.
template <typename X, typename Y>
void gap_wide_t(const WideGapParams& p, size_t hw, size_t c, const X* x, Y* y) {
  const float scale = quant::gap_scale(p.x.scale, p.y.scale, hw);
  const size_t c8 = c & ~size_t(7);
  alignas(32) int32_t sums[8];
  for (size_t c0 = 0; c0 < c8; c0 += 8) {
    __m256i acc = _mm256_setzero_si256();
    for (size_t i = 0; i < hw; ++i) acc = _mm256_add_epi32(acc, load8_widen(x + i * c + c0));
    _mm256_store_si256(reinterpret_cast<__m256i*>(sums), acc);
    for (int k = 0; k < 8; ++k) {
      const int64_t s = int64_t(sums[k]) - int64_t(p.x.zero_point) * int64_t(hw);
      y[c0 + size_t(k)] = static_cast<Y>(quant::requantize64(s, scale, p.y.zero_point, p.qmin, p.qmax));
    }
  }
  for (size_t ch = c8; ch < c; ++ch) {
    int64_t s = 0;
    for (size_t i = 0; i < hw; ++i) s += int64_t(x[i * c + ch]) - p.x.zero_point;
    y[ch] = static_cast<Y>(quant::requantize64(s, scale, p.y.zero_point, p.qmin, p.qmax));
  }
}
template <typename X>
void gap_wide_y(const WideGapParams& p, size_t hw, size_t c, const X* x, void* y) {
  if (p.y.dtype == Dtype::int16) gap_wide_t(p, hw, c, x, static_cast<int16_t*>(y));
  else gap_wide_t(p, hw, c, x, static_cast<int8_t*>(y));
}
void global_avg_pool_wide(const WideGapParams& p, size_t hw, size_t c, const void* x, void* y) {
  if (hw * 65535 >= (size_t(1) << 31)) {  // the int32 lane sums could overflow: the scalar kernel (int64)
    scalar_kernels().global_avg_pool_wide(p, hw, c, x, y);
    return;
  }
  if (p.x.dtype == Dtype::int16) gap_wide_y(p, hw, c, static_cast<const int16_t*>(x), y);
  else gap_wide_y(p, hw, c, static_cast<const int8_t*>(x), y);
}

}  // namespace
}  // namespace detail
}  // namespace mnq

MNQ_TARGET_END

namespace mnq {
namespace detail {
namespace avx2 {
void set_elementwise(IsaKernels& t) {
  t.global_avg_pool = global_avg_pool_entry<gap_kernel>;
  t.add = add_entry<add_kernel>;
  t.mul = mul_entry<mul_kernel>;
  t.mul_channelwise = mul_channelwise_entry<mul_channelwise_kernel>;
  t.mul_channelwise_wide = mul_channelwise_wide;
  t.add_wide = add_wide;
  t.global_avg_pool_wide = global_avg_pool_wide;
  // lut_apply: no AVX2 byte-table lookup; the scalar entry is used.
  t.quantize_nchw_to_nhwc = quantize_kernel;
  t.dequantize = dequantize_kernel;
}
}  // namespace avx2
}  // namespace detail
}  // namespace mnq

#endif
