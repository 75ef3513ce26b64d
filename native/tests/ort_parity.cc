// mnq's kernels against ONNX Runtime itself, bit for bit: reads the cases that
// ort_kernel_cases.js computed with onnxruntime-node (ctest runs both; see
// CMakeLists.txt) and checks every supported ISA's output equals ORT's.
//   ort_parity CASES_FILE
#include <cmath>
#include <fstream>
#include <string>

#include "test_util.h"

using namespace mnq;
using namespace mnq_test;

namespace {
template <typename T>
std::vector<T> readv(std::istream& in, size_t n) {
  std::vector<T> v(n);
  for (auto& x : v) {
    long t = 0;
    in >> t;
    x = T(t);
  }
  return v;
}
template <typename T>
int count_diff(const std::vector<T>& a, const std::vector<T>& b) {
  int d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += a[i] != b[i];
  return d;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CASES_FILE\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[1]);
  CHECK_MSG(in.good(), "cannot read %s", argv[1]);
  std::string kind;
  int cases = 0;
  while (in >> kind) {
    ++cases;
    if (kind == "add" || kind == "mul") {
      float sa, sb, sc;
      int za, zb, zc, offset;
      size_t n;
      in >> sa >> za >> sb >> zb >> sc >> zc >> offset >> n;
      auto a = readv<int8_t>(in, n), b = readv<int8_t>(in, n), y = readv<int8_t>(in, n);
      for (Isa isa : supported_isas()) {
        std::vector<int8_t> m(n);
        if (kind == "add") {
          AddParams p;
          p.a_scale = sa; p.a_zero_point = za; p.b_scale = sb; p.b_zero_point = zb;
          p.y_scale = sc; p.y_zero_point = zc; p.offset = offset;
          add(isa, p, n, a.data(), b.data(), m.data());
        } else {
          MulParams p;
          p.a_scale = sa; p.a_zero_point = za; p.b_scale = sb; p.b_zero_point = zb;
          p.y_scale = sc; p.y_zero_point = zc; p.offset = offset;
          mul(isa, p, n, a.data(), b.data(), m.data());
        }
        const int d = count_diff(m, y);
        CHECK_MSG(d == 0, "%s%s [%s]: %d of %zu values differ from ONNX Runtime", kind.c_str(), offset ? " (uint8)" : "",
                  isa_name(isa), d, n);
      }
    } else if (kind == "lut") {
      int fn, xz, yz;
      float xs, ys;
      std::string name;
      in >> fn >> xs >> xz >> ys >> yz >> name;
      auto y = readv<int8_t>(in, 256);
      UnaryParams f;
      f.fn = UnaryFn(fn);
      if (f.fn == UnaryFn::hardsigmoid) { f.p0 = 0.2f; f.p1 = 0.5f; }
      if (f.fn == UnaryFn::leakyrelu) f.p0 = 0.1f;
      std::vector<int8_t> t(256);
      make_lut(f, xs, xz, ys, yz, t.data());
      const int d = count_diff(t, y);
      CHECK_MSG(d == 0, "DQ -> %s -> Q: %d of 256 table entries differ from ONNX Runtime", name.c_str(), d);
    } else if (kind == "quantize") {
      float s;
      int z;
      size_t n;
      in >> s >> z >> n;
      std::vector<float> x(n);
      for (auto& v : x) {
        std::string t;
        in >> t;
        v = t == "nan" ? NAN : t == "inf" ? INFINITY : t == "-inf" ? -INFINITY : std::stof(t);
      }
      auto y = readv<int8_t>(in, n);
      for (Isa isa : supported_isas()) {
        std::vector<int8_t> m(n);
        quantize_nchw_to_nhwc(isa, x.data(), 1, 1, n, s, z, m.data());
        const int d = count_diff(m, y);
        CHECK_MSG(d == 0, "QuantizeLinear [%s]: %d of %zu values differ from ONNX Runtime", isa_name(isa), d, n);
      }
    } else if (kind == "gap") {
      float xs, ys;
      int xz, yz;
      size_t hw, c;
      in >> xs >> xz >> ys >> yz >> hw >> c;
      auto x = readv<int8_t>(in, hw * c), y = readv<int8_t>(in, c);
      std::vector<int8_t> xn(hw * c);
      for (size_t ch = 0; ch < c; ++ch)
        for (size_t i = 0; i < hw; ++i) xn[i * c + ch] = x[ch * hw + i];  // NCHW -> NHWC
      GlobalAvgPoolParams p;
      p.x_scale = xs; p.x_zero_point = xz; p.y_scale = ys; p.y_zero_point = yz;
      for (Isa isa : supported_isas()) {
        std::vector<int8_t> m(c);
        global_avg_pool(isa, p, hw, c, xn.data(), m.data());
        const int d = count_diff(m, y);
        CHECK_MSG(d == 0, "QLinearGlobalAveragePool [%s]: %d of %zu differ from ONNX Runtime", isa_name(isa), d, c);
      }
    } else if (kind == "conv") {
      float xs, ys;
      int xz, yz, ic, oc, h, w, k, dw;
      in >> xs >> xz >> ys >> yz >> ic >> oc >> h >> w >> k >> dw;
      std::vector<float> ws(static_cast<size_t>(oc));
      for (auto& v : ws) in >> v;
      auto wt = readv<int8_t>(in, size_t(oc) * (dw ? k * k : ic * k * k));
      auto b = readv<int32_t>(in, size_t(oc));
      ConvShape s;
      s.in_h = h; s.in_w = w; s.in_c = ic; s.out_c = oc;
      s.kernel_h = s.kernel_w = k;
      if (dw) {  // 3x3 stride 2, pads (0, 0, 1, 1)
        s.stride_h = s.stride_w = 2;
        s.pad_bottom = s.pad_right = 1;
      }
      s.out_h = (h + s.pad_bottom - k) / s.stride_h + 1;
      s.out_w = (w + s.pad_right - k) / s.stride_w + 1;
      auto x = readv<int8_t>(in, size_t(ic) * h * w);
      auto y = readv<int8_t>(in, size_t(oc) * s.out_h * s.out_w);
      std::vector<int8_t> xn(x.size()), yn(y.size());
      for (int c = 0; c < ic; ++c)
        for (int i = 0; i < h * w; ++i) xn[size_t(i) * ic + c] = x[size_t(c) * h * w + i];
      const int ohw = s.out_h * s.out_w;
      for (int c = 0; c < oc; ++c)
        for (int i = 0; i < ohw; ++i) yn[size_t(i) * oc + c] = y[size_t(c) * ohw + i];
      const OutputStage o = make_output_stage(xs, ws.data(), ws.size(), ys, yz);
      for (Isa isa : supported_isas()) {
        auto pk = pack_conv(isa, dw ? ConvKind::depthwise : ConvKind::pointwise, s, wt.data(), nullptr, b.data(), xz);
        std::vector<int8_t> m(yn.size());
        std::vector<uint8_t> scratch(conv_scratch_size(*pk, 0, s.out_h) + 1);
        conv_run(*pk, o, xn.data(), m.data(), 0, s.out_h, scratch.data());
        const int d = count_diff(m, yn);
        CHECK_MSG(d == 0, "QDQ %s conv [%s]: %d of %zu differ from ONNX Runtime", dw ? "depthwise" : "pointwise", isa_name(isa), d, yn.size());
      }
    } else {
      CHECK_MSG(false, "unknown case kind '%s'", kind.c_str());
      break;
    }
  }
  CHECK_MSG(cases >= 40, "only %d cases read from %s", cases, argv[1]);
  std::printf("compared %d ONNX Runtime cases on ISAs:", cases);
  for (Isa i : supported_isas()) std::printf(" %s", isa_name(i));
  std::printf("\n");
  return finish("ort_parity");
}
