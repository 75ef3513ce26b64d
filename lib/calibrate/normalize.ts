// Graph normalisation before quantization: turns the many spellings of a
// MobileNet that exporters write into one canonical float graph, with the same
// results (up to float rounding):
//   - Constant nodes → initializers; Identity / Dropout removed
//   - Clip bounds given as attributes (opset < 11) → constant inputs
//   - BatchNormalization folded into the preceding Conv (or turned into a 1×1 depthwise Conv)
//   - Div / Sub by a constant → Mul / Add
//   - h-sigmoid spelled Add(3)·Clip(0,6)·Mul(1/6) (or Clip(0,6)·Mul(1/6)) → HardSigmoid
//   - h-swish spelled x·HardSigmoid(x) or x·Clip(x+3,0,6)/6 → HardSwish
//   - Mul / Add by constants right after a Conv (or the graph input: the Keras
//     input rescale) folded into a Conv's weights and bias
//   - Reshape with a computed shape / Squeeze after a global pool → Flatten
//   - MatMul(+Add) and Gemm classifiers → Gemm(transB = 1, alpha = beta = 1, with bias)
// The output names of the model stay the same, and tensors that survive keep
// their names, so float and int8 tensors can be compared by name.
import { onnx, ModelProto, NodeProto, attrFloat, attrInt, attrInts, attrString, attr, describeNode, opsetVersion, nhwcInputChain, valueInfoShape, zeroPadHW } from '../onnx/proto';
import { Graph } from './graph';
import { float, int, ints, makeAttribute, makeNode, setAttribute } from '../onnx/writer';

/** Lowest opset of the graphs we write: per-channel QDQ needs 13, HardSwish 14. */
export const OUTPUT_OPSET = 14;

export interface NormalizeResult {
  graph: Graph;
  /** What was rewritten, for --verbose / the report. */
  log: string[];
  /**
   * 'nhwc': the model takes [N, H, W, 3] images and transposes them to NCHW first (tf2onnx's Keras exports);
   * `graph` has that Transpose removed and takes NCHW (see restoreNhwcInput for the int8 file)
   */
  inputLayout: 'nchw' | 'nhwc';
}

/** The layout of a model's image input: 'nhwc' when the graph transposes it to NCHW first (nhwcInputChain). */
export function inputLayout(model: ModelProto): 'nchw' | 'nhwc' {
  const g = model.graph!;
  const inits = new Set((g.initializer ?? []).map((t) => t.name));
  const inp = (g.input ?? []).find((i) => !inits.has(i.name));
  return inp && nhwcInputChain(g, inp.name!) ? 'nhwc' : 'nchw';
}

const near = (a: number, b: number, tol = 1e-3) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

export function normalize(model: ModelProto): NormalizeResult {
  const g = new Graph(model);
  const log: string[] = [];
  const opset = opsetVersion(model);
  constantsToInitializers(g, log);
  removeNoops(g);
  const layout = nhwcInputToNchw(g, log);
  canonicalClip(g, opset);
  divSubToMulAdd(g);
  padIntoConv(g, log);
  reduceMeanToPool(g, log);
  foldBatchNorm(g, log);
  fuseHardSigmoid(g, log);
  fuseHardSwish(g, log);
  inputRescaleToConv(g, log);
  foldConstAffineIntoConv(g, log);
  flattenShapeOps(g, log);
  classifierToGemm(g, log);
  convBias(g);
  g.prune();
  g.sort();
  return { graph: g, log, inputLayout: layout };
}

