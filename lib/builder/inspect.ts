// Reads the layer structure of any float (or QDQ / QOperator) ONNX CNN: its
// conv and linear layers in graph order with weight shapes, groups, strides,
// pads, the activation that follows each, shapes, parameters and MACs. Used by
// `mnq info`, by weight loading, and to compare built models with torchvision's.
import { onnx, NodeProto, TensorProto, attr, attrInt, attrInts, dims, tensorData, opsetVersion, valueInfoShape, OnnxFormatError } from '../onnx/proto';
import { Activation } from './net';

export interface OnnxLayer {
  /** Index among the model's weight layers. */
  index: number;
  node: string;
  opType: string;
  type: 'conv' | 'dwconv' | 'linear';
  /** Conv [O, I/group, kh, kw]; linear [O, I] (transposed if the file stores [I, O]). */
  weightShape: number[];
  group: number;
  strides: number[];
  /** [top, left, bottom, right] */
  pads: number[];
  /** Activation after the layer, when recognised; 'other' when not. */
  act: Activation | 'other';
  /** Raw op chain after the layer, e.g. ["Relu", "Add(3)", "Clip(0,6)", "Mul(0.1667)"]. */
  chain: string[];
  /** A ReLU before an h-sigmoid (TFLite uint8 graphs leave one there). */
  preRelu: boolean;
  /** h-sigmoid written as Clip(0,6)*1/6 with the +3 folded into the bias. */
  hsigmoidBiasFolded: boolean;
  /** The multiplier of an h-sigmoid written as relu6(x + 3) * c (TFLite uses c = 0.16667, not 1/6). */
  hsigmoidScale?: number;
  hasBatchNorm: boolean;
  /** Input / output shapes without the batch dimension, when known. */
  input?: number[];
  output?: number[];
  params: number;
  macs?: number;
  weight?: Float32Array;
  bias?: Float32Array;
}

export interface OnnxStructure {
  opset: number;
  input: { name: string; shape: (number | string)[] };
  output: { name: string; shape: (number | string)[] };
  layers: OnnxLayer[];
  /** Weights + biases of conv and linear layers (BN folded: its two vectors count as one bias). */
  params: number;
  /** Conv/linear MACs plus SE channel-scale multiplies, as in Counts (undefined if some shape is unknown). */
  macs?: number;
  convLinearMacs?: number;
  /** Multiplies of feature maps by per-channel (N x C x 1 x 1) scales: the SE excitation. */
  seScaleMacs: number;
  /** x * scale + bias applied to the input by the graph itself (Keras-style rescaling), if any. */
  inputTransform?: { scale: number; bias: number };
  /** Ops seen, with counts. */
  ops: Record<string, number>;
}

const ELEMENTWISE = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Relu', 'Clip', 'HardSwish', 'HardSigmoid', 'Sigmoid', 'Tanh', 'LeakyRelu',
  'PRelu', 'Identity', 'Dropout', 'QuantizeLinear', 'DequantizeLinear', 'BatchNormalization', 'Cast', 'Pow',
  'Max', 'Min', 'Sqrt', 'Exp', 'Softmax', 'LogSoftmax', 'Abs', 'Neg', 'Erf', 'Where',
]);

function shapeDims(vi: onnx.IValueInfoProto | undefined): (number | string)[] {
  return valueInfoShape(vi, (_, value) => value);
}

