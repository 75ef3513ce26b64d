// The abstract values the compiler gives ONNX tensors, one pass over the nodes in graph order:
//   q      an int8 / int16 tensor of the plan (output of QuantizeLinear / a QLinear* op)
//   dq     the float view DequantizeLinear(q) of one
//   const  a constant (initializer, Constant node, or folded shape arithmetic)
//   qconst DequantizeLinear(constant int8/uint8/int32 data): weights and biases
//   expr   a float computation not yet quantized (Conv, Add, Relu, ...)
//   input  the float graph input
import { NodeProto } from '../onnx/proto';
import { dequantizeLinear } from '../numerics/quantization';

export type Dims = number[]; // ONNX dims at batch 1

/**
 * `pad` [top, left, bottom, right]: the tensor zero-padded spatially (a constant-0 Pad of a DequantizeLinear,
 * = padding with the zero point), dims included; only a Conv may read it (the pad joins its own).
 */
export interface QVal { kind: 'q'; id: number; dims: Dims; pad?: number[] }
export interface DQVal { kind: 'dq'; id: number; dims: Dims; pad?: number[] }
export interface ConstVal { kind: 'const'; data: Float32Array | Int32Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Float64Array; dtype: number; dims: Dims }
export interface QConstVal {
  kind: 'qconst';
  data: Int8Array | Int32Array; // int8 (uint8 shifted) or int32 (bias)
  int32: boolean;
  scale: Float32Array; // [1] or [dims[axis]]
  zeroPoint: Int32Array; // int8 domain, same length as scale
  axis: number;
  dims: Dims;
  node: NodeProto;
}
export interface ExprVal { kind: 'expr'; op: string; args: Value[]; node: NodeProto; dims: Dims; attrs?: Record<string, unknown> }
export interface InputVal { kind: 'input'; dims: Dims }
export type Value = QVal | DQVal | ConstVal | QConstVal | ExprVal | InputVal;

export function expr(op: string, node: NodeProto, args: Value[], dims: Dims, attrs?: Record<string, unknown>): ExprVal {
  return { kind: 'expr', op, args, node, dims, attrs };
}

/** ORT DequantizeLinear of a constant: float32((q - zp) * scale), per tensor or per channel (flat). */
export function dequantizedConst(v: QConstVal): Float32Array {
  const per = v.scale.length === 1 ? () => 0 : (i: number) => i;
  return Float32Array.from(v.data, (q, i) => dequantizeLinear(q, v.scale[per(i)], v.zeroPoint[per(i)]));
}
