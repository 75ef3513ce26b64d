// Add / Mul of two int8 tensors (or a tensor and a quantized constant) -> add / mul op: DQ, DQ -> Add|Mul -> Q
// (ORT's QLinearAdd / QLinearMul), and those QOperator nodes themselves. Mul may broadcast a per-channel
// [N, C, 1, 1] operand over the pixels (squeeze-and-excite).
import { describeNode } from '../../onnx/proto';
import { Dtype, PlanOpType, PlanTensor, makeOp } from '../../plan';
import { f32 } from '../../numerics/quantization';
import { CompileState } from '../state';
import { Dims, ExprVal, QConstVal } from '../values';

/** uint8: the output (so, for ORT's QLinearAdd, all three tensors) is uint8 in the ONNX graph. */
export function lowerBinary(s: CompileState, e: ExprVal, scale: number, zp: number, name: string, uint8: boolean, dtype: Dtype = Dtype.int8): number {
  const [a, b] = e.args;
  const ids = [a, b].map((v) => {
    if (v.kind === 'dq') return v.id;
    if (v.kind === 'qconst' && !v.int32) return constantTensor(s, v, v.dims, name);
    s.fail(`inputs must be DequantizeLinear outputs of int8 tensors or constants (ORT QLinear${e.op === 'add' ? 'Add' : 'Mul'}); found ${v.kind === 'expr' ? `a float ${describeNode(v.node)}` : v.kind}`);
  });
  const [ta, tb] = ids.map((i) => s.tensors[i]);
  const same = ta.h === tb.h && ta.w === tb.w && ta.c === tb.c;
  let [ia, ib] = ids;
  if (!same) {
    // mul: b broadcast over pixels (SE). Put the [1, C, 1, 1] operand second.
    const bcast = (t: PlanTensor, o: PlanTensor) => t.h === 1 && t.w === 1 && t.c === o.c;
    if (e.op === 'mul' && bcast(ta, tb)) [ia, ib] = [ib, ia];
    else if (!(e.op === 'mul' && bcast(tb, ta))) s.fail(`operand shapes [${s.info[ia].dims}] and [${s.info[ib].dims}] differ; only equal shapes${e.op === 'mul' ? ' or a per-channel [N, C, 1, 1] scale' : ''} are supported`);
  }
  const out = s.newTensor(name, s.info[ia].dims, scale, zp, dtype);
  // the int8 kernels' limits on the scales (as ORT's QLinearAdd / QLinearMul, in float32); an op with an int16
  // tensor runs the wide kernels (ORT's float graph), which have none
  const y = s.tensors[out].scale;
  const wide = [ia, ib, out].some((i) => s.dtypeOf(i) === Dtype.int16);
  if (!wide && e.op === 'add' && (f32(ta.scale / y) >= 65536 || f32(tb.scale / y) >= 65536)) {
    s.fail(`input scales ${ta.scale} and ${tb.scale} against output scale ${y}: each ratio must be < 65536`);
  }
  const r = f32(f32(ta.scale * tb.scale) / y);
  if (!wide && e.op === 'mul' && !(r < 32768)) s.fail(`input scales ${ta.scale} x ${tb.scale} / output scale ${y} = ${r}; it must be < 32768`);
  const op = makeOp(e.op === 'add' ? PlanOpType.add : PlanOpType.mul, e.node.name || name, [ia, ib], out);
  // ORT's QLinearAdd computes in float in the tensors' own (uint8 / int8) domain; QLinearMul
  // adds its output zero point in float before rounding, also in that domain.
  if (uint8) op.addOffset = 128;
  s.ops.push(op);
  return out;
}

/**
 * A constant int8 tensor as a plan tensor, produced by an op: a pointwise conv
 * (or fully connected) with zero weights whose int32 bias is the constant minus
 * its zero point and whose requantization multiplier is 1 (to within a few
 * float32 ulps, which cannot change round(bias * m) for |bias| <= 255).
 */
function constantTensor(s: CompileState, v: QConstVal, dims: Dims, consumer: string): number {
  const size = v.data.length;
  const hw = (dims.length === 4 ? dims[2] * dims[3] : 1);
  const c = size / hw;
  if (hw !== 1 || v.scale.length !== 1) s.fail('constant operands must be per-tensor quantized [C] / [1, C] / [1, C, 1, 1] vectors');
  // Any 1x1 tensor already computed can drive it; the input image cannot (it is spatial), so use the last 1x1 tensor.
  let src = -1;
  for (let i = s.tensors.length - 1; i >= 0; i--) {
    const t = s.tensors[i];
    if (t.h === 1 && t.w === 1) { src = i; break; }
  }
  if (src < 0) s.fail('a constant operand needs an earlier [N, C] tensor to be generated from; none found');
  const x = s.tensors[src];
  const out = s.newTensor(`${consumer}/constant`, [1, c], v.scale[0], v.zeroPoint[0]);
  const op = makeOp(PlanOpType.fullyConnected, `${s.nodeName()}/constant`, [src], out);
  op.weights = new Int8Array(c * x.c);
  const ws = f32(v.scale[0] / x.scale);
  op.wScale = new Float32Array(c).fill(ws);
  op.bias = Int32Array.from(v.data as Int8Array, (q) => q - v.zeroPoint[0]);
  op.shape = { ...op.shape, inH: 1, inW: 1, inC: x.c, outH: 1, outW: 1, outC: c };
  s.ops.push(op);
  return out;
}