export function inspectOnnx(model: onnx.IModelProto, opts: { withWeights?: boolean } = {}): OnnxStructure {
  const graph = model.graph;
  if (!graph || !graph.node) throw new OnnxFormatError('ONNX model has no graph');
  const nodes = graph.node as NodeProto[];
  const inits = new Map<string, TensorProto>();
  for (const t of graph.initializer ?? []) inits.set(t.name ?? '', t);
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  const ops: Record<string, number> = {};
  for (const n of nodes) {
    ops[n.opType ?? '?'] = (ops[n.opType ?? '?'] ?? 0) + 1;
    for (const o of n.output ?? []) producer.set(o, n);
    for (const i of n.input ?? []) {
      if (!i) continue;
      if (!consumers.has(i)) consumers.set(i, []);
      consumers.get(i)!.push(n);
    }
    if (n.opType === 'Constant') {
      const t = attr(n, 'value')?.t;
      if (t && n.output?.[0]) inits.set(n.output[0], { ...t, name: n.output[0] });
    }
  }
  // follow Identity / DequantizeLinear back to a constant tensor
  const constTensor = (name: string): { t: TensorProto; dq?: NodeProto } | undefined => {
    for (let hops = 0; hops < 8; hops++) {
      const t = inits.get(name);
      if (t) return { t };
      const p = producer.get(name);
      if (!p) return undefined;
      if (p.opType === 'Identity') { name = p.input![0]; continue; }
      if (p.opType === 'DequantizeLinear') {
        const q = constTensor(p.input![0]);
        return q ? { t: q.t, dq: p } : undefined;
      }
      return undefined;
    }
    return undefined;
  };
  const constShape = (name: string): number[] | undefined => {
    const c = constTensor(name);
    return c ? dims(c.t) : undefined;
  };
  const constValues = (name: string): Float32Array | undefined => {
    const c = constTensor(name);
    if (!c) return undefined;
    const raw = Float32Array.from(tensorData(c.t) as ArrayLike<number>);
    if (!c.dq) return raw;
    const scale = constValues(c.dq.input![1]);
    const zp = c.dq.input![2] ? constValues(c.dq.input![2]) : undefined;
    if (!scale) return undefined;
    const shape = dims(c.t);
    let axis = attrInt(c.dq, 'axis', 1);
    if (axis < 0) axis += shape.length;
    const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const axisLen = shape[axis] ?? 1;
    const out = new Float32Array(raw.length);
    for (let i = 0, ch = 0, k = 0; i < raw.length; i++) {
      if (scale.length !== 1 && k++ === inner) { k = 1; ch = (ch + 1) % axisLen; }
      out[i] = (raw[i] - (zp ? zp[zp.length === 1 ? 0 : ch] : 0)) * scale[ch];
    }
    return out;
  };
  const scalarConst = (name: string): number | undefined => {
    const s = constShape(name);
    if (!s || s.reduce((a, b) => a * b, 1) !== 1) return undefined;
    return constValues(name)?.[0];
  };
  // consumers seen through Identity nodes
  const realConsumers = (v: string): { node: NodeProto; via: string }[] => {
    const out: { node: NodeProto; via: string }[] = [];
    for (const c of consumers.get(v) ?? []) {
      if (c.opType === 'Identity') out.push(...realConsumers(c.output![0]));
      else out.push({ node: c, via: v });
    }
    return out;
  };

  // ---- shapes (batch = 1) ----
  const shapes = new Map<string, number[]>();
  const gin = (graph.input ?? []).filter((i) => !inits.has(i.name ?? ''));
  for (const i of gin) shapes.set(i.name ?? '', shapeDims(i).map((d) => (typeof d === 'number' && d > 0 ? d : 1)));
  for (const n of nodes) {
    const ins = (n.input ?? []).map((i) => shapes.get(i) ?? constShape(i));
    const x = ins[0];
    let y: number[] | undefined;
    const op = n.opType ?? '';
    if ((op === 'Conv' || op === 'ConvInteger' || op === 'QLinearConv') && x) {
      const wShape = constShape(n.input![op === 'QLinearConv' ? 3 : 1]);
      if (wShape && x.length === 4) y = convOutShape(n, x, wShape);
    } else if ((op === 'GlobalAveragePool' || op === 'GlobalMaxPool' || op === 'QLinearGlobalAveragePool') && x) {
      y = [x[0], x[1], ...x.slice(2).map(() => 1)];
    } else if ((op === 'AveragePool' || op === 'MaxPool') && x && x.length === 4) {
      const k = attrInts(n, 'kernel_shape', [1, 1]);
      y = convOutShape(n, x, [x[1], 1, k[0], k[1]]);
    } else if (op === 'Flatten' && x) {
      let axis = attrInt(n, 'axis', 1);
      if (axis < 0) axis += x.length;
      y = [x.slice(0, axis).reduce((a, b) => a * b, 1), x.slice(axis).reduce((a, b) => a * b, 1)];
    } else if (op === 'Gemm' && x) {
      const w = constShape(n.input![1]);
      if (w) y = [attrInt(n, 'transA', 0) ? x[1] : x[0], attrInt(n, 'transB', 0) ? w[0] : w[1]];
    } else if ((op === 'MatMul' || op === 'MatMulInteger' || op === 'QLinearMatMul') && x) {
      const w = constShape(n.input![op === 'QLinearMatMul' ? 3 : 1]);
      if (w && w.length === 2) y = [...x.slice(0, -1), w[1]];
    } else if (op === 'Reshape' && x) {
      const s = constValues(n.input![1]);
      if (s) {
        const total = x.reduce((a, b) => a * b, 1);
        const r = Array.from(s, (v, i) => (v === 0 ? x[i] : v));
        const known = r.filter((v) => v !== -1).reduce((a, b) => a * b, 1);
        y = r.map((v) => (v === -1 ? total / known : v));
      }
    } else if (op === 'Squeeze' && x) {
      const axes = n.input?.[1] ? Array.from(constValues(n.input[1]) ?? []) : attrInts(n, 'axes', []);
      const ax = axes.map((a) => (a < 0 ? a + x.length : a));
      y = x.filter((d, i) => (ax.length ? !ax.includes(i) : d !== 1));
    } else if (ELEMENTWISE.has(op) || n.domain === 'com.microsoft') {
      const known = ins.filter((s): s is number[] => !!s);
      if (known.length) {
        const rank = Math.max(...known.map((s) => s.length));
        y = Array.from({ length: rank }, (_, i) => Math.max(...known.map((s) => s[s.length - rank + i] ?? 1)));
      }
    }
    if (y) for (const o of n.output ?? []) shapes.set(o, y);
  }

  // ---- layers ----
  const layers: OnnxLayer[] = [];
  for (const n of nodes) {
    const op = n.opType ?? '';
    let wName: string | undefined;
    let bName: string | undefined;
    if (op === 'Conv' || op === 'ConvInteger') { wName = n.input![1]; bName = n.input![2]; }
    else if (op === 'QLinearConv') { wName = n.input![3]; bName = n.input![8]; }
    else if (op === 'Gemm' || op === 'MatMul' || op === 'MatMulInteger') { wName = n.input![1]; bName = op === 'Gemm' ? n.input![2] : undefined; }
    else if (op === 'QLinearMatMul') wName = n.input![3];
    else continue;
    let wShape = wName ? constShape(wName) : undefined;
    if (!wShape) continue; // e.g. activation x activation MatMul
    const isMatMul = op === 'MatMul' || op === 'MatMulInteger' || op === 'QLinearMatMul';
    const isConv = op !== 'Gemm' && !isMatMul;
    const transposed = (op === 'Gemm' && !attrInt(n, 'transB', 0)) || isMatMul;
    if (!isConv && transposed) wShape = [wShape[1], wShape[0]];
    const group = isConv ? attrInt(n, 'group', 1) : 1;
    const xs = shapes.get(n.input![0]);
    let out = n.output![0];
    const ys = shapes.get(out);
    let weight: Float32Array | undefined;
    let bias: Float32Array | undefined;
    if (opts.withWeights) {
      weight = wName ? constValues(wName) : undefined;
      if (weight && !isConv && transposed) weight = transpose(weight, wShape[1], wShape[0]);
      bias = bName ? constValues(bName) : new Float32Array(wShape[0]);
    }
    // the output may go through an Add of a bias (MatMul) or a BatchNormalization
    let hasBatchNorm = false;
    const c1 = realConsumers(out);
    if (isMatMul && c1.length === 1 && (c1[0].node.opType === 'Add' || c1[0].node.opType === 'QLinearAdd')) {
      const other = c1[0].node.input!.find((i) => i !== c1[0].via);
      if (other && constShape(other)) {
        if (opts.withWeights && c1[0].node.opType === 'Add') bias = constValues(other);
        out = c1[0].node.output![0];
      }
    } else if (c1.length === 1 && c1[0].node.opType === 'BatchNormalization') {
      const bn = c1[0].node;
      hasBatchNorm = true;
      if (opts.withWeights && weight && bias) {
        const [g, b, m, v] = [1, 2, 3, 4].map((k) => constValues(bn.input![k]));
        const eps = attr(bn, 'epsilon')?.f ?? 1e-5;
        if (g && b && m && v) ({ weight, bias } = foldBn(weight, bias, g, b, m, v, eps));
        else weight = undefined;
      }
      out = bn.output![0];
    }
    const chain = followChain(out, realConsumers, scalarConst);
    const kind = chainActivation(chain);
    const wCount = wShape.reduce((a, b) => a * b, 1);
    const outC = wShape[0];
    let macs: number | undefined;
    if (isConv) macs = ys && ys.length === 4 ? wCount * ys[2] * ys[3] : undefined;
    else macs = wCount;
    layers.push({
      index: layers.length, node: n.name || out, opType: op,
      type: isConv ? (group > 1 && wShape[1] === 1 ? 'dwconv' : 'conv') : 'linear',
      weightShape: wShape, group,
      strides: isConv ? attrInts(n, 'strides', [1, 1]) : [1, 1],
      pads: isConv ? attrInts(n, 'pads', [0, 0, 0, 0]) : [0, 0, 0, 0],
      act: kind.act, chain: chain.map((c) => c.label), preRelu: kind.preRelu, hsigmoidBiasFolded: kind.biasFolded,
      hsigmoidScale: kind.hsigmoidScale,
      hasBatchNorm,
      input: xs?.slice(1), output: ys?.slice(1),
      params: wCount + (bName || hasBatchNorm || isMatMul ? outC : 0),
      macs, weight, bias,
    });
  }
  // Keras-style input rescaling: input -> Mul(scalar) -> Add(scalar)
  let inputTransform: OnnxStructure['inputTransform'];
  const inName = gin[0]?.name ?? '';
  const ic = realConsumers(inName);
  if (ic.length === 1 && (ic[0].node.opType === 'Mul' || ic[0].node.opType === 'Add')) {
    let scale = 1;
    let bias = 0;
    let cur = ic;
    for (let k = 0; k < 2 && cur.length === 1; k++) {
      const nd = cur[0].node;
      const other = nd.input!.find((i) => i !== cur[0].via);
      const c = other !== undefined ? scalarConst(other) : undefined;
      if (c === undefined) break;
      if (nd.opType === 'Mul') { scale *= c; bias *= c; } else if (nd.opType === 'Add') bias += c; else break;
      cur = realConsumers(nd.output![0]);
    }
    if (scale !== 1 || bias !== 0) inputTransform = { scale, bias };
  }
  let seScaleMacs = 0;
  for (const n of nodes) {
    if (n.opType !== 'Mul' && n.opType !== 'QLinearMul') continue;
    const xs = (n.input ?? []).filter((i) => i && !constShape(i)).map((i) => shapes.get(i));
    if (xs.length !== 2 || !xs[0] || !xs[1] || xs[0].length !== 4 || xs[1].length !== 4) continue;
    const [a, b] = xs[0][2] * xs[0][3] >= xs[1][2] * xs[1][3] ? [xs[0], xs[1]] : [xs[1], xs[0]];
    if (b[2] === 1 && b[3] === 1 && a[2] * a[3] > 1 && a[1] === b[1]) seScaleMacs += a[1] * a[2] * a[3];
  }
  const params = layers.reduce((a, l) => a + l.params, 0);
  const convLinearMacs = layers.every((l) => l.macs !== undefined) ? layers.reduce((a, l) => a + (l.macs ?? 0), 0) : undefined;
  const macs = convLinearMacs === undefined ? undefined : convLinearMacs + seScaleMacs;
  const go = graph.output?.[0];
  return {
    opset: opsetVersion(model),
    input: { name: inName, shape: shapeDims(gin[0]) },
    output: { name: go?.name ?? '', shape: shapeDims(go ?? undefined) },
    layers, params, macs, convLinearMacs, seScaleMacs, inputTransform, ops,
  };
}

