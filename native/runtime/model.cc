#include "model.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>

namespace mnq {

namespace {

constexpr int kMaxThreads = 256;

// ------------------------------------------------------------ validation help
const char* op_type_name(PlanOpType t) {
  switch (t) {
    case PlanOpType::conv: return "conv";
    case PlanOpType::global_avg_pool: return "global_avg_pool";
    case PlanOpType::add: return "add";
    case PlanOpType::mul: return "mul";
    case PlanOpType::lut: return "lut";
    case PlanOpType::fully_connected: return "fully_connected";
    case PlanOpType::max_pool: return "max_pool";
  }
  return "unknown";
}

std::string op_where(size_t index, PlanOpType type, const std::string& name) {
  std::ostringstream s;
  s << "plan op " << index << " (" << op_type_name(type) << " '" << name << "')";
  return s.str();
}
std::string op_where(size_t index, const PlanOp& op) { return op_where(index, op.type, op.name); }

std::string tensor_where(size_t index, const PlanTensor& t) {
  std::ostringstream s;
  s << "plan tensor " << index << " ('" << t.name << "')";
  return s.str();
}

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::invalid_argument(where + ": " + what);
}

bool valid_scale(float s) { return std::isfinite(s) && s > 0; }
bool valid_int8(int32_t v) { return v >= -128 && v <= 127; }

int64_t elements(const PlanTensor& t) {
  return static_cast<int64_t>(t.h) * t.w * t.c;
}

std::string dims(const PlanTensor& t) {
  std::ostringstream s;
  s << "[h " << t.h << ", w " << t.w << ", c " << t.c << "]";
  return s.str();
}

// ------------------------------------------------------------- scratch memory
// Per-thread scratch for conv_run (im2col rows etc.), grown on demand, 64-byte aligned.
struct Scratch {
  void* data = nullptr;
  size_t size = 0;
  ~Scratch() { std::free(data); }
  void* get(size_t bytes) {
    if (bytes == 0) return data;
    if (bytes > size) {
      size_t want = (bytes + 63) / 64 * 64;
      void* p = std::aligned_alloc(64, want);
      if (!p) throw std::bad_alloc();
      std::free(data);
      data = p;
      size = want;
    }
    return data;
  }
};
thread_local Scratch tls_scratch;

}  // namespace

// ------------------------------------------------------------------ the steps
struct Model::Step {
  PlanOpType type = PlanOpType::conv;
  size_t index = 0;  // op index in the plan
  std::string name;
  const PlanTensor* x = nullptr;  // first input
  const PlanTensor* b = nullptr;  // second input (add, mul)
  const PlanTensor* y = nullptr;  // output
  // conv / fully_connected
  ConvKind kind = ConvKind::pointwise;
  bool as_gemm = false;          // pointwise conv or fully connected: one GEMM over the image's pixels
  int gemm_n = 0, gemm_k = 0;    // GEMM columns and depth
  size_t row_macs = 0;           // multiply-adds per output row (splitting rows over threads)
  PackedConvPtr packed;
  OutputStage stage;
  // global_avg_pool / add / mul
  GlobalAvgPoolParams gap;
  AddParams addp;
  MulParams mulp;
  bool channelwise = false;       // mul with b broadcast over pixels
  ConvShape pool_shape;           // max_pool
  // standalone table (lut op), or the table applied after gap/add/mul with an activation
  bool has_table = false;
  int8_t table[256] = {};
};

class Model::Arena {
 public:
  explicit Arena(size_t bytes) : size_((bytes + 63) / 64 * 64) {
    data_ = static_cast<uint8_t*>(std::aligned_alloc(64, size_ == 0 ? 64 : size_));
    if (!data_) throw std::bad_alloc();
  }
  ~Arena() { std::free(data_); }
  uint8_t* data() { return data_; }
  size_t size() const { return size_; }
 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

struct Model::Profile {
  std::atomic<int64_t> ns[kProfileKinds] = {};
  std::atomic<int64_t> calls[kProfileKinds] = {};
  std::atomic<int64_t> runs{0}, images{0};
  void add(int kind, std::chrono::steady_clock::time_point t0) {
    const auto d = std::chrono::steady_clock::now() - t0;
    ns[kind].fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(), std::memory_order_relaxed);
    calls[kind].fetch_add(1, std::memory_order_relaxed);
  }
};

namespace {
const char* const kProfileNames[] = {"quantize input", "conv 1x1 (gemm)", "conv depthwise", "conv general",
                                     "fully connected", "global avg pool", "add", "mul", "lut",
                                     "max pool", "arena + outputs"};
constexpr int kProfileInput = 0, kProfileOutputs = 10;

int profile_kind(PlanOpType type, ConvKind kind) {
  switch (type) {
    case PlanOpType::conv: return kind == ConvKind::pointwise ? 1 : kind == ConvKind::depthwise ? 2 : 3;
    case PlanOpType::fully_connected: return 4;
    case PlanOpType::global_avg_pool: return 5;
    case PlanOpType::add: return 6;
    case PlanOpType::mul: return 7;
    case PlanOpType::lut: return 8;
    case PlanOpType::max_pool: return 9;
  }
  return kProfileOutputs;
}

bool profiling_enabled() {
  const char* v = std::getenv("MNQ_PROFILE");
  return v && *v && std::string(v) != "0";
}
}  // namespace

static int checked_threads(int threads) {
  if (threads < 1 || threads > kMaxThreads) {
    throw std::invalid_argument("threads must be an integer in [1, " + std::to_string(kMaxThreads) +
                                "], got " + std::to_string(threads));
  }
  return threads;
}

