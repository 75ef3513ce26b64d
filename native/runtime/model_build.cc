// Building a Model from a plan: the plan checked (plan_check.cc), each op made a
// Step (weights packed for the ISA, output stages and tables built), and the
// batched tail laid out. Running the steps: executor.cc.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "model.h"
#include "plan_check.h"
#include "profile.h"
#include "step.h"

namespace mnq {

namespace {

constexpr int kMaxThreads = 256;

int checked_threads(int threads) {
  if (threads < 1 || threads > kMaxThreads) {
    throw std::invalid_argument("threads must be an integer in [1, " + std::to_string(kMaxThreads) + "], got " +
                                std::to_string(threads));
  }
  return threads;
}

Isa checked_isa(Isa isa) {
  if (!isa_supported(isa)) {
    std::string names;
    for (Isa i : supported_isas()) names += std::string(names.empty() ? "" : ", ") + isa_name(i);
    throw std::invalid_argument(std::string("ISA '") + isa_name(isa) +
                                "' is not supported on this machine (supported: " + names + ")");
  }
  return isa;
}

// Makes one Step from a checked op. Errors the kernels report while packing or
// building tables (none for a plan check_plan accepted, unless a kernel limit is
// reached) name the op.
class StepBuilder {
 public:
  StepBuilder(Isa isa, const std::vector<PlanTensor>& tensors, size_t index, const PlanOp& op)
      : isa_(isa), op_(op), wide_(op_is_wide(op, tensors)), x_(tensors[op.inputs[0]]), y_(tensors[op.output]),
        b_(op.inputs.size() > 1 ? &tensors[op.inputs[1]] : nullptr), where_(op_where(index, op.type, op.name)) {
    s_.type = op.type;
    s_.index = index;
    s_.name = op.name;
    s_.x = op.inputs[0];
    s_.b = op.inputs.size() > 1 ? op.inputs[1] : -1;
    s_.y = op.output;
  }

  Step build() {
    if (wide_) return build_wide();
    switch (op_.type) {
      case PlanOpType::conv:
      case PlanOpType::fully_connected: conv(); break;
      case PlanOpType::max_pool: s_.shape = op_.shape; break;
      case PlanOpType::global_avg_pool:
        s_.gap = {x_.scale, x_.zero_point, mid_scale(), mid_zero_point()};
        kernel_check([&] { check_global_avg_pool(s_.gap, static_cast<size_t>(x_.h) * x_.w); });
        break;
      case PlanOpType::add: add(); break;
      case PlanOpType::mul: mul(); break;
      case PlanOpType::lut:
        activation_table(x_.scale, x_.zero_point, s_.table);
        if (clamps()) fold_clamp(s_.table);
        s_.has_table = true;
        break;
    }
    if (op_.type == PlanOpType::global_avg_pool || op_.type == PlanOpType::add || op_.type == PlanOpType::mul ||
        op_.type == PlanOpType::max_pool)
      table_after();
    return std::move(s_);
  }

  // An op with int16 tensors (check_plan allows no activation, table, offset or max_pool here).
  Step build_wide() {
    s_.wide = true;
    const Quant x = quant_of(x_), y = quant_of(y_);
    switch (op_.type) {
      case PlanOpType::conv:
      case PlanOpType::fully_connected: conv(); break;
      case PlanOpType::global_avg_pool:
        s_.gap_wide = WideGapParams{x, y, op_.qmin, op_.qmax};
        kernel_check([&] { check_global_avg_pool_wide(s_.gap_wide, static_cast<size_t>(x_.h) * x_.w); });
        break;
      case PlanOpType::add:
      case PlanOpType::mul:
        s_.channelwise = op_.type == PlanOpType::mul && mul_broadcasts(x_, *b_);
        s_.binary = WideBinaryParams{x, quant_of(*b_), y, op_.qmin, op_.qmax};
        kernel_check([&] { check_binary_wide(s_.binary); });
        break;
      case PlanOpType::lut:
        s_.unary = WideUnaryParams{op_.activation, x, y, op_.qmin, op_.qmax};
        kernel_check([&] { s_.wide_lut = make_wide_lut(s_.unary); });
        break;
      case PlanOpType::max_pool: fail("max_pool on int16 tensors is not supported");
    }
    return std::move(s_);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw std::invalid_argument(where_ + ": " + what); }

  // The domain the op itself computes into: the activation's input when one follows.
  float mid_scale() const { return op_.has_activation ? op_.act_scale : y_.scale; }
  int32_t mid_zero_point() const { return op_.has_activation ? op_.act_zero_point : y_.zero_point; }
  bool clamps() const { return op_.qmin > -128 || op_.qmax < 127; }

