// The compiler's shape rules: a plan tensor's [C, H, W] from ONNX dims, Conv / pool geometry (pads, auto_pad,
// strides, dilations), MatMul and broadcast dims, Flatten / Reshape / Squeeze / Unsqueeze, and which reshapes
// keep the NHWC byte order.
import { NodeProto, attrInt, attrInts, attrString } from '../onnx/proto';
import { PlanOp } from '../plan';
import type { CompileState } from './state';
import { Dims } from './values';

/** A plan tensor's [c, h, w] from ONNX dims at batch 1 ([1, C], [1, C, H, W], [1, C, W], [C]). */
export function chw(dims: Dims, bad: () => never): [number, number, number] {
  if (dims.length === 2 && dims[0] === 1) return [dims[1], 1, 1];
  if (dims.length === 4 && dims[0] === 1) return [dims[1], dims[2], dims[3]];
  if (dims.length === 3 && dims[0] === 1) return [dims[1], 1, dims[2]];
  if (dims.length === 1) return [dims[0], 1, 1];
  return bad();
}

/** Same bytes in NHWC order: either equal [C, H, W] or only channels. */
export function layoutPreserving(a: Dims, b: Dims): boolean {
  const spatial = (d: Dims) => d.slice(2).reduce((x, y) => x * y, 1);
  if (spatial(a) === 1 && spatial(b) === 1) return true;
  const strip = (d: Dims) => d.filter((v, i) => i === 0 || v !== 1 || false);
  return strip(a).join() === strip(b).join();
}

export function broadcastDims(a: Dims, b: Dims): Dims | null {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1, y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out.push(Math.max(x, y));
  }
  return out;
}

export function matmulDims(s: CompileState, a: Dims, b: Dims): Dims {
  if (b.length !== 2) s.fail(`weights have shape [${b}]; expected a 2-D [K, N] matrix`);
  if (a[a.length - 1] !== b[0]) s.fail(`inner dimensions differ: [${a}] x [${b}]`);
  return [...a.slice(0, -1), b[1]];
}

export function convDims(s: CompileState, node: NodeProto, x: Dims, w: Dims): Dims {
  if (x.length !== 4 || w.length !== 4) s.fail(`only 2-D convolutions are supported (input [${x}], weights [${w}])`);
  const c = convShape(s, node, x, w);
  return [1, c.outC, c.outH, c.outW];
}

const INT32_MAX = 2 ** 31 - 1;

/** An ints attribute of `dflt.length` integers from `min` to 2^31 - 1 (the plan's int32 fields). */
function intsAttr(s: CompileState, node: NodeProto, name: string, dflt: number[], min: number): number[] {
  const v = attrInts(node, name, dflt);
  if (v.length !== dflt.length || !v.every((x) => Number.isSafeInteger(x) && x >= min && x <= INT32_MAX)) {
    s.fail(`${name} [${v}] must be ${dflt.length} integers from ${min} to 2^31 - 1`);
  }
  return v;
}

/** The geometry of a Conv (or a pool, with weights dims [C, 1, kh, kw]): pads resolved, auto_pad included. */
export function convShape(s: CompileState, node: NodeProto, x: Dims, w: Dims): PlanOp['shape'] {
  const [kh, kw] = [w[2], w[3]];
  const ks = attrInts(node, 'kernel_shape', [kh, kw]);
  if (ks[0] !== kh || ks[1] !== kw) s.fail(`kernel_shape ${ks} does not match the weights [${w}]`);
  const [sh, sw] = intsAttr(s, node, 'strides', [1, 1], 1);
  const [dh, dw] = intsAttr(s, node, 'dilations', [1, 1], 1);
  let [pt, pl, pb, pr] = intsAttr(s, node, 'pads', [0, 0, 0, 0], 0);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  const [H, W] = [x[2], x[3]];
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const padFor = (inp: number, k: number, stride: number, d: number) => {
      const out = Math.ceil(inp / stride);
      return Math.max(0, (out - 1) * stride + (k - 1) * d + 1 - inp);
    };
    const ph = padFor(H, kh, sh, dh), pw = padFor(W, kw, sw, dw);
    const small = (p: number) => (autoPad === 'SAME_UPPER' ? Math.floor(p / 2) : Math.ceil(p / 2));
    pt = small(ph); pb = ph - pt; pl = small(pw); pr = pw - pl;
  } else if (autoPad === 'VALID') {
    pt = pl = pb = pr = 0;
  }
  if (![kh, kw].every((k) => Number.isSafeInteger(k) && k >= 1 && k <= INT32_MAX)) s.fail(`kernel ${kh}x${kw}: its sides must be integers from 1 to 2^31 - 1`);
  const outH = Math.floor((H + pt + pb - ((kh - 1) * dh + 1)) / sh) + 1;
  const outW = Math.floor((W + pl + pr - ((kw - 1) * dw + 1)) / sw) + 1;
  if (!(outH > 0 && outW > 0)) s.fail(`output would be empty (${outH}x${outW})`);
  return {
    inH: H, inW: W, inC: x[1], outH, outW, outC: w[0], kernelH: kh, kernelW: kw, strideH: sh, strideW: sw,
    dilationH: dh, dilationW: dw, padTop: pt, padLeft: pl, padBottom: pb, padRight: pr,
  };
}

/** The dims after a Flatten / Reshape / Squeeze / Unsqueeze node (its shape / axes inputs must be constants). */
export function reshapeDims(s: CompileState, node: NodeProto, d: Dims): Dims {
  const inp = node.input ?? [];
  const size = d.reduce((a, b) => a * b, 1);
  switch (node.opType) {
    case 'Flatten': {
      let axis = attrInt(node, 'axis', 1);
      if (axis < 0) axis += d.length;
      const lead = d.slice(0, axis).reduce((a, b) => a * b, 1);
      return [lead, size / lead];
    }
    case 'Reshape': {
      const target = Array.from(s.constOf(inp[1], 'shape').data as ArrayLike<number>);
      const out = target.map((t, i) => (t === 0 && attrInt(node, 'allowzero', 0) === 0 ? d[i] : t));
      const known = out.filter((t) => t !== -1).reduce((a, b) => a * b, 1);
      return out.map((t) => (t === -1 ? size / known : t));
    }
    case 'Squeeze': {
      let axes = attrInts(node, 'axes', []);
      if (inp[1]) axes = Array.from(s.constOf(inp[1], 'axes').data as ArrayLike<number>);
      axes = axes.map((a) => (a < 0 ? a + d.length : a));
      return d.filter((v, i) => (axes.length ? !axes.includes(i) : v !== 1));
    }
    default: { // Unsqueeze
      let axes = attrInts(node, 'axes', []);
      if (inp[1]) axes = Array.from(s.constOf(inp[1], 'axes').data as ArrayLike<number>);
      const r = d.length + axes.length;
      axes = axes.map((a) => (a < 0 ? a + r : a)).sort((a, b) => a - b);
      const out = d.slice();
      for (const a of axes) out.splice(a, 0, 1);
      return out;
    }
  }
}