/** A constant-0 Pad of H and W only, read only by Convs (Keras' ZeroPadding2D before a stride-2 conv) → the Convs' pads. */
function padIntoConv(g: Graph, log: string[]): void {
  let n = 0;
  for (const pad of [...g.nodes]) {
    if (pad.opType !== 'Pad' || (pad.input![3] ?? '') !== '') continue;
    const value = pad.input![2] ? g.constF(pad.input![2]) : [attrFloat(pad, 'value', 0)];
    const tlbr = zeroPadHW(attrString(pad, 'mode', 'constant'), pad.input![1] ? g.constF(pad.input![1]) : attrInts(pad, 'pads', []), value ?? []);
    if (!tlbr) continue;
    const convs = g.consumers(pad.output![0]);
    if (!convs.length || g.isGraphOutput(pad.output![0])) continue;
    if (!convs.every((c) => c.opType === 'Conv' && c.input![0] === pad.output![0] && ['NOTSET', 'VALID'].includes(attrString(c, 'auto_pad', 'NOTSET')))) continue;
    for (const c of convs) {
      const cp = attrInts(c, 'pads', [0, 0, 0, 0]);
      setAttribute(c, 'pads', ints(cp.map((p, i) => p + tlbr[i])));
      c.attribute = c.attribute!.filter((a) => a.name !== 'auto_pad');
      c.input = [pad.input![0], ...c.input!.slice(1)];
    }
    g.remove(pad);
    n++;
  }
  if (n) log.push(`${n} zero Pad folded into Conv pads`);
}

/**
 * ReduceMean over H and W → GlobalAveragePool (+ Flatten without keepdims): axes [2, 3] of an NCHW tensor, or
 * axes [1, 2] of a Transpose(0, 2, 3, 1) back to NHWC (tf2onnx's Keras GlobalAveragePooling2D); with keepdims
 * the [N, 1, 1, C] result holds the same values in the same order as the pool's [N, C, 1, 1].
 */
function reduceMeanToPool(g: Graph, log: string[]): void {
  let n = 0;
  for (const node of [...g.nodes]) {
    if (node.opType !== 'ReduceMean') continue;
    const axes = node.input![1] ? g.constF(node.input![1]) : Float32Array.from(attrInts(node, 'axes', []));
    if (!axes) continue;
    const ax = [...axes].map((a) => (a < 0 ? a + 4 : a)).sort().join();
    let x = node.input![0];
    const t = g.producer(x);
    const nhwc = ax === '1,2' && t && t.opType === 'Transpose' && attrInts(t, 'perm', []).join() === '0,2,3,1' && g.soleConsumer(x) === node;
    if (ax !== '2,3' && !nhwc) continue;
    if (nhwc) { x = t!.input![0]; g.remove(t!); }
    const keep = attrInt(node, 'keepdims', 1) !== 0;
    const out = node.output![0];
    const pooled = keep && !nhwc ? out : g.fresh(`${out}_pooled`);
    const after = !keep ? [makeNode('Flatten', g.fresh(`${node.name || 'gap'}_flatten`), [pooled], [out], { axis: int(1) })]
      : nhwc ? [makeNode('Reshape', g.fresh(`${node.name || 'gap'}_nhwc`), [pooled, g.addConst(`${out}_shape`, [4], new BigInt64Array([0n, 1n, 1n, -1n]) as never)], [out])] : [];
    g.nodes.splice(g.nodes.indexOf(node), 1, makeNode('GlobalAveragePool', node.name || g.fresh('gap'), [x], [pooled]), ...after);
    n++;
  }
  if (n) log.push(`${n} ReduceMean over H, W → GlobalAveragePool`);
}

/** A copy of a 4-d value info with its dims 1..3 taken from `order` (the caller's proto is not modified). */
function withDims(v: onnx.IValueInfoProto, order: number[]): onnx.ValueInfoProto {
  const d = v.type!.tensorType!.shape!.dim!;
  return onnx.ValueInfoProto.create({
    name: v.name, type: { tensorType: { elemType: v.type!.tensorType!.elemType, shape: { dim: [d[0], ...order.map((i) => d[i])] } } },
  });
}

/**
 * An NHWC image input read only through Transpose(0, 3, 1, 2) (nhwcInputChain), possibly after a rescale by scalar
 * or per-channel [3] constants: the graph takes NCHW instead (same name), the Transposes removed and the rescale
 * applied to NCHW data.
 */
