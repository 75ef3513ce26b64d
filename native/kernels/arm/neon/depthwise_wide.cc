// AArch64 ASIMD wide depthwise convolution (int16 activations; kernels.h,
// "int16 activations"): bit-identical to ref/depthwise_wide.cc. The neondot
// table takes it too (its SDOT depthwise is int8 only).
//
// 8 channels per step in two int32x4: (x - x_zp) widened to int32 and
// multiplied by the int32 weight (MLA), over the taps inside the image. Weights
// int32 [c_pad / 8][taps][8], bias padded to 8 (no header: a layout of its own,
// not ../depthwise.h's); the pack proves |bias| + 65535 * sum |w| < 2^31 per
// channel (docs/quantization.md, "int16 activations"). Output stage:
// ../epilogue.h store_wide8.
#include "../../internal.h"
#include "table.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "../epilogue.h"

namespace mnq {
namespace detail {
namespace {

constexpr int kWideDwBlock = 8;  // channels per packed block

bool depthwise_wide_pack_neon(PackedDepthwise* w) {
  const ConvShape& s = w->shape;
  const int c = s.in_c, taps = s.kernel_h * s.kernel_w;
  const int c_pad = round_up(std::max(c, 1), kWideDwBlock);
  if (!wide_depthwise_fits_int32(*w)) return false;
  w->packed.resize(static_cast<size_t>(c_pad) * taps * sizeof(int32_t));
  int32_t* dst = reinterpret_cast<int32_t*>(w->packed.data());
  std::memset(dst, 0, w->packed.size());
  for (int ch = 0; ch < c; ++ch)
    for (int t = 0; t < taps; ++t)
      dst[(static_cast<size_t>(ch / kWideDwBlock) * taps + t) * kWideDwBlock + ch % kWideDwBlock] =
          w->w[static_cast<size_t>(ch) * taps + t];
  w->bias_folded.assign(static_cast<size_t>(c_pad), 0);
  for (int ch = 0; ch < c; ++ch) w->bias_folded[ch] = w->bias[ch];
  return true;
}

// 8 input values (int8 or int16) as int16x8; `valid` < 8: the rest zero, nothing read past them.
inline int16x8_t load8_s16(const int16_t* p, int valid) {
  if (valid == 8) return vld1q_s16(p);
  int16_t t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < valid; ++i) t[i] = p[i];
  return vld1q_s16(t);
}
inline int16x8_t load8_s16(const int8_t* p, int valid) {
  if (valid == 8) return vmovl_s8(vld1_s8(p));
  int8_t t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < valid; ++i) t[i] = p[i];
  return vmovl_s8(vld1_s8(t));
}

template <typename T>
void depthwise_wide_rows(const WideDepthwiseArgs& a) {
  const PackedDepthwise& w = *a.w;
  const ConvShape& s = w.shape;
  const T* x = static_cast<const T*>(a.x);
  const int C = s.in_c, kw = s.kernel_w, taps = s.kernel_h * kw;
  const int32_t* pw = reinterpret_cast<const int32_t*>(w.packed.data());
  const WideNeonOutput o(*a.out);
  const int32x4_t xzp = vdupq_n_s32(w.x_zero_point);
  for (int oy = a.row_begin; oy < a.row_end; ++oy)
    for (int ox = 0; ox < s.out_w; ++ox) {
      const size_t yi = (static_cast<size_t>(oy) * s.out_w + ox) * C;
      for (int cb = 0; cb < C; cb += kWideDwBlock) {
        const int valid = std::min(kWideDwBlock, C - cb);
        const int32_t* wb = pw + static_cast<size_t>(cb / kWideDwBlock) * taps * kWideDwBlock;
        int32x4_t acc0 = vld1q_s32(w.bias_folded.data() + cb), acc1 = vld1q_s32(w.bias_folded.data() + cb + 4);
        for (int ky = 0; ky < s.kernel_h; ++ky) {
          const int iy = oy * s.stride_h - s.pad_top + ky * s.dilation_h;
          if (iy < 0 || iy >= s.in_h) continue;
          for (int kx = 0; kx < kw; ++kx) {
            const int ix = ox * s.stride_w - s.pad_left + kx * s.dilation_w;
            if (ix < 0 || ix >= s.in_w) continue;
            const int16x8_t xv = load8_s16(x + (static_cast<size_t>(iy) * s.in_w + ix) * C + cb, valid);
            const int32_t* wt = wb + static_cast<size_t>(ky * kw + kx) * kWideDwBlock;
            acc0 = vmlaq_s32(acc0, vsubq_s32(vmovl_s16(vget_low_s16(xv)), xzp), vld1q_s32(wt));
            acc1 = vmlaq_s32(acc1, vsubq_s32(vmovl_high_s16(xv), xzp), vld1q_s32(wt + 4));
          }
        }
        store_wide8(acc0, acc1, cb, valid, o, a.y, yi + cb);
      }
    }
}

void depthwise_wide_neon(const WideDepthwiseArgs& a) {
  if (a.x_dtype == Dtype::int16)
    depthwise_wide_rows<int16_t>(a);
  else
    depthwise_wide_rows<int8_t>(a);
}

}  // namespace

namespace neon {
void set_depthwise_wide(IsaKernels& t) {
  t.depthwise_wide_pack = depthwise_wide_pack_neon;
  t.depthwise_wide = depthwise_wide_neon;
}
}  // namespace neon
}  // namespace detail
}  // namespace mnq

#endif  // __aarch64__
