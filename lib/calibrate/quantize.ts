// Float graph (normalized) + activation ranges → int8 QDQ graph, in the layout
// ONNX Runtime's quantizer writes:
//   input → QuantizeLinear → DequantizeLinear → …
//   DQ(x), DQ(w int8, per output channel, axis 0), DQ(bias int32, scale s_x·s_w) → Conv|Gemm → [Relu|Clip] → Q → DQ
//   DQ(a), DQ(b) → Add|Mul → [Relu|Clip] → Q → DQ        (each input keeps its own scale)
//   DQ → HardSwish|HardSigmoid|GlobalAveragePool|… → Q → DQ (the runtime turns a unary op into one LUT)
//   DQ → Flatten|Reshape|MaxPool → Q → DQ with the input's scale and zero point
//   … → Q → DQ → graph output (float)
// Weights: int8 symmetric in [-127, 127]; activations: int8 asymmetric per tensor.
import { NodeProto, describeNode, attrFloat, attrInt } from '../onnx/proto';
import { Graph } from './graph';
import { int, makeNode } from '../onnx/writer';
import { clipBounds } from './normalize';
import { Range, qparams } from './calibrators';
import { quantizeWeight, roundHalfEven } from '../numerics/quantization';

export const WEIGHTED = new Set(['Conv', 'Gemm']);
export const BINARY = new Set(['Add', 'Mul']);
export const UNARY = new Set(['HardSwish', 'HardSigmoid', 'Sigmoid', 'Tanh', 'Relu', 'Clip', 'LeakyRelu', 'GlobalAveragePool', 'AveragePool', 'Concat']);
/** ops whose output takes the input's quantization (exact: they only move or select values) */
export const PASS_THROUGH = new Set(['Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Transpose', 'MaxPool']);
const ACTIVATIONS = new Set(['Relu', 'Clip']);

/** How each tensor is quantized; built before calibration so only the needed tensors are observed. */
export interface QuantPlan {
  /** tensors that get QuantizeLinear → DequantizeLinear, in graph order */
  tensors: string[];
  /** how the range of each planned tensor is found */
  rangeOf: Map<string, { kind: 'calibrated'; within?: Range } | { kind: 'fixed'; range: Range; qp?: QParams } | { kind: 'relu' } | { kind: 'same'; as: string } | { kind: 'clip'; lo: number; hi: number }>;
  /** activation nodes fused into the op before them (their input tensor is not quantized) */
  fused: Set<NodeProto>;
  /** nodes left in float */
  floatNodes: Set<NodeProto>;
}

/**
 * Where a tensor read only by HardSigmoid / HardSwish can be clipped without changing their outputs:
 * HardSigmoid(x) = max(0, min(1, αx + β)) is constant outside [−β/α, (1 − β)/α] ([−3, 3] for h-sigmoid),
 * HardSwish(x) is 0 for x ≤ −3. Undefined when some consumer is another op (or the tensor is an output).
 */
export function flatOutside(g: Graph, t: string): Range | undefined {
  if (g.isGraphOutput(t)) return undefined;
  const cons = g.consumers(t);
  if (!cons.length) return undefined;
  let lo = Infinity, hi = -Infinity;
  for (const c of cons) {
    if (c.opType === 'HardSigmoid') {
      const a = attrFloat(c, 'alpha', 0.2), b = attrFloat(c, 'beta', 0.5);
      if (!(a > 0)) return undefined;
      lo = Math.min(lo, -b / a);
      hi = Math.max(hi, (1 - b) / a);
    } else if (c.opType === 'HardSwish') {
      lo = Math.min(lo, -3);
      hi = Infinity;
    } else return undefined;
  }
  return { lo, hi };
}

export interface PlanOptions {
  exclude?: string[];
  /** known input range (from the preprocessing), e.g. [-1, 1] or [0, 255] */
  inputRange?: Range;
  /** clip tensors read only by HardSigmoid / HardSwish to where those are not flat (default true) */
  gateRanges?: boolean;
  /** the graph input's quantization when known exactly (the preprocessing's values; see inputQParams) */
  inputQParams?: QParams;
}

/** How the range of one planned tensor is found (QuantPlan.rangeOf). */
export type RangeRule = QuantPlan['rangeOf'] extends Map<string, infer V> ? V : never;