function nhwcInputToNchw(g: Graph, log: string[]): 'nchw' | 'nhwc' {
  const inp = g.inputs[0];
  const found = g.inputs.length === 1 ? nhwcInputChain({ node: g.nodes }, inp.name!) : null;
  if (!found) return 'nchw';
  const name = inp.name!;
  const constants = found.chain.map((n) => {
    const c = g.isConst(n.input![1]) ? n.input![1] : n.input![0];
    const v = g.constF(c);
    if (!['Mul', 'Add', 'Sub', 'Div'].includes(n.opType!) || !v || (v.length !== 1 && v.length !== 3) ||
        ((n.opType === 'Sub' || n.opType === 'Div') && c === n.input![0])) {
      throw new Error(`the model's input '${name}' is NHWC [${valueInfoShape(inp, () => '?').join(', ')}] and ${describeNode(n as NodeProto)} before its Transpose to NCHW is not a rescale by a scalar or per-channel constant; mnq reads NHWC images only through such a Transpose`);
    }
    return { node: n as NodeProto, c, v };
  });
  const last = found.chain.length ? found.chain[found.chain.length - 1].output![0] : name;
  for (const t of found.transposes) {
    g.replaceUses(t.output![0], last);
    g.remove(t as NodeProto);
  }
  for (const { node, c, v } of constants) {
    if (v.length === 3) node.input = node.input!.map((x) => (x === c ? g.addConst(`${c}_nchw`, [3, 1, 1], v.slice()) : x));
  }
  g.inputs[0] = withDims(inp, [3, 1, 2]);
  log.push(`NHWC input '${name}': its Transpose to NCHW removed (the int8 model keeps the NHWC input)`);
  return 'nhwc';
}

/**
 * The int8 graph of an NHWC model (normalize's inputLayout): the input goes back to [N, H, W, 3], quantized as
 * it is, and its DequantizeLinear is followed by the Transpose(0, 3, 1, 2) the float model had; the same
 * interface as the float model (mnq's runtime reads that Transpose as a no-op).
 */
export function restoreNhwcInput(g: Graph): void {
  const inp = g.inputs[0];
  const name = inp.name!;
  g.inputs[0] = withDims(inp, [2, 3, 1]);
  const q = g.consumers(name);
  if (q.length !== 1 || q[0].opType !== 'QuantizeLinear') throw new Error(`internal: the input '${name}' is not quantized once`);
  const dqs = g.consumers(q[0].output![0]);
  for (const dq of dqs) {
    const nhwc = dq.output![0];
    const nchw = g.fresh(`${nhwc}_nchw`);
    g.replaceUses(nhwc, nchw);
    const t = makeNode('Transpose', g.fresh(`${name}_to_nchw`), [nhwc], [nchw], { perm: ints([0, 3, 1, 2]) });
    g.nodes.splice(g.nodes.indexOf(dq) + 1, 0, t);
  }
}

function constantsToInitializers(g: Graph, log: string[]): void {
  let n = 0;
  for (const node of [...g.nodes]) {
    if (node.opType !== 'Constant') continue;
    const out = node.output![0];
    const a = attr(node, 'value');
    let t: onnx.ITensorProto | undefined = a?.t;
    if (t) {
      t = onnx.TensorProto.create({ ...t, name: out });
      g.inits.set(out, t);
    } else {
      const vf = attr(node, 'value_float'), vfs = attr(node, 'value_floats');
      const vi = attr(node, 'value_int'), vis = attr(node, 'value_ints');
      if (vf?.f !== undefined) g.setConst(out, [], Float32Array.of(vf.f));
      else if (vfs?.floats?.length) g.setConst(out, [vfs.floats.length], Float32Array.from(vfs.floats));
      else if (vi?.i !== undefined) g.setConst(out, [], Int32Array.of(vi.i));
      else if (vis?.ints?.length) g.setConst(out, [vis.ints.length], Int32Array.from(vis.ints));
      else throw new Error(`${describeNode(node)}: unsupported Constant (no value)`);
    }
    g.remove(node);
    n++;
  }
  if (n) log.push(`${n} Constant nodes → initializers`);
}

function removeNoops(g: Graph): void {
  for (const node of [...g.nodes]) {
    if (node.opType === 'Identity' || node.opType === 'Dropout') {
      if (g.isConst(node.input![0]) && g.isGraphOutput(node.output![0])) continue;
      g.bypass(node, node.input![0]);
    }
  }
}

