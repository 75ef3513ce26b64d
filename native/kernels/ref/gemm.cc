// Scalar reference GEMM: y[m][n] = out(sum_k (x[m][k] - x_zp) * (w[n][k] - w_zp[n]) + bias[n]).
#include "ref.h"

namespace mnq {
namespace ref {

void gemm_pack(detail::PackedGemm* w) {
  w->n_block = 1;  // the reference reads the raw [n][k] weights
}

void gemm(const detail::GemmArgs& a) {
  const detail::PackedGemm& w = *a.w;
  const int k = w.k;
  const int32_t xzp = w.x_zero_point;
  for (size_t m = 0; m < a.m; ++m) {
    const int8_t* x = a.x + m * a.x_stride;
    int8_t* y = a.y + m * a.y_stride;
    for (int n = a.n_begin; n < a.n_end; ++n) {
      const int8_t* wn = w.w.data() + static_cast<size_t>(n) * k;
      const int32_t wzp = w.w_zero_point[n];
      int32_t acc = w.bias[n];
      for (int i = 0; i < k; ++i) acc += (int32_t(x[i]) - xzp) * (int32_t(wn[i]) - wzp);
      y[n] = output_value(*a.out, n, acc);
    }
  }
}

}  // namespace ref
}  // namespace mnq
