// The QOperator form: QLinearConv, QLinearAdd / QLinearMul, QLinearGlobalAveragePool, QLinearMatMul,
// QLinearSigmoid / QLinearLeakyRelu map to the same plan ops as their QDQ node groups (lower/*).
import { NodeProto, attrFloat, attrInt, DataType } from '../onnx/proto';
import { f32 } from '../numerics/quantization';
import { Elementwise } from './activation';
import { CompileState } from './state';
import { broadcastDims, convDims, matmulDims } from './shapes';
import { DQVal, QConstVal, Value, expr } from './values';
import { quantizedConst } from './qdq';
import { lowerConv } from './lower/conv';
import { lowerBinary } from './lower/add-mul';
import { lowerGap } from './lower/global-average-pool';
import { lowerFullyConnected } from './lower/fully-connected';
import { lut } from './lower/table';

/** Reads a QLinear* node: its output value. */
export function readQOperator(s: CompileState, node: NodeProto): Value {
  switch (node.opType) {
    case 'QLinearConv': return qlinearConv(s, node);
    case 'QLinearAdd': case 'QLinearMul': return qlinearBinary(s, node);
    case 'QLinearGlobalAveragePool': return qlinearGap(s, node);
    case 'QLinearMatMul': return qlinearMatMul(s, node);
    default: return qlinearUnary(s, node); // QLinearSigmoid, QLinearLeakyRelu
  }
}

/** An int8 input of a QLinear* node, read with the scale and zero point it was written with. */
function qIn(s: CompileState, name: string | null | undefined, scaleName: string | null | undefined, zpName: string | null | undefined, what: string): DQVal {
  const v = s.get(name, what);
  if (v.kind !== 'q') s.fail(`${what} '${name}' must be an int8/uint8 tensor`);
  const scale = s.scaleOf(scaleName, `${what} scale`);
  const { zp } = s.zeroPointOf(zpName, `${what} zero point`);
  const t = s.tensors[v.id];
  if (f32(scale) !== t.scale || zp !== t.zeroPoint) s.fail(`${what} is read with scale ${scale} / zero point ${zp} but was written with ${t.scale} / ${t.zeroPoint}`);
  return { kind: 'dq', id: v.id, dims: v.dims };
}

function qWeights(s: CompileState, name: string | null | undefined, scaleName: string | null | undefined, zpName: string | null | undefined, axis: number): QConstVal {
  const c = s.constOf(name, 'weights');
  // QLinear* per-channel scales are along the output channel axis (0 for conv weights, 1 for MatMul's [K, N]).
  return quantizedConst(s, s.node!, c, scaleName, zpName, axis);
}

function qlinearConv(s: CompileState, node: NodeProto): Value {
  const i = node.input ?? [];
  const xv = qIn(s, i[0], i[1], i[2], 'x');
  const w = qWeights(s, i[3], i[4], i[5], 0);
  const scale = s.scaleOf(i[6], 'y_scale');
  const { zp } = s.zeroPointOf(i[7], 'y_zero_point');
  const bias: Value | undefined = i[8] ? (() => {
    const b = s.constOf(i[8], 'bias');
    if (b.dtype !== DataType.INT32) s.fail('bias must be int32');
    return { kind: 'qconst', data: b.data as Int32Array, int32: true, scale: new Float32Array(1), zeroPoint: new Int32Array(1), axis: 0, dims: b.dims, node } as QConstVal;
  })() : undefined;
  const e = expr('conv', node, bias ? [xv, w, bias] : [xv, w], convDims(s, node, xv.dims, w.dims));
  const id = lowerConv(s, e, scale, zp, node.output?.[0] ?? s.nodeName());
  return { kind: 'q', id, dims: e.dims };
}

function qlinearBinary(s: CompileState, node: NodeProto): Value {
  const i = node.input ?? [];
  const operand = (n: number): Value => {
    const v = s.get(i[n]);
    if (v.kind === 'const') return quantizedConst(s, node, v, i[n + 1], i[n + 2]);
    return qIn(s, i[n], i[n + 1], i[n + 2], n === 0 ? 'A' : 'B');
  };
  const a = operand(0), b = operand(3);
  const scale = s.scaleOf(i[6], 'C_scale');
  const { zp, uint8 } = s.zeroPointOf(i[7], 'C_zero_point');
  const dims = broadcastDims(a.dims, b.dims) ?? s.fail(`cannot broadcast [${a.dims}] with [${b.dims}]`);
  const opName = node.opType === 'QLinearAdd' ? 'add' : 'mul';
  // A constant operand gets its own shape [1, C] so it lines up with a [1, C] tensor.
  for (const v of [a, b]) if (v.kind === 'qconst' && v.dims.length === 1) v.dims = [1, v.dims[0]];
  const e = expr(opName, node, [a, b], dims);
  const id = lowerBinary(s, e, scale, zp, node.output?.[0] ?? s.nodeName(), uint8);
  return { kind: 'q', id, dims };
}

function qlinearGap(s: CompileState, node: NodeProto): Value {
  const i = node.input ?? [];
  const xv = qIn(s, i[0], i[1], i[2], 'X');
  const xd = xv.dims;
  if (attrInt(node, 'channels_last', 0) !== 0) s.fail('channels_last = 1 is not supported');
  const scale = s.scaleOf(i[3], 'y_scale');
  const { zp } = s.zeroPointOf(i[4], 'y_zero_point');
  const e = expr('gap', node, [xv], [1, xd[1], 1, 1]);
  return { kind: 'q', id: lowerGap(s, e, scale, zp, node.output?.[0] ?? s.nodeName()), dims: e.dims };
}

function qlinearMatMul(s: CompileState, node: NodeProto): Value {
  const i = node.input ?? [];
  const xv = qIn(s, i[0], i[1], i[2], 'a');
  const w = qWeights(s, i[3], i[4], i[5], 1);
  const scale = s.scaleOf(i[6], 'y_scale');
  const { zp } = s.zeroPointOf(i[7], 'y_zero_point');
  const e = expr('matmul', node, [xv, w], matmulDims(s, xv.dims, w.dims));
  return { kind: 'q', id: lowerFullyConnected(s, e, scale, zp, node.output?.[0] ?? s.nodeName()), dims: e.dims };
}

function qlinearUnary(s: CompileState, node: NodeProto): Value {
  const i = node.input ?? [];
  const { id: x, dims } = qIn(s, i[0], i[1], i[2], 'X');
  const scale = s.scaleOf(i[3], 'Y_scale');
  const { zp } = s.zeroPointOf(i[4], 'Y_zero_point');
  const e: Elementwise = node.opType === 'QLinearSigmoid'
    ? { fn: 'sigmoid', a: { fn: 'x' } }
    : { fn: 'leakyrelu', a: { fn: 'x' }, alpha: attrFloat(node, 'alpha', 0.01) };
  return { kind: 'q', id: lut(s, x, e, dims, scale, zp, node.output?.[0] ?? s.nodeName()), dims };
}