function canonicalClip(g: Graph, opset: number): void {
  for (const node of g.nodes) {
    if (node.opType !== 'Clip') continue;
    if (opset < 11 || attr(node, 'min') || attr(node, 'max')) {
      const lo = attrFloat(node, 'min', -Infinity), hi = attrFloat(node, 'max', Infinity);
      const ins = [node.input![0], '', ''];
      if (lo !== -Infinity) ins[1] = g.addConst(`${node.name || node.output![0]}_min`, [], Float32Array.of(lo));
      if (hi !== Infinity) ins[2] = g.addConst(`${node.name || node.output![0]}_max`, [], Float32Array.of(hi));
      node.input = ins;
      node.attribute = [];
    }
  }
}

/** Bounds of a Clip (constant bounds only), or null. */
export function clipBounds(g: Graph, node: NodeProto): [number, number] | null {
  const lo = node.input![1] ? g.scalar(node.input![1]) : -Infinity;
  const hi = node.input![2] ? g.scalar(node.input![2]) : Infinity;
  if (lo === null || hi === null) return null;
  return [lo, hi];
}

function divSubToMulAdd(g: Graph): void {
  for (const node of g.nodes) {
    if ((node.opType === 'Div' || node.opType === 'Sub') && g.isConst(node.input![1]) && !g.isConst(node.input![0])) {
      const v = g.constF(node.input![1])!;
      const w = node.opType === 'Div' ? v.map((x) => 1 / x) : v.map((x) => -x);
      node.input = [node.input![0], g.addConst(`${node.input![1]}_${node.opType === 'Div' ? 'recip' : 'neg'}`, g.constDims(node.input![1]), w)];
      node.opType = node.opType === 'Div' ? 'Mul' : 'Add';
    }
  }
}

/** [data input, constant input] of a binary node with exactly one constant operand. */
function constOperand(g: Graph, node: NodeProto): [string, string] | null {
  const [a, b] = node.input!;
  if (g.isConst(b) && !g.isConst(a)) return [a, b];
  if (g.isConst(a) && !g.isConst(b)) return [b, a];
  return null;
}

/** Per-channel values of a constant broadcast against NCHW or NC (scalar, [C], [C,1,1], [1,C,1,1], [1,C]); null if not. */
function perChannel(g: Graph, name: string, c: number): Float32Array | null {
  const v = g.constF(name)!;
  const d = g.constDims(name);
  if (v.length === 1) return new Float32Array(c).fill(v[0]);
  if (v.length !== c) return null;
  const nonOne = d.map((x, i) => [x, i]).filter(([x]) => x !== 1);
  if (nonOne.length !== 1) return null;
  const axisFromEnd = d.length - nonOne[0][1];
  // channel axis: [C,1,1] / [1,C,1,1] (3 from end), or [C] / [1,C] for 2-D tensors
  return axisFromEnd === 3 || axisFromEnd === 1 ? v : null;
}

function foldBatchNorm(g: Graph, log: string[]): void {
  let folded = 0, converted = 0;
  for (const bn of [...g.nodes]) {
    if (bn.opType !== 'BatchNormalization') continue;
    const [x, sN, bN, mN, vN] = bn.input!;
    const s = g.constF(sN), b = g.constF(bN), m = g.constF(mN), v = g.constF(vN);
    if (!s || !b || !m || !v) throw new Error(`${describeNode(bn)}: BatchNormalization with non-constant parameters is not supported`);
    const eps = attrFloat(bn, 'epsilon', 1e-5);
    const C = s.length;
    const mul = new Float32Array(C), add = new Float32Array(C);
    for (let c = 0; c < C; c++) { mul[c] = s[c] / Math.sqrt(v[c] + eps); add[c] = b[c] - m[c] * mul[c]; }
    const conv = g.producer(x);
    if (conv && conv.opType === 'Conv' && g.soleConsumer(x) === bn && g.isConst(conv.input![1])) {
      scaleConv(g, conv, mul, add);
      conv.output = [bn.output![0]];
      g.remove(bn);
      folded++;
    } else {
      const w = g.addConst(`${bn.name || bn.output![0]}_w`, [C, 1, 1, 1], mul);
      const bb = g.addConst(`${bn.name || bn.output![0]}_b`, [C], add);
      const conv2 = makeNode('Conv', bn.name || g.fresh('bn_conv'), [x, w, bb], [bn.output![0]], { group: int(C), kernel_shape: ints([1, 1]) });
      g.nodes[g.nodes.indexOf(bn)] = conv2;
      converted++;
    }
  }
  if (folded) log.push(`${folded} BatchNormalization folded into Conv`);
  if (converted) log.push(`${converted} BatchNormalization → 1×1 depthwise Conv`);
}

