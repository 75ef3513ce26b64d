// libFuzzer target over the runtime's front door: bytes -> a PlanDesc (the fields the addon reads from a JS
// plan, each drawn from the bytes; int8 and int16 tensors) -> check_plan -> Model (memory plan, weight
// packing, output stages, tables) -> one run of a loaded model. Every plan must either be refused with
// std::invalid_argument / std::bad_alloc or load and run; under ASan + UBSan nothing may leak, overflow or
// abort.
//
//   build: scripts/fuzz-native.js (clang, -fsanitize=fuzzer,address,undefined; build-native-fuzz/)
//
// The decoder is structure-aware: most values come from small ranges (so that many plans are consistent
// enough to reach the model builder and the kernels), the rest from tables of edge values (0, negative,
// huge, NaN, inf). Plans whose tensors are too large to run quickly are checked but not built.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>
#include <new>
#include <stdexcept>
#include <vector>

#include "runtime/model.h"
#include "runtime/plan_check.h"

namespace {

class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size) : p_(data), n_(size) {}
  uint8_t byte() {
    if (!n_) return 0;
    --n_;
    return *p_++;
  }
  bool flag() { return byte() & 1; }
  // Mostly a small value in [lo, hi]; 1 time in 16 an edge value.
  int small(int lo, int hi) {
    const uint8_t b = byte();
    if ((b & 0xf) == 0xf) return edge_int();
    return lo + static_cast<int>(byte()) % (hi - lo + 1);
  }
  int edge_int() {
    static const int edges[] = {0, -1, 1, 2, 127, 128, -128, -129, 255, 256, 65535, 65536, 1 << 20, 1 << 24,
                                std::numeric_limits<int>::max(), std::numeric_limits<int>::min(), 46341};
    return edges[byte() % (sizeof(edges) / sizeof(edges[0]))];
  }
  float scale() {
    const uint8_t b = byte();
    if ((b & 0xf) == 0xf) {
      static const float edges[] = {0.0f, -0.0f, -1.0f, std::numeric_limits<float>::infinity(),
                                    -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                                    std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max(),
                                    1e-30f, 1e30f, 65536.0f};
      return edges[byte() % (sizeof(edges) / sizeof(edges[0]))];
    }
    return std::ldexp(1.0f + byte() / 256.0f, -static_cast<int>(byte() % 12));
  }
  int zero_point() { return (byte() & 0xf) == 0xf ? edge_int() : static_cast<int>(static_cast<int8_t>(byte())); }
  template <typename T>
  std::vector<T> values(size_t count) {
    std::vector<T> v(count);
    for (auto& x : v) {
      T t{};
      uint8_t raw[sizeof(T)];
      for (auto& r : raw) r = byte();
      std::memcpy(&t, raw, sizeof(T));
      x = t;
    }
    return v;
  }
  size_t left() const { return n_; }

 private:
  const uint8_t* p_;
  size_t n_;
};

// a * b, or kCap when that is larger (or negative): the decoder's own bound on array sizes, not the runtime's.
constexpr int64_t kCap = 1 << 20;
int64_t capped(int64_t a, int64_t b) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r) || r > kCap) return kCap;
  return r;
}

// Usually the count the op needs; sometimes one more, one fewer or none.
size_t near(Bytes& in, int64_t want) {
  if (want < 0 || want > kCap) want = kCap;
  switch (in.byte() % 8) {
    case 0: return want > 0 ? static_cast<size_t>(want - 1) : 0;
    case 1: return static_cast<size_t>(want + 1);
    case 2: return 0;
    default: return static_cast<size_t>(want);
  }
}

