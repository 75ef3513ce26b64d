// Kernel benchmark: every 1x1 and depthwise conv layer of MobileNetV2-1.0-224,
// the V3-Large / V3-Small layers, the stems and the classifiers, for every ISA
// this CPU supports (supported_isas()), one thread, one image.
//
//   bench_kernels [--json] [--isa NAME] [--model v2|v3l|v3s|stems] [--kernel KIND] [--lut] [--asym] [--min-ms N]
//
// --model stems: the first convs of other models (MobileNetV1 3->32 at 224, 160
// and 128; PaddleOCR's direction classifier 3->8 at 48x192). --kernel keeps one
// kind (pointwise | depthwise | general | fc). --lut adds a fused table (h-swish)
// to every conv's output stage, as V3's h-swish layers have. --asym gives the
// weights per-channel zero points over the whole int8 range (uint8 models).
//
// --json prints one object per line: {kernel, isa, shape, macs, ns, gmacs, model, layer}
// (ns = median time of one full-image call). Otherwise a table plus, per ISA,
// the MAC-weighted average GMAC/s of the V2 pointwise and depthwise layers.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "kernels/kernels.h"

using namespace mnq;

namespace {

struct Layer {
  std::string model;
  std::string kernel;  // pointwise | depthwise | general | fc
  ConvShape s;
};

ConvShape shape(int ih, int iw, int ic, int oc, int k, int stride) {
  ConvShape s;
  s.in_h = ih; s.in_w = iw; s.in_c = ic; s.out_c = oc;
  s.kernel_h = s.kernel_w = k;
  s.stride_h = s.stride_w = stride;
  // TF "SAME": out = ceil(in / stride), extra padding after.
  const int oh = (ih + stride - 1) / stride, ow = (iw + stride - 1) / stride;
  const int th = std::max(0, (oh - 1) * stride + k - ih), tw = std::max(0, (ow - 1) * stride + k - iw);
  s.pad_top = th / 2; s.pad_bottom = th - th / 2;
  s.pad_left = tw / 2; s.pad_right = tw - tw / 2;
  s.out_h = oh; s.out_w = ow;
  return s;
}

void add_pw(std::vector<Layer>& v, const std::string& m, int hw, int ic, int oc) {
  v.push_back({m, "pointwise", shape(hw, hw, ic, oc, 1, 1)});
}
void add_dw(std::vector<Layer>& v, const std::string& m, int hw, int c, int k, int stride) {
  v.push_back({m, "depthwise", shape(hw, hw, c, c, k, stride)});
}
void add_fc(std::vector<Layer>& v, const std::string& m, int k, int n) {
  v.push_back({m, "fc", shape(1, 1, k, n, 1, 1)});
}

std::vector<Layer> layers() {
  std::vector<Layer> v;
  // MobileNetV2 1.0 224: (expansion t, out c, repeats n, stride s).
  {
    const std::string m = "v2";
    v.push_back({m, "general", shape(224, 224, 3, 32, 3, 2)});
    const int cfg[][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                          {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    int hw = 112, c = 32;
    for (const auto& b : cfg)
      for (int i = 0; i < b[2]; ++i) {
        const int stride = i == 0 ? b[3] : 1, e = c * b[0];
        if (b[0] != 1) add_pw(v, m, hw, c, e);
        add_dw(v, m, hw, e, 3, stride);
        hw = (hw + stride - 1) / stride;
        add_pw(v, m, hw, e, b[1]);
        c = b[1];
      }
    add_pw(v, m, 7, 320, 1280);
    add_fc(v, m, 1280, 1000);
  }
  // MobileNetV3: (kernel, expanded, out, stride), SE FCs omitted (tiny).
  auto v3 = [&](const std::string& m, const std::vector<std::vector<int>>& cfg, int last, int fc1,
                int fc2) {
    v.push_back({m, "general", shape(224, 224, 3, 16, 3, 2)});
    int hw = 112, c = 16;
    for (const auto& b : cfg) {
      if (b[1] != c) add_pw(v, m, hw, c, b[1]);
      add_dw(v, m, hw, b[1], b[0], b[3]);
      hw = (hw + b[3] - 1) / b[3];
      add_pw(v, m, hw, b[1], b[2]);
      c = b[2];
    }
    add_pw(v, m, hw, c, last);
    add_fc(v, m, last, fc1);
    add_fc(v, m, fc1, fc2);
  };
  v3("v3l",
     {{3, 16, 16, 1}, {3, 64, 24, 2}, {3, 72, 24, 1}, {5, 72, 40, 2}, {5, 120, 40, 1},
      {5, 120, 40, 1}, {3, 240, 80, 2}, {3, 200, 80, 1}, {3, 184, 80, 1}, {3, 184, 80, 1},
      {3, 480, 112, 1}, {3, 672, 112, 1}, {5, 672, 160, 2}, {5, 960, 160, 1}, {5, 960, 160, 1}},
     960, 1280, 1000);
  v3("v3s",
     {{3, 16, 16, 2}, {3, 72, 24, 2}, {3, 88, 24, 1}, {5, 96, 40, 2}, {5, 240, 40, 1},
      {5, 240, 40, 1}, {5, 120, 48, 1}, {5, 144, 48, 1}, {5, 288, 96, 2}, {5, 576, 96, 1},
      {5, 576, 96, 1}},
     576, 1024, 1000);
  // Other stems: MobileNetV1 (1.0 224, 0.5 160, 0.25 128), PaddleOCR cls (48x192, 3 -> 8).
  v.push_back({"stems", "general", shape(224, 224, 3, 32, 3, 2)});
  v.push_back({"stems", "general", shape(160, 160, 3, 16, 3, 2)});
  v.push_back({"stems", "general", shape(128, 128, 3, 8, 3, 2)});
  {
    ConvShape s = shape(48, 192, 3, 8, 3, 2);  // ONNX pads 1 on every side
    s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = 1;
    v.push_back({"stems", "general", s});
  }
  return v;
}

double macs_of(const Layer& l) {
  const ConvShape& s = l.s;
  const double px = double(s.out_h) * s.out_w * s.kernel_h * s.kernel_w;
  return l.kernel == "depthwise" ? px * s.out_c : px * s.out_c * s.in_c;
}

std::string shape_str(const ConvShape& s) {
  char b[128];
  std::snprintf(b, sizeof b, "%dx%dx%d->%dx%dx%d k%d s%d", s.in_h, s.in_w, s.in_c, s.out_h,
                s.out_w, s.out_c, s.kernel_h, s.stride_h);
  return b;
}

uint32_t rng_state = 12345;
int8_t rnd() {
  rng_state = rng_state * 1664525u + 1013904223u;
  return int8_t(rng_state >> 24);
}

double time_layer(Isa isa, const Layer& l, double min_ms, bool lut, bool asym) {
  const ConvShape& s = l.s;
  const ConvKind kind = l.kernel == "depthwise" ? ConvKind::depthwise
                        : l.kernel == "general"  ? ConvKind::general
                                                 : ConvKind::pointwise;
  const size_t wn = kind == ConvKind::depthwise ? size_t(s.out_c) * s.kernel_h * s.kernel_w
                                                : size_t(s.out_c) * s.in_c * s.kernel_h * s.kernel_w;
  std::vector<int8_t> w(wn), x(size_t(s.in_h) * s.in_w * s.in_c),
      y(size_t(s.out_h) * s.out_w * s.out_c);
  for (auto& v : w) { v = rnd(); if (v == -128) v = -127; }
  for (auto& v : x) v = rnd();
  std::vector<int32_t> bias(size_t(s.out_c));
  for (auto& b : bias) b = int32_t(rnd()) * 100;
  std::vector<float> ws(size_t(s.out_c), 0.01f);
  OutputStage out = make_output_stage(0.05f, ws.data(), ws.size(), 0.1f, -3, -3, 127);
  if (lut) {
    UnaryParams f;
    f.fn = UnaryFn::hardswish;
    make_lut(f, 0.1f, -3, 0.05f, -10, out.lut);
    out.has_lut = true;
  }
  std::vector<int32_t> wzp(size_t(s.out_c));
  for (size_t c = 0; c < wzp.size(); ++c) wzp[c] = int32_t(c % 7) - 3;
  auto p = pack_conv(isa, kind, s, w.data(), asym ? wzp.data() : nullptr, bias.data(), 5);
  std::vector<uint8_t> scratch(conv_scratch_size(*p, 0, s.out_h) + 64);
  using clk = std::chrono::steady_clock;
  std::vector<double> t;
  conv_run(*p, out, x.data(), y.data(), 0, s.out_h, scratch.data());  // warm-up
  const auto start = clk::now();
  while (t.size() < 3 || (t.size() < 1000 &&
                          std::chrono::duration<double, std::milli>(clk::now() - start).count() < min_ms)) {
    const auto t0 = clk::now();
    conv_run(*p, out, x.data(), y.data(), 0, s.out_h, scratch.data());
    t.push_back(std::chrono::duration<double, std::nano>(clk::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  bool json = false, lut = false, asym = false;
  std::string only_isa, only_model, only_kernel;
  double min_ms = 30;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") json = true;
    else if (a == "--isa" && i + 1 < argc) only_isa = argv[++i];
    else if (a == "--model" && i + 1 < argc) only_model = argv[++i];
    else if (a == "--lut") lut = true;
    else if (a == "--asym") asym = true;
    else if (a == "--kernel" && i + 1 < argc) only_kernel = argv[++i];
    else if (a == "--min-ms" && i + 1 < argc) min_ms = std::atof(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--json] [--isa NAME] [--model v2|v3l|v3s|stems] [--kernel KIND] [--lut] [--asym] [--min-ms N]\n", argv[0]);
      return 2;
    }
  }
  std::vector<Isa> isas;
  if (!only_isa.empty()) {
    Isa isa;
    if (!parse_isa(only_isa, &isa) || !isa_supported(isa)) {
      std::fprintf(stderr, "ISA '%s' is unknown or not supported here\n", only_isa.c_str());
      return 2;
    }
    isas.push_back(isa);
  } else {
    isas = supported_isas();
  }
  const std::vector<Layer> all = layers();
  struct Sum { double macs = 0, ns = 0; };
  std::map<std::string, Sum> sums;  // isa/model/kernel
  if (!json) std::printf("%-11s %-5s %-10s %-32s %12s %12s %8s\n", "isa", "model", "kernel", "shape", "MACs", "ns", "GMAC/s");
  for (Isa isa : isas) {
    int index = 0;
    for (const Layer& l : all) {
      ++index;
      if (!only_model.empty() && l.model != only_model) continue;
      if (!only_kernel.empty() && l.kernel != only_kernel) continue;
      const double ns = time_layer(isa, l, min_ms, lut, asym);
      const double macs = macs_of(l);
      const double g = macs / ns;
      Sum& s = sums[std::string(isa_name(isa)) + " " + l.model + " " + l.kernel];
      s.macs += macs;
      s.ns += ns;
      if (json)
        std::printf("{\"kernel\":\"%s\",\"isa\":\"%s\",\"shape\":\"%s\",\"macs\":%.0f,\"ns\":%.0f,"
                    "\"gmacs\":%.3f,\"model\":\"%s\",\"layer\":%d}\n",
                    l.kernel.c_str(), isa_name(isa), shape_str(l.s).c_str(), macs, ns, g,
                    l.model.c_str(), index);
      else
        std::printf("%-11s %-5s %-10s %-32s %12.0f %12.0f %8.2f\n", isa_name(isa), l.model.c_str(),
                    l.kernel.c_str(), shape_str(l.s).c_str(), macs, ns, g);
      std::fflush(stdout);
    }
  }
  if (!json) {
    std::printf("\nMAC-weighted average GMAC/s (total MACs / total time) per ISA, model, kernel:\n");
    for (const auto& kv : sums)
      std::printf("  %-32s %8.2f GMAC/s  (%.1f ms)\n", kv.first.c_str(), kv.second.macs / kv.second.ns,
                  kv.second.ns / 1e6);
  }
  return 0;
}