static Isa checked_isa(Isa isa) {
  if (!isa_supported(isa)) {
    std::string names;
    for (Isa i : supported_isas()) names += std::string(names.empty() ? "" : ", ") + isa_name(i);
    throw std::invalid_argument(std::string("ISA '") + isa_name(isa) +
                                "' is not supported on this machine (supported: " + names + ")");
  }
  return isa;
}

Model::Model(const PlanDesc& plan, Isa isa, int threads)
    : isa_(checked_isa(isa)), pool_(checked_threads(threads)) {
  const int64_t arena = plan.arena_bytes;
  if (arena < 1) fail("plan", "arena_bytes must be >= 1, got " + std::to_string(arena));
  if (arena > (int64_t{1} << 40)) fail("plan", "arena_bytes " + std::to_string(arena) + " is too large");
  arena_bytes_ = arena;
  if (profiling_enabled()) profile_.reset(new Profile);

  // Tensors.
  const size_t nt = plan.tensors.size();
  if (nt == 0) fail("plan", "has no tensors");
  for (size_t i = 0; i < nt; ++i) {
    const PlanTensor& t = plan.tensors[i];
    const std::string w = tensor_where(i, t);
    if (t.h < 1 || t.w < 1 || t.c < 1)
      fail(w, "h, w, c must be >= 1, got " + dims(t));
    if (!valid_scale(t.scale)) fail(w, "scale must be finite and > 0, got " + std::to_string(t.scale));
    if (!valid_int8(t.zero_point))
      fail(w, "zero_point must be in [-128, 127], got " + std::to_string(t.zero_point));
    if (t.offset < 0) fail(w, "offset must be >= 0, got " + std::to_string(t.offset));
    if (elements(t) > arena || t.offset > arena - elements(t)) {
      fail(w, "offset " + std::to_string(t.offset) + " + size " + std::to_string(elements(t)) +
                  " exceeds arena_bytes " + std::to_string(arena));
    }
  }
  tensors_ = plan.tensors;

  auto check_id = [&](const std::string& where, const char* field, int id) {
    if (id < 0 || static_cast<size_t>(id) >= nt) {
      fail(where, std::string(field) + " " + std::to_string(id) + " is not a tensor id (plan has " +
                      std::to_string(nt) + " tensors)");
    }
  };
  check_id("plan", "input", plan.input);
  input_ = plan.input;
  if (plan.outputs.empty()) fail("plan", "outputs is empty");
  for (int id : plan.outputs) check_id("plan", "outputs[]", id);
  outputs_ = plan.outputs;

  // Lifetimes: def = index of the producing op (-1 for the input), last = last op reading it
  // (ops.size() for plan outputs). Every tensor is produced once, before it is read.
  const int nops = static_cast<int>(plan.ops.size());
  std::vector<int> def(nt, -2), last(nt, -2);
  def[input_] = -1;
  last[input_] = -1;
  for (int i = 0; i < nops; ++i) {
    const PlanOp& op = plan.ops[i];
    const std::string w = op_where(i, op);
    for (size_t k = 0; k < op.inputs.size(); ++k) {
      check_id(w, ("inputs[" + std::to_string(k) + "]").c_str(), op.inputs[k]);
      if (def[op.inputs[k]] == -2)
        fail(w, "input tensor " + std::to_string(op.inputs[k]) + " ('" + tensors_[op.inputs[k]].name +
                    "') is read before any op produces it");
      last[op.inputs[k]] = i;
    }
    check_id(w, "output", op.output);
    if (op.output == input_) fail(w, "output is the plan input tensor");
    if (def[op.output] != -2)
      fail(w, "output tensor " + std::to_string(op.output) + " ('" + tensors_[op.output].name +
                  "') is already produced by an earlier op");
    def[op.output] = i;
    last[op.output] = i;
  }
  for (int id : outputs_) {
    if (def[id] == -2)
      fail("plan", "output tensor " + std::to_string(id) + " ('" + tensors_[id].name + "') is never produced");
    last[id] = nops;
  }

  // Ops.
  steps_.resize(plan.ops.size());
  for (int i = 0; i < nops; ++i) {
    const PlanOp& op = plan.ops[i];
    const std::string w = op_where(i, op);
    Step& s = steps_[i];
    s.type = op.type;
    s.index = static_cast<size_t>(i);
    s.name = op.name;
    size_t want_inputs = 0;
    switch (op.type) {
      case PlanOpType::conv: case PlanOpType::global_avg_pool: case PlanOpType::lut:
      case PlanOpType::fully_connected: case PlanOpType::max_pool:
        want_inputs = 1; break;
      case PlanOpType::add: case PlanOpType::mul:
        want_inputs = 2; break;
      default:
        fail(w, "type " + std::to_string(static_cast<int>(op.type)) + " is not a known op type");
    }
    if (op.inputs.size() != want_inputs)
      fail(w, "inputs has " + std::to_string(op.inputs.size()) + " tensor ids, expected " +
                  std::to_string(want_inputs));
    s.x = &tensors_[op.inputs[0]];
    if (want_inputs == 2) s.b = &tensors_[op.inputs[1]];
    s.y = &tensors_[op.output];
    const PlanTensor& x = *s.x;
    const PlanTensor& y = *s.y;

    const bool uses_activation = op.has_activation || op.type == PlanOpType::lut;
    if (uses_activation) {
      const int fn = static_cast<int>(op.activation.fn);
      if (fn < 0 || fn > static_cast<int>(UnaryFn::mul_hardsigmoid))
        fail(w, "activation.fn " + std::to_string(fn) + " is not a known function");
      if (!std::isfinite(op.activation.p0) || !std::isfinite(op.activation.p1))
        fail(w, "activation.p0 / p1 must be finite");
    }
    if (op.has_activation && op.type != PlanOpType::lut) {
      if (!valid_scale(op.act_scale))
        fail(w, "act_scale must be finite and > 0, got " + std::to_string(op.act_scale));
      if (!valid_int8(op.act_zero_point))
        fail(w, "act_zero_point must be in [-128, 127], got " + std::to_string(op.act_zero_point));
    }
    // The domain the op itself computes into: the activation's input when one follows.
    const float mid_scale = op.has_activation ? op.act_scale : y.scale;
    const int32_t mid_zp = op.has_activation ? op.act_zero_point : y.zero_point;
    if (!valid_int8(op.qmin) || !valid_int8(op.qmax) || op.qmin > op.qmax)
      fail(w, "qmin / qmax must satisfy -128 <= qmin <= qmax <= 127, got " + std::to_string(op.qmin) +
                  " / " + std::to_string(op.qmax));
    if (!op.table.empty() && op.table.size() != 256)
      fail(w, "table has " + std::to_string(op.table.size()) + " entries, expected 0 or 256");
    if (!op.table.empty() && !op.has_activation && op.type != PlanOpType::lut)
      fail(w, "table is set but has_activation is false");
    // The activation table: from `table`, or built from `activation` between the given domains.
    auto activation_table = [&](float in_scale, int32_t in_zp, int8_t out[256]) {
      if (!op.table.empty()) {
        std::memcpy(out, op.table.data(), 256);
        return;
      }
      try {
        make_lut(op.activation, in_scale, in_zp, y.scale, y.zero_point, out);
      } catch (const std::invalid_argument& e) {
        fail(w, std::string("activation: ") + e.what());
      }
    };
    // out[q] = out[clamp(q)]: folds the op's clamp into a table.
    auto fold_clamp = [&](int8_t table[256]) {
      int8_t t[256];
      for (int q = -128; q < 128; ++q) t[q + 128] = table[std::min(std::max(q, op.qmin), op.qmax) + 128];
      std::memcpy(table, t, 256);
    };
    const bool clamps = op.qmin > -128 || op.qmax < 127;

    auto same_shape = [&](const PlanTensor& a, const PlanTensor& bt, const char* what) {
      if (a.h != bt.h || a.w != bt.w || a.c != bt.c)
        fail(w, std::string(what) + ": shapes differ, " + dims(a) + " vs " + dims(bt));
    };

    if ((op.type == PlanOpType::add || op.type == PlanOpType::mul) && op.add_offset != 0 && op.add_offset != 128)
      fail(w, "add_offset must be 0 or 128, got " + std::to_string(op.add_offset));
    switch (op.type) {
      case PlanOpType::conv:
      case PlanOpType::fully_connected: {
        ConvShape cs;
        int groups = 1;
        if (op.type == PlanOpType::conv) {
          cs = op.shape;
          groups = op.groups;
          try {
            cs.validate();
          } catch (const std::exception& e) {
            fail(w, std::string("shape: ") + e.what());
          }
          if (cs.in_h != x.h || cs.in_w != x.w || cs.in_c != x.c)
            fail(w, "shape.in_h/in_w/in_c (" + std::to_string(cs.in_h) + ", " + std::to_string(cs.in_w) +
                        ", " + std::to_string(cs.in_c) + ") do not match input tensor '" + x.name + "' " +
                        dims(x));
          if (cs.out_h != y.h || cs.out_w != y.w || cs.out_c != y.c)
            fail(w, "shape.out_h/out_w/out_c (" + std::to_string(cs.out_h) + ", " +
                        std::to_string(cs.out_w) + ", " + std::to_string(cs.out_c) +
                        ") do not match output tensor '" + y.name + "' " + dims(y));
          if (groups < 1 || cs.in_c % groups != 0 || cs.out_c % groups != 0)
            fail(w, "groups " + std::to_string(groups) + " must be >= 1 and divide in_c " +
                        std::to_string(cs.in_c) + " and out_c " + std::to_string(cs.out_c));
          if (op.input_pieces < 1) fail(w, "input_pieces must be >= 1, got " + std::to_string(op.input_pieces));
          if (op.input_pieces > 1) {
            if (groups != cs.out_c || cs.in_c != op.input_pieces * groups || cs.dilation_w != 1)
              fail(w, "input_pieces " + std::to_string(op.input_pieces) +
                          " needs groups == out_c, in_c == input_pieces * groups and dilation_w 1 (groups " +
                          std::to_string(groups) + ", in_c " + std::to_string(cs.in_c) + ", out_c " +
                          std::to_string(cs.out_c) + ", dilation_w " + std::to_string(cs.dilation_w) + ")");
          } else {
            try {
              s.kind = conv_kind(cs, groups);
            } catch (const std::exception& e) {
              fail(w, e.what());
            }
          }
        } else {
          if (y.h != 1 || y.w != 1)
            fail(w, "output tensor '" + y.name + "' must be [h 1, w 1, c n], got " + dims(y));
          int64_t k = elements(x);
          if (k > std::numeric_limits<int>::max()) fail(w, "input too large");
          cs.in_h = cs.out_h = 1;
          cs.in_w = cs.out_w = 1;
          cs.in_c = static_cast<int>(k);
          cs.out_c = y.c;
          s.kind = ConvKind::pointwise;
        }
        const int64_t oc = cs.out_c;
        const int64_t per_out = static_cast<int64_t>(cs.in_c / groups) * cs.kernel_h * cs.kernel_w;
        if (static_cast<int64_t>(op.weights.size()) != oc * per_out)
          fail(w, "weights has " + std::to_string(op.weights.size()) + " elements, expected " +
                      std::to_string(oc * per_out) + " (out_c " + std::to_string(oc) + " x in_c/groups " +
                      std::to_string(cs.in_c / groups) + " x " + std::to_string(cs.kernel_h) + " x " +
                      std::to_string(cs.kernel_w) + ")");
        if (static_cast<int64_t>(op.w_scale.size()) != oc)
          fail(w, "w_scale has " + std::to_string(op.w_scale.size()) + " elements, expected out_c " +
                      std::to_string(oc));
        for (size_t c = 0; c < op.w_scale.size(); ++c)
          if (!valid_scale(op.w_scale[c]))
            fail(w, "w_scale[" + std::to_string(c) + "] must be finite and > 0, got " +
                        std::to_string(op.w_scale[c]));
        if (!op.w_zero_point.empty()) {
          if (static_cast<int64_t>(op.w_zero_point.size()) != oc)
            fail(w, "w_zero_point has " + std::to_string(op.w_zero_point.size()) +
                        " elements, expected 0 or out_c " + std::to_string(oc));
          for (size_t c = 0; c < op.w_zero_point.size(); ++c)
            if (!valid_int8(op.w_zero_point[c]))
              fail(w, "w_zero_point[" + std::to_string(c) + "] must be in [-128, 127], got " +
                          std::to_string(op.w_zero_point[c]));
        }
        if (!op.bias.empty() && static_cast<int64_t>(op.bias.size()) != oc)
          fail(w, "bias has " + std::to_string(op.bias.size()) + " elements, expected 0 or out_c " +
                      std::to_string(oc));
        const int8_t* weights = op.weights.data();
        std::vector<int8_t> piece_weights;
        if (op.input_pieces > 1) {
          // Piece j of group c sits at column ix * m + j of the input viewed as [in_h][in_w * m][c]:
          // a depthwise conv with kernel_w * m taps per row, stride_w * m and pads * m (a padded pixel
          // is m padded columns), tap (ky, kx * m + j) = w[c][j][ky][kx].
          const int m = op.input_pieces, kh = cs.kernel_h, kw = cs.kernel_w;
          piece_weights.resize(op.weights.size());
          for (int c = 0; c < cs.out_c; ++c)
            for (int j = 0; j < m; ++j)
              for (int ky = 0; ky < kh; ++ky)
                for (int kx = 0; kx < kw; ++kx)
                  piece_weights[(static_cast<size_t>(c) * kh + ky) * kw * m + static_cast<size_t>(kx) * m + j] =
                      op.weights[((static_cast<size_t>(c) * m + j) * kh + ky) * kw + kx];
          weights = piece_weights.data();
          cs.in_w *= m;
          cs.in_c = cs.out_c;
          cs.kernel_w *= m;
          cs.stride_w *= m;
          cs.pad_left *= m;
          cs.pad_right *= m;
          s.kind = ConvKind::depthwise;
        }
        s.as_gemm = s.kind == ConvKind::pointwise;
        s.gemm_n = cs.out_c;
        s.gemm_k = cs.in_c;
        s.row_macs = static_cast<size_t>(cs.out_w) * cs.out_c * cs.kernel_h * cs.kernel_w *
                     (s.kind == ConvKind::depthwise ? 1 : static_cast<size_t>(cs.in_c) / static_cast<size_t>(groups));
        try {
          s.packed = pack_conv(isa_, s.kind, cs, weights,
                               op.w_zero_point.empty() ? nullptr : op.w_zero_point.data(),
                               op.bias.empty() ? nullptr : op.bias.data(), x.zero_point);
          s.stage = make_output_stage(x.scale, op.w_scale.data(), op.w_scale.size(), mid_scale, mid_zp,
                                      op.qmin, op.qmax);
        } catch (const std::invalid_argument& e) {
          fail(w, e.what());
        }
        if (op.has_activation) {
          activation_table(op.act_scale, op.act_zero_point, s.stage.lut);
          s.stage.has_lut = true;
        }
        break;
      }
      case PlanOpType::max_pool: {
        const ConvShape& ps = op.shape;
        try {
          ps.validate();
        } catch (const std::exception& e) {
          fail(w, std::string("shape: ") + e.what());
        }
        if (ps.in_h != x.h || ps.in_w != x.w || ps.in_c != x.c || ps.out_h != y.h || ps.out_w != y.w ||
            ps.out_c != y.c || ps.out_c != ps.in_c)
          fail(w, "shape (in " + std::to_string(ps.in_h) + "x" + std::to_string(ps.in_w) + "x" +
                      std::to_string(ps.in_c) + ", out " + std::to_string(ps.out_h) + "x" + std::to_string(ps.out_w) +
                      "x" + std::to_string(ps.out_c) + ") does not match input " + dims(x) + " and output " + dims(y) +
                      " with out_c == in_c");
        s.pool_shape = ps;
        if (!op.has_activation && (mid_scale != x.scale || mid_zp != x.zero_point))
          fail(w, "the output's scale and zero point differ from the input's: set has_activation (identity) to "
                  "requantize");
        break;
      }
      case PlanOpType::global_avg_pool:
        if (y.h != 1 || y.w != 1 || y.c != x.c)
          fail(w, "output tensor '" + y.name + "' must be [h 1, w 1, c " + std::to_string(x.c) + "], got " +
                      dims(y));
        s.gap.x_scale = x.scale;
        s.gap.x_zero_point = x.zero_point;
        s.gap.y_scale = mid_scale;
        s.gap.y_zero_point = mid_zp;
        break;
      case PlanOpType::add:
        same_shape(x, *s.b, "inputs[0] and inputs[1]");
        same_shape(x, y, "inputs[0] and output");
        s.addp.a_scale = x.scale;
        s.addp.a_zero_point = x.zero_point;
        s.addp.b_scale = s.b->scale;
        s.addp.b_zero_point = s.b->zero_point;
        s.addp.y_scale = mid_scale;
        s.addp.y_zero_point = mid_zp;
        s.addp.qmin = op.qmin;
        s.addp.qmax = op.qmax;
        s.addp.offset = op.add_offset;
        break;
      case PlanOpType::mul:
        same_shape(x, y, "inputs[0] and output");
        if (s.b->h == 1 && s.b->w == 1 && s.b->c == x.c && !(x.h == 1 && x.w == 1)) {
          s.channelwise = true;
        } else {
          same_shape(x, *s.b, "inputs[0] and inputs[1] (expected the same shape, or inputs[1] [h 1, w 1, c])");
        }
        s.mulp.a_scale = x.scale;
        s.mulp.a_zero_point = x.zero_point;
        s.mulp.b_scale = s.b->scale;
        s.mulp.b_zero_point = s.b->zero_point;
        s.mulp.y_scale = mid_scale;
        s.mulp.y_zero_point = mid_zp;
        s.mulp.offset = op.add_offset;
        break;
      case PlanOpType::lut:
        same_shape(x, y, "inputs[0] and output");
        activation_table(x.scale, x.zero_point, s.table);
        if (clamps) fold_clamp(s.table);
        s.has_table = true;
        break;
    }
    if (op.type == PlanOpType::global_avg_pool || op.type == PlanOpType::add || op.type == PlanOpType::mul ||
        op.type == PlanOpType::max_pool) {
      // add clamps natively; gap, mul and max_pool get their clamp folded into the table that follows.
      const bool fold = clamps && op.type != PlanOpType::add;
      if (op.has_activation) {
        activation_table(op.act_scale, op.act_zero_point, s.table);
        s.has_table = true;
      } else if (fold) {
        for (int q = -128; q < 128; ++q) s.table[q + 128] = static_cast<int8_t>(q);
        s.has_table = true;
      }
      if (fold) fold_clamp(s.table);
    }
  }

  // Memory plan: tensors alive at the same time must not overlap in the arena. The one exception
  // is an elementwise op writing in place over an input it reads for the last time.
  for (size_t a = 0; a < nt; ++a) {
    if (def[a] == -2) continue;
    for (size_t b = a + 1; b < nt; ++b) {
      if (def[b] == -2) continue;
      const bool time_overlap = def[a] <= last[b] && def[b] <= last[a];
      if (!time_overlap) continue;
      const int64_t a0 = tensors_[a].offset, a1 = a0 + elements(tensors_[a]);
      const int64_t b0 = tensors_[b].offset, b1 = b0 + elements(tensors_[b]);
      if (a1 <= b0 || b1 <= a0) continue;
      // In place: same region, one produced by an elementwise op that last reads the other.
      bool in_place = false;
      if (a0 == b0 && a1 == b1) {
        for (int k = 0; k < 2 && !in_place; ++k) {
          const size_t out = k == 0 ? a : b, in = k == 0 ? b : a;
          if (def[out] < 0) continue;
          const PlanOp& op = plan.ops[def[out]];
          const bool elementwise =
              op.type == PlanOpType::add || op.type == PlanOpType::lut || op.type == PlanOpType::mul;
          if (elementwise && last[in] == def[out]) in_place = true;
        }
      }
      if (!in_place) {
        fail("plan memory",
             "tensors " + std::to_string(a) + " ('" + tensors_[a].name + "', bytes [" + std::to_string(a0) + ", " +
                 std::to_string(a1) + ")) and " + std::to_string(b) + " ('" + tensors_[b].name + "', bytes [" +
                 std::to_string(b0) + ", " + std::to_string(b1) + ")) overlap in the arena while both are alive");
      }
    }
  }

  // The batched tail: the longest suffix of steps whose tensors are all one pixel.
  auto one_pixel = [](const PlanTensor* t) { return t == nullptr || (t->h == 1 && t->w == 1); };
  tail_begin_ = steps_.size();
  while (tail_begin_ > 0) {
    const Step& s = steps_[tail_begin_ - 1];
    if (!one_pixel(s.x) || !one_pixel(s.b) || !one_pixel(s.y)) break;
    --tail_begin_;
  }
  tail_offset_.assign(nt, -1);
  std::vector<bool> made_in_tail(nt, false);
  auto slot = [&](int id) {
    if (tail_offset_[id] >= 0) return;
    tail_offset_[id] = tail_bytes_;
    tail_bytes_ += (elements(tensors_[id]) + 63) / 64 * 64;
  };
  for (size_t i = tail_begin_; i < steps_.size(); ++i) {
    const Step& s = steps_[i];
    for (const PlanTensor* t : {s.x, s.b}) {
      if (!t) continue;
      const int id = static_cast<int>(t - tensors_.data());
      if (tail_offset_[id] < 0) tail_inputs_.push_back(id);  // not yet seen: made before the tail
      slot(id);
    }
    slot(static_cast<int>(s.y - tensors_.data()));
  }
}

