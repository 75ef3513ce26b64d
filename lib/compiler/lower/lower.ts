// Lowering: the float expression a QuantizeLinear quantizes becomes plan ops, matching the node groups ONNX
// Runtime fuses (QDQ -> QLinearConv, QLinearAdd, QLinearMul, QLinearGlobalAveragePool, QLinearMatMul). A Relu /
// Clip before Q folds into the output clamp, as ORT's Relu/ClipQuantFusion does when the Q range makes it
// redundant and as Q(clip(y)) == clamp(Q(y)) otherwise; an elementwise function of one int8 tensor between DQ
// and Q becomes a table (table.ts); a DQ quantized again with its own parameters is the same tensor.
import { f32, quantizeLinear } from '../../numerics/quantization';
import { CompileState } from '../state';
import { ExprVal, Value } from '../values';
import { elementwise, lut } from './table';
import { lowerConv } from './conv';
import { lowerBinary } from './add-mul';
import { lowerGap } from './global-average-pool';
import { lowerFullyConnected } from './fully-connected';

/** Lowers the float value x, quantized with (scale, zp), to plan ops; returns the output tensor. */
export function lower(s: CompileState, x: Value, scale: number, zp: number, name: string, uint8: boolean): number {
  // Quantizing a DQ (optionally reshaped) again: a copy when the parameters match, else a requantization table.
  const chain = elementwise(x);
  if (chain) {
    const inT = s.tensors[chain.source];
    if (chain.e.fn === 'x' && inT.scale === f32(scale) && inT.zeroPoint === zp) {
      s.alias(chain.source, name);
      return chain.source;
    }
    return lut(s, chain.source, chain.e, x.dims, scale, zp, name);
  }
  // Peel Relu / Clip into a clamp of the output (ORT Relu/ClipQuantFusion; Q(clip(y)) == clamp(Q(y))).
  let lo = -Infinity, hi = Infinity;
  let core = x;
  while (core.kind === 'expr' && (core.op === 'relu' || core.op === 'clip')) {
    if (core.op === 'relu') lo = Math.max(lo, 0);
    else { lo = Math.max(lo, core.attrs!.lo as number); hi = Math.min(hi, core.attrs!.hi as number); }
    core = core.args[0];
  }
  const qmin = lo === -Infinity ? -128 : quantizeLinear(lo, scale, zp);
  const qmax = hi === Infinity ? 127 : quantizeLinear(hi, scale, zp);
  if (core.kind !== 'expr') s.fail(`cannot quantize a ${core.kind} value`);
  s.node = core.node;
  let id: number;
  switch (core.op) {
    case 'conv': id = lowerConv(s, core, scale, zp, name); break;
    case 'add': case 'mul': id = lowerBinary(s, core, scale, zp, name, uint8); break;
    case 'gap': id = lowerGap(s, core, scale, zp, name); break;
    case 'matmul': case 'gemm': id = lowerFullyConnected(s, core, scale, zp, name); break;
    case 'reshape': s.fail('reshape of a float computation before QuantizeLinear is not supported');
    // falls through (fail throws)
    default:
      s.fail(`${core.op === 'sub' || core.op === 'div' ? 'this arithmetic' : 'this operator'} between DequantizeLinear and QuantizeLinear is not supported (inputs must be DequantizeLinear outputs in a pattern ONNX Runtime quantizes)`);
  }
  const op = s.ops[s.ops.length - 1];
  op.qmin = Math.max(op.qmin, qmin);
  op.qmax = Math.min(op.qmax, qmax);
  if (op.qmin > op.qmax) s.fail(`Relu/Clip range [${lo}, ${hi}] is empty after quantization`);
  if (op.name !== name && x !== core) op.name = `${op.name}+${(x as ExprVal).node.name ?? ''}`;
  return id;
}