function nodeId(n: NodeProto): string { return n.name || n.output![0]; }

export function planQuantization(g: Graph, opts: PlanOptions = {}): QuantPlan {
  const exclude = new Set(opts.exclude ?? []);
  const known = new Set(g.nodes.map(nodeId));
  for (const e of exclude) {
    if (!known.has(e) && !g.nodes.some((n) => n.output!.includes(e))) {
      throw new Error(`--exclude ${e}: no node of that name (or output) in the model`);
    }
  }
  const floatNodes = new Set(g.nodes.filter((n) => exclude.has(nodeId(n)) || n.output!.some((o) => exclude.has(o))));
  const fused = new Set<NodeProto>();
  const rangeOf: QuantPlan['rangeOf'] = new Map();
  const order: string[] = [];
  const need = (t: string, r: RangeRule) => {
    if (!rangeOf.has(t)) { rangeOf.set(t, r); order.push(t); }
  };
  const inputNames = new Set(g.inputs.map((i) => i.name!));
  // a calibrated tensor read only by HardSigmoid / HardSwish: its range need not reach where they are flat
  const calibrated = (t: string): { kind: 'calibrated'; within?: Range } => {
    const w = opts.gateRanges === false ? undefined : flatOutside(g, t) ?? g.rangeHints.get(t);
    return w ? { kind: 'calibrated', within: w } : { kind: 'calibrated' };
  };
  const quantizable = (n: NodeProto) => WEIGHTED.has(n.opType!) || BINARY.has(n.opType!) || UNARY.has(n.opType!) || PASS_THROUGH.has(n.opType!) || n.opType === 'Softmax';

  for (const n of g.nodes) {
    if (floatNodes.has(n) || fused.has(n)) continue;
    if (!quantizable(n)) {
      throw new Error(`cannot quantize ${describeNode(n)}: op ${n.opType} is not supported; keep it in float with --exclude ${nodeId(n)}`);
    }
    if (WEIGHTED.has(n.opType!) && !(g.isConst(n.input![1]) && (!n.input![2] || g.isConst(n.input![2])))) {
      throw new Error(`cannot quantize ${describeNode(n)}: weights are not constant; keep it in float with --exclude ${nodeId(n)}`);
    }
    // activation inputs
    const actIns = n.opType === 'Reshape' ? [n.input![0]] : WEIGHTED.has(n.opType!) ? [n.input![0]] : n.input!.filter((i, k) => i && !g.isConst(i) && !(n.opType === 'Clip' && k > 0));
    for (const i of actIns) {
      if (g.isConst(i)) continue;
      if (inputNames.has(i) && opts.inputRange) need(i, { kind: 'fixed', range: opts.inputRange, ...(opts.inputQParams ? { qp: opts.inputQParams } : {}) });
      else need(i, calibrated(i));
    }
    // output, through a fused Relu / Clip
    let out = n.output![0];
    if (WEIGHTED.has(n.opType!) || BINARY.has(n.opType!)) {
      const act = g.soleConsumer(out);
      if (act && ACTIVATIONS.has(act.opType!) && !floatNodes.has(act)) {
        const b = act.opType === 'Relu' ? [0, Infinity] as [number, number] : clipBounds(g, act);
        if (b) {
          fused.add(act);
          out = act.output![0];
          if (isFinite(b[0]) && isFinite(b[1])) need(out, { kind: 'clip', lo: b[0], hi: b[1] });
          else if (b[0] === 0) need(out, { kind: 'relu' });
          else need(out, calibrated(out));
          continue;
        }
      }
    }
    if (n.opType === 'Softmax') {
      // A Softmax that is the model's output stays float after the DequantizeLinear of its input
      // (the logits are the int8 result; probabilities need no 8-bit rounding); an inner one is [0, 1].
      if (!g.isGraphOutput(out)) need(out, { kind: 'fixed', range: { lo: 0, hi: 1 } });
    } else if (PASS_THROUGH.has(n.opType!)) need(out, { kind: 'same', as: n.input![0] });
    else if (n.opType === 'Relu') need(out, { kind: 'relu' });
    else if (n.opType === 'Clip') {
      const b = clipBounds(g, n);
      if (b && isFinite(b[0]) && isFinite(b[1])) need(out, { kind: 'clip', lo: b[0], hi: b[1] });
      else need(out, calibrated(out));
    } else need(out, calibrated(out));
  }
  return { tensors: order, rangeOf, fused, floatNodes };
}