Model::~Model() {
  if (!profile_ || profile_->runs.load() == 0) return;
  const Profile& p = *profile_;
  const double runs = static_cast<double>(p.runs.load());
  int64_t total = 0;
  for (int k = 0; k < kProfileKinds; ++k) total += p.ns[k].load();
  std::fprintf(stderr, "mnq profile (%s, %d threads): %lld runs, %lld images, %.3f ms per run\n", isa_name(isa_),
               pool_.threads(), static_cast<long long>(p.runs.load()), static_cast<long long>(p.images.load()),
               total / 1e6 / runs);
  for (int k = 0; k < kProfileKinds; ++k) {
    if (p.calls[k].load() == 0) continue;
    std::fprintf(stderr, "  %-18s %8.3f ms/run %5.1f%%  %6.1f calls/run\n", kProfileNames[k],
                 p.ns[k].load() / 1e6 / runs, total ? 100.0 * p.ns[k].load() / total : 0.0,
                 p.calls[k].load() / runs);
  }
}

size_t Model::input_elements() const { return static_cast<size_t>(elements(tensors_[input_])); }
size_t Model::output_elements(size_t i) const {
  return static_cast<size_t>(elements(tensors_[outputs_.at(i)]));
}

// ------------------------------------------------------------------ execution
//
// Each image runs alone, from its input to its outputs, in one region of the
// arena (image_stride() bytes, laid out by the compiler's per-image memory
// plan): its working set is one image's whatever the batch, and a region is
// reused image after image, run after run, so it stays in cache (an op over the
// whole batch would stream B times the activations of the large early layers
// through the caches).
//
// With T threads, the first floor(B / T) * T images run image-parallel: each
// thread takes whole images, one region per thread, and runs every step alone
// with no synchronisation per op. The remaining images (all of them at batch 1)
// run one after the other, each step split over the threads (rows of a conv,
// columns of a small GEMM, ranges of an elementwise op).
//
// The tail - the last steps, where every tensor is one pixel (the classifier
// after the global pool) - runs once over the whole batch instead: its weights
// are the largest of the network and its activations the smallest, so a GEMM
// over B rows reads the weights once for B images. Its tensors have their own
// batch-major slots after the regions (tail_offset_); each image's tail inputs
// are copied there when its region is done.
//
// Memory: min(B, T) regions plus B times the (small) tail, however large B is.
namespace {

// Splits [0, units) into at most `threads` contiguous ranges of at least `min_chunk` units. One range
// per thread keeps the split stable from op to op (the caller claims the first range, a worker the
// next), so a thread mostly reads the rows it wrote itself one op before; finer ranges claimed
// dynamically land on either core and were ~15% slower at batch 1 on 2 threads (mobilenetv2-12-int8,
// 1.76-1.83 vs 1.47-1.60 ms). A late worker's range is still taken by whoever is free.
// A conv task should carry enough multiply-adds to pay for handing it to another thread (measured on
// MobileNetV3-Small at 2 threads, batch 1: 64K is 3-8% faster than splitting every op in two; 1M is slower).
constexpr size_t kMinTaskMacs = 65536;

size_t task_count(size_t units, size_t min_chunk, int threads) {
  if (threads <= 1 || units == 0) return units == 0 ? 0 : 1;
  size_t by_size = (units + min_chunk - 1) / min_chunk;
  return std::max<size_t>(1, std::min(by_size, static_cast<size_t>(threads)));
}

// fn(begin, end) over [0, units): on the pool's threads when `pool` is not null,
// else in one call on this thread.
template <typename Fn>
void split(ThreadPool* pool, size_t units, size_t min_chunk, Fn&& fn) {
  const size_t tasks = task_count(units, min_chunk, pool ? pool->threads() : 1);
  if (tasks == 0) return;
  if (tasks == 1) {
    fn(size_t{0}, units);
    return;
  }
  pool->parallel_for(tasks, [&](size_t t) {
    size_t b = units * t / tasks, e = units * (t + 1) / tasks;
    if (b < e) fn(b, e);
  });
}

}  // namespace