/** conv(x) ↦ conv(x)·mul[c] + add[c], in the weights and bias. */
function scaleConv(g: Graph, conv: NodeProto, mul: Float32Array, add: Float32Array): void {
  const wN = conv.input![1];
  const w = g.constF(wN)!.slice();
  const wd = g.constDims(wN);
  const O = wd[0], per = w.length / O;
  for (let o = 0; o < O; o++) for (let i = 0; i < per; i++) w[o * per + i] *= mul[o];
  const bN = conv.input![2];
  const b = bN ? g.constF(bN)!.slice() : new Float32Array(O);
  for (let o = 0; o < O; o++) b[o] = b[o] * mul[o] + add[o];
  conv.input = [conv.input![0], g.addConst(`${wN}_folded`, wd, w), g.addConst(`${bN || wN + '_bias'}_folded`, [O], b)];
}

function convBias(g: Graph): void {
  for (const n of g.nodes) {
    if (n.opType === 'Conv' && !n.input![2]) {
      const O = g.constDims(n.input![1])[0];
      n.input = [n.input![0], n.input![1], g.addConst(`${n.input![1]}_bias`, [O], new Float32Array(O))];
    }
  }
}

function makeHardSigmoid(g: Graph, x: string, out: string, alpha: number, beta: number, name: string): NodeProto {
  return makeNode('HardSigmoid', name, [x], [out], { alpha: float(alpha), beta: float(beta) });
}

function fuseHardSigmoid(g: Graph, log: string[]): void {
  let n = 0;
  // x·Clip(x+3,0,6)·(1/6) (PaddleOCR): move the constant factor next to the Clip first.
  for (const m1 of [...g.nodes]) {
    if (m1.opType !== 'Mul' || constOperand(g, m1) || !g.nodes.includes(m1)) continue;
    const m2 = g.soleConsumer(m1.output![0]);
    if (!m2 || m2.opType !== 'Mul') continue;
    const co = constOperand(g, m2);
    if (!co) continue;
    const clipIn = m1.input!.find((t) => g.producer(t)?.opType === 'Clip' && g.soleConsumer(t) === m1);
    if (!clipIn) continue;
    const other = m1.input!.find((t) => t !== clipIn)!;
    // m1: clip·k → t ; m2: other·t → out
    const t = g.fresh(`${clipIn}_scaled`);
    m1.input = [clipIn, co[1]];
    m1.output = [t];
    m2.input = [other, t];
  }
  for (const clip of [...g.nodes]) {
    if (clip.opType !== 'Clip' || !g.nodes.includes(clip)) continue;
    const bounds = clipBounds(g, clip);
    if (!bounds || bounds[0] !== 0 || !(bounds[1] > 0 && isFinite(bounds[1]))) continue;
    const mul = g.soleConsumer(clip.output![0]);
    if (!mul || mul.opType !== 'Mul') continue;
    const co = constOperand(g, mul);
    const k = co ? g.scalar(co[1]) : null;
    if (k === null || !near(k * bounds[1], 1)) continue;
    let x = clip.input![0];
    let beta = 0;
    const add = g.producer(x);
    const removed: NodeProto[] = [clip, mul];
    if (add && add.opType === 'Add' && g.soleConsumer(x) === clip) {
      const ac = constOperand(g, add);
      const c = ac ? g.scalar(ac[1]) : null;
      if (c !== null) { beta = c * k; x = ac![0]; removed.push(add); }
    }
    const hs = makeHardSigmoid(g, x, mul.output![0], k, beta, mul.name || g.fresh('hardsigmoid'));
    g.nodes[g.nodes.indexOf(mul)] = hs;
    for (const r of removed) if (r !== mul) g.remove(r);
    n++;
  }
  // a Relu after a HardSigmoid does nothing
  for (const relu of [...g.nodes]) {
    if (relu.opType !== 'Relu') continue;
    const p = g.producer(relu.input![0]);
    if (p && (p.opType === 'HardSigmoid' || p.opType === 'Relu') && g.soleConsumer(relu.input![0]) === relu) g.bypass(relu, relu.input![0]);
  }
  if (n) log.push(`${n} h-sigmoid patterns → HardSigmoid`);
}

