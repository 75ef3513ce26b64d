// GlobalAveragePool (or a global AveragePool) of an int8 tensor -> globalAvgPool op: DQ -> GlobalAveragePool -> Q
// (ORT's QLinearGlobalAveragePool), and that QOperator node itself.
import { Dtype, PlanOpType, makeOp } from '../../plan';
import { CompileState } from '../state';
import { ExprVal } from '../values';
import { dqArg } from './operands';

export function lowerGap(s: CompileState, e: ExprVal, scale: number, zp: number, name: string, dtype: Dtype = Dtype.int8): number {
  const x = dqArg(s, e.args[0], 'the input');
  const t = s.tensors[x.id];
  if (t.h * t.w >= 2 ** 24) s.fail(`averages ${t.h} x ${t.w} pixels; mnq (as ONNX Runtime) averages fewer than 2^24`);
  const out = s.newTensor(name, e.dims, scale, zp, dtype);
  s.ops.push(makeOp(PlanOpType.globalAvgPool, e.node.name || name, [x.id], out));
  return out;
}