/**
 * Tensors whose float values calibration must observe (the plan's calibrated and ReLU tensors; with
 * `clip`, the Clip / ReLU6 outputs too, whose range becomes [max(lo, calibrated lo), min(hi, calibrated hi)]).
 */
export function observedTensors(plan: QuantPlan, clip = false): string[] {
  return plan.tensors.filter((t) => {
    const k = plan.rangeOf.get(t)!.kind;
    return k === 'calibrated' || k === 'relu' || (clip && k === 'clip');
  });
}

/** A tensor's quantization: int8 (asymmetric) unless bits is 16 (int16, symmetric: zero point 0). */
export interface QParams { scale: number; zeroPoint: number; bits?: 8 | 16 }

/**
 * int16 quantization of a range, as TFLite's 16x8 mode and docs/quantization.md ("int16 activations"):
 * symmetric, zero point 0, the scale that maps the larger of |lo|, |hi| to 32767.
 */
export function qparams16(r: Range): QParams {
  const m = Math.max(Math.abs(r.lo), Math.abs(r.hi));
  if (!(m > 0)) throw new Error('degenerate range (all values zero)');
  return { scale: Math.fround(m / 32767), zeroPoint: 0, bits: 16 };
}

/**
 * The int16 tensors of a mixed-precision file: `tensors` (planned tensors that are neither the graph's input
 * nor an output, nor take another tensor's quantization), and `ranges`, the observed (min, max) of each
 * calibrated one: at 16 bits clipping costs more than resolution, so they take the whole observed range.
 */
export interface Int16Tensors { tensors: Set<string>; ranges: Map<string, Range> }

/**
 * Resolves the plan's ranges into scale / zero point per tensor. `ranges` holds the calibrated ones;
 * `int16` the tensors quantized to int16 instead (tensors that take their quantization follow them).
 */
export function resolveQParams(
  plan: QuantPlan, ranges: Map<string, Range>, onWarning?: (message: string) => void, int16?: Int16Tensors,
): Map<string, QParams & { range: Range }> {
  const out = new Map<string, QParams & { range: Range }>();
  // the range a planned tensor's quantization covers, from its calibrated range c
  const rangeOf = (t: string, r: Exclude<RangeRule, { kind: 'same' } | { kind: 'fixed' }>, c: Range | undefined): Range => {
    if (r.kind === 'clip') return c ? { lo: Math.max(r.lo, c.lo), hi: Math.min(r.hi, c.hi) } : { lo: r.lo, hi: r.hi };
    if (!c) throw new Error(`internal: no calibrated range for '${t}'`);
    let range = r.kind === 'relu' ? { lo: 0, hi: c.hi } : c;
    if (r.kind === 'calibrated' && r.within) {
      const lo = Math.max(range.lo, r.within.lo), hi = Math.min(range.hi, r.within.hi);
      if (hi > lo) range = { lo, hi };
    }
    return range;
  };
  for (const t of plan.tensors) {
    const r = plan.rangeOf.get(t)!;
    if (r.kind === 'same') {
      const q = out.get(r.as);
      if (!q) throw new Error(`internal: '${t}' takes the quantization of '${r.as}', which is not quantized`);
      out.set(t, q);
      continue;
    }
    if (r.kind === 'fixed' && r.qp) {
      out.set(t, { ...r.qp, range: { lo: r.qp.scale * (-128 - r.qp.zeroPoint), hi: r.qp.scale * (127 - r.qp.zeroPoint) } });
      continue;
    }
    if (int16?.tensors.has(t) && r.kind !== 'fixed') {
      const range16 = rangeOf(t, r, int16.ranges.get(t) ?? ranges.get(t));
      let q: QParams;
      try {
        q = qparams16(range16);
      } catch {
        q = qparams16({ lo: -1, hi: 1 }); // zero on every image (see below)
      }
      out.set(t, { ...q, range: { lo: -32767 * q.scale, hi: 32767 * q.scale } });
      continue;
    }
    let range = r.kind === 'fixed' ? r.range : rangeOf(t, r, ranges.get(t));
    let q: QParams;
    try {
      q = qparams(range);
    } catch {
      // zero on every calibration image (a dead channel group, an SE branch that never fires):
      // zero stays exact under any scale; give it [0, 1] and say so
      onWarning?.(`tensor '${t}' is zero on every calibration image: quantized with range [0, 1] (use more or different images, or keep its producer in float with --exclude)`);
      range = { lo: 0, hi: 1 };
      q = qparams(range);
    }
    out.set(t, { ...q, range });
  }
  return out;
}