size_t Model::image_stride() const { return (static_cast<size_t>(arena_bytes_) + 63) / 64 * 64; }

void Model::run_step(const Step& s, int8_t* x, const int8_t* b, int8_t* y, size_t batch, ThreadPool* pool) const {
  const PlanTensor& X = *s.x;
  const PlanTensor& Y = *s.y;
  const size_t x_img = static_cast<size_t>(elements(X)), y_img = static_cast<size_t>(elements(Y));
  const size_t y_all = batch * y_img;
  const int T = pool ? pool->threads() : 1;

  switch (s.type) {
    case PlanOpType::conv:
    case PlanOpType::fully_connected:
      if (s.as_gemm) {
        // One GEMM over every pixel of the batch: rows m = batch * h * w, columns n.
        const size_t m = batch * static_cast<size_t>(Y.h) * Y.w;
        const size_t k = static_cast<size_t>(s.gemm_k), n = static_cast<size_t>(s.gemm_n);
        const PackedConv& p = *s.packed;
        if (T > 1 && m < static_cast<size_t>(8 * T)) {
          // Few rows (classifier, SE FCs): split the columns.
          const size_t blk = static_cast<size_t>(std::max(1, gemm_column_block(p)));
          const size_t nblocks = (n + blk - 1) / blk;
          // At least ~32K multiply-adds per task, so that tiny SE layers stay on one thread.
          const size_t block_macs = std::max<size_t>(1, m * k * blk);
          split(pool, nblocks, std::max<size_t>(1, 32768 / block_macs), [&](size_t b0, size_t b1) {
            const int n0 = static_cast<int>(b0 * blk), n1 = static_cast<int>(std::min(n, b1 * blk));
            gemm_run_columns(p, s.stage, x, y, m, n0, n1);
          });
        } else {
          split(pool, m, std::max<size_t>(16, kMinTaskMacs / std::max<size_t>(1, k * n)), [&](size_t r0, size_t r1) {
            gemm_run_columns(p, s.stage, x + r0 * k, y + r0 * n, r1 - r0, 0, static_cast<int>(n));
          });
        }
      } else {
        const PackedConv& p = *s.packed;
        const size_t min_rows = std::max<size_t>(1, kMinTaskMacs / std::max<size_t>(1, s.row_macs));
        for (size_t i = 0; i < batch; ++i) {
          split(pool, static_cast<size_t>(Y.h), min_rows, [&](size_t r0, size_t r1) {
            void* scratch = tls_scratch.get(conv_scratch_size(p, static_cast<int>(r0), static_cast<int>(r1)));
            conv_run(p, s.stage, x + i * x_img, y + i * y_img, static_cast<int>(r0), static_cast<int>(r1), scratch);
          });
        }
      }
      break;
    case PlanOpType::global_avg_pool:
      for (size_t i = 0; i < batch; ++i)
        global_avg_pool(isa_, s.gap, static_cast<size_t>(X.h) * X.w, static_cast<size_t>(X.c), x + i * x_img,
                        y + i * y_img);
      break;
    case PlanOpType::add:
      split(pool, y_all, 16384, [&](size_t e0, size_t e1) { add(isa_, s.addp, e1 - e0, x + e0, b + e0, y + e0); });
      break;
    case PlanOpType::mul:
      if (s.channelwise) {
        const size_t hw = static_cast<size_t>(X.h) * X.w, c = static_cast<size_t>(X.c);
        for (size_t i = 0; i < batch; ++i) {
          split(pool, hw, std::max<size_t>(1, 16384 / c), [&](size_t p0, size_t p1) {
            mul_channelwise(isa_, s.mulp, p1 - p0, c, x + i * x_img + p0 * c, b + i * c, y + i * y_img + p0 * c);
          });
        }
      } else {
        split(pool, y_all, 16384, [&](size_t e0, size_t e1) { mul(isa_, s.mulp, e1 - e0, x + e0, b + e0, y + e0); });
      }
      break;
    case PlanOpType::max_pool:
      for (size_t i = 0; i < batch; ++i) {
        split(pool, static_cast<size_t>(Y.h), 1, [&](size_t r0, size_t r1) {
          max_pool(s.pool_shape, x + i * x_img, y + i * y_img, static_cast<int>(r0), static_cast<int>(r1));
        });
      }
      break;
    case PlanOpType::lut:
      split(pool, y_all, 16384, [&](size_t e0, size_t e1) { lut_apply(isa_, s.table, e1 - e0, x + e0, y + e0); });
      return;  // the table is the op
  }
  if (s.has_table) {
    // Activation after gap / add / mul: the op wrote the activation's input domain.
    split(pool, y_all, 16384, [&](size_t e0, size_t e1) { lut_apply(isa_, s.table, e1 - e0, y + e0, y + e0); });
  }
}

