// Child process of test/worker-termination.test.ts (and a tool on its own): starts worker_threads that use mnq
// and stops each at a random moment of its work, as worker pools do (piscina's terminate()) or as the worker
// itself does (process.exit()). An abort of the process (the addon throwing from a dying environment) ends
// this script with a signal, which the test reports; a clean run prints one JSON line and exits 0.
//
//   node test/helpers/worker-termination.js --model M.onnx --image cat.png [--count 40] [--seed 1] [--modes load,run,...]
//
// Modes (the worker loops doing this when it is stopped): load (load + dispose), run (3 concurrent runs),
// runSync, classify (decode + run), exit (the worker calls process.exit() with runs in flight).
// The workers run dist/ (npm run build:ts); MNQ_ADDON selects another addon build (lib/native.ts).
'use strict';
const path = require('path');
const { Worker, isMainThread, workerData, parentPort } = require('worker_threads');

const DIST = path.resolve(__dirname, '..', '..', 'dist');

if (isMainThread) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : dflt; };
  const model = opt('model');
  const image = opt('image');
  const count = Number(opt('count', '40'));
  const modes = opt('modes', 'load,run,runSync,classify,exit').split(',');
  let seed = Number(opt('seed', '1')) >>> 0;
  const random = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 2 ** 32; };
  if (!model || !image) { console.error('usage: worker-termination.js --model M.onnx --image IMG [--count N] [--seed S] [--modes a,b]'); process.exit(2); }

  (async () => {
    const t0 = Date.now();
    const byMode = {};
    for (let i = 0; i < count; i++) {
      const mode = modes[i % modes.length];
      const w = new Worker(__filename, { workerData: { mode, model, image, seed: i } });
      w.on('error', () => {}); // a worker stopped by terminate() may report its own error; the process must survive
      const exited = new Promise((resolve) => w.once('exit', resolve));
      await new Promise((resolve) => { w.once('message', resolve); w.once('exit', resolve); });
      if (mode !== 'exit') {
        await new Promise((resolve) => setTimeout(resolve, random() * 40));
        await w.terminate();
      }
      await exited;
      byMode[mode] = (byMode[mode] ?? 0) + 1;
    }
    // the process is still whole: this thread loads and runs the model
    const m = await require(DIST).load(model);
    const out = await m.run(new Float32Array(m.inputs[0].shape.slice(1).reduce((a, b) => a * b, 1)));
    m.dispose();
    if (!(out.length > 0)) throw new Error('the main thread\'s run after the terminations returned nothing');
    console.log(JSON.stringify({ terminations: count, byMode, seconds: (Date.now() - t0) / 1000 }));
  })().catch((e) => { console.error(e); process.exit(1); });
} else {
  const mnq = require(DIST);
  const { mode, model, image, seed } = workerData;
  (async () => {
    const m = await mnq.load(model, { threads: 2 });
    const x = new Float32Array(m.inputs[0].shape.slice(1).reduce((a, b) => a * b, 1));
    parentPort.postMessage('ready');
    if (mode === 'exit') {
      // stop while runs are in flight, after a few of them went through
      let n = 0;
      for (;;) {
        m.run(x).catch(() => {});
        m.run(x).catch(() => {});
        if (++n > (seed % 7)) process.exit(0);
        await m.run(x);
      }
    }
    for (;;) {
      if (mode === 'load') (await mnq.load(model, { threads: 2 })).dispose();
      else if (mode === 'run') await Promise.all([m.run(x), m.run(x), m.run(x)]);
      else if (mode === 'runSync') { m.runSync(x); await null; }
      else if (mode === 'classify') await m.classify([image, image]);
      else throw new Error(`unknown mode ${mode}`);
    }
  })();
}
