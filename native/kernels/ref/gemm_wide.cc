// Scalar reference wide GEMM (int16 activations): y[m][n] = out(bias[n] + sum_k (x[m][k] - x_zp) * w[n][k]),
// accumulated exactly in int64 (docs/quantization.md, "int16 activations").
#include "ref.h"

namespace mnq {
namespace ref {

bool gemm_wide_pack(detail::PackedGemm* w) {
  w->n_block = 1;  // the reference reads the raw [n][k] weights
  return true;
}

void gemm_wide(const detail::WideGemmArgs& a) {
  const detail::PackedGemm& w = *a.w;
  const int k = w.k;
  const int32_t xzp = w.x_zero_point;
  for (size_t m = 0; m < a.m; ++m) {
    const int16_t* x = a.x + m * a.x_stride;
    for (int n = a.n_begin; n < a.n_end; ++n) {
      const int8_t* wn = w.w.data() + static_cast<size_t>(n) * k;
      int64_t acc = w.bias[n];
      for (int i = 0; i < k; ++i) acc += int64_t(int32_t(x[i]) - xzp) * wn[i];
      store(a.y, a.out->dtype, m * a.y_stride + n, wide_output_value(*a.out, n, acc));
    }
  }
}

}  // namespace ref
}  // namespace mnq
