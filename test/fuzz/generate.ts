// A deterministic generator of malformed ONNX models for the fuzz suite (test/fuzz/run.ts): the same seed and
// seed models give the same cases on every machine. Each case is one seed model damaged in one or more ways:
//   bytes      truncation, byte flips, random bytes spliced in, protobuf field garbage (a random tag and value)
//   dtype      an initializer's data type or the input's element type changed (also to values ONNX does not define)
//   dims       huge, negative or zero dims on an initializer or the graph input (data left as it was)
//   scale      a scale made inf, NaN, 0, negative, denormal or 1e38
//   zeroPoint  a zero point out of its type's range, of another type, or of another length
//   shape      an initializer reshaped with the same number of values, or given one value more or fewer
//   missing    an initializer, a node, a graph input or output removed
//   cycle      a node reading its own output or a later node's output
//   op         an op type or domain changed (to supported, unsupported or garbage names)
//   attr       an attribute made huge, negative, zero, of another type, or removed
//   names      node inputs / outputs emptied, duplicated or renamed
//   opset      the opset version or IR version made 0, 1, huge or negative
import { onnx, encodeModel } from '../../lib/onnx/proto';
import { Rng } from '../../lib/builder/rng';

export interface FuzzCase {
  id: number;
  /** the seed model's name */
  seed: string;
  /** what was done to it, e.g. ['scale: w_s[1] = Infinity'] */
  mutations: string[];
  bytes: Uint8Array;
}

export interface SeedModel {
  name: string;
  bytes: Uint8Array;
}

type Mutator = (m: onnx.ModelProto, r: Picker) => string | null;

/** A thin wrapper over Rng with the picks the mutators need. */
class Picker {
  constructor(readonly rng: Rng) {}
  int(n: number): number { return Math.floor(this.rng.next() * n); }
  range(lo: number, hi: number): number { return lo + this.int(hi - lo + 1); }
  chance(p: number): boolean { return this.rng.next() < p; }
  one<T>(a: readonly T[]): T { return a[this.int(a.length)]; }
}

const DT = onnx.TensorProto.DataType;
const HUGE_DIMS = [0, -1, -7, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 3, 2 ** 40, 1e6, 65536, 100000, 2 ** 53];
const BAD_FLOATS = [Infinity, -Infinity, NaN, 0, -0, -0.5, 1e-45, 1e-39, 3.4e38, 1e30, -1e-3];
const OP_NAMES = [
  'Conv', 'Relu', 'Add', 'Mul', 'QuantizeLinear', 'DequantizeLinear', 'GlobalAveragePool', 'MaxPool', 'Gemm',
  'MatMul', 'Reshape', 'Flatten', 'Softmax', 'Clip', 'HardSwish', 'Sigmoid', 'Identity', 'Pad', 'Transpose',
  'Concat', 'Slice', 'Gather', 'Shape', 'Constant', 'QLinearConv', 'QLinearAdd', 'QLinearMatMul', 'LSTM', 'If',
  'Loop', 'Scan', 'Resize', 'BatchNormalization', 'ConvTranspose', 'Einsum', 'TopK', 'NonMaxSuppression', '',
  'conv', '\u0000\u00ff', 'x'.repeat(300), 'ReduceMean', 'Split', 'Where', 'Expand', 'Tile', 'Cast', 'Squeeze',
];
const DOMAINS = ['', 'ai.onnx', 'com.microsoft', 'ai.onnx.ml', 'org.pytorch.aten', 'garbage', '\u00e9'];

function initializers(m: onnx.ModelProto): onnx.ITensorProto[] { return m.graph?.initializer ?? []; }
function nodes(m: onnx.ModelProto): onnx.INodeProto[] { return m.graph?.node ?? []; }

/** An initializer whose name suggests `kind` (scale '_s', zero point '_z'), or any when none does. */
function pickTensor(m: onnx.ModelProto, r: Picker, test: (t: onnx.ITensorProto) => boolean): onnx.ITensorProto | null {
  const all = initializers(m);
  const some = all.filter(test);
  if (some.length) return r.one(some);
  return all.length ? r.one(all) : null;
}

