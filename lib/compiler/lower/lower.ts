// Lowering: the float expression a QuantizeLinear quantizes becomes plan ops, matching the node groups ONNX
// Runtime fuses (QDQ -> QLinearConv, QLinearAdd, QLinearMul, QLinearGlobalAveragePool, QLinearMatMul). A Relu /
// Clip before Q folds into the output clamp, as ORT's Relu/ClipQuantFusion does when the Q range makes it
// redundant and as Q(clip(y)) == clamp(Q(y)) otherwise; an elementwise function of one int8 tensor between DQ
// and Q becomes a table (table.ts); a DQ quantized again with its own parameters is the same tensor.
import { f32, quantizeLinear } from '../../numerics/quantization';
import { Dtype, PlanOp, dtypeRange } from '../../plan';
import { CompileState } from '../state';
import { ExprVal, Value } from '../values';
import { elementwise, lut } from './table';
import { lowerConv } from './conv';
import { lowerBinary } from './add-mul';
import { lowerGap } from './global-average-pool';
import { lowerFullyConnected } from './fully-connected';

/**
 * Lowers the float value x, quantized with (scale, zp) to `dtype`, to plan ops; returns the output tensor. An op
 * that reads or writes an int16 tensor runs the runtime's wide kernels (docs/quantization.md, "int16
 * activations"): no fused table, symmetric weights, clamps in the int16 range.
 */
export function lower(s: CompileState, x: Value, scale: number, zp: number, name: string, uint8: boolean, dtype: Dtype = Dtype.int8): number {
  // Quantizing a DQ (optionally reshaped) again: a copy when the parameters match, else a requantization table.
  const chain = elementwise(x);
  if (chain) {
    const inT = s.tensors[chain.source];
    if (chain.e.fn === 'x' && inT.scale === f32(scale) && inT.zeroPoint === zp && s.dtypeOf(chain.source) === dtype) {
      s.alias(chain.source, name);
      return chain.source;
    }
    return lut(s, chain.source, chain.e, x.dims, scale, zp, name, dtype);
  }
  // Peel Relu / Clip into a clamp of the output (ORT Relu/ClipQuantFusion; Q(clip(y)) == clamp(Q(y))).
  let lo = -Infinity, hi = Infinity;
  let core = x;
  while (core.kind === 'expr' && (core.op === 'relu' || core.op === 'clip')) {
    if (core.op === 'relu') lo = Math.max(lo, 0);
    else { lo = Math.max(lo, core.attrs!.lo as number); hi = Math.min(hi, core.attrs!.hi as number); }
    core = core.args[0];
  }
  const [dmin, dmax] = dtypeRange(dtype);
  const qmin = lo === -Infinity ? dmin : quantizeLinear(lo, scale, zp, dmin, dmax);
  const qmax = hi === Infinity ? dmax : quantizeLinear(hi, scale, zp, dmin, dmax);
  if (core.kind !== 'expr') s.fail(`cannot quantize a ${core.kind} value`);
  s.node = core.node;
  let id: number;
  switch (core.op) {
    case 'conv': id = lowerConv(s, core, scale, zp, name, dtype); break;
    case 'add': case 'mul': id = lowerBinary(s, core, scale, zp, name, uint8, dtype); break;
    case 'gap': id = lowerGap(s, core, scale, zp, name, dtype); break;
    case 'matmul': case 'gemm': id = lowerFullyConnected(s, core, scale, zp, name, dtype); break;
    case 'reshape': s.fail('reshape of a float computation before QuantizeLinear is not supported');
    // falls through (fail throws)
    default:
      s.fail(`${core.op === 'sub' || core.op === 'div' ? 'this arithmetic' : 'this operator'} between DequantizeLinear and QuantizeLinear is not supported (inputs must be DequantizeLinear outputs in a pattern ONNX Runtime quantizes)`);
  }
  const op = s.ops[s.ops.length - 1];
  // the clamp in the output's type (makeOp's defaults are int8's)
  op.qmin = qmin;
  op.qmax = qmax;
  if (op.inputs.some((t) => s.dtypeOf(t) !== Dtype.int8) || dtype !== Dtype.int8) checkWide(s, op);
  if (op.qmin > op.qmax) s.fail(`Relu/Clip range [${lo}, ${hi}] is empty after quantization`);
  if (op.name !== name && x !== core) op.name = `${op.name}+${(x as ExprVal).node.name ?? ''}`;
  return id;
}

/** An op with int16 tensors runs the wide kernels, which need symmetric weights and no uint8 offset. */
function checkWide(s: CompileState, op: PlanOp): void {
  if (op.wZeroPoint.some((z) => z !== 0)) s.fail('has int16 activations and weights with a zero point; mnq runs int16 activations with symmetric int8 weights only (zero point 0)');
  if (op.inputPieces !== 1) s.fail('a grouped convolution with several input channels per group is not supported with int16 activations');
  op.addOffset = 0; // the float graph of a wide add / mul is shift-invariant (docs/quantization.md)
}
