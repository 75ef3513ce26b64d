// A plan and one float input in a binary file, for native programs that run a
// whole model outside Node (bench_model): scripts/plan-file.js writes it from
// the TypeScript compiler's plan (lib/plan.ts), read_plan_file reads it back
// into the runtime's PlanDesc (plan.h), field for field.
//
// Format, little-endian; a "list" is a u32 count followed by the elements, a
// string a list of bytes:
//   "MNQPLAN1"
//   tensors: list of { string name; i32 h, w, c; f32 scale; i32 zero_point }
//   ops: list of { i32 type; string name; list<i32> inputs; i32 output;
//                  i32 shape[16] (ConvShape in declaration order); i32 groups, input_pieces;
//                  list<i8> weights; list<i32> w_zero_point; list<f32> w_scale; list<i32> bias;
//                  i32 qmin, qmax; i32 has_activation; i32 fn; f32 p0, p1; f32 act_scale;
//                  i32 act_zero_point; list<i8> table; i32 add_offset }
//   i32 input; i32 input_layout; list<i32> outputs
//   list<f32> input data (one image in the plan's input layout)
// Throws std::runtime_error on a truncated or malformed file; the Model
// constructor validates the plan itself.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/plan.h"

namespace mnq {
namespace bench {

class PlanFileReader {
 public:
  explicit PlanFileReader(const std::string& path) : path_(path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read " + path);
    bytes_.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }

  void read(PlanDesc* plan, std::vector<float>* input) {
    if (bytes_.size() < 8 || std::memcmp(bytes_.data(), "MNQPLAN1", 8) != 0)
      throw std::runtime_error(path_ + ": not a plan file (no MNQPLAN1 header)");
    pos_ = 8;
    plan->tensors.resize(count());
    for (PlanTensor& t : plan->tensors) {
      t.name = str();
      t.h = i32();
      t.w = i32();
      t.c = i32();
      t.scale = f32();
      t.zero_point = i32();
    }
    plan->ops.resize(count());
    for (PlanOp& op : plan->ops) {
      op.type = static_cast<PlanOpType>(i32());
      op.name = str();
      op.inputs = list<int32_t>();
      op.output = i32();
      int* shape[] = {&op.shape.in_h,     &op.shape.in_w,       &op.shape.in_c,       &op.shape.out_h,
                      &op.shape.out_w,    &op.shape.out_c,      &op.shape.kernel_h,   &op.shape.kernel_w,
                      &op.shape.stride_h, &op.shape.stride_w,   &op.shape.dilation_h, &op.shape.dilation_w,
                      &op.shape.pad_top,  &op.shape.pad_left,   &op.shape.pad_bottom, &op.shape.pad_right};
      for (int* v : shape) *v = i32();
      op.groups = i32();
      op.input_pieces = i32();
      op.weights = list<int8_t>();
      op.w_zero_point = list<int32_t>();
      op.w_scale = list<float>();
      op.bias = list<int32_t>();
      op.qmin = i32();
      op.qmax = i32();
      op.has_activation = i32() != 0;
      op.activation.fn = static_cast<UnaryFn>(i32());
      op.activation.p0 = f32();
      op.activation.p1 = f32();
      op.act_scale = f32();
      op.act_zero_point = i32();
      op.table = list<int8_t>();
      op.add_offset = i32();
    }
    plan->input = i32();
    plan->input_layout = static_cast<InputLayout>(i32());
    plan->outputs = list<int32_t>();
    *input = list<float>();
    if (pos_ != bytes_.size()) throw std::runtime_error(path_ + ": trailing bytes after the input");
  }

 private:
  void take(void* dst, size_t n) {
    if (n > bytes_.size() - pos_) throw std::runtime_error(path_ + ": truncated plan file");
    std::memcpy(dst, bytes_.data() + pos_, n);
    pos_ += n;
  }
  int32_t i32() {
    int32_t v;
    take(&v, 4);
    return v;
  }
  float f32() {
    float v;
    take(&v, 4);
    return v;
  }
  size_t count() {
    uint32_t n;
    take(&n, 4);
    return n;
  }
  template <typename T>
  std::vector<T> list() {
    const size_t n = count();
    if (n > (bytes_.size() - pos_) / sizeof(T)) throw std::runtime_error(path_ + ": truncated plan file");
    std::vector<T> v(n);
    if (n) take(v.data(), n * sizeof(T));
    return v;
  }
  std::string str() {
    const std::vector<char> c = list<char>();
    return std::string(c.begin(), c.end());
  }

  std::string path_;
  std::vector<char> bytes_;
  size_t pos_ = 0;
};

inline void read_plan_file(const std::string& path, PlanDesc* plan, std::vector<float>* input) {
  PlanFileReader(path).read(plan, input);
}

}  // namespace bench
}  // namespace mnq