/** Tensors that a node uses as scale / zero point (input 1 / 2 of Q and DQ, and the QLinear* positions). */
function roleNames(m: onnx.ModelProto, role: 'scale' | 'zp'): Set<string> {
  const out = new Set<string>();
  const pos: Record<string, { scale: number[]; zp: number[] }> = {
    QuantizeLinear: { scale: [1], zp: [2] }, DequantizeLinear: { scale: [1], zp: [2] },
    QLinearConv: { scale: [1, 4, 6], zp: [2, 5, 7] }, QLinearMatMul: { scale: [1, 4, 6], zp: [2, 5, 7] },
    QLinearAdd: { scale: [1, 4, 6], zp: [2, 5, 7] }, QLinearMul: { scale: [1, 4, 6], zp: [2, 5, 7] },
    QLinearGlobalAveragePool: { scale: [1, 3], zp: [2, 4] }, QLinearSigmoid: { scale: [1, 3], zp: [2, 4] },
  };
  for (const n of nodes(m)) {
    const p = pos[n.opType ?? ''];
    if (!p) continue;
    for (const i of p[role]) if (n.input?.[i]) out.add(n.input[i]);
  }
  return out;
}

function elementCount(t: onnx.ITensorProto): number {
  return (t.dims ?? []).reduce<number>((a, d) => a * Number(d), 1);
}

/** Sets a tensor's values (as float32 / int), in raw_data of its own type. */
function setValues(t: onnx.ITensorProto, values: number[]): void {
  const dt = t.dataType ?? DT.FLOAT;
  let raw: Uint8Array;
  const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
  if (dt === DT.FLOAT) raw = bytesOf(Float32Array.from(values));
  else if (dt === DT.DOUBLE) raw = bytesOf(Float64Array.from(values));
  else if (dt === DT.INT8) raw = bytesOf(Int8Array.from(values));
  else if (dt === DT.UINT8) raw = bytesOf(Uint8Array.from(values));
  else if (dt === DT.INT32) raw = bytesOf(Int32Array.from(values));
  else if (dt === DT.INT64) raw = bytesOf(BigInt64Array.from(values.map((v) => BigInt(Math.trunc(Number.isFinite(v) ? v : 0)))));
  else raw = bytesOf(Float32Array.from(values));
  t.rawData = raw;
  t.floatData = []; t.int32Data = []; t.int64Data = []; t.doubleData = [];
}

function readValues(t: onnx.ITensorProto): number[] {
  const raw = t.rawData;
  const dt = t.dataType ?? DT.FLOAT;
  if (raw && raw.length) {
    const b = new Uint8Array(raw).buffer;
    const view = dt === DT.FLOAT ? new Float32Array(b, 0, raw.length >> 2)
      : dt === DT.INT8 ? new Int8Array(b) : dt === DT.UINT8 ? new Uint8Array(b)
        : dt === DT.INT32 ? new Int32Array(b, 0, raw.length >> 2) : dt === DT.DOUBLE ? new Float64Array(b, 0, raw.length >> 3)
          : dt === DT.INT64 ? Array.from(new BigInt64Array(b, 0, raw.length >> 3), Number) : new Uint8Array(b);
    return Array.from(view as ArrayLike<number>);
  }
  return [...(t.floatData ?? []), ...(t.int32Data ?? []), ...(t.int64Data ?? []).map(Number), ...(t.doubleData ?? [])];
}

