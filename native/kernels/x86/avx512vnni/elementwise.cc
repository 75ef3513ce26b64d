// AVX-512 VNNI elementwise kernels: add, global average pool, table lookup
// (lut_apply), quantize, dequantize. Bit-identical to the scalar reference
// (ref/elementwise.cc). Mul and channelwise mul come from the AVX2 table
// (isa.cc): their rounding changed to ONNX Runtime's (the output zero point
// added in float, 2026-12-03) on a machine without AVX-512, so the AVX-512
// form waits for one where test_simd_parity can run it.
//
// Same arithmetic as quant.h, 16 lanes at a time; tails use masked loads and
// stores. Constants come from the quant.h helpers (computed by the callers
// outside the target region).
#include <cstring>

#include "../../elementwise_entry.h"
#include "../../internal.h"
#include "../target.h"
#include "table.h"

#if defined(__x86_64__) || defined(_M_X64)

MNQ_AVX512VNNI_BEGIN

#include "epilogue.h"

namespace mnq {
namespace detail {
namespace {

inline __mmask16 lanes(size_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
}
inline __m512i load16_widen(__mmask16 m, const int8_t* p) {
  return _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p));
}

// quant::add_one with the two clamps merged: rounding commutes with clamping to
// integer bounds, so clamp(t, max(-128, qmin), min(127, qmax)) then round.
void add_kernel(float ra, float rb, float fixed, float offset, int32_t qmin, int32_t qmax, size_t n,
                const int8_t* a, const int8_t* b, int8_t* y) {
  const __m512 vra = _mm512_set1_ps(ra), vrb = _mm512_set1_ps(rb), vfixed = _mm512_set1_ps(fixed);
  const __m512 voff = _mm512_set1_ps(offset);
  const __m512 lo = _mm512_set1_ps(float(qmin > -128 ? qmin : -128));
  const __m512 hi = _mm512_set1_ps(float(qmax < 127 ? qmax : 127));
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(n - i);
    const __m512 av = _mm512_add_ps(_mm512_cvtepi32_ps(load16_widen(m, a + i)), voff);
    const __m512 bv = _mm512_add_ps(_mm512_cvtepi32_ps(load16_widen(m, b + i)), voff);
    __m512 t = _mm512_fmadd_ps(bv, vrb, vfixed);
    t = _mm512_fmadd_ps(av, vra, t);
    t = _mm512_sub_ps(t, voff);
    t = _mm512_min_ps(_mm512_max_ps(t, lo), hi);
    _mm_mask_storeu_epi8(y + i, m, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(t)));
  }
}

// Sum over pixels per channel, then quant::requantize(acc, scale, zy, -128, 127).
void gap_kernel(float scale, int32_t bias, int32_t zy, size_t hw, size_t c, const int8_t* x,
                int8_t* y) {
  const __m512 vs = _mm512_set1_ps(scale);
  const __m512 lo = _mm512_set1_ps(float(-128 - zy)), hi = _mm512_set1_ps(float(127 - zy));
  const __m512i vzy = _mm512_set1_epi32(zy);
  size_t c0 = 0;
  for (; c0 + 64 <= c; c0 += 64) {  // 64 channels per pass: four independent sums
    __m512i s0 = _mm512_set1_epi32(bias), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < hw; ++i) {
      const int8_t* p = x + i * c + c0;
      s0 = _mm512_add_epi32(s0, _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
      s1 = _mm512_add_epi32(s1, _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16))));
      s2 = _mm512_add_epi32(s2, _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32))));
      s3 = _mm512_add_epi32(s3, _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 48))));
    }
    const __m512i sums[4] = {s0, s1, s2, s3};
    for (int j = 0; j < 4; ++j) {
      __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(sums[j]), vs);
      f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y + c0 + 16 * j),
                       _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(f), vzy)));
    }
  }
  for (; c0 < c; c0 += 16) {
    const __mmask16 m = lanes(c - c0);
    __m512i acc = _mm512_set1_epi32(bias);
    for (size_t i = 0; i < hw; ++i) acc = _mm512_add_epi32(acc, load16_widen(m, x + i * c + c0));
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), vs);
    f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
    _mm_mask_storeu_epi8(y + c0, m, _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(f), vzy)));
  }
}

