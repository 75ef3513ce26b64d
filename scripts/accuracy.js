#!/usr/bin/env node
// Measurement: top-1 / top-5 and agreement with float of every `mnq calibrate` method on the shared float models (the README / docs table).
//
// The documented full accuracy run of `mnq calibrate` (docs/calibration.md, README):
// calibrates each float model of ../shared on imagenet-sample/calib with each method,
// then measures it on imagenet-sample/eval (never used for calibration) against the
// float model, and Google's own int8 (*.qdq.onnx) where there is one.
//
//   npm run build:ts && node scripts/accuracy.js [--methods minmax,mse+eqh+bc] [--models a.float.onnx,...] [--limit N] [--no-mnq] [--json]
//
// A run is a method with options: `+eq` (--equalize), `+eqh` (--equalize-hswish), `+eqs` (--equalize-stem), `+bc`
// (--bias-correction), `+bca` (--bias-correction-all), `+cc` (--calibrate-clip), `+gptq` (--gptq), `+split` (--split-stem; `+split3`: 3 ranges, API only), `+n64` (64 images for bias correction / GPTQ), `+int16` (--int16 auto; `+int16a98`: target agreement 98%, `+int16b25`: at most 25% of multiply-adds). By default every model gets the four methods plus its EXTRA runs.
//
// Uses the compiled library in dist/ (MNQ_DIST to point elsewhere); ONNX Runtime with one
// thread (MNQ_ORT_THREADS to change). Prints a markdown table.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');
const dist = path.resolve(process.env.MNQ_DIST || path.join(root, 'dist'));
const shared = path.resolve(process.env.MNQ_SHARED || path.join(root, '..', 'shared'));

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const MODELS = [
  // [float model, Google's int8 or null, bar: max top-1 drop, min agreement %]
  ['tf2_mobilenet_v2_1.0_224_ptq.float.onnx', 'tf2_mobilenet_v2_1.0_224_ptq.qdq.onnx', 1.0, 97],
  ['mobilenet_v2_1.0_224_quant.float.onnx', 'mobilenet_v2_1.0_224_quant.qdq.onnx', 1.0, 97],
  ['mobilenet_v1_0.5_160_quant.float.onnx', null, 1.0, 97],
  ['mobilenet_v3_small_1.0_224_quant.float.onnx', 'mobilenet_v3_small_1.0_224_quant.qdq.onnx', 1.0, 97],
  ['keras_mobilenet_v3_small_1.0_224.float.onnx', null, 1.5, 95],
  ['mobilenet_v1_0.25_128_quant.float.onnx', null, null, null],
];
// runs beyond the four plain methods, where they are the best found for that model
const EXTRA = {
  'mobilenet_v1_0.5_160_quant.float.onnx': ['mse+bc', 'mse+eqs', 'mse+eqs+bc', 'mse+eqs+gptq+bc', 'mse+eqs+bc+split', 'mse+eqs+gptq+bc+split', 'minmax+eqs+gptq+bc+split'],
  'mobilenet_v3_small_1.0_224_quant.float.onnx': ['percentile+eqh', 'percentile+bc', 'percentile+eqh+bc'],
  'keras_mobilenet_v3_small_1.0_224.float.onnx': ['percentile+eqh', 'percentile+eqh+bc', 'percentile+eqh+gptq', 'percentile+eqh+gptq+bc'],
};

/** 'percentile+eqh+bc' → calibrate options */
function runOptions(spec) {
  const [method, ...flags] = spec.split('+');
  const o = { method };
  for (const f of flags) {
    if (f === 'eq') o.equalize = true;
    else if (f === 'eqh') o.equalize = 'hswish';
    else if (f === 'eqs') o.equalize = 'stem';
    else if (f === 'bc') o.biasCorrection = true;
    else if (f === 'bca') o.biasCorrection = 'all';
    else if (f === 'cc') o.calibrateClip = true;
    else if (f === 'gptq') o.gptq = true;
    else if (f === 'split') o.splitStem = true;
    else if (/^split[0-9]+$/.test(f)) o.splitStem = Number(f.slice(5));
    else if (/^n[0-9]+$/.test(f)) o.biasCorrectionImages = Number(f.slice(1));
    else if (f === 'int16') o.int16 = 'auto';
    else if (/^int16a[0-9.]+$/.test(f)) { o.int16 = 'auto'; o.int16Target = { ...o.int16Target, agreement: Number(f.slice(6)) }; }
    else if (/^int16b[0-9.]+$/.test(f)) { o.int16 = 'auto'; o.int16Target = { ...o.int16Target, budget: Number(f.slice(6)) / 100 }; }
    else throw new Error(`unknown run option '+${f}' in '${spec}' (use +eq, +eqh, +eqs, +bc, +bca, +cc, +gptq, +split[N], +nIMAGES, +int16, +int16aPCT, +int16bPCT)`);
  }
  return o;
}