export interface EmitOptions {
  perTensor?: boolean;
  /** per-output-channel scales chosen for these weight initializers (weight correction rounds to them) */
  weightScales?: Map<string, Float32Array>;
}

/**
 * The step of the grid a weight tensor already lies on (weights dequantized from an int8 / uint8 model,
 * e.g. quantization-aware training: w = S·(q − z) with integer z), or null when it lies on none.
 */
export function weightGrid(w: Float32Array, maxDivisor = 1): number | null {
  const u = Array.from(new Set(w)).sort((a, b) => a - b);
  if (u.length < 3 || u.length > 65536) return null;
  let S = Infinity;
  for (let i = 1; i < u.length; i++) { const d = u[i] - u[i - 1]; if (d > 0 && d < S) S = d; }
  if (!(S > 0 && isFinite(S))) return null;
  // the smallest gap may be a multiple of the step (a short channel, e.g. a 3×3 depthwise filter)
  const fits = (step: number) => u.every((v) => { const r = v / step; return Math.abs(r - Math.round(r)) <= 0.02; });
  let k = 1;
  while (k <= maxDivisor && !fits(S / k)) k++;
  if (k > maxDivisor) return null;
  S /= k;
  // refine: the least-squares step of the integer multiples
  let num = 0, den = 0;
  for (const v of u) { const k = Math.round(v / S); num += v * k; den += k * k; }
  return den > 0 ? num / den : S;
}

function weightError(w: Float32Array, a: number, b: number, s: number): number {
  let e = 0;
  for (let i = a; i < b; i++) {
    const q = quantizeWeight(w[i], s);
    const d = w[i] - q * s;
    e += d * d;
  }
  return e;
}

/**
 * Quantizes weights symmetric int8 [-127, 127], per output channel (axis 0) unless perTensor.
 * Scale: max|w| / 127, or — when the weights already lie on a grid (dequantized int8 / uint8
 * weights) — that grid's step if it represents the channel with less error.
 */
export function quantizeWeights(w: Float32Array, channels: number, perTensor: boolean): { q: Int8Array; scales: Float32Array } {
  const per = w.length / channels;
  const nS = perTensor ? 1 : channels;
  const scales = new Float32Array(nS);
  const grid = weightGrid(w);
  for (let c = 0; c < nS; c++) {
    let m = 0;
    const a = perTensor ? 0 : c * per, b = perTensor ? w.length : (c + 1) * per;
    for (let i = a; i < b; i++) m = Math.max(m, Math.abs(w[i]));
    let s = m > 0 ? Math.fround(m / 127) : 1;
    // the tensor's grid, or (after equalization rescaled channels one by one) the channel's own
    const cg = grid ?? (perTensor ? null : weightGrid(w.subarray(a, b), 4));
    if (cg && m > 0 && m / cg < 129) {
      const g = Math.fround(cg);
      if (weightError(w, a, b, g) < weightError(w, a, b, s)) s = g;
    }
    scales[c] = s;
  }
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const s = scales[perTensor ? 0 : Math.floor(i / per)];
    q[i] = quantizeWeight(w[i], s);
  }
  return { q, scales };
}

