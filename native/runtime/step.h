// One plan op made ready to run (native/runtime/model_build.cc makes them,
// native/runtime/executor.cc runs them): its kernel parameters derived from the
// plan, weights packed for the model's ISA, tables built.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "plan.h"

namespace mnq {

struct Step {
  PlanOpType type = PlanOpType::conv;
  size_t index = 0;  // op index in the plan
  std::string name;
  int x = -1;  // first input tensor id
  int b = -1;  // second input tensor id (add, mul), else -1
  int y = -1;  // output tensor id
  // conv / fully_connected
  ConvKind kind = ConvKind::pointwise;
  bool as_gemm = false;          // pointwise conv or fully connected: one GEMM over the image's pixels
  int gemm_n = 0, gemm_k = 0;    // GEMM columns and depth
  size_t row_macs = 0;           // multiply-adds per output row (splitting rows over threads)
  // conv (the shape the kernel runs: a grouped conv over input pieces as its depthwise view) and max_pool
  // (the window): the geometry of output rows over input rows
  ConvShape shape;
  PackedConvPtr packed;
  OutputStage stage;
  // global_avg_pool / add / mul
  GlobalAvgPoolParams gap;
  AddParams addp;
  MulParams mulp;
  bool channelwise = false;       // mul with b broadcast over pixels
  // standalone table (lut op), or the table applied after gap/add/mul/max_pool
  bool has_table = false;
  int8_t table[256] = {};
  // The op reads or writes an int16 tensor: the wide kernels (kernels.h, "int16 activations")
  // with these parameters (conv / fully_connected: the wide packing and `stage`).
  bool wide = false;
  WideBinaryParams binary;  // add, mul
  WideUnaryParams unary;    // lut
  std::vector<int16_t> wide_lut;  // lut: unary as a table over x's values (make_wide_lut)
  WideGapParams gap_wide;   // global_avg_pool
};

}  // namespace mnq