function fuseHardSwish(g: Graph, log: string[]): void {
  let n = 0;
  for (const hs of [...g.nodes]) {
    if (hs.opType !== 'HardSigmoid' || !g.nodes.includes(hs)) continue;
    const alpha = attrFloat(hs, 'alpha', 0.2), beta = attrFloat(hs, 'beta', 0.5);
    if (!near(alpha, 1 / 6, 1e-4) || !near(beta, 0.5, 1e-4)) continue;
    const x = hs.input![0];
    const mul = g.soleConsumer(hs.output![0]);
    if (!mul || mul.opType !== 'Mul') continue;
    const ins = mul.input!;
    if (!(ins.includes(x) && ins.includes(hs.output![0]))) continue;
    const sw = makeNode('HardSwish', mul.name || g.fresh('hardswish'), [x], [mul.output![0]]);
    g.nodes[g.nodes.indexOf(mul)] = sw;
    g.remove(hs);
    n++;
  }
  if (n) log.push(`${n} h-swish patterns → HardSwish`);
}

/** Mul/Add by constants applied to the graph input (Keras rescaling) → a 1×1 depthwise Conv that the fold pass extends. */
function inputRescaleToConv(g: Graph, log: string[]): void {
  for (const inp of g.inputs) {
    const name = inp.name!;
    const cons = g.consumers(name);
    if (cons.length !== 1 || !['Mul', 'Add'].includes(cons[0].opType!) || !constOperand(g, cons[0])) continue;
    const shape = valueInfoShape(inp, () => '?');
    const C = shape[1];
    if (typeof C !== 'number') continue;
    const w = g.addConst(`${name}_rescale_w`, [C, 1, 1, 1], new Float32Array(C).fill(1));
    const b = g.addConst(`${name}_rescale_b`, [C], new Float32Array(C));
    const out = g.fresh(`${name}_rescaled`);
    g.replaceUses(name, out);
    g.nodes.unshift(makeNode('Conv', g.fresh(`${name}_rescale`), [name, w, b], [out], { group: int(C), kernel_shape: ints([1, 1]) }));
    log.push(`input rescale (Mul/Add on '${name}') → 1×1 depthwise Conv`);
  }
}

function foldConstAffineIntoConv(g: Graph, log: string[]): void {
  let n = 0;
  for (let changed = true; changed;) {
    changed = false;
    for (const op of [...g.nodes]) {
      if (op.opType !== 'Mul' && op.opType !== 'Add') continue;
      const co = constOperand(g, op);
      if (!co) continue;
      const conv = g.producer(co[0]);
      if (!conv || conv.opType !== 'Conv' || g.soleConsumer(co[0]) !== op || !g.isConst(conv.input![1])) continue;
      const O = g.constDims(conv.input![1])[0];
      const v = perChannel(g, co[1], O);
      if (!v) continue;
      if (op.opType === 'Mul') scaleConv(g, conv, v, new Float32Array(O));
      else scaleConv(g, conv, new Float32Array(O).fill(1), v);
      conv.output = [op.output![0]];
      g.remove(op);
      n++;
      changed = true;
    }
  }
  if (n) log.push(`${n} constant Mul/Add folded into Conv`);
}

