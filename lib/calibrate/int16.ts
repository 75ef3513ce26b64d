// Mixed precision: which activation tensors a calibrated file keeps in int16 (docs/calibration.md,
// "int16 where int8 loses accuracy"). Measured in mnq's own integer runtime on the calibration images, from
// the top down (as AIMET's automatic mixed precision): the file with every candidate in int16 first, then
// each candidate alone back in int8 (the rest int16): the output error against float that this one int8
// tensor adds, in a network otherwise close to float (`damage`), and the multiply-adds of the ops it takes out
// of the wide kernels (`cost`, see Work). Least damage per cost first, tensors go back to int8 while the whole
// file still meets the target (top-1 agreement with float on those images, or a logits SQNR), found by
// bisection over that order; then, if the ops touching int16 still hold more of the network's multiply-adds
// than the budget allows, more go back to int8.
// (Bottom up, all int8 and one tensor at a time into int16, does not work on MobileNetV3: no single tensor
// removes more than a few % of the int8 error, because an outlier channel clipped at any one of several
// tensors does the damage; docs/calibration.md has the measurements.)
import { Graph } from './graph';
import { attrInts, NodeProto } from '../onnx/proto';
import type { Model } from '../model';

/** What the choice aims for, and what it may spend. */
export interface Int16Target {
  /** top-1 agreement with float on the calibration images, in % (default 98: a margin for images not seen) */
  agreement?: number;
  /** logits SQNR against float in dB (instead of agreement) */
  sqnrDb?: number;
  /** at most this share of the network's multiply-adds may run in ops that read or write int16 (0..1; default 1) */
  budget?: number;
}

/** How close a file's outputs are to float's on the scoring images. */
export interface Score {
  /** 10·log10(Σ float² / Σ (quantized − float)²) over all outputs */
  sqnrDb: number;
  /** measured top-1 agreement with float, % */
  agreement: number;
}

/**
 * An int16 tensor: its producer's op, its work, and what it buys: `int8ErrorDb`, the error this tensor alone in
 * int8 adds to the logits (the rest int16), as an SQNR against float (lower: more harm; Infinity: none seen).
 */
export interface Int16Step {
  tensor: string;
  op: string;
  int8ErrorDb: number;
  /** the multiply-adds of the ops it makes wide (tensorCost) */
  macs: number;
}

export interface Int16Choice {
  tensors: string[];
  /** share of the multiply-adds (Conv / Gemm) in ops that read or write int16 activations (int16Share) */
  share: number;
  base: Score;
  final: Score;
  /** the int16 tensors with what each buys, most damage per multiply-add first */
  steps: Int16Step[];
  /** the file with every candidate in int16 */
  allInt16: Score;
  /** why the choice stopped: the target met with fewer int16 tensors, or the budget spent first */
  stop: 'target met' | 'budget' | 'target unreachable' | 'int8 meets the target' | 'forced';
}

/** Scores quantized outputs against float ones ([images][classes] each, flattened row by row). */
export function score(float: Float32Array, quant: Float32Array, classes: number): Score {
  const n = float.length / classes;
  let sig = 0, err = 0, agree = 0;
  for (let i = 0; i < n; i++) {
    const o = i * classes;
    let top = 0, qtop = 0;
    for (let c = 1; c < classes; c++) {
      if (float[o + c] > float[o + top]) top = c;
      if (quant[o + c] > quant[o + qtop]) qtop = c;
    }
    for (let c = 0; c < classes; c++) { const d = quant[o + c] - float[o + c]; sig += float[o + c] ** 2; err += d * d; }
    if (top === qtop) agree++;
  }
  return { sqnrDb: err === 0 ? Infinity : 10 * Math.log10(sig / err), agreement: (100 * agree) / n };
}

function meets(s: Score, t: Int16Target): boolean {
  return t.sqnrDb !== undefined ? s.sqnrDb >= t.sqnrDb : s.agreement >= (t.agreement ?? 98);
}

/** Multiply-adds of a Conv or Gemm reading an activation of dims [N, C, H, W] (or [N, K]), per image. */
export function nodeMacs(g: Graph, n: NodeProto, dims: number[]): number {
  const count = g.constDims(n.input![1]).reduce((a, b) => a * b, 1);
  if (n.opType === 'Gemm' || dims.length < 4) return count;
  const [sh, sw] = attrInts(n, 'strides', [1, 1]);
  return Math.ceil(dims[2] / sh) * Math.ceil(dims[3] / sw) * count;
}

