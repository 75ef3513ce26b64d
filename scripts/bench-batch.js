#!/usr/bin/env node
// Is one call with a batch of N faster per image than N calls of batch 1?
// Interleaves the two on one loaded model (same process, same input) for a
// number of rounds and prints the median ms per image of each and their ratio.
//
//   node scripts/bench-batch.js <model.onnx>... [--threads 1] [--batch 8] [--rounds 30] [--json]
//
// Needs the built package (npm run build). A benchmark, not a test.
'use strict';
const path = require('path');
const { load } = require(path.join(__dirname, '..', 'dist', 'index.js'));

function parse(argv) {
  const o = { models: [], threads: 1, batch: 8, rounds: 30, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a === '--threads' || a === '--batch' || a === '--rounds') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1) throw new Error(`${a} needs a positive integer, got ${argv[i]}`);
      o[a.slice(2)] = v;
    } else if (a.startsWith('--')) throw new Error(`unknown option ${a} (options: --threads N --batch N --rounds N --json)`);
    else o.models.push(a);
  }
  if (o.models.length === 0) throw new Error('usage: node scripts/bench-batch.js <model.onnx>... [--threads N] [--batch N] [--rounds N] [--json]');
  return o;
}

const median = (a) => a.slice().sort((p, q) => p - q)[a.length >> 1];
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

async function benchOne(file, { threads, batch, rounds }) {
  const model = await load(file, { threads });
  try {
    const dims = model.inputs[0].shape.slice(1).map((d) => (typeof d === 'number' ? d : 1));
    const per = dims.reduce((a, b) => a * b, 1);
    const x = new Float32Array(per * batch);
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) * 0.9;
    const single = async () => {
      for (let i = 0; i < batch; i++) await model.run(x.subarray(i * per, (i + 1) * per), [1, ...dims]);
    };
    const batched = () => model.run(x, [batch, ...dims]);
    for (let w = 0; w < 3; w++) { await single(); await batched(); }
    const one = [], many = [];
    for (let r = 0; r < rounds; r++) {
      let t = process.hrtime.bigint();
      await single();
      one.push(ms(t) / batch);
      t = process.hrtime.bigint();
      await batched();
      many.push(ms(t) / batch);
    }
    return { model: path.basename(file), threads, batch, rounds,
      msPerImageBatch1: +median(one).toFixed(3), msPerImageBatched: +median(many).toFixed(3),
      ratio: +(median(many) / median(one)).toFixed(3) };
  } finally {
    model.dispose();
  }
}

(async () => {
  let o;
  try { o = parse(process.argv.slice(2)); } catch (e) { console.error(e.message); process.exit(2); }
  if (!o.json) console.log(`model                                         threads batch  ms/img (${o.batch} calls of 1)  ms/img (1 call of ${o.batch})  ratio`);
  for (const f of o.models) {
    const r = await benchOne(f, o);
    if (o.json) console.log(JSON.stringify(r));
    else console.log(`${r.model.padEnd(46)}${String(r.threads).padStart(7)}${String(r.batch).padStart(6)}${r.msPerImageBatch1.toFixed(3).padStart(22)}${r.msPerImageBatched.toFixed(3).padStart(22)}${r.ratio.toFixed(3).padStart(7)}`);
  }
})().catch((e) => { console.error(e.message); process.exit(1); });
