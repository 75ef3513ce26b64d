#!/usr/bin/env node
// Process memory of the depth-first issue's bar 4: the peak RSS (getrusage's maxrss) of fresh Node processes that
//   bare      start Node and nothing else,
//   require   require('mnq'),
//   run       require('mnq'), load the model and run it on --images tensors at batch 1 (float input; no image
//             decoding), once per executor ('layers', the op-by-op path, and 'fused', the depth-first one),
//   classify  the same with mnq.classify() on --images JPEGs of imagenet-sample/eval (loads sharp),
// beside the model's own accounting (model.memory). Each case runs --repeat times in its own process; the
// table shows min-max. Memory, not time: the machine's load does not change it much.
//
//   node scripts/bench-memory.js [--model M.onnx] [--images 100] [--repeat 3] [--json]
//
// Needs the built package (npm run build).
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const SHARED = process.env.MNQ_SHARED || path.join(ROOT, '..', 'shared');

function parse(argv) {
  const o = { model: path.join(SHARED, 'models', 'onnx', 'mobilenet_v2_1.0_224_quant.qdq.onnx'), images: 100, repeat: 3, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a === '--model') o.model = argv[++i];
    else if (a === '--images' || a === '--repeat') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1) throw new Error(`${a} needs a positive integer, got ${argv[i]}`);
      o[a.slice(2)] = v;
    } else throw new Error(`unknown option ${a} (options: --model M --images N --repeat N --json)`);
  }
  if (!fs.existsSync(o.model)) throw new Error(`model not found: ${o.model} (set --model or MNQ_SHARED)`);
  return o;
}

// The child: does one case, prints {maxRssMiB, memory?} as JSON.
async function child(kind, model, images, executor) {
  const report = (extra) => {
    // resourceUsage().maxRSS is in KiB (getrusage)
    process.stdout.write(JSON.stringify({ maxRssMiB: +(process.resourceUsage().maxRSS / 1024).toFixed(1), ...extra }));
  };
  if (kind === 'bare') return report({});
  const mnq = require(path.join(ROOT, 'dist', 'index.js'));
  if (kind === 'require') return report({});
  const m = await mnq.load(model, { threads: 1, ...(executor ? { executor } : {}) });
  if (kind === 'run') {
    const dims = m.inputs[0].shape.map((d) => (typeof d === 'number' ? d : 1));
    const x = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let n = 0; n < images; n++) {
      for (let i = 0; i < x.length; i++) x[i] = Math.sin((i + n * 7919) * 0.37) * 0.9;
      await m.run(x, dims);
    }
  } else {
    const dir = path.join(SHARED, 'data', 'imagenet-sample', 'eval');
    const files = fs.readdirSync(dir).filter((f) => /\.jpe?g$/i.test(f)).sort().slice(0, images).map((f) => path.join(dir, f));
    for (const f of files) await m.classify(f);
  }
  const memory = m.memory;
  m.dispose();
  return report({ memory });
}

function main() {
  const o = parse(process.argv.slice(2));
  const cases = [
    ['bare'], ['require'], ['run', 'layers'], ['run', 'fused'], ['classify', 'fused'],
  ];
  const rows = [];
  for (const [kind, executor] of cases) {
    const runs = [];
    for (let r = 0; r < o.repeat; r++) {
      const out = execFileSync(process.execPath, [__filename, '--child', kind, o.model, String(o.images), executor || ''], {
        encoding: 'utf8', env: { ...process.env, MNQ_EXECUTOR: '' },
      });
      runs.push(JSON.parse(out));
    }
    const rss = runs.map((r) => r.maxRssMiB);
    rows.push({ kind, executor: executor || null, maxRssMiB: { min: Math.min(...rss), max: Math.max(...rss) }, memory: runs[0].memory || null });
  }
  const result = { date: new Date().toISOString(), model: path.basename(o.model), images: o.images, repeat: o.repeat, node: process.version, rows };
  if (o.json) return console.log(JSON.stringify(result));
  console.log(`${result.model}: peak RSS of a fresh process (MiB, min-max of ${o.repeat}), ${o.images} images at batch 1, 1 thread`);
  for (const r of rows) {
    const mem = r.memory ? `  arena ${(r.memory.arenaBytesPerImage / 1024).toFixed(0)} KB/image, windows ${((r.memory.windowBytesPerThread || 0) / 1024).toFixed(0)} KB/thread, weights ${(r.memory.weightBytes / 1024).toFixed(0)} KB` : '';
    console.log(`${(r.kind + (r.executor ? ` (${r.executor})` : '')).padEnd(20)} ${r.maxRssMiB.min.toFixed(1)}-${r.maxRssMiB.max.toFixed(1)}${mem}`);
  }
}

if (process.argv[2] === '--child') {
  const [, , , kind, model, images, executor] = process.argv;
  child(kind, model, Number(images), executor || undefined).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  try {
    main();
  } catch (e) {
    console.error(`bench-memory: ${e.message}`);
    process.exit(1);
  }
}