  // The activation table: from `table`, or built from `activation` between the given domains.
  void activation_table(float in_scale, int32_t in_zp, int8_t out[256]) const {
    if (!op_.table.empty()) {
      std::memcpy(out, op_.table.data(), 256);
      return;
    }
    try {
      make_lut(op_.activation, in_scale, in_zp, y_.scale, y_.zero_point, out);
    } catch (const std::invalid_argument& e) {
      fail(std::string("activation: ") + e.what());
    }
  }

  // out[q] = out[clamp(q)]: folds the op's clamp into a table.
  void fold_clamp(int8_t table[256]) const {
    int8_t t[256];
    for (int q = -128; q < 128; ++q) t[q + 128] = table[std::min(std::max(q, op_.qmin), op_.qmax) + 128];
    std::memcpy(table, t, 256);
  }

  void conv() {
    ConvShape cs;
    int groups = 1;
    if (op_.type == PlanOpType::conv) {
      cs = op_.shape;
      groups = op_.groups;
      if (op_.input_pieces == 1) s_.kind = conv_kind(cs, groups);
    } else {
      cs = fully_connected_shape(x_, y_);
      s_.kind = ConvKind::pointwise;
    }
    const int8_t* weights = op_.weights.data();
    std::vector<int8_t> piece_weights;
    if (op_.input_pieces > 1) {
      // Piece j of group c sits at column ix * m + j of the input viewed as [in_h][in_w * m][c]:
      // a depthwise conv with kernel_w * m taps per row, stride_w * m and pads * m (a padded pixel
      // is m padded columns), tap (ky, kx * m + j) = w[c][j][ky][kx].
      const int m = op_.input_pieces, kh = cs.kernel_h, kw = cs.kernel_w;
      piece_weights.resize(op_.weights.size());
      for (int c = 0; c < cs.out_c; ++c)
        for (int j = 0; j < m; ++j)
          for (int ky = 0; ky < kh; ++ky)
            for (int kx = 0; kx < kw; ++kx)
              piece_weights[(static_cast<size_t>(c) * kh + ky) * kw * m + static_cast<size_t>(kx) * m + j] =
                  op_.weights[((static_cast<size_t>(c) * m + j) * kh + ky) * kw + kx];
      weights = piece_weights.data();
      cs.in_w *= m;
      cs.in_c = cs.out_c;
      cs.kernel_w *= m;
      cs.stride_w *= m;
      cs.pad_left *= m;
      cs.pad_right *= m;
      s_.kind = ConvKind::depthwise;
    }
    s_.shape = cs;
    s_.as_gemm = s_.kind == ConvKind::pointwise;
    s_.gemm_n = cs.out_c;
    s_.gemm_k = cs.in_c;
    s_.row_macs = static_cast<size_t>(cs.out_w) * cs.out_c * cs.kernel_h * cs.kernel_w *
                  (s_.kind == ConvKind::depthwise ? 1 : static_cast<size_t>(cs.in_c) / static_cast<size_t>(groups));
    try {
      const int32_t* bias = op_.bias.empty() ? nullptr : op_.bias.data();
      if (wide_) {
        s_.packed = pack_conv_wide(isa_, s_.kind, cs, weights, bias, x_.dtype, x_.zero_point);
        s_.stage = make_output_stage(x_.scale, op_.w_scale.data(), op_.w_scale.size(), y_.scale, y_.zero_point,
                                     op_.qmin, op_.qmax, y_.dtype);
      } else {
        s_.packed = pack_conv(isa_, s_.kind, cs, weights, op_.w_zero_point.empty() ? nullptr : op_.w_zero_point.data(),
                              bias, x_.zero_point);
        s_.stage = make_output_stage(x_.scale, op_.w_scale.data(), op_.w_scale.size(), mid_scale(), mid_zero_point(),
                                     op_.qmin, op_.qmax);
      }
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
    if (op_.has_activation) {
      activation_table(op_.act_scale, op_.act_zero_point, s_.stage.lut);
      s_.stage.has_lut = true;
    }
  }

  // add and mul: the quantization of the two inputs and of the result.
  template <typename Params>
  void set_domains(Params* p) const {
    p->a_scale = x_.scale;
    p->a_zero_point = x_.zero_point;
    p->b_scale = b_->scale;
    p->b_zero_point = b_->zero_point;
    p->y_scale = mid_scale();
    p->y_zero_point = mid_zero_point();
  }

  void add() {
    set_domains(&s_.addp);
    s_.addp.qmin = op_.qmin;
    s_.addp.qmax = op_.qmax;
    s_.addp.offset = op_.add_offset;
    kernel_check([&] { check_add(s_.addp); });
  }

  void mul() {
    s_.channelwise = mul_broadcasts(x_, *b_);
    set_domains(&s_.mulp);
    s_.mulp.offset = op_.add_offset;
    kernel_check([&] { check_mul(s_.mulp); });
  }

  // The kernel's own parameter checks, made once here so that a model that builds also runs (the
  // executor calls the kernels with these parameters): a refusal names the op.
  template <typename Check>
  void kernel_check(Check check) const {
    try {
      check();
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
  }

  // gap, add, mul and max_pool: the activation table after the op, if any. add clamps natively;
  // gap, mul and max_pool get their clamp folded into the table (an identity one if need be).
  void table_after() {
    const bool fold = clamps() && op_.type != PlanOpType::add;
    if (op_.has_activation) {
      activation_table(op_.act_scale, op_.act_zero_point, s_.table);
      s_.has_table = true;
    } else if (fold) {
      for (int q = -128; q < 128; ++q) s_.table[q + 128] = static_cast<int8_t>(q);
      s_.has_table = true;
    }
    if (fold) fold_clamp(s_.table);
  }

  Isa isa_;
  const PlanOp& op_;
  bool wide_;  // the op reads or writes an int16 tensor
  const PlanTensor& x_;
  const PlanTensor& y_;
  const PlanTensor* b_;
  std::string where_;
  Step s_;
};

}  // namespace

const char* executor_name(Executor e) { return e == Executor::layers ? "layers" : "fused"; }

Executor default_executor() {
  const char* v = std::getenv("MNQ_EXECUTOR");
  if (!v || !*v) return Executor::fused;
  const std::string s(v);
  if (s == "fused") return Executor::fused;
  if (s == "layers") return Executor::layers;
  throw std::invalid_argument("MNQ_EXECUTOR must be 'fused' or 'layers', got '" + s + "'");
}

namespace {
// The window memory a fused group aims at per thread: MNQ_BAND_KB (KiB) if set, else kBandBytes.
constexpr size_t kBandBytes = 96 * 1024;
size_t band_bytes() {
  const char* v = std::getenv("MNQ_BAND_KB");
  const long kb = v && *v ? std::strtol(v, nullptr, 10) : 0;
  return kb > 0 ? static_cast<size_t>(kb) * 1024 : kBandBytes;
}
}  // namespace

Model::Model(const PlanDesc& plan, Isa isa, int threads, Executor executor)
    : isa_(checked_isa(isa)), pool_(checked_threads(threads)) {
  check_plan(plan);
  tensors_ = plan.tensors;
  input_ = plan.input;
  input_layout_ = plan.input_layout;
  outputs_ = plan.outputs;
  executor_ = executor;
  steps_.reserve(plan.ops.size());
  for (size_t i = 0; i < plan.ops.size(); ++i) steps_.push_back(StepBuilder(isa_, tensors_, i, plan.ops[i]).build());
  layout_tail();
  if (executor_ == Executor::fused) groups_ = find_fused_groups(plan, steps_, tail_begin_, band_bytes());
  group_at_.assign(steps_.size(), -1);
  for (size_t g = 0; g < groups_.size(); ++g) group_at_[groups_[g].begin] = static_cast<int>(g);
  memory_ = plan_memory(plan, groups_);

  if (Profile::enabled()) profile_.reset(new Profile);
}

Model::~Model() {
  if (profile_) profile_->report(isa_, pool_.threads());
}

// The batched tail: the longest suffix of steps whose tensors are all one pixel, each of
// its tensors in a slot of its own (batch-major) after the image regions.
void Model::layout_tail() {
  auto one_pixel = [&](int id) { return id < 0 || (tensors_[id].h == 1 && tensors_[id].w == 1); };
  tail_begin_ = steps_.size();
  while (tail_begin_ > 0) {
    const Step& s = steps_[tail_begin_ - 1];
    if (!one_pixel(s.x) || !one_pixel(s.b) || !one_pixel(s.y)) break;
    --tail_begin_;
  }
  tail_offset_.assign(tensors_.size(), -1);
  auto slot = [&](int id) {
    if (tail_offset_[id] >= 0) return;
    tail_offset_[id] = tail_bytes_;
    tail_bytes_ += (bytes(tensors_[id]) + 63) / 64 * 64;
  };
  for (size_t i = tail_begin_; i < steps_.size(); ++i) {
    const Step& s = steps_[i];
    for (int id : {s.x, s.b}) {
      if (id < 0) continue;
      if (tail_offset_[id] < 0) tail_inputs_.push_back(id);  // not yet seen: made before the tail
      slot(id);
    }
    slot(s.y);
  }
}

size_t Model::window_bytes_per_thread() const {
  size_t most = 0;
  for (const FusedGroup& g : groups_) most = std::max(most, g.window_bytes);
  return most;
}

size_t Model::weight_bytes() const {
  size_t bytes = 0;
  for (const Step& s : steps_)
    bytes += (s.packed ? packed_conv_bytes(*s.packed) : 0) + s.wide_lut.size() * sizeof(int16_t);
  return bytes;
}

size_t Model::input_elements() const { return static_cast<size_t>(elements(tensors_[input_])); }
size_t Model::output_elements(size_t i) const { return static_cast<size_t>(elements(tensors_[outputs_.at(i)])); }

}  // namespace mnq
