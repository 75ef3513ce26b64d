// mnq kernel core: the public C++ API of the int8 kernels.
//
// Pure C++17: no Node, no ONNX, no model knowledge. Every kernel has a scalar
// reference (kernels/ref/*.cc) that *is* the specification, and optional SIMD
// variants (kernels/x86/<isa>/*.cc, kernels/arm/<isa>/*.cc, one file per op
// family) that must be bit-identical to it.
// The quantization math is written down once in docs/quantization.md and
// implemented once in kernels/quant.h; everything here follows it.
//
// Conventions
// - Activations are int8, NHWC, per-tensor (scale, zero_point). uint8 tensors
//   from other tools are converted by the caller to int8 by subtracting 128
//   from the data and the zero point (an exact, bit-preserving shift).
// - Weights are int8 with a per-output-channel zero point (0 for the symmetric
//   scheme mnq writes; non-zero for TFLite uint8 / some ORT models: supported,
//   possibly on a slower path). Weights are given in ONNX layout (OIHW) and
//   packed once at load time for one ISA.
// - Bias is int32 at scale x_scale * w_scale[c].
// - Output stage ("requantize"): q = clamp(round_half_even(float(acc) * m[c]) + zp, qmin, qmax)
//   with m[c] = (x_scale * w_scale[c]) / y_scale computed in float32 in that order
//   (ONNX Runtime's QLinearConv), optionally followed by a 256-entry table
//   (fused activation): out = lut[q + 128].
// - Elementwise kernels take the ISA explicitly (tests pin each one); the conv
//   family takes it at pack time.
// - Kernels are single-threaded and work on a caller-chosen slice (rows of the
//   output) so that the runtime can split work across threads.
// - Entry points validate their parameters and throw std::invalid_argument
//   with a clear message; they never read or write out of bounds for valid
//   parameters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mnq {

// ---------------------------------------------------------------- ISA choice
enum class Isa : int {
  scalar = 0,      // reference, always available
  avx2 = 1,        // x86-64 AVX2 (+FMA)
  avx512vnni = 2,  // x86-64 AVX-512 F/BW/VL + VNNI (vpdpbusd)
  neon = 3,        // AArch64 ASIMD baseline (Cortex-A72, Raspberry Pi 4): no SDOT
  neondot = 4,     // AArch64 ASIMD + dot product (Cortex-A76, Raspberry Pi 5)
  avxvnni = 5,     // x86-64 AVX2 (+FMA) + AVX-VNNI (VEX vpdpbusd on ymm: Alder Lake+, Zen 5)
};
const char* isa_name(Isa isa);
bool parse_isa(const std::string& name, Isa* out);
// True if this build contains the ISA's kernels and the running CPU has the
// instructions (cpuid / getauxval).
bool isa_supported(Isa isa);
// All ISAs supported here, scalar first, then from the narrowest to the widest
// (x86-64: avx2, avxvnni, avx512vnni; AArch64: neon, neondot).
std::vector<Isa> supported_isas();
// The ISA to use: MNQ_ISA if set (throws std::runtime_error naming the ISA and
// what this CPU supports when it is unknown or unsupported), else the best one.
Isa default_isa();

// ------------------------------------------------------- activation types
// An activation tensor holds int8 or int16 values (docs/quantization.md, "int16
// activations"). The int8 kernels read and write int8 only; the *wide* kernels
// (conv_run_wide, add_wide, ...) take either, as the Quant of each operand says.
enum class Dtype : int { int8 = 0, int16 = 1 };
inline size_t dtype_bytes(Dtype d) { return d == Dtype::int16 ? 2 : 1; }
inline int32_t dtype_min(Dtype d) { return d == Dtype::int16 ? -32768 : -128; }
inline int32_t dtype_max(Dtype d) { return d == Dtype::int16 ? 32767 : 127; }
inline const char* dtype_name(Dtype d) {
  return d == Dtype::int8 ? "int8" : d == Dtype::int16 ? "int16" : "unknown";
}
// One tensor's element type and per-tensor quantization (zero point in the type's range).
struct Quant {
  Dtype dtype = Dtype::int8;
  float scale = 1;
  int32_t zero_point = 0;
};

