// The execution plan: the TypeScript mirror of native/runtime/plan.h, field for
// field (snake_case there, camelCase here). lib/compiler builds one from an
// ONNX graph; the addon (lib/native.ts) converts it to mnq::PlanDesc and the
// native runtime validates and executes it. Nothing here knows about ONNX.
//
// Layout conventions (see plan.h): every tensor is int8 (or int16) NHWC *per image* with a
// per-tensor (scale, zeroPoint). Where tensors live in memory is the native
// runtime's business: it lays out its arena itself (native/runtime/memory_plan.h)
// and reports its size (NativeModel.arenaBytesPerImage).

/** mnq::UnaryFn: unary float functions evaluated between DequantizeLinear and QuantizeLinear. */
export enum UnaryFn {
  identity = 0,
  relu = 1,
  clip = 2, // min(max(x, p0), p1)
  hardsigmoid = 3, // max(0, min(1, p0 * x + p1))
  hardswish = 4, // x * max(0, min(1, x / 6 + 0.5))
  sigmoid = 5,
  tanh = 6,
  leakyrelu = 7, // x >= 0 ? x : p0 * x
  mulHardsigmoid = 8, // x * hardsigmoid(x; p0, p1)
}

export interface UnaryParams {
  fn: UnaryFn;
  p0: number;
  p1: number;
}

/** mnq::ConvShape (per image). */
export interface ConvShape {
  inH: number;
  inW: number;
  inC: number;
  outH: number;
  outW: number;
  outC: number;
  kernelH: number;
  kernelW: number;
  strideH: number;
  strideW: number;
  dilationH: number;
  dilationW: number;
  padTop: number;
  padLeft: number;
  padBottom: number;
  padRight: number;
}

/** mnq::Dtype: an activation tensor's element type (docs/quantization.md, "int16 activations"). */
export enum Dtype {
  int8 = 0,
  int16 = 1,
}

/** [min, max] of a Dtype's values. */
export function dtypeRange(d: Dtype): [number, number] {
  return d === Dtype.int16 ? [-32768, 32767] : [-128, 127];
}

/** mnq::PlanTensor */
export interface PlanTensor {
  name: string; // ONNX tensor name
  h: number;
  w: number;
  c: number; // NHWC per image
  scale: number; // float32
  zeroPoint: number; // in dtype's range
  // int8 (the default when absent) or int16: ops that read or write an int16 tensor run the wide
  // kernels (no fused activation or table, symmetric weights). The plan input and outputs are int8.
  dtype?: Dtype;
}

/** mnq::PlanOpType */
export enum PlanOpType {
  conv = 0, // pointwise / depthwise / general, fused clamp and optional activation table
  globalAvgPool = 1,
  add = 2,
  mul = 3, // same shape, or b broadcast over pixels (b.h == b.w == 1): SE scale
  lut = 4,
  fullyConnected = 5, // x: [1][1][k] (flattened), weights [n][k]
  maxPool = 6, // window given by `shape` (outC == inC); output in the input's quantization (or a table)
}

/** mnq::PlanOp */
export interface PlanOp {
  type: PlanOpType;
  name: string; // ONNX node name(s)
  inputs: number[]; // tensor ids
  output: number; // tensor id
  // conv / fullyConnected / maxPool
  shape: ConvShape; // conv and maxPool (fullyConnected: derived from tensors)
  groups: number;
  // conv with groups == outC and inC == inputPieces * groups (> 1): output channel c sums the input
  // channels c * inputPieces + j (ONNX order), which the input tensor stores piece-major (channel
  // j * outC + c; the compiler permutes the producer's output channels); the runtime runs it as a
  // depthwise conv over the input viewed as [inH][inW * inputPieces][outC]. 1 otherwise.
  inputPieces: number;
  weights: Int8Array; // ONNX layout [outC][inC/groups][kh][kw] / [n][k]
  wZeroPoint: Int32Array; // [outC] (empty = symmetric)
  wScale: Float32Array; // [outC]
  bias: Int32Array; // [outC] (empty = none)
  qmin: number; // fused ReLU / ReLU6 clamp in the output (pre-table) domain (lut: the input's),
  qmax: number; // within that domain's type range; also honoured by add and mul
  // Fused (conv) or standalone (lut) activation: for conv the result is first
  // quantized with (actScale, actZeroPoint), clamped to [qmin, qmax], then mapped
  // through the table to the output tensor's quantization.
  hasActivation: boolean;
  activation: UnaryParams;
  actScale: number;
  actZeroPoint: number;
  // A precomputed 256-entry table, table[q + 128] = output for input q, used
  // instead of make_lut(activation, ...) when non-empty. The compiler sets it only
  // for activations that are not a single UnaryFn (e.g. TFLite's h-sigmoid spelled
  // Add(3) -> Clip(0, 6), or Mul-by-constant), computing it with exact float32
  // arithmetic; empty otherwise.
  table: Int8Array;
  // add and mul. ORT runs QLinearAdd of uint8 tensors (QOperator models, uint8 QDQ)
  // in the uint8 domain, and its float arithmetic is not shift-invariant, so the
  // kernel computes on a + addOffset, b + addOffset with zero points + addOffset
  // and subtracts addOffset after rounding: 128 for uint8 tensors (stored shifted
  // to int8), 0 for int8. QLinearMul adds its output zero point in float before
  // rounding: the kernel adds zero point + addOffset, rounds, subtracts addOffset.
  addOffset: number;
}

/** mnq::InputLayout: the layout of one image of the float input the native model's run() takes. */
export enum InputLayout {
  nchw = 0, // [c][h][w]
  nhwc = 1, // [h][w][c] (quantized straight into the NHWC int8 input tensor)
}

/** mnq::PlanDesc */
export interface PlanDesc {
  tensors: PlanTensor[];
  ops: PlanOp[]; // in execution order
  input: number; // tensor quantized from the float input
  inputLayout: InputLayout; // of the float input
  outputs: number[]; // tensors returned
}

export function emptyConvShape(): ConvShape {
  return {
    inH: 0, inW: 0, inC: 0, outH: 0, outW: 0, outC: 0,
    kernelH: 1, kernelW: 1, strideH: 1, strideW: 1, dilationH: 1, dilationW: 1,
    padTop: 0, padLeft: 0, padBottom: 0, padRight: 0,
  };
}

/** A PlanOp with every field at its plan.h default. */
export function makeOp(type: PlanOpType, name: string, inputs: number[], output: number): PlanOp {
  return {
    type, name, inputs, output,
    shape: emptyConvShape(),
    groups: 1,
    inputPieces: 1,
    weights: new Int8Array(0),
    wZeroPoint: new Int32Array(0),
    wScale: new Float32Array(0),
    bias: new Int32Array(0),
    qmin: -128,
    qmax: 127,
    hasActivation: false,
    activation: { fn: UnaryFn.identity, p0: 0, p1: 0 },
    actScale: 1,
    actZeroPoint: 0,
    table: new Int8Array(0),
    addOffset: 0,
  };
}
