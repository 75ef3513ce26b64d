#!/usr/bin/env node
// Measures the depth-first (fused) executor against the op-by-op (layers) one, in one process on the same
// input: batch-1 latency at 1 and 2 threads (p50 / p90 / p99), the 2-thread scaling of each, and batch 8 on
// 2 threads. Configurations are interleaved in blocks of --block runs so a noisy machine hits all alike.
//
//   node scripts/bench-executor.js <model.onnx>... [--runs 300] [--block 20] [--batch 8] [--json]
//
// Needs the built package (npm run build). A benchmark, not a test: run it on a quiet machine.
'use strict';
const path = require('path');
const { load } = require(path.join(__dirname, '..', 'dist', 'index.js'));

function parse(argv) {
  const o = { models: [], runs: 300, block: 20, batch: 8, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (['--runs', '--block', '--batch'].includes(a)) {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1) throw new Error(`${a} needs a positive integer, got ${argv[i]}`);
      o[a.slice(2)] = v;
    } else if (a.startsWith('--')) throw new Error(`unknown option ${a} (options: --runs N --block N --batch N --json)`);
    else o.models.push(a);
  }
  if (o.models.length === 0) throw new Error('usage: node scripts/bench-executor.js <model.onnx>... [--runs N] [--block N] [--batch N] [--json]');
  return o;
}

const pct = (a, p) => { const s = a.slice().sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const r3 = (v) => +v.toFixed(3);

async function benchModel(file, o) {
  const configs = [];
  for (const executor of ['layers', 'fused']) {
    for (const [threads, batch] of [[1, 1], [2, 1], [2, o.batch]]) {
      configs.push({ executor, threads, batch, model: await load(file, { executor, threads }), times: [] });
    }
  }
  const dims = configs[0].model.inputs[0].shape.slice(1).map((d) => (typeof d === 'number' ? d : 1));
  const per = dims.reduce((a, b) => a * b, 1);
  const x = new Float32Array(per * o.batch);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) * 0.9;
  const input = (batch) => x.subarray(0, per * batch);
  try {
    // Same bits from both executors (the benchmark compares equal work).
    for (const c of configs) {
      const q = await c.model.run(input(c.batch), [c.batch, ...dims], { quantized: true });
      c.out = Buffer.from(q.data.buffer, q.data.byteOffset, q.data.byteLength);
    }
    for (const c of configs) {
      const twin = configs.find((d) => d.executor === 'layers' && d.threads === c.threads && d.batch === c.batch);
      if (!c.out.equals(twin.out)) throw new Error(`${path.basename(file)}: ${c.executor} and layers outputs differ`);
    }
    for (const c of configs) for (let w = 0; w < 10; w++) await c.model.run(input(c.batch), [c.batch, ...dims]);
    for (let done = 0; done < o.runs; done += o.block) {
      for (const c of configs) {
        for (let i = 0; i < Math.min(o.block, o.runs - done); i++) {
          const t = process.hrtime.bigint();
          await c.model.run(input(c.batch), [c.batch, ...dims]);
          c.times.push(ms(t));
        }
      }
    }
  } finally {
    for (const c of configs) c.model.dispose();
  }
  const stat = (c) => ({ p50: r3(pct(c.times, 0.5)), p90: r3(pct(c.times, 0.9)), p99: r3(pct(c.times, 0.99)),
    imagesPerSecond: r3(1000 * c.batch / pct(c.times, 0.5)) });
  const get = (e, t, b) => configs.find((c) => c.executor === e && c.threads === t && c.batch === b);
  const rows = configs.map((c) => ({ executor: c.executor, threads: c.threads, batch: c.batch, ...stat(c) }));
  const s = (e, t, b) => stat(get(e, t, b));
  return {
    model: path.basename(file), runs: o.runs, rows,
    fusedSpeedup1t: r3(s('layers', 1, 1).p50 / s('fused', 1, 1).p50),
    fusedSpeedup2t: r3(s('layers', 2, 1).p50 / s('fused', 2, 1).p50),
    scaling2tFused: r3(s('fused', 1, 1).p50 / s('fused', 2, 1).p50),
    scaling2tLayers: r3(s('layers', 1, 1).p50 / s('layers', 2, 1).p50),
    p99OverP50Fused2t: r3(s('fused', 2, 1).p99 / s('fused', 2, 1).p50),
    batchFusedOverLayers: r3(s('layers', 2, o.batch).p50 / s('fused', 2, o.batch).p50),
  };
}

(async () => {
  let o;
  try { o = parse(process.argv.slice(2)); } catch (e) { console.error(e.message); process.exit(2); }
  for (const f of o.models) {
    const r = await benchModel(f, o);
    if (o.json) { console.log(JSON.stringify(r)); continue; }
    console.log(`\n${r.model} (${r.runs} runs per configuration, interleaved)`);
    console.log('executor  threads batch    p50 ms    p90 ms    p99 ms     img/s');
    for (const x of r.rows) {
      console.log(`${x.executor.padEnd(8)}${String(x.threads).padStart(9)}${String(x.batch).padStart(6)}${x.p50.toFixed(3).padStart(10)}${x.p90.toFixed(3).padStart(10)}${x.p99.toFixed(3).padStart(10)}${x.imagesPerSecond.toFixed(0).padStart(10)}`);
    }
    console.log(`fused vs layers, batch 1: ${r.fusedSpeedup1t}x faster at 1 thread, ${r.fusedSpeedup2t}x at 2; ` +
      `2 threads vs 1: fused ${r.scaling2tFused}x, layers ${r.scaling2tLayers}x; fused p99/p50 at 2 threads ${r.p99OverP50Fused2t}; ` +
      `batch ${o.batch} on 2 threads: fused ${r.batchFusedOverLayers}x layers`);
  }
})().catch((e) => { console.error(e.message); process.exit(1); });