function convOutShape(n: NodeProto, x: number[], w: number[]): number[] {
  const k = attrInts(n, 'kernel_shape', [w[2], w[3]]);
  const s = attrInts(n, 'strides', [1, 1]);
  const d = attrInts(n, 'dilations', [1, 1]);
  const autoPad = attr(n, 'auto_pad')?.s ?? 'NOTSET';
  const out = [0, 1].map((i) => {
    const inS = x[2 + i];
    const ek = (k[i] - 1) * d[i] + 1;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(inS / s[i]);
    if (autoPad === 'VALID') return Math.floor((inS - ek) / s[i]) + 1;
    const p = attrInts(n, 'pads', [0, 0, 0, 0]);
    return Math.floor((inS + p[i] + p[i + 2] - ek) / s[i]) + 1;
  });
  return [x[0], w[0], out[0], out[1]];
}

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  // a is [cols, rows] (stored [I, O]); returns [rows, cols] = [O, I]
  const out = new Float32Array(a.length);
  for (let i = 0; i < cols; i++) for (let o = 0; o < rows; o++) out[o * cols + i] = a[i * rows + o];
  return out;
}

function foldBn(w: Float32Array, b: Float32Array, g: Float32Array, beta: Float32Array, m: Float32Array, v: Float32Array, eps: number) {
  const outC = b.length;
  const per = w.length / outC;
  const weight = new Float32Array(w.length);
  const bias = new Float32Array(outC);
  for (let o = 0; o < outC; o++) {
    const s = g[o] / Math.sqrt(v[o] + eps);
    for (let i = 0; i < per; i++) weight[o * per + i] = w[o * per + i] * s;
    bias[o] = (b[o] - m[o]) * s + beta[o];
  }
  return { weight, bias };
}