function flattenShapeOps(g: Graph, log: string[]): void {
  for (const node of [...g.nodes]) {
    const src = g.producer(node.input?.[0] ?? '');
    const afterPool = src && (src.opType === 'GlobalAveragePool' || src.opType === 'GlobalMaxPool');
    if (node.opType === 'Reshape' && !g.isConst(node.input![1])) {
      if (!afterPool) throw new Error(`${describeNode(node)}: Reshape with a computed shape is only supported after a global pool`);
      g.nodes[g.nodes.indexOf(node)] = makeNode('Flatten', node.name || g.fresh('flatten'), [node.input![0]], node.output!, { axis: int(1) });
      log.push(`${describeNode(node)} (computed shape) → Flatten`);
    } else if (node.opType === 'Squeeze' && afterPool) {
      g.nodes[g.nodes.indexOf(node)] = makeNode('Flatten', node.name || g.fresh('flatten'), [node.input![0]], node.output!, { axis: int(1) });
    }
  }
  // Flatten of a Flatten (TF-derived graphs) is one Flatten
  for (const node of [...g.nodes]) {
    if (node.opType !== 'Flatten') continue;
    const p = g.producer(node.input![0]);
    if (p && p.opType === 'Flatten' && attrInt(p, 'axis', 1) === 1 && attrInt(node, 'axis', 1) === 1 && g.soleConsumer(node.input![0]) === node) {
      g.bypass(node, node.input![0]);
    }
  }
}

function transpose2(v: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(v.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = v[r * cols + c];
  return t;
}

function classifierToGemm(g: Graph, log: string[]): void {
  for (const node of [...g.nodes]) {
    if (node.opType === 'MatMul' && g.isConst(node.input![1]) && g.constDims(node.input![1]).length === 2) {
      const [K, N] = g.constDims(node.input![1]);
      const wT = g.addConst(`${node.input![1]}_T`, [N, K], transpose2(g.constF(node.input![1])!, K, N));
      let bias = new Float32Array(N);
      let out = node.output![0];
      const add = g.soleConsumer(out);
      const co = add && add.opType === 'Add' ? constOperand(g, add) : null;
      if (add && co && g.constF(co[1])!.length === N) {
        bias = g.constF(co[1])!.slice();
        out = add.output![0];
        g.remove(add);
      }
      const b = g.addConst(`${node.name || out}_bias`, [N], bias);
      g.nodes[g.nodes.indexOf(node)] = makeNode('Gemm', node.name || g.fresh('gemm'), [node.input![0], wT, b], [out], { transB: int(1) });
      log.push(`${describeNode(node)} (+Add) → Gemm`);
    } else if (node.opType === 'Gemm') {
      if (attrInt(node, 'transA', 0)) throw new Error(`${describeNode(node)}: Gemm with transA = 1 is not supported`);
      const wN = node.input![1];
      if (!g.isConst(wN)) throw new Error(`${describeNode(node)}: Gemm with non-constant weights is not supported`);
      const alpha = attrFloat(node, 'alpha', 1), beta = attrFloat(node, 'beta', 1);
      let [r, c] = g.constDims(wN);
      let w = g.constF(wN)!;
      if (!attrInt(node, 'transB', 0)) { w = transpose2(w, r, c); [r, c] = [c, r]; }
      if (alpha !== 1) w = w.map((x) => x * alpha);
      const N = r;
      let b = node.input![2] ? g.constF(node.input![2]) : new Float32Array(N);
      if (!b) throw new Error(`${describeNode(node)}: Gemm with non-constant bias is not supported`);
      if (b.length === 1) b = new Float32Array(N).fill(b[0]);
      if (b.length !== N) throw new Error(`${describeNode(node)}: Gemm bias of ${b.length} values for ${N} outputs is not supported`);
      if (beta !== 1) b = b.map((x) => x * beta);
      const changed = w !== g.constF(wN) || !node.input![2] || b !== g.constF(node.input![2]);
      if (changed) {
        node.input = [node.input![0], g.addConst(`${wN}_gemm`, [N, c], w), g.addConst(`${node.name || node.output![0]}_bias`, [N], b)];
      }
      node.attribute = [makeAttribute('transB', int(1))];
    }
  }
}