void lut_kernel(const int8_t table[256], size_t n, const int8_t* x, int8_t* y) {
  Epilogue e;
  e.t0 = _mm512_loadu_si512(table + 0);
  e.t1 = _mm512_loadu_si512(table + 64);
  e.t2 = _mm512_loadu_si512(table + 128);
  e.t3 = _mm512_loadu_si512(table + 192);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(n - i);
    _mm_mask_storeu_epi8(y + i, m, _mm512_cvtepi32_epi8(lut16(e, load16_widen(m, x + i))));
  }
}

// quant::quantize_linear: v = x / scale; v = max(v, lo) (NaN -> lo); v = min(v, hi);
// q = round(v) + zp. MAXPS returns its second operand when the first is NaN.
void quantize_kernel(const float* x, size_t c, size_t h, size_t w, float scale, int32_t zp,
                     int8_t* y) {
  const size_t hw = h * w;
  const __m512 vs = _mm512_set1_ps(scale);
  const __m512 lo = _mm512_set1_ps(float(-128 - zp)), hi = _mm512_set1_ps(float(127 - zp));
  const __m512i vzp = _mm512_set1_epi32(zp);
  auto quant16 = [&](__mmask16 m, const float* src) {
    __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(m, src), vs);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(v), vzp));
  };
  size_t done = 0;  // pixels written by the RGB fast path
  if (c == 3) {
    // RGB: 16 pixels of 3 planes -> 48 interleaved bytes with pshufb:
    // out byte j of chunk t takes pixel (16t + j) / 3 of plane (16t + j) % 3.
    alignas(16) int8_t idx[3][3][16];
    for (int t = 0; t < 3; ++t)
      for (int j = 0; j < 16; ++j)
        for (int ch = 0; ch < 3; ++ch)
          idx[t][ch][j] = (16 * t + j) % 3 == ch ? int8_t((16 * t + j) / 3) : int8_t(-128);
    __m128i sh[3][3];
    for (int t = 0; t < 3; ++t)
      for (int ch = 0; ch < 3; ++ch) sh[t][ch] = _mm_load_si128(reinterpret_cast<const __m128i*>(idx[t][ch]));
    for (; done + 16 <= hw; done += 16) {
      const __m128i q0 = quant16(0xFFFF, x + done);
      const __m128i q1 = quant16(0xFFFF, x + hw + done);
      const __m128i q2 = quant16(0xFFFF, x + 2 * hw + done);
      int8_t* dst = y + done * 3;
      for (int t = 0; t < 3; ++t) {
        const __m128i o = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(q0, sh[t][0]), _mm_shuffle_epi8(q1, sh[t][1])),
                                       _mm_shuffle_epi8(q2, sh[t][2]));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16 * t), o);
      }
    }
  }
  alignas(16) int8_t q[16];
  for (size_t ch = 0; ch < c; ++ch) {
    const float* src = x + ch * hw;
    for (size_t i = done; i < hw; i += 16) {
      _mm_store_si128(reinterpret_cast<__m128i*>(q), quant16(lanes(hw - i), src + i));
      const size_t cnt = hw - i < 16 ? hw - i : 16;
      int8_t* dst = y + i * c + ch;
      for (size_t j = 0; j < cnt; ++j) dst[j * c] = q[j];
    }
  }
}

void dequantize_kernel(const int8_t* q, size_t n, float scale, int32_t zp, float* y) {
  const __m512 vs = _mm512_set1_ps(scale);
  const __m512i vzp = _mm512_set1_epi32(zp);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(n - i);
    const __m512i v = _mm512_sub_epi32(load16_widen(m, q + i), vzp);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_cvtepi32_ps(v), vs));
  }
}

}  // namespace
}  // namespace detail
}  // namespace mnq

MNQ_TARGET_END

namespace mnq {
namespace detail {
namespace avx512vnni {
void set_elementwise(IsaKernels& t) {
  t.global_avg_pool = global_avg_pool_entry<gap_kernel>;
  t.add = add_entry<add_kernel>;
  t.lut_apply = lut_kernel;
  t.quantize_nchw_to_nhwc = quantize_kernel;
  t.dequantize = dequantize_kernel;
}
}  // namespace avx512vnni
}  // namespace detail
}  // namespace mnq

#endif