mnq::PlanDesc decode(Bytes& in) {
  mnq::PlanDesc p;
  const int nt = 1 + in.byte() % 12;
  for (int i = 0; i < nt; ++i) {
    mnq::PlanTensor t;
    t.name = "t" + std::to_string(i);
    t.h = in.small(1, 12);
    t.w = in.small(1, 12);
    t.c = in.small(1, 24);
    t.scale = in.scale();
    t.zero_point = in.zero_point();
    p.tensors.push_back(t);
  }
  auto tensor_id = [&]() { return (in.byte() & 0x1f) == 0x1f ? in.edge_int() : static_cast<int>(in.byte() % nt); };
  p.input = tensor_id();
  p.input_layout = static_cast<mnq::InputLayout>(in.byte() % 8 == 7 ? in.edge_int() : in.byte() % 2);
  const int nops = in.byte() % 10;
  for (int i = 0; i < nops && in.left(); ++i) {
    mnq::PlanOp op;
    op.type = static_cast<mnq::PlanOpType>(in.byte() % 16 == 15 ? in.edge_int() : in.byte() % 7);
    op.name = "op" + std::to_string(i);
    const int ninputs = (op.type == mnq::PlanOpType::add || op.type == mnq::PlanOpType::mul) ? 2 : 1;
    for (int k = 0; k < ninputs + (in.byte() % 16 == 0 ? 1 : 0); ++k) op.inputs.push_back(tensor_id());
    op.output = tensor_id();
    const auto valid = [&](int id) { return id >= 0 && id < nt; };
    const mnq::PlanTensor* x = op.inputs.empty() || !valid(op.inputs[0]) ? nullptr : &p.tensors[op.inputs[0]];
    const mnq::PlanTensor* y = valid(op.output) ? &p.tensors[op.output] : nullptr;
    if (op.type == mnq::PlanOpType::conv || op.type == mnq::PlanOpType::max_pool) {
      mnq::ConvShape& s = op.shape;
      s.kernel_h = in.small(1, 5);
      s.kernel_w = in.small(1, 5);
      s.stride_h = in.small(1, 3);
      s.stride_w = in.small(1, 3);
      s.dilation_h = in.small(1, 2);
      s.dilation_w = in.small(1, 2);
      s.pad_top = in.small(0, 2);
      s.pad_left = in.small(0, 2);
      s.pad_bottom = in.small(0, 2);
      s.pad_right = in.small(0, 2);
      if (x && in.byte() % 4) {
        s.in_h = x->h, s.in_w = x->w, s.in_c = x->c;
      } else {
        s.in_h = in.small(1, 12), s.in_w = in.small(1, 12), s.in_c = in.small(1, 24);
      }
      // output geometry as the formula gives it, most of the time
      const auto out = [](int in_, int k, int st, int d, int pa, int pb) -> int {
        const int64_t num = static_cast<int64_t>(in_) + pa + pb - static_cast<int64_t>(d) * (static_cast<int64_t>(k) - 1) - 1;
        return st > 0 && num >= 0 && num / st + 1 <= std::numeric_limits<int>::max() ? static_cast<int>(num / st + 1) : 1;
      };
      s.out_h = in.byte() % 8 ? out(s.in_h, s.kernel_h, s.stride_h, s.dilation_h, s.pad_top, s.pad_bottom) : in.small(1, 12);
      s.out_w = in.byte() % 8 ? out(s.in_w, s.kernel_w, s.stride_w, s.dilation_w, s.pad_left, s.pad_right) : in.small(1, 12);
      s.out_c = op.type == mnq::PlanOpType::max_pool ? s.in_c : (y ? y->c : in.small(1, 24));
      if (in.byte() % 8 == 0) s.out_c = in.small(1, 24);
      // make the output tensor fit, usually
      if (y && in.byte() % 4) {
        mnq::PlanTensor& yt = p.tensors[op.output];
        yt.h = s.out_h, yt.w = s.out_w, yt.c = s.out_c;
      }
      if (op.type == mnq::PlanOpType::conv) {
        const int g = in.byte() % 3;
        op.groups = g == 0 ? 1 : g == 1 ? s.in_c : in.small(1, 8);
        if (in.byte() % 16 == 0) op.input_pieces = in.small(1, 4);
      }
    }
    if (op.type == mnq::PlanOpType::conv || op.type == mnq::PlanOpType::fully_connected) {
      int64_t oc, per;
      if (op.type == mnq::PlanOpType::conv) {
        oc = op.shape.out_c;
        per = capped(capped(op.groups > 0 ? op.shape.in_c / op.groups : 1, op.shape.kernel_h), op.shape.kernel_w);
      } else {
        oc = y ? y->c : 1;
        per = x ? capped(capped(x->h, x->w), x->c) : 1;
        if (y && in.byte() % 4) p.tensors[op.output].h = p.tensors[op.output].w = 1;
      }
      op.weights = in.values<int8_t>(near(in, capped(oc, per)));
      op.w_scale.resize(near(in, oc));
      for (auto& s : op.w_scale) s = in.scale();
      if (in.flag()) {
        op.w_zero_point.resize(near(in, oc));
        for (auto& z : op.w_zero_point) z = in.zero_point();
      }
      if (in.flag()) op.bias = in.values<int32_t>(near(in, oc));
    }
    op.qmin = in.byte() % 8 == 0 ? in.edge_int() : -128 + in.byte() % 64;
    op.qmax = in.byte() % 8 == 0 ? in.edge_int() : 127 - in.byte() % 64;
    if (op.type == mnq::PlanOpType::add || op.type == mnq::PlanOpType::mul)
      op.add_offset = in.byte() % 8 == 0 ? in.edge_int() : (in.flag() ? 128 : 0);
    op.has_activation = in.flag();
    op.activation.fn = static_cast<mnq::UnaryFn>(in.byte() % 16 == 15 ? in.edge_int() : in.byte() % 9);
    op.activation.p0 = in.byte() % 8 == 0 ? in.scale() : (in.byte() - 128) / 16.0f;
    op.activation.p1 = in.byte() % 8 == 0 ? in.scale() : (in.byte() - 128) / 16.0f;
    op.act_scale = in.scale();
    op.act_zero_point = in.zero_point();
    if (in.byte() % 4 == 0) op.table = in.values<int8_t>(in.byte() % 8 ? 256 : in.byte());
    p.ops.push_back(std::move(op));
  }
  const int nout = in.byte() % 3;
  for (int i = 0; i < nout; ++i) p.outputs.push_back(tensor_id());
  if (p.outputs.empty() && !p.ops.empty() && in.byte() % 4) p.outputs.push_back(p.ops.back().output);
  // The tensors' types last (the bytes before decode as they did without them; exhausted bytes give int8):
  // int8 mostly, int16 (the wide kernels) 1 time in 4, now and then a value that is no Dtype.
  for (auto& t : p.tensors) {
    const uint8_t d = in.byte();
    t.dtype = (d & 0x1f) == 0x1e ? static_cast<mnq::Dtype>(in.edge_int())
              : d % 4 == 1      ? mnq::Dtype::int16
                                : mnq::Dtype::int8;
  }
  return p;
}