// ----------------------------------------------------------- output stage
// Per-output-channel requantization, clamp and optional fused table.
struct OutputStage {
  std::vector<float> multiplier;  // [channels]: (x_scale * w_scale[c]) / y_scale, float32
  int32_t zero_point = 0;         // y zero point (in the range of dtype)
  int32_t qmin = -128, qmax = 127;  // clamp (fused ReLU / ReLU6 narrow these), in dtype's range
  bool has_lut = false;           // fused activation: out = lut[q + 128] (int8 only)
  int8_t lut[256] = {};
  // The output's type: int8 for conv_run / gemm_run_columns; int8 or int16 for
  // conv_run_wide / gemm_run_columns_wide (which take no table).
  Dtype dtype = Dtype::int8;
};
// Builds the multipliers exactly as ONNX Runtime does: float32 (x_scale * w_scale[c]) / y_scale.
// The zero point and clamp bounds must lie in y_dtype's range.
OutputStage make_output_stage(float x_scale, const float* w_scale, size_t channels,
                              float y_scale, int32_t y_zero_point,
                              int32_t qmin = -128, int32_t qmax = 127,
                              Dtype y_dtype = Dtype::int8);

// --------------------------------------------------------------- lookup tables
// Unary float functions evaluated between DequantizeLinear and QuantizeLinear.
enum class UnaryFn : int {
  identity = 0,
  relu = 1,
  clip = 2,          // min(max(x, p0), p1)
  hardsigmoid = 3,   // max(0, min(1, p0 * x + p1))   (ONNX defaults p0 = 0.2, p1 = 0.5)
  hardswish = 4,     // x * max(0, min(1, x / 6 + 0.5))
  sigmoid = 5,
  tanh = 6,
  leakyrelu = 7,     // x >= 0 ? x : p0 * x
  mul_hardsigmoid = 8,  // x * hardsigmoid(x; p0, p1)  (h-swish spelled HardSigmoid·Mul)
};
struct UnaryParams { UnaryFn fn = UnaryFn::identity; float p0 = 0, p1 = 0; };
// table[q + 128] = Q(f(DQ(q))) for every int8 q: DQ in float32, f in float32,
// Q = saturate(round_half_even(y / y_scale) + y_zero_point) (ORT QuantizeLinear).
void make_lut(const UnaryParams& f, float x_scale, int32_t x_zero_point,
              float y_scale, int32_t y_zero_point, int8_t table[256]);
void lut_apply(Isa isa, const int8_t table[256], size_t n, const int8_t* x, int8_t* y);

// --------------------------------------------------- input / output conversion
// ORT QuantizeLinear: q = saturate(round_half_even(x / scale) + zp); NaN -> -128
// (as ORT's MAXPS / FMAXNM clamp does), +-Inf -> 127 / -128.
// Reads NCHW float (one image), writes NHWC int8.
void quantize_nchw_to_nhwc(Isa isa, const float* x, size_t c, size_t h, size_t w,
                           float scale, int32_t zero_point, int8_t* y);
// ORT DequantizeLinear: float(q - zp) * scale.
void dequantize(Isa isa, const int8_t* q, size_t n, float scale, int32_t zero_point, float* y);

// ---------------------------------------------------------------- convolution
struct ConvShape {
  int in_h = 0, in_w = 0, in_c = 0;
  int out_h = 0, out_w = 0, out_c = 0;
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int dilation_h = 1, dilation_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  // Checks consistency (out_h == (in_h + pads - dilated kernel) / stride + 1, ...);
  // throws std::invalid_argument with a message naming the offending field.
  void validate() const;
};

// Weights of one convolution, packed once for one ISA.
struct PackedConv;  // opaque, defined per kernel family
struct PackedConvDeleter { void operator()(PackedConv*) const; };
using PackedConvPtr = std::unique_ptr<PackedConv, PackedConvDeleter>;

enum class ConvKind : int {
  pointwise = 0,  // 1x1, stride 1, no padding, groups 1: a GEMM over pixels
  depthwise = 1,  // groups == in_c == out_c, KxK
  general = 2,    // groups 1, any KxK (stem conv): im2col + GEMM, or for small kernel
                  // rows and few output channels straight from the NHWC input (x86, AArch64)
};
// Chooses the kind for a shape and group count (throws for unsupported groupings).
ConvKind conv_kind(const ConvShape& s, int groups);

// weights: ONNX layout [out_c][in_c / groups][kernel_h][kernel_w], int8.
// w_zero_point: [out_c] (nullptr = all zero). bias: [out_c] int32 (nullptr = 0).
// x_zero_point: input zero point (used for padding and folded into the bias).
PackedConvPtr pack_conv(Isa isa, ConvKind kind, const ConvShape& s,
                        const int8_t* weights, const int32_t* w_zero_point,
                        const int32_t* bias, int32_t x_zero_point);