void Model::run_steps(size_t begin, size_t end, const std::function<int8_t*(const PlanTensor*)>& at, size_t batch,
                      ThreadPool* pool) const {
  Profile* prof = profile_.get();
  using Clock = std::chrono::steady_clock;
  for (size_t i = begin; i < end; ++i) {
    const Step& s = steps_[i];
    const Clock::time_point t0 = prof ? Clock::now() : Clock::time_point();
    try {
      run_step(s, at(s.x), s.b ? at(s.b) : nullptr, at(s.y), batch, pool);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(op_where(s.index, s.type, s.name) + ": " + e.what());
    }
    if (prof) prof->add(profile_kind(s.type, s.kind), t0);
  }
}

void Model::execute(const float* f32_input, const int8_t* i8_input, int batch,
                    const std::vector<int8_t*>& outputs) const {
  if (batch < 1) throw std::invalid_argument("batch must be >= 1, got " + std::to_string(batch));
  if (outputs.size() != outputs_.size())
    throw std::invalid_argument("expected " + std::to_string(outputs_.size()) + " output buffers, got " +
                                std::to_string(outputs.size()));
  const size_t B = static_cast<size_t>(batch);
  // Regions: one per thread that runs whole images (see "execution" above).
  const size_t stride = image_stride();
  const size_t regions = B >= static_cast<size_t>(pool_.threads()) ? static_cast<size_t>(pool_.threads()) : 1;
  const size_t need = stride * regions + (static_cast<size_t>(tail_bytes_) * B + 63) / 64 * 64;

  ThreadPool::ComputeSlot slot(pool_);
  Profile* prof = profile_.get();
  using Clock = std::chrono::steady_clock;
  Clock::time_point t0 = prof ? Clock::now() : Clock::time_point();
  std::unique_ptr<Arena> arena;
  {
    std::lock_guard<std::mutex> lk(arenas_mu_);
    for (auto it = free_arenas_.begin(); it != free_arenas_.end(); ++it) {
      if ((*it)->size() >= need) {
        arena = std::move(*it);
        free_arenas_.erase(it);
        break;
      }
    }
    if (!arena && !free_arenas_.empty()) free_arenas_.pop_back();  // too small: replace it
  }
  if (!arena) {
    try {
      arena.reset(new Arena(need));
    } catch (const std::bad_alloc&) {
      throw std::runtime_error("out of memory allocating the " + std::to_string(need) +
                               "-byte activation arena for batch " + std::to_string(batch));
    }
  }
  uint8_t* mem = arena->data();
  if (prof) prof->add(kProfileOutputs, t0);

  uint8_t* tail = mem + stride * regions;
  auto tail_at = [&](const PlanTensor* t) {
    return reinterpret_cast<int8_t*>(tail + static_cast<size_t>(tail_offset_[t - tensors_.data()]) * B);
  };

  // One image, from its input to the tail, in one region of the arena.
  const PlanTensor& in = tensors_[input_];
  const size_t in_img = static_cast<size_t>(elements(in));
  auto one_image = [&](size_t i, uint8_t* region, ThreadPool* pool) {
    Clock::time_point t = prof ? Clock::now() : Clock::time_point();
    int8_t* dst = reinterpret_cast<int8_t*>(region + static_cast<size_t>(in.offset));
    if (f32_input) {
      quantize_nchw_to_nhwc(isa_, f32_input + i * in_img, static_cast<size_t>(in.c), static_cast<size_t>(in.h),
                            static_cast<size_t>(in.w), in.scale, in.zero_point, dst);
    } else {
      std::memcpy(dst, i8_input + i * in_img, in_img);
    }
    if (prof) prof->add(kProfileInput, t);
    run_steps(0, tail_begin_, [&](const PlanTensor* x) { return reinterpret_cast<int8_t*>(region + x->offset); }, 1,
              pool);
    if (prof) t = Clock::now();
    for (int id : tail_inputs_) {
      const size_t n = static_cast<size_t>(elements(tensors_[id]));
      std::memcpy(tail_at(&tensors_[id]) + i * n, region + static_cast<size_t>(tensors_[id].offset), n);
    }
    for (size_t o = 0; o < outputs_.size(); ++o) {
      if (tail_offset_[outputs_[o]] >= 0) continue;  // copied from the tail below
      const PlanTensor& y = tensors_[outputs_[o]];
      const size_t n = static_cast<size_t>(elements(y));
      std::memcpy(outputs[o] + i * n, region + static_cast<size_t>(y.offset), n);
    }
    if (prof) prof->add(kProfileOutputs, t);
  };

  const size_t T = static_cast<size_t>(pool_.threads());
  ThreadPool* pool = T > 1 ? &pool_ : nullptr;
  if (T == 1) {
    for (size_t i = 0; i < B; ++i) one_image(i, mem, nullptr);
  } else {
    // Whole images per thread (region t for task t) while at least T are left, then step-split.
    const size_t image_parallel = B / T * T;
    if (image_parallel > 0) {
      std::atomic<size_t> next{0};
      pool_.parallel_for(T, [&](size_t t) {
        for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < image_parallel;)
          one_image(i, mem + t * stride, nullptr);
      });
    }
    for (size_t i = image_parallel; i < B; ++i) one_image(i, mem, pool);
  }

  // The tail, once for the whole batch.
  run_steps(tail_begin_, steps_.size(), tail_at, B, pool);
  for (size_t o = 0; o < outputs_.size(); ++o) {
    if (tail_offset_[outputs_[o]] < 0) continue;
    const PlanTensor& y = tensors_[outputs_[o]];
    std::memcpy(outputs[o], tail_at(&y), static_cast<size_t>(elements(y)) * B);
  }

  {
    std::lock_guard<std::mutex> lk(arenas_mu_);
    if (free_arenas_.size() < static_cast<size_t>(pool_.threads())) free_arenas_.push_back(std::move(arena));
  }
  if (prof) {
    prof->runs.fetch_add(1, std::memory_order_relaxed);
    prof->images.fetch_add(static_cast<int64_t>(B), std::memory_order_relaxed);
  }
}

