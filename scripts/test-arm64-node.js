#!/usr/bin/env node
// Step 3 of `npm run test:arm64` (scripts/test-arm64.js): the mnq addon
// cross-built for aarch64, loaded in a real arm64 Node 18 under qemu-user as a
// Cortex-A72 (Pi 4) and a Cortex-A76 (Pi 5), must give int8 outputs
// bit-identical to the x86 run of the same models on the same inputs.
//
//   node scripts/test-arm64-node.js [cpu ...]        (default: cortex-a72 cortex-a76)
//
// 1. scripts/arm64-node.sh: arm64 Node in build-arm64/node-root (fetched once,
//    needs root for `dpkg --add-architecture arm64`) and build-arm64/addon/mnq.node.
// 2. tsc -> dist/ (the runner uses the compiled TypeScript: ONNX -> plan compiler
//    and the addon binding, both plain JS, so they run unchanged in the arm64 Node).
// 3. On x86: decode a few real images (sharp) into float NCHW inputs for every int8
//    model in $MNQ_SHARED/models/onnx and a V1 file calibrated here with --split-stem (the same float input goes to every run, so
//    no image decoding is needed under emulation), run mnq, dump the int8 outputs.
// 4. Under qemu, per CPU model: the same runner in the arm64 Node (this file
//    with --worker), then a byte-for-byte comparison with the x86 dump, and a
//    check that the addon chose neon on the A72 and neondot on the A76.
// Dumps: build-arm64/parity/{inputs,x86,<cpu>}.json.
// Skips (exit 0, with the reason) when the shared models, the x86 addon or the
// arm64 Node are unavailable, except under CI=true or with MNQ_ARM64_NODE=1
// (then: failure, naming what is missing).
// MNQ_ARM64_MODELS=a.onnx,b.onnx limits the models; MNQ_ARM64_IMAGES=N images (default 2).
'use strict';
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { skipOrFail } = require('./ci');

const root = path.resolve(__dirname, '..');
const build = path.join(root, 'build-arm64');
const nodeRoot = path.join(build, 'node-root');
const addon = path.join(build, 'addon', 'mnq.node');
const outDir = path.join(build, 'parity');
const EXPECTED_ISA = { 'cortex-a72': 'neon', 'cortex-a76': 'neondot' };

function log(msg) { console.log(`[test:arm64:node] ${msg}`); }
function die(msg) { console.error(`[test:arm64:node] FAIL: ${msg}`); process.exit(1); }
function skip(msg) {
  if (process.env.MNQ_ARM64_NODE === '1') die(`${msg} (MNQ_ARM64_NODE=1: required)`);
  skipOrFail('test:arm64:node', msg);
  process.exit(0);
}

// ------------------------------------------------------------ worker side
// Runs in either Node (x86 host or arm64 under qemu): compile each model, run
// the inputs through the addon, write the int8 outputs.
function worker(inputsFile, outFile) {
  const dist = path.join(root, 'dist');
  const { compile } = require(path.join(dist, 'compiler'));
  const { loadNative } = require(path.join(dist, 'native'));
  const native = loadNative();
  const inputs = JSON.parse(fs.readFileSync(inputsFile, 'utf8'));
  const result = { arch: process.arch, node: process.version, isa: native.defaultIsa(), models: [] };
  for (const m of inputs.models) {
    const t0 = Date.now();
    const compiled = compile(m.file || path.join(inputs.shared, m.model));
    const model = native.createModelSync(compiled.plan, { threads: 1 });
    const buf = Buffer.from(m.data, 'base64');
    const x = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    const outs = model.runSync(x, m.batch);
    model.dispose();
    result.models.push({
      model: m.model,
      isa: model.isa,
      outputs: outs.map((o) => Buffer.from(o.buffer, o.byteOffset, o.byteLength).toString('base64')),
    });
    console.log(`  ${m.model}: ${outs.map((o) => o.length).join('+')} int8 values, ${Date.now() - t0} ms (${process.arch}, ${model.isa})`);
  }
  fs.writeFileSync(outFile, JSON.stringify(result));
}

// ------------------------------------------------------------- host side
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.error) die(`${cmd}: ${r.error.message}`);
  return r.status === 0;
}