const weighted = (n: NodeProto) => (n.opType === 'Conv' || n.opType === 'Gemm');

/**
 * The network's Conv / Gemm work, and which of those ops each candidate tensor touches: in mnq's runtime an op
 * that reads or writes an int16 tensor runs the wide kernels, so making a tensor int16 costs its writer and its
 * readers. `ops`: multiply-adds per op (by node id); `touching`: the ops that read or write each tensor.
 */
export interface Work { ops: Map<string, number>; touching: Map<string, string[]>; total: number }

/** Multiply-adds that run wide when `tensor` is int16 (plus one per element: nothing is free). */
export function tensorCost(w: Work, tensor: string, elements: number): number {
  return (w.touching.get(tensor) ?? []).reduce((m, op) => m + (w.ops.get(op) ?? 0), 0) + elements;
}

/** Share of the network's multiply-adds in ops that read or write an int16 tensor. */
export function int16Share(tensors: Iterable<string>, w: Work): number {
  const ops = new Set<string>();
  for (const t of tensors) for (const op of w.touching.get(t) ?? []) ops.add(op);
  let s = 0;
  for (const op of ops) s += w.ops.get(op) ?? 0;
  return w.total ? Math.min(1, s / w.total) : 0;
}

/**
 * Tensors of `candidates` selected by the user's list: tensor names, the names of the nodes writing them, or
 * op types (every candidate an op of that type writes). Unknown entries are an Error naming them.
 */
export function forcedInt16(g: Graph, candidates: string[], names: string[]): string[] {
  const out = new Set<string>();
  for (const name of names) {
    const hits = candidates.filter((t) => {
      const p = g.producer(t);
      return t === name || p?.name === name || p?.opType === name;
    });
    if (!hits.length) {
      throw new Error(`--int16 ${name}: no quantized activation tensor, node or op type of that name can be int16 ` +
        `(the graph's input and outputs stay int8)`);
    }
    for (const t of hits) out.add(t);
  }
  return candidates.filter((t) => out.has(t));
}

export interface ChooseArgs {
  graph: Graph;
  candidates: string[];
  /** the network's work, and each candidate's cost (tensorCost) */
  work: Work;
  cost: Map<string, number>;
  /** the quantized file with these tensors in int16 */
  emit(int16: Set<string>): Uint8Array;
  /** loads a quantized file in mnq's runtime */
  load(bytes: Uint8Array): Promise<Model>;
  /** the scoring images, one batch [N, 3, H, W], and float's outputs on them */
  images: Float32Array;
  shape: number[];
  floatOut: Float32Array;
  classes: number;
  target: Int16Target;
  onStep?: (done: number, total: number, what: string) => void;
}

async function measure(a: ChooseArgs, int16: Set<string>): Promise<Score> {
  const m = await a.load(a.emit(int16));
  try {
    const out = await m.run(a.images, a.shape);
    return score(a.floatOut, out, a.classes);
  } finally {
    m.dispose();
  }
}

/** A forced set (`--int16 LIST`) scored as chooseInt16 scores its choice. */
export async function forcedChoice(a: ChooseArgs, tensors: string[]): Promise<Int16Choice> {
  const base = await measure(a, new Set());
  const final = await measure(a, new Set(tensors));
  return { tensors, share: int16Share(tensors, a.work), base, final, allInt16: final, steps: [], stop: 'forced' };
}