// Bytes the packed convolution holds (its weights, raw and packed, biases and zero points).
size_t packed_conv_bytes(const PackedConv& p);
// Scratch bytes conv_run needs for rows [row_begin, row_end) (im2col etc.).
size_t conv_scratch_size(const PackedConv& p, int row_begin, int row_end);
// Computes output rows [row_begin, row_end) of one image.
// x: [in_h][in_w][in_c], y: [out_h][out_w][out_c].
void conv_run(const PackedConv& p, const OutputStage& out, const int8_t* x, int8_t* y,
              int row_begin, int row_end, void* scratch);

// Fully connected / pointwise over m rows: y[m][n] = out(x[m][k] . w[n][k] + b[n]).
// Packed with ConvKind::pointwise and any 1x1 shape where in_c = k, out_c = n
// (the packed shape's spatial size does not bound m: any number of rows, e.g.
// every pixel of a batch, in one call). Also splits over output channels
// (for batch-1 classifiers):
void gemm_run_columns(const PackedConv& p, const OutputStage& out, const int8_t* x,
                      int8_t* y, size_t m, int n_begin, int n_end);
// Column split granularity (n_begin / n_end must be multiples, or n_end == out_c).
int gemm_column_block(const PackedConv& p);

// ---------------------------------------------------------------- pooling
// ORT QLinearGlobalAveragePool (NHWC): per channel, sum over hw pixels, requantize.
struct GlobalAvgPoolParams {
  float x_scale = 1; int32_t x_zero_point = 0;
  float y_scale = 1; int32_t y_zero_point = 0;
};
void global_avg_pool(Isa isa, const GlobalAvgPoolParams& p, size_t hw, size_t c,
                     const int8_t* x, int8_t* y);
// The parameter checks global_avg_pool makes (std::invalid_argument): for a caller
// that checks once, before it runs (the runtime's model builder).
void check_global_avg_pool(const GlobalAvgPoolParams& p, size_t hw);

// MaxPool (NHWC, one image), output rows [row_begin, row_end): the window of a
// conv of shape s (kernel, stride, dilation, pads; out_c == in_c), padding
// never selected. Max commutes with quantization, so this is exact on the int8
// values for any scale and zero point (as ORT's int8 MaxPool); a window with
// no input pixel gives -128. One implementation for every ISA (the compiler
// vectorises the channel loop); s must have passed validate().
void max_pool(const ConvShape& s, const int8_t* x, int8_t* y, int row_begin, int row_end);

// ---------------------------------------------------------------- elementwise
// ORT QLinearAdd: y = Q(DQ(a) + DQ(b)), same shape. qmin/qmax for a fused ReLU.
struct AddParams {
  float a_scale = 1; int32_t a_zero_point = 0;
  float b_scale = 1; int32_t b_zero_point = 0;
  float y_scale = 1; int32_t y_zero_point = 0;
  int32_t qmin = -128, qmax = 127;
  // 128 when the tensors were uint8 (stored as int8 = value - 128): ORT computes
  // the add on the uint8 values, and so does mnq then (docs/quantization.md).
  int32_t offset = 0;
};
void add(Isa isa, const AddParams& p, size_t n, const int8_t* a, const int8_t* b, int8_t* y);
// The parameter checks add makes (std::invalid_argument), for a caller that checks once.
void check_add(const AddParams& p);

// ORT QLinearMul: y = Q(DQ(a) * DQ(b)).
struct MulParams {
  float a_scale = 1; int32_t a_zero_point = 0;
  float b_scale = 1; int32_t b_zero_point = 0;
  float y_scale = 1; int32_t y_zero_point = 0;
  // 128 when the tensors were uint8 (stored as int8 = value - 128): ORT adds the
  // uint8 output zero point in float before rounding, and so does mnq then
  // (docs/quantization.md); 0 for int8.
  int32_t offset = 0;
};
// Same shape.
void mul(Isa isa, const MulParams& p, size_t n, const int8_t* a, const int8_t* b, int8_t* y);
// Squeeze-and-excite scale: x [hw][c] times s [c] broadcast over pixels.
void mul_channelwise(Isa isa, const MulParams& p, size_t hw, size_t c, const int8_t* x,
                     const int8_t* s, int8_t* y);
