// Pass: a table after a conv runs in the conv's output stage.
import { Dtype, PlanDesc, PlanOp, PlanOpType } from '../../plan';

/**
 * conv -> T -> lut: when T is read only by the table and is not returned, the
 * table is applied in the conv's output stage (actScale / actZeroPoint = T's); int8 tensors only.
 */
export function fuseActivations(plan: PlanDesc): void {
  const readers = new Map<number, number>();
  for (const op of plan.ops) for (const t of op.inputs) readers.set(t, (readers.get(t) ?? 0) + 1);
  const returned = new Set(plan.outputs);
  const producer = new Map<number, PlanOp>();
  for (const op of plan.ops) producer.set(op.output, op);
  // tables are int8 -> int8, and an op with int16 tensors takes none (it runs the wide kernels)
  const isInt8 = (t: number) => (plan.tensors[t].dtype ?? Dtype.int8) === Dtype.int8;
  const keep: PlanOp[] = [];
  for (const op of plan.ops) {
    const src = op.inputs[0];
    const p = producer.get(src);
    if (op.type === PlanOpType.lut && p && p.type === PlanOpType.conv && !p.hasActivation
      && readers.get(src) === 1 && !returned.has(src) && [p.inputs[0], src, op.output].every(isInt8)) {
      const t = plan.tensors[src];
      p.hasActivation = true;
      p.activation = op.activation;
      p.table = op.table;
      p.actScale = t.scale;
      p.actZeroPoint = t.zeroPoint;
      p.output = op.output;
      p.name = `${p.name}+${op.name}`;
      producer.set(op.output, p);
      continue;
    }
    keep.push(op);
  }
  plan.ops = keep;
}
