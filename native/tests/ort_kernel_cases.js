#!/usr/bin/env node
// Runs tiny int8 ONNX models through onnxruntime-node (QLinearAdd, QLinearMul,
// QLinearGlobalAveragePool, DQ -> unary -> Q, QuantizeLinear, QDQ pointwise and
// depthwise Conv) and writes inputs and ONNX Runtime's outputs as text to the
// file named by the first argument, for ort_parity.cc to compare with mnq's
// kernels. Exits 77 (ctest: skipped) when onnxruntime-node is not installed,
// 1 under CI=true (there it is required).
'use strict';
const root = require('path').resolve(__dirname, '..', '..');
const req = (m) => require(require.resolve(m, { paths: [root] }));
let onnx, ort;
try {
  ({ onnx } = require(require('path').join(root, 'vendor', 'onnx-proto', 'onnx.js')));
  ort = req('onnxruntime-node');
} catch (e) {
  const why = `onnxruntime-node / protobufjs not installed (${e.message.split('\n')[0]}): run npm install`;
  if (process.env.CI === 'true' || process.env.CI === '1') {
    console.error(`FAIL: ${why} (CI=true: required)`);
    process.exit(1);
  }
  console.log(`SKIP: ${why}`);
  process.exit(77);
}
if (process.arch !== 'x64' && process.arch !== 'ia32') {
  // mnq's contract follows ORT's x86 kernels (docs/quantization.md); ORT's arm64 QLinearAdd is fixed point
  const why = `ONNX Runtime on ${process.arch} is not the reference (its QLinearAdd is fixed point there): run this test on x86-64`;
  if (process.env.CI === 'true' || process.env.CI === '1') {
    console.error(`FAIL: ${why} (CI=true: required)`);
    process.exit(1);
  }
  console.log(`SKIP: ${why}`);
  process.exit(77);
}
const fs = require('fs');
const T = onnx.TensorProto.DataType;