// Plans larger than this (bytes of all tensors of one image) are checked but not built: the fuzzer looks for
// wrong answers to bad plans, not for slow models.
constexpr int64_t kMaxRunBytes = 1 << 22;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  const mnq::PlanDesc plan = decode(in);
  try {
    mnq::check_plan(plan);
  } catch (const std::invalid_argument&) {
    return 0;
  }
  int64_t bytes = 0;
  for (const auto& t : plan.tensors) bytes += mnq::bytes(t);
  if (bytes > kMaxRunBytes) return 0;
  // A plan check_plan accepts may still be refused while the model is built (std::invalid_argument, or
  // std::bad_alloc); once built, it must run: an exception from run() escapes and the fuzzer reports it.
  for (const auto& [isa, threads] : {std::pair<mnq::Isa, int>{mnq::Isa::scalar, 1}, {mnq::default_isa(), 2}}) {
    std::unique_ptr<mnq::Model> model;
    try {
      model = std::make_unique<mnq::Model>(plan, isa, threads);
    } catch (const std::invalid_argument&) {
      return 0;
    } catch (const std::bad_alloc&) {
      return 0;
    }
    const int batch = 1 + static_cast<int>(size % 3);
    std::vector<float> x(model->input_elements() * batch);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(i % 251) - 125) / 50.0f;
    model->run(x.data(), batch);
  }
  return 0;
}