// The parameter checks mul and mul_channelwise make (std::invalid_argument), for a caller that checks once.
void check_mul(const MulParams& p);

// ------------------------------------------------------- int16 activations
// The wide kernels: ops that read or write int16 tensors (docs/quantization.md,
// "int16 activations"). Tensors are passed as untyped pointers whose element
// type is the operand's Dtype; sizes and offsets count elements.

// Convolutions and fully connected layers whose input or output is int16:
// exact integer accumulation, then the output stage in out.dtype (no table).
// Weights int8, symmetric (no zero point). x_dtype: the input's type (an int8
// input is read widened, exactly). The kinds are those of pack_conv.
PackedConvPtr pack_conv_wide(Isa isa, ConvKind kind, const ConvShape& s, const int8_t* weights,
                             const int32_t* bias, Dtype x_dtype, int32_t x_zero_point);
// True when p was made by pack_conv_wide (runs with conv_run_wide / gemm_run_columns_wide only).
bool packed_conv_is_wide(const PackedConv& p);
// conv_run for a wide packing: x [in_h][in_w][in_c] of x_dtype, y [out_h][out_w][out_c] of out.dtype.
// Scratch: conv_scratch_size(p, row_begin, row_end) bytes.
void conv_run_wide(const PackedConv& p, const OutputStage& out, const void* x, void* y,
                   int row_begin, int row_end, void* scratch);
// gemm_run_columns for a wide pointwise packing (x [m][k] of x_dtype, y [m][n] of out.dtype).
void gemm_run_columns_wide(const PackedConv& p, const OutputStage& out, const void* x, void* y,
                           size_t m, int n_begin, int n_end);

// Ops that do not accumulate compute ONNX Runtime's float graph DQ -> op -> Q
// (exactly), with the result clamped to [qmin, qmax] (in y's range).
struct WideBinaryParams {
  Quant a, b, y;
  int32_t qmin = -32768, qmax = 32767;  // clamp of the result, within y's range
};
// y = Q_y(DQ_a(a) + DQ_b(b)), same shape.
void add_wide(Isa isa, const WideBinaryParams& p, size_t n, const void* a, const void* b, void* y);
// y = Q_y(DQ_a(a) * DQ_b(b)), same shape.
void mul_wide(Isa isa, const WideBinaryParams& p, size_t n, const void* a, const void* b, void* y);
// Squeeze-and-excite scale: x [hw][c] (a) times s [c] (b) broadcast over pixels.
void mul_channelwise_wide(Isa isa, const WideBinaryParams& p, size_t hw, size_t c, const void* x,
                          const void* s, void* y);
// The parameter checks add_wide, mul_wide and mul_channelwise_wide make (std::invalid_argument), for a
// caller that checks once.
void check_binary_wide(const WideBinaryParams& p);
// y = Q_y(f(DQ_x(clamp(x, qmin, qmax)))): activations and, with f = identity, the
// requantization between int8 and int16. The clamp applies to the input (in x's range).
struct WideUnaryParams {
  UnaryParams f;
  Quant x, y;
  int32_t qmin = -32768, qmax = 32767;  // within x's range
};
void unary_wide(Isa isa, const WideUnaryParams& p, size_t n, const void* x, void* y);
// The parameter checks unary_wide makes (std::invalid_argument), for a caller that checks once.
void check_unary_wide(const WideUnaryParams& p);
// unary_wide as a table over every value of x (int8: 256 entries, int16: 65536): entry v - min(x) is
// what unary_wide writes for v (computed by it, so the two agree by construction). Built once per op;
// wide_lut_apply then costs one load per element instead of a dequantize, a function and a quantize.
std::vector<int16_t> make_wide_lut(const WideUnaryParams& p);
void wide_lut_apply(const WideUnaryParams& p, const int16_t* table, size_t n, const void* x, void* y);
// Global average pool with int16 input or output: exact integer sum, gap_scale, output stage.
struct WideGapParams {
  Quant x, y;
  int32_t qmin = -32768, qmax = 32767;  // clamp of the result, within y's range
};
void global_avg_pool_wide(Isa isa, const WideGapParams& p, size_t hw, size_t c, const void* x, void* y);
// The parameter checks global_avg_pool_wide makes (std::invalid_argument), for a caller that checks once.
void check_global_avg_pool_wide(const WideGapParams& p, size_t hw);

}  // namespace mnq
