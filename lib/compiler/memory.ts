// Static memory plan: every plan tensor gets a byte offset in one per-image
// arena; tensors whose lifetimes do not overlap share bytes. A tensor lives from
// the op that writes it (the input: before the first op) to the last op that
// reads it (outputs: to the end), so an op never writes over its own inputs.
import { PlanDesc, tensorBytes } from '../plan';

export const ARENA_ALIGN = 64;

const align = (n: number) => Math.ceil(n / ARENA_ALIGN) * ARENA_ALIGN;

/** Assigns tensor offsets and arenaBytes in place. Unused tensors get offset 0 and no space. */
export function planMemory(plan: PlanDesc): void {
  const n = plan.tensors.length;
  const first = new Array<number>(n).fill(Infinity);
  const last = new Array<number>(n).fill(-Infinity);
  const touch = (t: number, i: number) => {
    first[t] = Math.min(first[t], i);
    last[t] = Math.max(last[t], i);
  };
  touch(plan.input, -1);
  plan.ops.forEach((op, i) => {
    for (const t of op.inputs) touch(t, i);
    touch(op.output, i);
  });
  for (const t of plan.outputs) touch(t, plan.ops.length);

  // Largest first, first fit among the blocks live at the same time.
  const order = [...Array(n).keys()].filter((t) => first[t] <= last[t]);
  order.sort((a, b) => tensorBytes(plan.tensors[b]) - tensorBytes(plan.tensors[a]) || first[a] - first[b]);
  const placed: { t: number; begin: number; end: number }[] = [];
  let arena = 0;
  for (const t of order) {
    const size = align(tensorBytes(plan.tensors[t]));
    const overlapping = placed
      .filter((p) => first[p.t] <= last[t] && first[t] <= last[p.t])
      .sort((a, b) => a.begin - b.begin);
    let offset = 0;
    for (const p of overlapping) {
      if (offset + size <= p.begin) break;
      offset = Math.max(offset, p.end);
    }
    placed.push({ t, begin: offset, end: offset + size });
    plan.tensors[t].offset = offset;
    arena = Math.max(arena, offset + size);
  }
  for (let t = 0; t < n; t++) if (!(first[t] <= last[t])) plan.tensors[t].offset = 0;
  plan.arenaBytes = arena;
}