interface ChainStep { op: string; c?: number; c2?: number; label: string }

function followChain(
  start: string,
  realConsumers: (v: string) => { node: NodeProto; via: string }[],
  scalarConst: (n: string) => number | undefined,
): ChainStep[] {
  const chain: ChainStep[] = [];
  let v = start;
  for (let steps = 0; steps < 10; steps++) {
    const cs = realConsumers(v);
    if (cs.length === 2) {
      // h-swish as HardSigmoid + Mul(x, hsigmoid(x))
      const h = cs.find((c) => c.node.opType === 'HardSigmoid');
      const m = cs.find((c) => c.node.opType === 'Mul');
      if (h && m && realConsumers(h.node.output![0]).some((c) => c.node === m.node)) {
        chain.push({ op: 'HardSwish', label: 'HardSigmoid*x' });
        v = m.node.output![0];
        continue;
      }
      break;
    }
    if (cs.length !== 1) break;
    const n = cs[0].node;
    const op = n.opType ?? '';
    if (op === 'Relu' || op === 'HardSwish' || op === 'Sigmoid') {
      chain.push({ op, label: op });
    } else if (op === 'HardSigmoid') {
      const a = attr(n, 'alpha')?.f ?? 0.2;
      const b = attr(n, 'beta')?.f ?? 0.5;
      chain.push({ op, c: a, c2: b, label: `HardSigmoid(${round4(a)},${round4(b)})` });
    } else if (op === 'Clip') {
      const lo = n.input![1] ? scalarConst(n.input![1]) : attr(n, 'min')?.f;
      const hi = n.input![2] ? scalarConst(n.input![2]) : attr(n, 'max')?.f;
      chain.push({ op, c: lo ?? -Infinity, c2: hi ?? Infinity, label: `Clip(${lo},${hi})` });
    } else if (op === 'Add' || op === 'Mul' || op === 'Div' || op === 'Sub') {
      const other = n.input!.find((i) => i !== cs[0].via);
      const c = other !== undefined ? scalarConst(other) : undefined;
      if (c === undefined) break;
      chain.push({ op, c, label: `${op}(${round4(c)})` });
    } else break;
    v = n.output![0];
  }
  return chain;
}

