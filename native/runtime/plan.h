// The execution plan: what the TypeScript compiler (lib/compiler) hands to the
// native runtime, after it has parsed ONNX and matched QDQ / QOperator patterns:
// tensors, ops and weights, everything per image. Where tensors live in memory
// is not part of it: the runtime lays out its arena itself (memory_plan.h).
//
// The TypeScript mirror of these structures is lib/plan.ts; the addon converts
// one to the other field by field. The Model constructor validates every field
// (check_plan: ids, shapes, weight sizes) and throws std::invalid_argument with
// a message naming the op index and field.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../kernels/kernels.h"

namespace mnq {

struct PlanTensor {
  std::string name;       // ONNX tensor name, for error messages and debugging
  int h = 1, w = 1, c = 1;  // NHWC per image
  float scale = 1;
  int32_t zero_point = 0;  // in dtype's range
  // int8, or int16 (docs/quantization.md, "int16 activations"): ops that read or
  // write an int16 tensor run the wide kernels. The plan input and outputs are int8.
  Dtype dtype = Dtype::int8;
};

enum class PlanOpType : int {
  conv = 0,             // pointwise / depthwise / general, fused clamp and optional LUT
  global_avg_pool = 1,
  add = 2,
  mul = 3,              // same shape, or b broadcast over pixels (b.h == b.w == 1): SE scale
  lut = 4,
  fully_connected = 5,  // x: [1][1][k] (flattened), weights [n][k]: a GEMM over the batch
  max_pool = 6,         // window given by `shape` (out_c == in_c); result in x's quantization
};

struct PlanOp {
  PlanOpType type = PlanOpType::conv;
  std::string name;            // ONNX node name(s), for errors and per-layer reports
  std::vector<int> inputs;     // tensor ids
  int output = -1;             // tensor id
  // conv / fully_connected / max_pool
  ConvShape shape;             // conv and max_pool (fully_connected: derived from tensors)
  int groups = 1;
  // conv with groups == out_c and in_c == input_pieces * groups (input_pieces > 1): each output
  // channel c sums input_pieces input channels (ONNX channels c * input_pieces + j), which the
  // input tensor stores piece-major (channel j * out_c + c; the compiler permutes the producer).
  // Viewed as [in_h][in_w * input_pieces][out_c], that is a depthwise conv (see Model::create).
  int input_pieces = 1;
  std::vector<int8_t> weights;       // ONNX layout [out_c][in_c/groups][kh][kw] / [n][k]
  std::vector<int32_t> w_zero_point; // [out_c] (empty = symmetric)
  std::vector<float> w_scale;        // [out_c]
  std::vector<int32_t> bias;         // [out_c] (empty = none)
  // Clamp in the op's own result domain, before any table: fused ReLU / ReLU6
  // for conv / fully_connected / add; honoured by every op type (for gap and mul
  // and lut it is folded into a table: lut -> out = table[clamp(q)]). Within the
  // range of that domain's type: the output's, or for lut the input's (int16:
  // [-32768, 32767]; the defaults below are int8's, so an op whose domain is
  // int16 must set them).
  // A wide op (one that reads or writes an int16 tensor) has no fused activation,
  // no table and add_offset 0; a wide conv / fully_connected has symmetric weights.
  int32_t qmin = -128, qmax = 127;
  // add and mul: 128 when the model's tensors were uint8 (ORT computes the add,
  // and adds the mul's output zero point, on the uint8 values; see
  // AddParams::offset, MulParams::offset), else 0.
  int32_t add_offset = 0;
  // Fused activation (conv, fully_connected, global_avg_pool, add, mul, max_pool): the
  // op's result is first quantized with (act_scale, act_zero_point), clamped to
  // [qmin, qmax], and then mapped by a 256-entry table to the output tensor's
  // quantization. The table is make_lut(activation, act_scale, act_zero_point,
  // y.scale, y.zero_point), or `table` when that is not empty.
  // Standalone activation (lut): table = make_lut(activation, x.scale,
  // x.zero_point, y.scale, y.zero_point), or `table` when not empty;
  // has_activation / act_scale / act_zero_point are ignored.
  bool has_activation = false;
  UnaryParams activation;
  float act_scale = 1;
  int32_t act_zero_point = 0;
  // Precomputed table, table[q + 128] = output for input q: empty, or 256
  // entries (for activations that are not one UnaryFn). Replaces make_lut.
  std::vector<int8_t> table;
};

// The layout of one image of the float input Model::run takes (the int8 input
// tensor is NHWC either way): an NHWC image is quantized in place order.
enum class InputLayout : int {
  nchw = 0,  // [c][h][w]
  nhwc = 1,  // [h][w][c]: models whose graph transposes an NHWC input (Keras exports)
};

struct PlanDesc {
  std::vector<PlanTensor> tensors;
  std::vector<PlanOp> ops;          // in execution order
  int input = -1;                   // tensor quantized from the float input
  InputLayout input_layout = InputLayout::nchw;  // of the float input
  std::vector<int> outputs;         // tensors returned: int8 NHWC [batch][h][w][c] (dequantized by the caller)
};

// Elements of one image of a tensor, and their bytes.
inline int64_t elements(const PlanTensor& t) { return static_cast<int64_t>(t.h) * t.w * t.c; }
inline int64_t bytes(const PlanTensor& t) { return elements(t) * static_cast<int64_t>(dtype_bytes(t.dtype)); }
inline Quant quant_of(const PlanTensor& t) { return Quant{t.dtype, t.scale, t.zero_point}; }

// The op reads or writes an int16 tensor: it runs the wide kernels.
inline bool op_is_wide(const PlanOp& op, const std::vector<PlanTensor>& tensors) {
  for (int id : op.inputs)
    if (tensors[id].dtype != Dtype::int8) return true;
  return tensors[op.output].dtype != Dtype::int8;
}

// mul: inputs[1] is one pixel of x's channels, broadcast over x's pixels (an SE scale).
inline bool mul_broadcasts(const PlanTensor& x, const PlanTensor& b) {
  return b.h == 1 && b.w == 1 && b.c == x.c && !(x.h == 1 && x.w == 1);
}

// fully_connected: the 1x1 conv over x flattened to [1][1][h * w * c], to y's channels
// (check_plan ensures that h * w * c fits an int).
inline ConvShape fully_connected_shape(const PlanTensor& x, const PlanTensor& y) {
  ConvShape s;
  s.in_h = s.out_h = 1;
  s.in_w = s.out_w = 1;
  s.in_c = static_cast<int>(elements(x));
  s.out_c = y.c;
  return s;
}

}  // namespace mnq