// quantizeWeights per weight tensor (its grid search sorts the weights): bias correction emits the QDQ
// graph once per Conv with only biases changed, and the weight tensors are the same objects each time
const quantizedWeights = new WeakMap<object, { perTensor: boolean; q: Int8Array; scales: Float32Array }>();
function cachedQuantizeWeights(tensor: object, w: Float32Array, channels: number, perTensor: boolean): { q: Int8Array; scales: Float32Array } {
  let c = quantizedWeights.get(tensor);
  if (!c || c.perTensor !== perTensor) {
    c = { perTensor, ...quantizeWeights(w, channels, perTensor) };
    quantizedWeights.set(tensor, c);
  }
  return { q: c.q.slice(), scales: c.scales.slice() }; // copies: fitBiasInInt32 may widen them
}

/** Symmetric int8 weights in [-127, 127] with the given per-output-channel scales. */
export function quantizeToScales(w: Float32Array, scales: Float32Array): { q: Int8Array; scales: Float32Array } {
  const per = w.length / scales.length;
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = quantizeWeight(w[i], scales[Math.floor(i / per)]);
  return { q, scales: scales.slice() };
}

/**
 * Widens weight scales where the int32 bias b / (s_x·s_w) would overflow (a near-zero channel whose
 * input range is tiny, e.g. an SE squeeze that barely fires), and requantizes those channels.
 */
export function fitBiasInInt32(w: Float32Array, b: Float32Array, sx: number, q: Int8Array, scales: Float32Array): void {
  const C = b.length, per = w.length / C;
  const limit = 2147483647 * 0.5;
  for (let c = 0; c < scales.length; c++) {
    let bmax = 0;
    const a = scales.length === 1 ? 0 : c, e = scales.length === 1 ? C : c + 1;
    for (let o = a; o < e; o++) bmax = Math.max(bmax, Math.abs(b[o]));
    if (bmax / (sx * scales[c]) <= limit) continue;
    scales[c] = Math.fround(bmax / (sx * limit));
    for (let i = a * per; i < e * per; i++) q[i] = quantizeWeight(w[i], scales[c]);
  }
}