void Model::quantize_input(const float* nchw_input, int batch, int8_t* nhwc_output) const {
  if (!nchw_input || !nhwc_output) throw std::invalid_argument("input is null");
  if (batch < 1) throw std::invalid_argument("batch must be >= 1, got " + std::to_string(batch));
  const PlanTensor& in = tensors_[input_];
  const size_t in_img = static_cast<size_t>(elements(in));
  for (size_t i = 0; i < static_cast<size_t>(batch); ++i)
    quantize_nchw_to_nhwc(isa_, nchw_input + i * in_img, static_cast<size_t>(in.c), static_cast<size_t>(in.h),
                          static_cast<size_t>(in.w), in.scale, in.zero_point, nhwc_output + i * in_img);
}

void Model::run(const float* nchw_input, int batch, const std::vector<int8_t*>& outputs) const {
  if (!nchw_input) throw std::invalid_argument("input is null");
  execute(nchw_input, nullptr, batch, outputs);
}

void Model::run_int8(const int8_t* nhwc_input, int batch, const std::vector<int8_t*>& outputs) const {
  if (!nhwc_input) throw std::invalid_argument("input is null");
  execute(nullptr, nhwc_input, batch, outputs);
}

namespace {
std::vector<std::vector<int8_t>> alloc_outputs(const Model& m, int batch, std::vector<int8_t*>* ptrs) {
  std::vector<std::vector<int8_t>> out(m.num_outputs());
  if (batch < 1) return out;  // execute() reports the bad batch
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].resize(m.output_elements(i) * static_cast<size_t>(batch));
    ptrs->push_back(out[i].data());
  }
  return out;
}
}  // namespace

std::vector<std::vector<int8_t>> Model::run(const float* nchw_input, int batch) const {
  std::vector<int8_t*> ptrs;
  auto out = alloc_outputs(*this, batch, &ptrs);
  run(nchw_input, batch, ptrs);
  return out;
}

std::vector<std::vector<int8_t>> Model::run_int8(const int8_t* nhwc_input, int batch) const {
  std::vector<int8_t*> ptrs;
  auto out = alloc_outputs(*this, batch, &ptrs);
  run_int8(nhwc_input, batch, ptrs);
  return out;
}

}  // namespace mnq