const mutators: Record<string, Mutator> = {
  dtype(m, r) {
    if (r.chance(0.2)) {
      const inp = m.graph?.input?.[0];
      const tt = inp?.type?.tensorType;
      if (!tt) return null;
      tt.elemType = r.one([DT.UINT8, DT.INT8, DT.DOUBLE, DT.INT64, DT.FLOAT16, DT.STRING, 0, 17, 99, -3]);
      return `dtype: input '${inp!.name}' elem_type = ${tt.elemType}`;
    }
    const t = pickTensor(m, r, () => true);
    if (!t) return null;
    t.dataType = r.one([DT.FLOAT, DT.UINT8, DT.INT8, DT.INT32, DT.INT64, DT.DOUBLE, DT.FLOAT16, DT.BOOL, DT.STRING, DT.UINT16, DT.BFLOAT16, 0, 30, 1000, -1]);
    return `dtype: '${t.name}' data_type = ${t.dataType}`;
  },
  dims(m, r) {
    if (r.chance(0.3)) {
      const inp = m.graph?.input?.[0];
      const dim = inp?.type?.tensorType?.shape?.dim;
      if (!dim?.length) return null;
      const i = r.int(dim.length);
      const v = r.one(HUGE_DIMS);
      dim[i] = { dimValue: v };
      return `dims: input '${inp!.name}' dim ${i} = ${v}`;
    }
    const t = pickTensor(m, r, (x) => (x.dims ?? []).length > 0);
    if (!t) return null;
    const d = (t.dims ?? []).map(Number);
    if (r.chance(0.3)) d.push(r.one(HUGE_DIMS));
    else d[r.int(Math.max(1, d.length))] = r.one(HUGE_DIMS);
    t.dims = d;
    return `dims: '${t.name}' dims = [${d}]`;
  },
  scale(m, r) {
    const names = roleNames(m, 'scale');
    const t = pickTensor(m, r, (x) => names.has(x.name ?? ''));
    if (!t) return null;
    const v = readValues(t);
    if (!v.length) return null;
    const i = r.int(v.length);
    v[i] = r.one(BAD_FLOATS);
    if ((t.dataType ?? DT.FLOAT) !== DT.FLOAT && r.chance(0.5)) t.dataType = DT.FLOAT;
    setValues(t, v);
    return `scale: '${t.name}'[${i}] = ${v[i]}`;
  },
  zeroPoint(m, r) {
    const names = roleNames(m, 'zp');
    const t = pickTensor(m, r, (x) => names.has(x.name ?? ''));
    if (!t) return null;
    const v = readValues(t);
    const what = r.int(4);
    if (what === 0 && v.length) {
      // out of range for its type: written as int32 so the bytes can hold it
      t.dataType = r.one([DT.INT32, DT.INT64, DT.INT16, DT.FLOAT]);
      v[r.int(v.length)] = r.one([128, 255, 256, -129, -1000, 2 ** 31 - 1, 1e9]);
      setValues(t, v);
      return `zeroPoint: '${t.name}' = [${v.slice(0, 4)}] as ${t.dataType}`;
    }
    if (what === 1) {
      v.push(r.range(-128, 127));
      t.dims = [v.length];
      setValues(t, v);
      return `zeroPoint: '${t.name}' one value more (${v.length})`;
    }
    if (what === 2) {
      t.dataType = r.one([DT.UINT8, DT.INT8]);
      setValues(t, v.map(() => r.range(0, 255)));
      return `zeroPoint: '${t.name}' type ${t.dataType}, values changed`;
    }
    t.int32Data = v.map(() => r.one([300, -300, 70000])); t.rawData = new Uint8Array(0);
    return `zeroPoint: '${t.name}' int32_data out of range`;
  },
  shape(m, r) {
    const t = pickTensor(m, r, (x) => elementCount(x) > 1);
    if (!t) return null;
    const n = elementCount(t);
    const v = readValues(t);
    const what = r.int(3);
    if (what === 0) {
      // same count, other shape
      const d = [n];
      if (r.chance(0.5)) { const f = [2, 3, 4, 9].find((k) => n % k === 0); if (f) d.splice(0, 1, f, n / f); }
      if (r.chance(0.5)) d.reverse();
      if (r.chance(0.3)) d.unshift(1);
      t.dims = d;
      return `shape: '${t.name}' dims [${d}] (same ${n} values)`;
    }
    if (what === 1) { v.push(0); setValues(t, v); return `shape: '${t.name}' one value more than its dims`; }
    v.pop(); setValues(t, v);
    return `shape: '${t.name}' one value fewer than its dims`;
  },
  missing(m, r) {
    const g = m.graph!;
    const what = r.int(5);
    if (what === 0 && g.initializer?.length) { const [t] = g.initializer.splice(r.int(g.initializer.length), 1); return `missing: initializer '${t.name}'`; }
    if (what === 1 && g.node?.length) { const [n] = g.node.splice(r.int(g.node.length), 1); return `missing: node '${n.name}' (${n.opType})`; }
    if (what === 2 && g.input?.length) { const [i] = g.input.splice(0, 1); return `missing: graph input '${i.name}'`; }
    if (what === 3 && g.output?.length) { const [o] = g.output.splice(0, 1); return `missing: graph output '${o.name}'`; }
    if (g.node?.length) {
      const n = r.one(g.node);
      if (!n.input?.length) return null;
      const i = r.int(n.input.length);
      n.input[i] = r.one(['', 'no_such_tensor', n.input[i] + '_x']);
      return `missing: node '${n.name}' input ${i} = '${n.input[i]}'`;
    }
    return null;
  },
  cycle(m, r) {
    const ns = nodes(m);
    if (ns.length < 2) return null;
    const i = r.int(ns.length);
    const n = ns[i];
    const later = r.chance(0.4) ? n : ns[i + r.int(ns.length - i)];
    const src = later.output?.[0];
    if (!src || !n.input?.length) return null;
    const k = r.int(n.input.length);
    n.input[k] = src;
    return `cycle: node '${n.name}' input ${k} reads '${src}' of node '${later.name}'`;
  },
  op(m, r) {
    const ns = nodes(m);
    if (!ns.length) return null;
    const n = r.one(ns);
    if (r.chance(0.2)) { n.domain = r.one(DOMAINS); return `op: node '${n.name}' domain = '${n.domain}'`; }
    const was = n.opType;
    n.opType = r.one(OP_NAMES);
    return `op: node '${n.name}' ${was} -> '${n.opType.slice(0, 20)}'`;
  },
  attr(m, r) {
    const ns = nodes(m).filter((n) => n.attribute?.length);
    if (ns.length && r.chance(0.8)) {
      const n = r.one(ns);
      const a = r.one(n.attribute!);
      const what = r.int(5);
      if (what === 0) { n.attribute = n.attribute!.filter((x) => x !== a); return `attr: node '${n.name}' ${a.name} removed`; }
      if (what === 1) { a.ints = (a.ints?.length ? a.ints : [1, 1]).map(() => r.one(HUGE_DIMS)); a.type = onnx.AttributeProto.AttributeType.INTS; return `attr: node '${n.name}' ${a.name} = [${a.ints}]`; }
      if (what === 2) { a.i = r.one(HUGE_DIMS); a.type = onnx.AttributeProto.AttributeType.INT; a.ints = []; return `attr: node '${n.name}' ${a.name} = ${a.i}`; }
      if (what === 3) { a.f = r.one(BAD_FLOATS); a.type = onnx.AttributeProto.AttributeType.FLOAT; return `attr: node '${n.name}' ${a.name} = ${a.f}`; }
      a.ints = [r.range(-3, 5)]; a.type = onnx.AttributeProto.AttributeType.INTS;
      return `attr: node '${n.name}' ${a.name} = [${a.ints}] (one value)`;
    }
    const all = nodes(m);
    if (!all.length) return null;
    const n = r.one(all);
    const name = r.one(['group', 'strides', 'pads', 'dilations', 'kernel_shape', 'axis', 'transB', 'auto_pad', 'perm', 'ceil_mode', 'alpha', 'channels_last']);
    const value = r.one(HUGE_DIMS);
    n.attribute = [...(n.attribute ?? []), name === 'auto_pad'
      ? { name, s: new TextEncoder().encode(r.one(['SAME_UPPER', 'SAME_LOWER', 'VALID', 'BOGUS'])), type: onnx.AttributeProto.AttributeType.STRING }
      : r.chance(0.5) ? { name, i: value, type: onnx.AttributeProto.AttributeType.INT } : { name, ints: [value, value, value, value], type: onnx.AttributeProto.AttributeType.INTS }];
    return `attr: node '${n.name}' + ${name} = ${value}`;
  },
  names(m, r) {
    const ns = nodes(m);
    if (ns.length < 2) return null;
    const a = r.one(ns), b = r.one(ns);
    const what = r.int(3);
    if (what === 0 && a.output?.length && b.output?.length) { a.output[0] = b.output[0]; return `names: node '${a.name}' writes '${b.output[0]}' as node '${b.name}' does`; }
    if (what === 1 && a.output?.length) { a.output[0] = ''; return `names: node '${a.name}' output emptied`; }
    const g = m.graph!;
    if (g.output?.length) { g.output[0].name = r.one([a.input?.[0] ?? '', '', 'nothing']); return `names: graph output renamed '${g.output[0].name}'`; }
    return null;
  },
  opset(m, r) {
    if (r.chance(0.3)) { m.irVersion = r.one([0, 1, 2, 99, -1]); return `opset: ir_version ${m.irVersion}`; }
    const v = r.one([0, 1, 6, 9, 10, 25, 1000, -5]);
    m.opsetImport = [{ domain: '', version: v }];
    return `opset: default domain version ${v}`;
  },
};