/** Writes the QDQ graph into `g` (which is modified). */
export function emitQdq(g: Graph, plan: QuantPlan, qp: Map<string, QParams>, opts: EmitOptions = {}): void {
  const nodes: NodeProto[] = [];
  const usedNames = new Set(g.nodes.map((n) => n.name ?? ''));
  const uniq = (base: string) => { let n = base, k = 0; while (usedNames.has(n)) n = `${base}_${++k}`; usedNames.add(n); return n; };
  // tensor names: the graph's, plus those given out here (new nodes are not in g.nodes until the end)
  const takenT = new Set<string>(g.nodes.flatMap((n) => [...n.input!, ...n.output!]));
  for (const i of g.inputs) takenT.add(i.name!);
  const freshT = (base: string) => { let n = base, k = 0; while (takenT.has(n) || g.inits.has(n)) n = `${base}_${++k}`; takenT.add(n); return n; };
  const dqName = new Map<string, string>();
  const qpConst = new Map<string, [string, string]>();
  const paramConsts = (t: string): [string, string] => {
    let c = qpConst.get(t);
    if (!c) {
      const q = qp.get(t)!;
      c = [g.addConst(`${t}_scale`, [], Float32Array.of(q.scale)),
        g.addConst(`${t}_zero_point`, [], q.bits === 16 ? Int16Array.of(q.zeroPoint) : Int8Array.of(q.zeroPoint))];
      qpConst.set(t, c);
    }
    return c;
  };
  // rename graph outputs that get quantized: the producer writes `<out>_float`, the final DQ writes `<out>`
  const renamed = new Map<string, string>();
  for (const t of plan.tensors) {
    if (g.isGraphOutput(t)) {
      const f = freshT(`${t}_float`);
      renamed.set(t, f);
      for (const n of g.nodes) {
        n.output = n.output!.map((o) => (o === t ? f : o));
        n.input = n.input!.map((i) => (i === t ? f : i));
      }
    }
  }
  const floatName = (t: string) => renamed.get(t) ?? t;
  const addQdq = (t: string) => {
    const [s, z] = paramConsts(t);
    const f = floatName(t);
    const q = freshT(`${t}_quantized`);
    const d = renamed.has(t) ? t : freshT(`${t}_dequantized`);
    nodes.push(makeNode('QuantizeLinear', uniq(`${t}_QuantizeLinear`), [f, s, z], [q]));
    nodes.push(makeNode('DequantizeLinear', uniq(`${t}_DequantizeLinear`), [q, s, z], [d]));
    dqName.set(f, d);
  };
  const planned = new Set(plan.tensors);
  for (const i of g.inputs) if (planned.has(i.name!)) addQdq(i.name!);

  for (const n of g.nodes) {
    // inputs read the dequantized tensors
    const origIns = [...n.input!];
    n.input = n.input!.map((i) => dqName.get(i) ?? i);
    if (WEIGHTED.has(n.opType!) && !plan.floatNodes.has(n)) {
      const x = origIns[0];
      const xq = qp.get(x) ?? qp.get([...renamed].find(([, f]) => f === x)?.[0] ?? '');
      if (!xq) throw new Error(`internal: input of ${describeNode(n)} is not quantized`);
      const wName = origIns[1];
      const w = g.constF(wName)!;
      const wd = g.constDims(wName);
      const O = wd[0];
      if (n.opType === 'Gemm' && attrInt(n, 'transB', 0) !== 1) throw new Error(`internal: ${describeNode(n)} not normalized`);
      const fixed = opts.weightScales?.get(wName);
      const { q, scales } = fixed && !opts.perTensor ? quantizeToScales(w, fixed) : cachedQuantizeWeights(g.inits.get(wName)!, w, O, !!opts.perTensor);
      const perCh = scales.length > 1;
      if (origIns[2]) fitBiasInInt32(w, g.constF(origIns[2])!, Math.fround(xq.scale), q, scales);
      const wq = g.addConst(`${wName}_quantized`, wd, q);
      const ws = g.addConst(`${wName}_scale`, perCh ? [O] : [], scales);
      const wz = g.addConst(`${wName}_zero_point`, perCh ? [O] : [], new Int8Array(perCh ? O : 1));
      const wdq = freshT(`${wName}_dequantized`);
      nodes.push(makeNode('DequantizeLinear', uniq(`${wName}_DequantizeLinear`), [wq, ws, wz], [wdq], perCh ? { axis: int(0) } : {}));
      const ins = [n.input![0], wdq];
      if (origIns[2]) {
        const b = g.constF(origIns[2])!;
        const bs = new Float32Array(O), bq = new Int32Array(O);
        for (let o = 0; o < O; o++) {
          bs[o] = Math.fround(Math.fround(xq.scale) * scales[perCh ? o : 0]);
          const v = roundHalfEven(b[o] / bs[o]);
          bq[o] = Math.max(-2147483647, Math.min(2147483647, v));
        }
        const bqn = g.addConst(`${origIns[2]}_quantized`, [O], bq);
        const bsn = g.addConst(`${origIns[2]}_scale`, perCh ? [O] : [], perCh ? bs : bs.slice(0, 1));
        const bzn = g.addConst(`${origIns[2]}_zero_point`, perCh ? [O] : [], new Int32Array(perCh ? O : 1));
        const bdq = freshT(`${origIns[2]}_dequantized`);
        nodes.push(makeNode('DequantizeLinear', uniq(`${origIns[2]}_DequantizeLinear`), [bqn, bsn, bzn], [bdq], perCh ? { axis: int(0) } : {}));
        ins.push(bdq);
      }
      n.input = ins;
    } else if (BINARY.has(n.opType!) && !plan.floatNodes.has(n)) {
      // a constant operand: int8 symmetric per tensor
      n.input = n.input!.map((i) => {
        if (!g.isConst(i)) return i;
        const v = g.constF(i)!;
        const { q, scales } = quantizeWeights(v, 1, true);
        const qn = g.addConst(`${i}_quantized`, g.constDims(i), q);
        const sn = g.addConst(`${i}_scale`, [], scales);
        const zn = g.addConst(`${i}_zero_point`, [], new Int8Array(1));
        const d = freshT(`${i}_dequantized`);
        nodes.push(makeNode('DequantizeLinear', uniq(`${i}_DequantizeLinear`), [qn, sn, zn], [d]));
        return d;
      });
    }
    nodes.push(n);
    for (const o of n.output!) {
      const t = [...renamed].find(([, f]) => f === o)?.[0] ?? o;
      if (planned.has(t)) addQdq(t);
    }
  }
  g.nodes = nodes;
  g.prune();
}