function tensor(name, type, dims, vals) {
  const t = { name, dataType: type, dims };
  if (type === T.FLOAT) t.floatData = vals; else t.int32Data = vals;
  return t;
}
function vi(name, type, dims) {
  return { name, type: { tensorType: { elemType: type, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } };
}
function model(nodes, inits, inputs, outputs, opset = 17) {
  const m = onnx.ModelProto.create({
    irVersion: 8, producerName: 'x',
    opsetImport: [{ domain: '', version: opset }, { domain: 'com.microsoft', version: 1 }],
    graph: { name: 'g', node: nodes, initializer: inits, input: inputs, output: outputs },
  });
  return onnx.ModelProto.encode(m).finish();
}

// One case per block of lines, read by ort_parity.cc.
function flatten(c) {
  const L = [];
  const fnid = { HardSwish: 4, HardSigmoid: 3, Sigmoid: 5, Tanh: 6, Relu: 1, LeakyRelu: 7 };
  for (const k of c) {
    const p = k.p;
    // uint8 cases are written as int8 (value - 128, zero points - 128) with offset 128, as mnq stores them
    if (k.kind === 'add' || k.kind === 'mul') L.push(`${k.kind} ${p.sa} ${p.za} ${p.sb} ${p.zb} ${p.sc} ${p.zc} ${k.offset ?? 0} ${k.y.length}`, k.a.join(' '), k.b.join(' '), k.y.join(' '));
    if (k.kind === 'lut') L.push(`lut ${fnid[k.fn]} ${p.xs} ${p.xz} ${p.ys} ${p.yz} ${k.fn}`, k.y.join(' '));
    if (k.kind === 'quantize') L.push(`quantize ${p.s} ${p.z} ${k.y.length}`, k.x.join(' '), k.y.join(' '));
    if (k.kind === 'gap') L.push(`gap ${p.xs} ${p.xz} ${p.ys} ${p.yz} ${p.hw} ${p.c}`, k.x.join(' '), k.y.join(' '));
    if (k.kind === 'conv') L.push(`conv ${p.xs} ${p.xz} ${p.ys} ${p.yz} ${p.ic} ${p.oc} ${p.h} ${p.w} ${p.k} ${p.dw}`, p.ws.join(' '), p.wt.join(' '), p.b.join(' '), k.x.join(' '), k.y.join(' '));
  }
  return L.join('\n') + '\n';
}
let seed = 7;
function rnd() { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x80000000; }
function logu(lo, hi) { return Math.fround(Math.exp(Math.log(lo) + rnd() * (Math.log(hi) - Math.log(lo)))); }
function zp() { return Math.floor(rnd() * 256) - 128; }
const all = new Int8Array(256); for (let i = 0; i < 256; i++) all[i] = i - 128;
const out = [];
async function run(bytes, feeds) {
  const s = await ort.InferenceSession.create(bytes);
  const r = await s.run(feeds);
  return r[s.outputNames[0]].data;
}
// ORT's com.microsoft QLinearAdd / QLinearMul on all 65536 input pairs, in int8 or uint8 (zero points given
// in int8 terms: value - 128 for uint8); the case holds int8 data (uint8 - 128) and offset 128 for uint8.
async function binaryCase(op, kind, p, u8) {
  const TY = u8 ? T.UINT8 : T.INT8, shift = u8 ? 128 : 0;
  const A = new Int8Array(65536), B = new Int8Array(65536);
  for (let i = 0; i < 65536; i++) { A[i] = (i & 255) - 128; B[i] = (i >> 8) - 128; }
  const feed = (x) => (u8 ? new ort.Tensor('uint8', Uint8Array.from(x, (v) => v + 128), [65536]) : new ort.Tensor('int8', x, [65536]));
  const bytes = model([{ opType: op, domain: 'com.microsoft', input: ['a', 'sa', 'za', 'b', 'sb', 'zb', 'sc', 'zc'], output: ['c'] }],
    [tensor('sa', T.FLOAT, [], [p.sa]), tensor('za', TY, [], [p.za + shift]), tensor('sb', T.FLOAT, [], [p.sb]), tensor('zb', TY, [], [p.zb + shift]), tensor('sc', T.FLOAT, [], [p.sc]), tensor('zc', TY, [], [p.zc + shift])],
    [vi('a', TY, [65536]), vi('b', TY, [65536])], [vi('c', TY, [65536])]);
  const c = await run(bytes, { a: feed(A), b: feed(B) });
  return { kind, p, offset: shift, a: Array.from(A), b: Array.from(B), y: Array.from(c, (v) => v - shift) };
}

(async () => {
  // (a) QLinearAdd, all 65536 pairs (int8; uint8 cases under (d))
  for (let t = 0; t < 30; t++) {
    const p = { sa: logu(0.005, 0.2), za: zp(), sb: logu(0.005, 0.2), zb: zp(), sc: logu(0.01, 0.3), zc: zp() };
    out.push(await binaryCase('QLinearAdd', 'add', p, false));
  }
  // (b) DQ -> f -> Q for unary functions (QDQ form)
  const fns = [['HardSwish', []], ['HardSigmoid', [{ name: 'alpha', type: 1, f: 0.2 }, { name: 'beta', type: 1, f: 0.5 }]], ['Sigmoid', []], ['Tanh', []], ['Relu', []], ['LeakyRelu', [{ name: 'alpha', type: 1, f: 0.1 }]]];
  for (const [op, attrs] of fns) {
    for (let t = 0; t < 4; t++) {
      const p = { xs: logu(0.005, 0.1), xz: zp(), ys: logu(0.005, 0.1), yz: zp() };
      const bytes = model([
        { opType: 'DequantizeLinear', input: ['x', 'xs', 'xz'], output: ['xf'] },
        { opType: op, input: ['xf'], output: ['yf'], attribute: attrs },
        { opType: 'QuantizeLinear', input: ['yf', 'ys', 'yz'], output: ['y'] }],
        [tensor('xs', T.FLOAT, [], [p.xs]), tensor('xz', T.INT8, [], [p.xz]), tensor('ys', T.FLOAT, [], [p.ys]), tensor('yz', T.INT8, [], [p.yz])],
        [vi('x', T.INT8, [256])], [vi('y', T.INT8, [256])]);
      const y = await run(bytes, { x: new ort.Tensor('int8', all, [256]) });
      out.push({ kind: 'lut', fn: op, p, y: Array.from(y) });
    }
  }
  // (c) QuantizeLinear of floats
  {
    const n = 4096; const X = new Float32Array(n);
    const s = logu(0.001, 0.1), z = zp();
    for (let i = 0; i < n; i++) X[i] = i % 7 === 0 ? (Math.floor(rnd() * 600) - 300 + 0.5) * s : (rnd() * 2 - 1) * 200 * s;
    X[0] = NaN; X[1] = Infinity; X[2] = -Infinity;
    const bytes = model([{ opType: 'QuantizeLinear', input: ['x', 's', 'z'], output: ['y'] }],
      [tensor('s', T.FLOAT, [], [s]), tensor('z', T.INT8, [], [z])], [vi('x', T.FLOAT, [n])], [vi('y', T.INT8, [n])]);
    const y = await run(bytes, { x: new ort.Tensor('float32', X, [n]) });
    out.push({ kind: 'quantize', p: { s, z }, x: Array.from(X).map((v) => (Number.isNaN(v) ? 'nan' : v === Infinity ? 'inf' : v === -Infinity ? '-inf' : v)), y: Array.from(y) });
  }
  // (d) QLinearMul (int8 and uint8) and QLinearGlobalAveragePool. Besides random scales, two parameter sets
  // where adding the output zero point before rounding (ORT) and after it differ: an SE Mul of a calibrated
  // PaddleOCR model (int8), and one where the uint8 domain decides (see test_reference.cc).
  const mulSets = [
    { sa: 0.023005736991763115, za: -112, sb: 0.002711337525397539, zb: -128, sc: 0.011986508034169674, zc: -107, u8: false },
    { sa: 0.018046000972390175, za: 123, sb: 0.0013821616303175688, zb: -119, sc: 0.0298310536891222, zc: 36, u8: true },
  ];
  for (let t = 0; t < 6; t++) mulSets.push({ sa: logu(0.005, 0.2), za: zp(), sb: logu(0.001, 0.01), zb: zp(), sc: logu(0.005, 0.2), zc: zp(), u8: t >= 3 });
  for (const { u8, ...p } of mulSets) out.push(await binaryCase('QLinearMul', 'mul', p, u8));
  for (let t = 0; t < 3; t++) {
    const p = { sa: logu(0.005, 0.2), za: zp(), sb: logu(0.005, 0.2), zb: zp(), sc: logu(0.01, 0.3), zc: zp() };
    out.push(await binaryCase('QLinearAdd', 'add', p, true));
  }
  for (let t = 0; t < 3; t++) {
    const C = 37, HW = [49, 196, 7][t];
    const p = { xs: logu(0.01, 0.2), xz: zp(), ys: logu(0.005, 0.2), yz: zp(), hw: HW, c: C };
    const X = new Int8Array(C * HW); for (let i = 0; i < X.length; i++) X[i] = Math.floor(rnd() * 256) - 128;
    const bytes = model([{ opType: 'QLinearGlobalAveragePool', domain: 'com.microsoft', input: ['x', 'xs', 'xz', 'ys', 'yz'], output: ['y'], attribute: [{ name: 'channels_last', type: 2, i: 0 }] }],
      [tensor('xs', T.FLOAT, [], [p.xs]), tensor('xz', T.INT8, [], [p.xz]), tensor('ys', T.FLOAT, [], [p.ys]), tensor('yz', T.INT8, [], [p.yz])],
      [vi('x', T.INT8, [1, C, HW, 1])], [vi('y', T.INT8, [1, C, 1, 1])]);
    const y = await run(bytes, { x: new ort.Tensor('int8', X, [1, C, HW, 1]) });
    out.push({ kind: 'gap', p, x: Array.from(X), y: Array.from(y) });  // x is NCHW
  }
  // (e) QDQ pointwise conv (per-channel weights) with bias: DQ->Conv->Q; depthwise 3x3 stride 2, TF SAME pads
  // (0 before, 1 after). The last two have power-of-two scales: the multipliers x_s * w_s / y_s are then 2^-8
  // and 2^-9 exactly, and about one output in 300 is an exact .5 tie that only round-half-to-even decides.
  const convCases = [
    { dw: false, ic: 40, oc: 24, h: 5 }, { dw: false, ic: 40, oc: 24, h: 5 }, { dw: false, ic: 40, oc: 24, h: 5 },
    { dw: true, ic: 19, oc: 19, h: 8 }, { dw: true, ic: 19, oc: 19, h: 8 },
    { dw: false, ic: 8, oc: 24, h: 16, ties: true }, { dw: true, ic: 19, oc: 19, h: 32, ties: true },
  ];
  for (const { dw, ic: IC, oc: OC, h: H, ties } of convCases) {
    const W = H;
    const K = dw ? 3 : 1, OH = dw ? H / 2 : H, OW = dw ? W / 2 : W;
    const xs = ties ? 2 ** -5 : logu(0.01, 0.1), xz = zp(), ys = ties ? 2 ** -3 : logu(0.02, 0.3), yz = zp();
    const ws = [], w = [], b = [];
    for (let o = 0; o < OC; o++) ws.push(ties ? 2 ** -(6 + (o % 2)) : logu(0.002, 0.05));
    for (let i = 0; i < OC * (dw ? K * K : IC); i++) w.push(Math.floor(rnd() * 255) - 127);
    for (let o = 0; o < OC; o++) b.push(Math.floor(rnd() * 10000) - 5000);
    const bs = ws.map((v) => Math.fround(xs * v));
    const X = new Int8Array(IC * H * W); for (let i = 0; i < X.length; i++) X[i] = Math.floor(rnd() * 256) - 128;
    const bytes = model([
      { opType: 'DequantizeLinear', input: ['x', 'xs', 'xz'], output: ['xf'] },
      { opType: 'DequantizeLinear', input: ['w', 'ws', 'wz'], output: ['wf'], attribute: [{ name: 'axis', type: 2, i: 0 }] },
      { opType: 'DequantizeLinear', input: ['b', 'bs', 'bz'], output: ['bf'], attribute: [{ name: 'axis', type: 2, i: 0 }] },
      { opType: 'Conv', input: ['xf', 'wf', 'bf'], output: ['yf'], attribute: dw ? [{ name: 'group', type: 2, i: OC }, { name: 'strides', type: 7, ints: [2, 2] }, { name: 'pads', type: 7, ints: [0, 0, 1, 1] }, { name: 'kernel_shape', type: 7, ints: [3, 3] }] : [] },
      { opType: 'QuantizeLinear', input: ['yf', 'ys', 'yz'], output: ['y'] }],
      [tensor('xs', T.FLOAT, [], [xs]), tensor('xz', T.INT8, [], [xz]), tensor('ys', T.FLOAT, [], [ys]), tensor('yz', T.INT8, [], [yz]),
       tensor('w', T.INT8, [OC, dw ? 1 : IC, K, K], w), tensor('ws', T.FLOAT, [OC], ws), tensor('wz', T.INT8, [OC], new Array(OC).fill(0)),
       tensor('b', T.INT32, [OC], b), tensor('bs', T.FLOAT, [OC], bs), tensor('bz', T.INT32, [OC], new Array(OC).fill(0))],
      [vi('x', T.INT8, [1, IC, H, W])], [vi('y', T.INT8, [1, OC, OH, OW])], 13);
    const y = await run(bytes, { x: new ort.Tensor('int8', X, [1, IC, H, W]) });
    out.push({ kind: 'conv', p: { xs, xz, ys, yz, ic: IC, oc: OC, h: H, w: W, k: K, dw: dw ? 1 : 0, ws, wt: w, b }, x: Array.from(X), y: Array.from(y) });
  }
  fs.writeFileSync(process.argv[2], flatten(out));
  console.log(`wrote ${out.length} ONNX Runtime cases to ${process.argv[2]}`);
})().catch((e) => { console.error(e); process.exit(1); });
