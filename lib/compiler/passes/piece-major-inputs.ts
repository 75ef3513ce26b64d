// Pass: the input of a grouped conv with m input channels per group (mnq calibrate --split-stem) stored
// piece-major, so the conv runs as a depthwise one: the conv that writes it takes its output channels in
// that order.
import { PlanDesc, PlanOp, PlanOpType } from '../../plan';
import { UnsupportedModelError } from '../unsupported-model-error';

/**
 * Each conv with inputPieces m > 1 reads its input piece-major (PlanOp.inputPieces): walks back from
 * that tensor through standalone tables (elementwise, per tensor) to the conv that writes it and permutes
 * that conv's output channels (ONNX channel c * m + j becomes channel j * C + c). Every tensor on the way
 * must be read only by the next op back in the chain or by convs with the same m, and must not be a graph
 * output. Returns the permuted tensors with their m.
 */
export function pieceMajorInputs(plan: PlanDesc, graphOutputs: Set<number>): Map<number, number> {
  const done = new Map<number, number>();
  const producer = new Map<number, PlanOp>();
  const readers = new Map<number, PlanOp[]>();
  for (const op of plan.ops) {
    producer.set(op.output, op);
    for (const t of op.inputs) readers.set(t, [...(readers.get(t) ?? []), op]);
  }
  for (const op of plan.ops) {
    const m = op.inputPieces;
    if (m <= 1 || done.get(op.inputs[0]) === m) continue;
    const C = op.shape.outC;
    const bad: (why: string) => never = (why) => {
      throw new UnsupportedModelError(`node '${op.name}': a grouped Conv with ${m} input channels per group needs ${why}`);
    };
    const chain: number[] = [];
    let t = op.inputs[0];
    for (;;) {
      if (done.has(t)) bad(`an input of its own (tensor '${plan.tensors[t].name}' is also read with ${done.get(t)} channels per group)`);
      if (graphOutputs.has(t)) bad(`an input that is not a graph output ('${plan.tensors[t].name}' is)`);
      const next = chain.length ? producer.get(chain[chain.length - 1]) : undefined;
      for (const r of readers.get(t) ?? []) {
        if (r !== next && !(r.type === PlanOpType.conv && r.inputPieces === m && r.shape.outC === C)) {
          bad(`its input to be read only by such convolutions ('${plan.tensors[t].name}' is also read by '${r.name}')`);
        }
      }
      chain.push(t);
      const p = producer.get(t);
      if (p && p.type === PlanOpType.lut) { t = p.inputs[0]; continue; }
      if (!p || p.type !== PlanOpType.conv || p.groups !== 1 || p.shape.outC !== m * C) {
        bad(`its input to be computed by a Conv (with group 1) from which it can take its channels in another order ('${plan.tensors[t].name}' is ${p ? `written by '${p.name}'` : 'the graph input'})`);
      }
      const O = m * C, per = p.weights.length / O;
      const w = new Int8Array(p.weights.length), ws = new Float32Array(O);
      const b = new Int32Array(p.bias.length), zp = new Int32Array(p.wZeroPoint.length);
      for (let c = 0; c < C; c++) {
        for (let j = 0; j < m; j++) {
          const from = c * m + j, to = j * C + c;
          w.set(p.weights.subarray(from * per, (from + 1) * per), to * per);
          ws[to] = p.wScale[from];
          if (b.length) b[to] = p.bias[from];
          if (zp.length) zp[to] = p.wZeroPoint[from];
        }
      }
      p.weights = w; p.wScale = ws; p.bias = b; p.wZeroPoint = zp;
      break;
    }
    for (const x of chain) done.set(x, m);
  }
  return done;
}
