// QuantizeLinear and DequantizeLinear nodes (int8 / uint8, and int16 / uint16 for tensors inside the graph: ONNX
// opset 21, or the com.microsoft domain form). A QuantizeLinear of the graph input makes the plan's input
// tensor; of a float expression, it lowers that expression into plan ops (lower/lower.ts). A DequantizeLinear
// of an int8 tensor is its float view; of a constant, a quantized constant (weights, biases).
import { NodeProto, attrInt, DataType } from '../onnx/proto';
import { f32 } from '../numerics/quantization';
import { Dtype } from '../plan';
import { CompileState } from './state';
import { ConstVal, QConstVal, Value } from './values';
import { lower } from './lower/lower';

export function readQuantizeLinear(s: CompileState, node: NodeProto): Value {
  const inp = node.input ?? [];
  const x = s.get(inp[0]);
  const scale = s.scaleOf(inp[1], 'y_scale');
  const { zp, uint8, dtype } = s.zeroPointOf(inp[2], 'y_zero_point', true);
  const name = node.output?.[0] ?? s.nodeName();
  if (x.kind === 'input') {
    if (s.inputId >= 0) s.fail('the input is quantized twice; expected one QuantizeLinear of the input');
    if (dtype !== Dtype.int8) s.fail('quantizes the model input to int16; mnq takes an int8 input (int16 tensors are supported inside the graph)');
    s.inputId = s.newTensor(name, x.dims, scale, zp);
    return { kind: 'q', id: s.inputId, dims: x.dims };
  }
  if (x.kind === 'const' || x.kind === 'qconst') s.fail('quantizing a constant is not supported');
  if (x.kind === 'q') s.fail('input is already quantized');
  if (x.kind === 'expr' && x.op === 'softmax') {
    if (dtype !== Dtype.int8) s.fail('quantizes a Softmax to int16; only int8 is supported there');
    // Q(Softmax(DQ(logits))): computed after the plan, at the output (see CompiledOutput.softmaxQuantization).
    return { ...x, op: 'qsoftmax', attrs: { scale: f32(scale), zeroPoint: zp } };
  }
  if (x.kind === 'dq' && x.pad) {
    // DQ → Pad → Q with the same parameters (ORT's quantizer writes Pad so): the padded int8 tensor, virtually
    const t = s.tensors[x.id];
    if (f32(scale) !== t.scale || zp !== t.zeroPoint || dtype !== s.dtypeOf(x.id)) s.fail('quantizes a Pad output with other parameters than its input; only the same type, scale and zero point are supported');
    return { kind: 'q', id: x.id, dims: x.dims, pad: x.pad };
  }
  const id = lower(s, x, scale, zp, name, uint8, dtype);
  return { kind: 'q', id, dims: x.dims };
}

export function readDequantizeLinear(s: CompileState, node: NodeProto): Value {
  const inp = node.input ?? [];
  const x = s.get(inp[0]);
  if (x.kind === 'q') {
    const scale = s.scaleOf(inp[1], 'x_scale');
    const { zp, dtype } = s.zeroPointOf(inp[2] || null, 'x_zero_point', true);
    const t = s.tensors[x.id];
    if (f32(scale) !== t.scale || zp !== t.zeroPoint || dtype !== s.dtypeOf(x.id)) {
      s.fail(`dequantizes '${t.name}' as ${Dtype[dtype]} with scale ${scale} / zero point ${zp}, but it was quantized as ${Dtype[s.dtypeOf(x.id)]} with ${t.scale} / ${t.zeroPoint}; mismatched Q/DQ pairs are not supported`);
    }
    if (x.pad) return { kind: 'dq', id: x.id, dims: x.dims, pad: x.pad };
    if (node.output?.[0]) s.alias(x.id, node.output[0]);
    return { kind: 'dq', id: x.id, dims: x.dims };
  }
  if (x.kind === 'const') return quantizedConst(s, node, x, inp[1], inp[2]);
  if (x.kind === 'expr' && x.op === 'qsoftmax') {
    const scale = s.scaleOf(inp[1], 'x_scale');
    const { zp } = s.zeroPointOf(inp[2] || null, 'x_zero_point');
    if (f32(scale) !== x.attrs!.scale || zp !== x.attrs!.zeroPoint) s.fail('dequantizes a quantized Softmax with other parameters than its QuantizeLinear');
    return { ...x, op: 'dqsoftmax' };
  }
  s.fail(`input '${inp[0]}' is neither an int8 tensor nor a constant`);
}

/** DequantizeLinear (or a QLinear* operand) of constant int8 / uint8 / int32 data: uint8 shifted to int8. */
export function quantizedConst(s: CompileState, node: NodeProto, x: ConstVal, scaleName?: string | null, zpName?: string | null, axisOverride?: number): QConstVal {
  const scaleC = s.constOf(scaleName, 'scale');
  const axisAttr = axisOverride ?? attrInt(node, 'axis', 1);
  const rank = x.dims.length;
  const axis = scaleC.data.length === 1 ? 0 : axisAttr < 0 ? axisAttr + rank : axisAttr;
  if (scaleC.data.length !== 1 && scaleC.data.length !== x.dims[axis]) {
    s.fail(`scale has ${scaleC.data.length} values; expected 1 or ${x.dims[axis]} (dimension ${axis} of [${x.dims}])`);
  }
  const scale = Float32Array.from(scaleC.data as ArrayLike<number>);
  let zeroPoint = new Int32Array(scale.length);
  let data: Int8Array | Int32Array;
  if (x.dtype !== DataType.INT32) {
    // int32 (bias) data is taken as it is; every other quantized constant is dequantized with its scales
    const bad = scale.findIndex((v) => !(v > 0) || !Number.isFinite(v));
    if (bad >= 0) s.fail(`scale '${scaleName}'[${bad}] is ${scaleC.data[bad]}; scales must be finite and > 0 (as float32)`);
  }
  if (x.dtype === DataType.INT32) {
    data = new Int32Array(x.data as Int32Array);
    if (zpName) {
      const z = s.constOf(zpName, 'zero point');
      if (Array.from(z.data as ArrayLike<number>).some((v) => v !== 0)) s.fail('int32 (bias) zero point must be 0');
    }
    return { kind: 'qconst', data, int32: true, scale, zeroPoint, axis, dims: x.dims, node };
  }
  const shift = x.dtype === DataType.UINT8 ? 128 : x.dtype === DataType.INT8 ? 0 : NaN;
  if (Number.isNaN(shift)) s.fail(`quantized constant has type ${DataType[x.dtype]}; expected int8, uint8 or int32`);
  const src = x.data as ArrayLike<number>;
  const q = new Int8Array(src.length);
  for (let i = 0; i < src.length; i++) q[i] = src[i] - shift;
  data = q;
  if (zpName) {
    const z = s.constOf(zpName, 'zero point');
    if (z.data.length !== scale.length) s.fail(`zero point has ${z.data.length} values, scale has ${scale.length}`);
    if (z.dtype !== x.dtype) s.fail(`zero point '${zpName}' has type ${DataType[z.dtype]}, the quantized data ${DataType[x.dtype]}; they must be the same`);
    zeroPoint = Int32Array.from(z.data as ArrayLike<number>, (v) => v - shift);
  } else {
    zeroPoint.fill(-shift);
  }
  return { kind: 'qconst', data, int32: false, scale, zeroPoint, axis, dims: x.dims, node };
}
