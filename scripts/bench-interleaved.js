#!/usr/bin/env node
// Interleaved latency of several model files in mnq, for A/B ratios on a noisy machine: each file loaded once
// (1 thread), then --rounds rounds in which every file runs --block runSync calls in turn (batch 1, the same
// input); p10 / p50 / p90 per file and each p50 as a ratio to the first file's. A benchmark, not a test.
//
//   npm run build:ts && node scripts/bench-interleaved.js int8.onnx mixed.onnx [--rounds 30] [--block 20] [--json]
'use strict';
const path = require('path');

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); return i >= 0 ? Number(args[i + 1]) : dflt; };
const files = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1].startsWith('--') && args[i - 1] !== '--json'));
if (!files.length) {
  console.error('usage: node scripts/bench-interleaved.js A.onnx B.onnx ... [--rounds 30] [--block 20] [--json]');
  process.exit(2);
}
const rounds = opt('rounds', 30), block = opt('block', 20);
const { load } = require(path.join(__dirname, '..', 'dist', 'index.js'));

(async () => {
  const models = [];
  for (const f of files) models.push(await load(f, { threads: 1 }));
  const [, c, h, w] = models[0].inputs[0].shape.map((d) => (typeof d === 'number' ? d : 1));
  const x = new Float32Array(c * h * w).map((_, i) => Math.sin(i) * 0.8);
  const times = files.map(() => []);
  for (const m of models) for (let i = 0; i < block; i++) m.runSync(x);
  for (let r = 0; r < rounds; r++) {
    models.forEach((m, k) => {
      for (let i = 0; i < block; i++) {
        const t0 = process.hrtime.bigint();
        m.runSync(x);
        times[k].push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    });
  }
  const q = (a, p) => { const s = [...a].sort((u, v) => u - v); return s[Math.floor(p * (s.length - 1))]; };
  const rows = files.map((f, k) => ({ file: f, p10Ms: q(times[k], 0.1), p50Ms: q(times[k], 0.5), p90Ms: q(times[k], 0.9) }));
  rows.forEach((r) => { r.p50VsFirst = r.p50Ms / rows[0].p50Ms; });
  for (const m of models) m.dispose();
  if (args.includes('--json')) console.log(JSON.stringify({ rounds, block, rows }, null, 2));
  else for (const r of rows) console.log(`${path.basename(r.file)}: p50 ${r.p50Ms.toFixed(3)} ms (p10 ${r.p10Ms.toFixed(3)}, p90 ${r.p90Ms.toFixed(3)}), ${r.p50VsFirst.toFixed(2)}x the first`);
})().catch((e) => { console.error(`bench-interleaved: ${e.message}`); process.exit(1); });
