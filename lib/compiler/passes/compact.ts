// Pass: drops the plan tensors no op writes or reads and renumbers the rest.
import { PlanDesc, PlanTensor } from '../../plan';

/** Drops tensors no op writes or reads; returns old id -> new id. */
export function compact(plan: PlanDesc): number[] {
  const used = new Set<number>([plan.input, ...plan.outputs]);
  for (const op of plan.ops) { used.add(op.output); op.inputs.forEach((t) => used.add(t)); }
  const remap = new Array<number>(plan.tensors.length).fill(-1);
  const tensors: PlanTensor[] = [];
  plan.tensors.forEach((t, i) => { if (used.has(i)) { remap[i] = tensors.length; tensors.push(t); } });
  plan.tensors = tensors;
  plan.input = remap[plan.input];
  plan.outputs = plan.outputs.map((t) => remap[t]);
  for (const op of plan.ops) { op.output = remap[op.output]; op.inputs = op.inputs.map((t) => remap[t]); }
  return remap;
}