/** The choice described at the top of this file. */
export async function chooseInt16(a: ChooseArgs): Promise<Int16Choice> {
  const base = await measure(a, new Set());
  const budget = a.target.budget ?? 1;
  if (meets(base, a.target)) return { tensors: [], share: 0, base, final: base, allInt16: base, steps: [], stop: 'int8 meets the target' };
  // every candidate in int16; should the runtime refuse that file, only those it runs in int16 (each alone)
  let usable = a.candidates;
  let top: Score;
  try {
    top = await measure(a, new Set(usable));
  } catch {
    const ok: string[] = [];
    for (const t of a.candidates) {
      try {
        await measure(a, new Set([t]));
        ok.push(t);
      } catch { /* not a candidate */ }
    }
    usable = ok;
    top = await measure(a, new Set(usable));
  }
  const noise = (s: Score) => 10 ** (-s.sqnrDb / 10);
  const damage: { tensor: string; damage: number; macs: number }[] = [];
  let k = 0;
  for (const t of usable) {
    a.onStep?.(++k, usable.length, t);
    const s = await measure(a, new Set(usable.filter((u) => u !== t)));
    damage.push({ tensor: t, damage: Math.max(0, noise(s) - noise(top)), macs: a.cost.get(t) ?? 1 });
  }
  // least damage per multiply-add saved first
  const order = damage.sort((x, y) => x.damage / x.macs - y.damage / y.macs);
  const kept = (n: number) => new Set(order.slice(n).map((d) => d.tensor)); // int16 after n go back to int8
  // bisection: the most tensors back in int8 with the target still met (measured; `top` meets it at n = 0)
  let lo = 0, hi = order.length, best = top;
  const stop: Int16Choice['stop'] = meets(top, a.target) ? 'target met' : 'target unreachable';
  if (meets(top, a.target)) {
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      const s = await measure(a, kept(mid));
      if (meets(s, a.target)) { lo = mid; best = s; } else hi = mid - 1;
    }
  }
  let n = lo;
  let budgetStop = false;
  while (n < order.length && int16Share(kept(n), a.work) > budget) { n++; budgetStop = true; }
  const final = n === lo && meets(top, a.target) ? best : await measure(a, kept(n));
  const tensors = a.candidates.filter((t) => kept(n).has(t));
  const steps: Int16Step[] = order.slice(n).reverse().map((d) => ({
    tensor: d.tensor, op: a.graph.producer(d.tensor)?.opType ?? 'input', macs: d.macs,
    int8ErrorDb: d.damage > 0 ? -10 * Math.log10(d.damage) : Infinity,
  }));
  return {
    tensors, share: int16Share(tensors, a.work), base, final, allInt16: top, steps,
    stop: budgetStop ? 'budget' : stop,
  };
}

/** The choice as text: what int8 and int16 score against float on the calibration images, and the int16 set. */
export function formatInt16(c: Int16Choice): string {
  const f = (s: Score) => `top-1 agreement ${s.agreement.toFixed(1)}%, logits SQNR ${s.sqnrDb.toFixed(1)} dB`;
  const L = [`int16 (${c.stop}): ${c.tensors.length} tensors, ${(100 * c.share).toFixed(1)}% of multiply-adds read int16`,
    `  on the calibration images, against float: all int8 ${f(c.base)}; this file ${f(c.final)}` +
    (c.steps.length ? `; every candidate int16 ${f(c.allInt16)}` : '')];
  if (c.steps.length) {
    L.push(`  ${'int16 tensor'.padEnd(36)} ${'op'.padEnd(18)} int8 alone would add an error at (logits SQNR)`);
    for (const s of c.steps) L.push(`  ${s.tensor.slice(-36).padEnd(36)} ${s.op.padEnd(18)} ${s.int8ErrorDb.toFixed(1)} dB`);
  }
  return L.join('\n');
}

/**
 * The choice as the file's metadata (CALIB_KEYS.int16), for `mnq compare`: JSON { share, stop, tensors: { name:
 * int8ErrorDb (null when the list was forced, or no error was seen) } }.
 */
export function int16Metadata(c: Int16Choice): string {
  const cost = new Map(c.steps.filter((s) => Number.isFinite(s.int8ErrorDb)).map((s) => [s.tensor, Number(s.int8ErrorDb.toFixed(2))]));
  return JSON.stringify({ share: Number(c.share.toFixed(4)), stop: c.stop, tensors: Object.fromEntries(c.tensors.map((t) => [t, cost.get(t) ?? null])) });
}

/** int16Metadata read back; undefined when absent or not that JSON. */
export function readInt16Metadata(v: string | undefined): { share: number; tensors: Record<string, number | null> } | undefined {
  if (!v) return undefined;
  try {
    const j = JSON.parse(v) as { share?: unknown; tensors?: unknown };
    if (typeof j.share !== 'number' || !j.tensors || typeof j.tensors !== 'object') return undefined;
    return { share: j.share, tensors: j.tensors as Record<string, number | null> };
  } catch {
    return undefined;
  }
}
