#!/usr/bin/env node
// Experiment (measures): top-1, agreement with float and logits SQNR of an int8 QDQ model when its activations get 2^b levels instead of 256.
//
// How much would finer activations buy? Takes a float model and its int8 QDQ model (e.g. from
// `mnq calibrate`) and measures, with ONNX Runtime, top-1, agreement with float and logits SQNR when
// every activation QuantizeLinear / DequantizeLinear pair keeps its calibrated range but has 2^b levels
// instead of 256 (b = 8, 9, 10, ... stored as int16, ONNX opset 21). Weights and biases stay as they are.
// The int16 container does not saturate at the b-bit range's ends, so b = 8 here differs from the int8
// file only where values fall outside the calibrated range (reported as its own row). The last row keeps
// the activations in float: what the int8 weights and biases alone cost.
//
//   node scripts/activation-bits.js <float.onnx> <int8.onnx> [--bits 8,9,10,12] [--images DIR] [--limit N]
//
// Needs the TypeScript build (npm run build:ts). Images default to ../shared/data/imagenet-sample/eval.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

const dist = process.env.MNQ_DIST || path.join(__dirname, '..', 'dist');
const shared = process.env.MNQ_SHARED || path.join(__dirname, '..', '..', 'shared');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};

/** The int8 QDQ model with each activation Q/DQ pair at `bits` levels (int16 container). */
function withActivationBits(model, bits, onnx, tensorData) {
  const m = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const g = m.graph;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const pairs = new Map();
  for (const n of g.node) if (n.opType === 'QuantizeLinear') pairs.set(n.input[1], n.input[2]);
  const levels = 2 ** bits - 1, qmin = -(2 ** (bits - 1));
  for (const [sName, zName] of pairs) {
    const st = inits.get(sName), zt = inits.get(zName);
    if (!st || !zt || zt.dataType !== onnx.TensorProto.DataType.INT8) continue;
    const s = tensorData(st)[0], z = tensorData(zt)[0];
    const lo = (-128 - z) * s, hi = (127 - z) * s;
    const s2 = Math.fround((hi - lo) / levels);
    const z2 = Math.round(qmin - lo / s2);
    st.rawData = new Uint8Array(Float32Array.of(s2).buffer);
    zt.dataType = onnx.TensorProto.DataType.INT16;
    zt.rawData = new Uint8Array(Int16Array.of(z2).buffer);
    zt.int32Data = [];
  }
  for (const o of m.opsetImport) if (!o.domain || o.domain === 'ai.onnx') o.version = Math.max(21, Number(o.version));
  return m;
}

/** The int8 QDQ model with every activation QuantizeLinear → DequantizeLinear pair removed (float activations). */
function withFloatActivations(model, onnx) {
  const m = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const g = m.graph;
  const producer = new Map();
  for (const n of g.node) for (const o of n.output) producer.set(o, n);
  const rename = new Map(), drop = new Set();
  for (const n of g.node) {
    const q = n.opType === 'DequantizeLinear' ? producer.get(n.input[0]) : undefined;
    if (q && q.opType === 'QuantizeLinear') { rename.set(n.output[0], q.input[0]); drop.add(n); drop.add(q); }
  }
  g.node = g.node.filter((n) => !drop.has(n));
  for (const n of g.node) n.input = n.input.map((i) => rename.get(i) ?? i);
  for (const o of g.output) if (rename.has(o.name)) g.node.push(onnx.NodeProto.create({ opType: 'Identity', name: `${o.name}_Identity`, input: [rename.get(o.name)], output: [o.name] }));
  return m;
}

async function main() {
  const [floatPath, int8Path] = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !(i > 0 && all[i - 1].startsWith('--')));
  if (!floatPath || !int8Path) {
    console.error('usage: node scripts/activation-bits.js <float.onnx> <int8.onnx> [--bits 8,9,10,12] [--images DIR] [--limit N]');
    return 2;
  }
  const { onnx, readModel, encodeModel, tensorData } = require(path.join(dist, 'onnx', 'proto.js'));
  const { compare } = require(path.join(dist, 'calibrate', 'compare.js'));
  const images = arg('images', path.join(shared, 'data', 'imagenet-sample', 'eval'));
  const limit = arg('limit') ? Number(arg('limit')) : undefined;
  const bits = arg('bits', '8,9,10,12').split(',').map(Number);
  const model = readModel(int8Path);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-bits-'));
  const fmt = (x) => (Number.isFinite(x) ? x.toFixed(1) : '—');
  console.log(`| activations | int8 top-1 (ORT) | float top-1 | agreement | logits SQNR dB |`);
  console.log('|---|---|---|---|---|');
  try {
    const rows = [['int8 file', int8Path], ...bits.map((b) => [`${b} bits`, null, b]), ['float (weights int8 only)', null, 0]];
    for (const [label, file, b] of rows) {
      let f = file;
      if (!f) {
        f = path.join(tmp, `${b}.onnx`);
        fs.writeFileSync(f, encodeModel(b ? withActivationBits(model, b, onnx, tensorData) : withFloatActivations(model, onnx)));
      }
      const c = await compare(floatPath, f, { images, limit, layers: false, mnq: false });
      console.log(`| ${label} | ${fmt(c.int8Ort.top1)} | ${fmt(c.floatOrt.top1)} | ${fmt(c.agreementOrt)}% | ${fmt(c.logitsSqnrDb)} |`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return 0;
}

main().then((c) => process.exit(c), (e) => { console.error(e.message || e); process.exit(1); });