async function prepareInputs(shared, file) {
  let sharp;
  try { sharp = require('sharp'); } catch (e) { skip(`sharp does not load here (${e.message})`); }
  const { compile } = require(path.join(root, 'dist', 'compiler'));
  const modelDir = path.join(shared, 'models', 'onnx');
  const imageDir = path.join(shared, 'data', 'imagenet-sample');
  const wanted = process.env.MNQ_ARM64_MODELS
    ? process.env.MNQ_ARM64_MODELS.split(',').map((s) => s.trim()).filter(Boolean)
    : fs.readdirSync(modelDir).filter((f) => f.endsWith('.qdq.onnx') || f === 'mobilenetv2-12-int8.onnx').sort();
  const nImages = Number(process.env.MNQ_ARM64_IMAGES || 2);
  const images = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (images.length >= nImages) return;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.jpe?g$/i.test(e.name)) images.push(p);
    }
  };
  if (fs.existsSync(imageDir)) walk(imageDir);
  if (images.length < nImages) skip(`fewer than ${nImages} images under ${imageDir}`);
  // Also an int8 file of mnq's own calibrator with the stem split into range pieces (a grouped Conv that the
  // runtime runs as a 3x6 depthwise over piece-major channels), made here on x86.
  const files = wanted.map((name) => ({ name, file: path.join(modelDir, name) }));
  const v1 = path.join(modelDir, 'mobilenet_v1_0.25_128_quant.float.onnx');
  const calib = path.join(imageDir, 'calib');
  if (!process.env.MNQ_ARM64_MODELS && fs.existsSync(v1) && fs.existsSync(calib)) {
    const { calibrate } = require(path.join(root, 'dist', 'calibrate'));
    const r = await calibrate(v1, { images: calib, limit: 8, method: 'minmax', equalize: 'stem', splitStem: true });
    const out = path.join(outDir, 'v1-0.25-split-stem.int8.onnx');
    fs.mkdirSync(outDir, { recursive: true });
    fs.writeFileSync(out, r.bytes);
    files.push({ name: path.basename(out), file: out });
  }
  const models = [];
  for (const { name, file } of files) {
    if (!fs.existsSync(file)) die(`model ${file} not found`);
    const { input } = compile(file);
    const { c, h, w } = input;
    if (c !== 3) die(`${name}: expected a 3-channel input, got ${c}`);
    const x = new Float32Array(images.length * c * h * w);
    for (let i = 0; i < images.length; i++) {
      const px = await sharp(images[i]).removeAlpha().resize(w, h, { fit: 'fill' }).raw().toBuffer();
      for (let p = 0; p < h * w; p++)
        for (let ch = 0; ch < 3; ch++) x[((i * 3 + ch) * h * w) + p] = px[p * 3 + ch] / 127.5 - 1;
    }
    models.push({ model: name, ...(file.startsWith(modelDir) ? {} : { file }), batch: images.length, shape: [images.length, c, h, w],
      data: Buffer.from(x.buffer).toString('base64') });
  }
  fs.writeFileSync(file, JSON.stringify({ shared: modelDir, images: images.map((p) => path.relative(shared, p)), models }));
  log(`inputs: ${models.length} models x ${images.length} images -> ${path.relative(root, file)}`);
}

function compare(ref, got, label) {
  let bad = 0;
  for (let i = 0; i < ref.models.length; i++) {
    const a = ref.models[i], b = got.models[i];
    if (!b || a.model !== b.model) die(`${label}: model list differs`);
    a.outputs.forEach((ao, j) => {
      const x = Buffer.from(ao, 'base64'), y = Buffer.from(b.outputs[j] || '', 'base64');
      if (x.equals(y)) return;
      bad++;
      let diff = 0, first = -1, maxd = 0;
      for (let k = 0; k < Math.max(x.length, y.length); k++) {
        if (x[k] !== y[k]) {
          diff++;
          if (first < 0) first = k;
          maxd = Math.max(maxd, Math.abs(((x[k] << 24) >> 24) - ((y[k] << 24) >> 24)));
        }
      }
      console.error(`  ${label} ${a.model} output ${j}: ${diff}/${x.length} int8 values differ from x86 (first at ${first}, max |diff| ${maxd})`);
    });
  }
  return bad === 0;
}