/** Byte-level damage to encoded bytes. */
function byteMutation(bytes: Uint8Array, r: Picker): { bytes: Uint8Array; what: string } {
  const b = new Uint8Array(bytes); // a copy (Buffer.slice would be a view of the seed)
  const what = r.int(5);
  if (what === 0) { const n = r.int(b.length); return { bytes: b.slice(0, n), what: `bytes: truncated to ${n} of ${b.length}` }; }
  if (what === 1) {
    const k = r.range(1, 16);
    for (let i = 0; i < k; i++) b[r.int(b.length)] ^= 1 << r.int(8);
    return { bytes: b, what: `bytes: ${k} bit flips` };
  }
  if (what === 2) {
    const k = r.range(1, 64), at = r.int(b.length);
    const junk = Uint8Array.from({ length: k }, () => r.int(256));
    const out = new Uint8Array(b.length + k);
    out.set(b.subarray(0, at)); out.set(junk, at); out.set(b.subarray(at), at + k);
    return { bytes: out, what: `bytes: ${k} random bytes at ${at}` };
  }
  if (what === 3) {
    // a protobuf field with a random tag and wire type, at the top level or spliced inside
    const field = r.range(1, 40), wire = r.one([0, 1, 2, 5, 3, 4, 6, 7]);
    const tag = [(field << 3) | wire];
    const body = wire === 0 ? [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
      : wire === 2 ? [r.one([0x7f, 0xff, 0x05]), ...Array.from({ length: r.int(8) }, () => r.int(256))]
        : Array.from({ length: r.one([1, 4, 8]) }, () => r.int(256));
    const at = r.chance(0.5) ? b.length : r.int(b.length);
    const out = new Uint8Array(b.length + tag.length + body.length);
    out.set(b.subarray(0, at)); out.set([...tag, ...body], at); out.set(b.subarray(at), at + tag.length + body.length);
    return { bytes: out, what: `bytes: field ${field} wire type ${wire} at ${at}` };
  }
  const len = r.range(1, 4096);
  return { bytes: Uint8Array.from({ length: len }, () => r.int(256)), what: `bytes: ${len} random bytes (no model)` };
}

const STRUCTURAL = Object.keys(mutators);

/** The fuzz cases for `seed`: `count` of them, ids from `first`, over the seed models in turn. */
export function* generateCases(seeds: SeedModel[], seed: number, count: number, first = 0): Generator<FuzzCase> {
  if (!seeds.length) throw new Error('generateCases needs at least one seed model');
  for (let id = first; id < first + count; id++) {
    const r = new Picker(new Rng((seed * 1000003 + id) | 0));
    const s = seeds[id % seeds.length];
    const mutations: string[] = [];
    let bytes: Uint8Array;
    if (r.chance(0.25)) {
      const b = byteMutation(s.bytes, r);
      bytes = b.bytes;
      mutations.push(b.what);
    } else {
      const m = onnx.ModelProto.decode(s.bytes);
      const k = r.chance(0.7) ? 1 : r.range(2, 4);
      for (let tries = 0; mutations.length < k && tries < 20; tries++) {
        const name = r.one(STRUCTURAL);
        const what = mutators[name](m, r);
        if (what) mutations.push(what);
      }
      bytes = encodeModel(m);
      if (r.chance(0.1)) {
        const b = byteMutation(bytes, r);
        bytes = b.bytes;
        mutations.push(b.what);
      }
    }
    yield { id, seed: s.name, mutations, bytes };
  }
}