async function main() {
  if (!fs.existsSync(path.join(dist, 'calibrate', 'index.js'))) {
    console.error(`accuracy: ${dist}/calibrate/index.js not found: run 'npm run build:ts' first (or set MNQ_DIST)`);
    return 2;
  }
  const modelsDir = path.join(shared, 'models', 'onnx');
  const calibDir = path.join(shared, 'data', 'imagenet-sample', 'calib');
  const evalDir = path.join(shared, 'data', 'imagenet-sample', 'eval');
  if (!fs.existsSync(modelsDir) || !fs.existsSync(calibDir) || !fs.existsSync(evalDir)) {
    console.error(`accuracy: shared data not found in ${shared} (set MNQ_SHARED)`);
    return 2;
  }
  const { calibrate } = require(path.join(dist, 'calibrate', 'index.js'));
  const { compare } = require(path.join(dist, 'calibrate', 'compare.js'));
  const methods = arg('methods') ? arg('methods').split(',') : null;
  const only = arg('models', '') ? arg('models', '').split(',') : null;
  const limit = arg('limit') ? Number(arg('limit')) : undefined;
  const json = process.argv.includes('--json');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-accuracy-'));
  const rows = [];
  const fmt = (x) => (Number.isFinite(x) ? x.toFixed(1) : '—');
  if (!json) {
    console.log(`calibration: ${calibDir} (all images); evaluation: ${evalDir}${limit ? ` (first ${limit})` : ''}\n`);
    console.log('| model | int8 | calib. method | float top-1 (ORT) | int8 top-1 (ORT) | Δ | int8 top-5 (ORT) | agreement (ORT) | logits SQNR dB | int8 top-1 (mnq) | mnq = ORT top-1 | bar |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  }
  try {
    for (const [model, google, maxDrop, minAgree] of MODELS) {
      if (only && !only.includes(model)) continue;
      const fp = path.join(modelsDir, model);
      if (!fs.existsSync(fp)) continue;
      const runs = (methods || ['minmax', 'percentile', 'entropy', 'mse', ...(EXTRA[model] || [])]).map((m) => ({ label: 'mnq calibrate', method: m }));
      if (google && fs.existsSync(path.join(modelsDir, google))) runs.push({ label: "Google's", method: null, file: path.join(modelsDir, google) });
      let googleTop1;
      const results = [];
      for (const r of runs) {
        let file = r.file;
        if (!file) {
          const res = await calibrate(fp, { images: calibDir, ...runOptions(r.method) });
          file = path.join(tmp, `${model}.${r.method}.onnx`);
          fs.writeFileSync(file, res.bytes);
        }
        const c = await compare(fp, file, { images: evalDir, limit, layers: false, mnq: !process.argv.includes('--no-mnq') });
        if (!r.method) googleTop1 = c.int8Ort.top1;
        results.push({ r, c });
      }
      for (const { r, c } of results) {
        const drop = c.floatOrt.top1 - c.int8Ort.top1;
        let bar = '';
        if (r.method && maxDrop !== null) {
          const ok = drop <= maxDrop && c.agreementOrt >= minAgree && (googleTop1 === undefined || googleTop1 - c.int8Ort.top1 <= 0.5);
          bar = ok ? 'met' : 'missed';
        }
        const row = {
          model, int8: r.label, method: r.method, floatTop1: c.floatOrt.top1, int8Top1: c.int8Ort.top1, int8Top5: c.int8Ort.top5,
          agreement: c.agreementOrt, logitsSqnrDb: c.logitsSqnrDb, images: c.images, bar,
          int8MnqTop1: c.int8Mnq ? c.int8Mnq.top1 : null, mnqOrtTop1Agreement: c.mnqVsOrt ? c.mnqVsOrt.top1Agreement : null, mnqNote: c.mnqNote || null,
        };
        rows.push(row);
        if (!json) {
          console.log(`| ${model.replace(/\.onnx$/, '')} | ${r.label} | ${r.method || '—'} | ${fmt(c.floatOrt.top1)} | ${fmt(c.int8Ort.top1)} | ${fmt(-drop)} | ${fmt(c.int8Ort.top5)} | ${fmt(c.agreementOrt)}% | ${fmt(c.logitsSqnrDb)} | ${c.int8Mnq ? fmt(c.int8Mnq.top1) : '—'} | ${c.mnqVsOrt ? fmt(c.mnqVsOrt.top1Agreement) + '%' : '—'} | ${bar} |`);
        }
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (json) console.log(JSON.stringify(rows, null, 2));
  return 0;
}

main().then((c) => { process.exitCode = c; }, (e) => { console.error(`accuracy: ${e.message}`); process.exitCode = 1; });