async function main() {
  const cpus = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(EXPECTED_ISA);
  const shared = path.resolve(process.env.MNQ_SHARED || path.join(root, '..', 'shared'));
  if (!fs.existsSync(path.join(shared, 'models', 'onnx'))) skip(`no shared models at ${shared}: put the project's shared folder at ../shared beside the repository or set MNQ_SHARED to it`);

  const hostAddon = process.env.MNQ_ADDON ? path.resolve(process.env.MNQ_ADDON) : path.join(root, 'build', 'Release', 'mnq.node');
  if (!fs.existsSync(hostAddon)) skip(`no x86 addon at ${hostAddon} to compare with: run npm install (node-gyp rebuild) first`);

  if (!fs.existsSync(path.join(nodeRoot, 'usr', 'bin', 'node'))) {
    const isRoot = process.getuid && process.getuid() === 0;
    if (!isRoot) skip(`no arm64 Node in ${path.relative(root, nodeRoot)}: run scripts/arm64-node.sh --node-only as root once`);
    if (!run('bash', [path.join(root, 'scripts', 'arm64-node.sh'), '--node-only'])) skip('could not fetch the arm64 Node (apt-get download failed)');
  }
  if (!run('bash', [path.join(root, 'scripts', 'arm64-node.sh'), '--addon-only'])) die('cross-building the addon failed');

  log('compiling TypeScript (tsc -> dist/)');
  if (!run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'])) die('tsc failed');

  fs.mkdirSync(outDir, { recursive: true });
  const inputs = path.join(outDir, 'inputs.json');
  await prepareInputs(shared, inputs);

  log('x86 run (host Node, host addon build/Release/mnq.node or MNQ_ADDON)');
  const x86 = path.join(outDir, 'x86.json');
  const hostEnv = { ...process.env };
  if (!run(process.execPath, [__filename, '--worker', inputs, x86], { env: hostEnv })) die('x86 run failed');
  const ref = JSON.parse(fs.readFileSync(x86, 'utf8'));

  // Both CPU models at once (one qemu process each; the machine has >= 2 cores).
  const runs = cpus.map((cpu) => {
    const want = EXPECTED_ISA[cpu];
    if (!want) die(`unknown CPU model ${cpu}`);
    const out = path.join(outDir, `${cpu}.json`);
    const args = ['-cpu', cpu, '-L', nodeRoot, '-E', `LD_LIBRARY_PATH=${path.join(nodeRoot, 'usr', 'lib', 'aarch64-linux-gnu')}`,
      '-E', `MNQ_ADDON=${addon}`, '-U', 'MNQ_ISA',
      path.join(nodeRoot, 'usr', 'bin', 'node'), __filename, '--worker', inputs, out];
    log(`arm64 Node under qemu-aarch64 -cpu ${cpu} (expecting ${want})`);
    return new Promise((resolve) => {
      const child = spawn('qemu-aarch64', args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (d) => { text += d; });
      child.stderr.on('data', (d) => { text += d; });
      child.on('error', (e) => resolve({ cpu, want, out, text: text + e.message, status: -1 }));
      child.on('close', (status) => resolve({ cpu, want, out, text, status }));
    });
  });
  let ok = true;
  for (const r of await Promise.all(runs)) {
    process.stdout.write(r.text.split('\n').map((l) => (l ? `[${r.cpu}] ${l}` : l)).join('\n'));
    if (r.status !== 0) die(`arm64 run under ${r.cpu} failed (exit ${r.status})`);
    const got = JSON.parse(fs.readFileSync(r.out, 'utf8'));
    if (got.arch !== 'arm64') die(`${r.cpu}: the runner reports arch ${got.arch}`);
    const isas = new Set(got.models.map((m) => m.isa).concat(got.isa));
    if (isas.size !== 1 || !isas.has(r.want)) die(`${r.cpu}: the addon used ${[...isas].join(', ')}, expected ${r.want}`);
    const same = compare(ref, got, r.cpu);
    log(`${r.cpu} (${r.want}) vs x86 (${ref.isa}): ${same ? 'bit-identical' : 'DIFFERENT'} on ${got.models.length} models`);
    ok = ok && same;
  }
  if (!ok) die('arm64 int8 outputs differ from x86');
  log('arm64 int8 outputs bit-identical to x86 for every model and CPU model');
}

if (process.argv[2] === '--worker') worker(process.argv[3], process.argv[4]);
else main().catch((e) => die(e.stack || String(e)));