const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
const near = (a: number | undefined, b: number) => a !== undefined && Math.abs(a - b) < 1e-4;

/** Canonical activation of an op chain. */
function chainActivation(chain: ChainStep[]): { act: Activation | 'other'; preRelu: boolean; biasFolded: boolean; hsigmoidScale?: number } {
  let steps = chain.slice();
  let preRelu = false;
  const isRelu6 = (s?: ChainStep) => s?.op === 'Clip' && near(s.c, 0) && near(s.c2, 6);
  const isMul6 = (s?: ChainStep) => (s?.op === 'Mul' && near(s.c, 1 / 6)) || (s?.op === 'Div' && near(s.c, 6));
  // h-sigmoid forms
  const mulOf = (s: ChainStep) => (s.op === 'Div' ? 1 / (s.c as number) : (s.c as number));
  const hsig = (s: ChainStep[]): { n: number; folded: boolean; scale?: number } | null => {
    if (s[0]?.op === 'HardSigmoid' && near(s[0].c, 1 / 6) && near(s[0].c2, 0.5)) return { n: 1, folded: false };
    if (s[0]?.op === 'Add' && near(s[0].c, 3) && isRelu6(s[1]) && isMul6(s[2])) return { n: 3, folded: false, scale: mulOf(s[2]) };
    if (isRelu6(s[0]) && isMul6(s[1])) return { n: 2, folded: true, scale: mulOf(s[1]) };
    return null;
  };
  if (steps.length === 0) return { act: 'none', preRelu, biasFolded: false };
  if (steps[0].op === 'Relu' && steps.length > 1 && hsig(steps.slice(1))) {
    preRelu = true;
    steps = steps.slice(1);
  }
  const h = hsig(steps);
  if (h) {
    // a ReLU after an h-sigmoid changes nothing
    const rest = steps.slice(h.n).filter((s) => s.op !== 'Relu');
    return { act: rest.length ? 'other' : 'hsigmoid', preRelu, biasFolded: h.folded, hsigmoidScale: h.scale };
  }
  // ReLU after ReLU / ReLU6 is a no-op
  const first = steps[0];
  const rest = steps.slice(1).filter((s) => s.op !== 'Relu');
  if (rest.length) return { act: 'other', preRelu, biasFolded: false };
  if (first.op === 'Relu') return { act: 'relu', preRelu, biasFolded: false };
  if (isRelu6(first)) return { act: 'relu6', preRelu, biasFolded: false };
  if (first.op === 'HardSwish') return { act: 'hswish', preRelu, biasFolded: false };
  return { act: 'other', preRelu, biasFolded: false };
}
