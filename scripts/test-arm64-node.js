#!/usr/bin/env node
// Step 4 of `npm run test:arm64` (scripts/test-arm64.js): the npm package's arm64 prebuilt binary (the tarball
// of scripts/test-package.js, `npm pack` with scripts/prebuild.js' binaries), loaded by the package's own loader
// in a real arm64 Node 18 under qemu-user as a Cortex-A72 (Pi 4) and a Cortex-A76 (Pi 5), must give int8
// outputs bit-identical to the x86 run of the same models on the same inputs, and classify the cat.
//
//   node scripts/test-arm64-node.js [cpu ...]        (default: cortex-a72 cortex-a76)
//
// 1. scripts/arm64-node.sh --node-only: arm64 Node in build-arm64/node-root (fetched once, needs root for
//    `dpkg --add-architecture arm64`).
// 2. The tarball build-package/mnq-<version>.tgz (packed unless newer than the sources) unpacked in
//    build-arm64/package: its dist/ and prebuilds/ (no MNQ_ADDON: the loader must pick
//    prebuilds/linux-arm64/mnq.glibc.node itself, as in a user's install).
// 3. On x86: decode a few real images (sharp) into float NCHW inputs for every int8 model in
//    $MNQ_SHARED/models/onnx and a V1 file calibrated here with --split-stem (the same float input goes to every
//    run, so no image decoding is needed under emulation), plus the coral cat through mnq's image pipeline for
//    mobilenet_v2_1.0_224_quant.qdq; run the repository's dist/ and addon (build/Release/mnq.node or MNQ_ADDON:
//    the reference), then the package with its x64 prebuild, which must match it bit for bit.
// 4. Under qemu, per CPU model: the package in the arm64 Node (this file with --worker), a byte-for-byte
//    comparison with the x86 reference, the cat's top-1 label (Egyptian cat), and a check that the addon chose
//    neon on the A72 and neondot on the A76.
// Dumps: build-arm64/parity/{inputs,x86,x86-package,<cpu>}.json.
// Skips (exit 0, with the reason) when the shared models, the x86 addon or the
// arm64 Node are unavailable, except under CI=true or with MNQ_ARM64_NODE=1
// (then: failure, naming what is missing).
// MNQ_ARM64_MODELS=a.onnx,b.onnx limits the models; MNQ_ARM64_IMAGES=N images (default 2).
'use strict';
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { skipOrFail } = require('./ci');
const { ensureTarball } = require('./test-package');

const root = path.resolve(__dirname, '..');
const build = path.join(root, 'build-arm64');
const nodeRoot = path.join(build, 'node-root');
const packageDir = path.join(build, 'package');
const CAT_MODEL = 'mobilenet_v2_1.0_224_quant.qdq.onnx';
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
function worker(inputsFile, outFile, pkg) {
  const dist = path.join(pkg, 'dist');
  const { compile } = require(path.join(dist, 'compiler'));
  const { loadNative, addonPath } = require(path.join(dist, 'native'));
  const native = loadNative();
  const inputs = JSON.parse(fs.readFileSync(inputsFile, 'utf8'));
  const result = { arch: process.arch, node: process.version, isa: native.defaultIsa(), addon: addonPath(), models: [] };
  for (const m of inputs.models) {
    const t0 = Date.now();
    const compiled = compile(m.file || path.join(inputs.shared, m.model));
    const model = native.createModelSync(compiled.plan, { threads: 1 });
    const buf = Buffer.from(m.data, 'base64');
    const x = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    const outs = model.runSync(x, m.batch);
    model.dispose();
    result.models.push({
      model: m.model + (m.tag ? ` (${m.tag})` : ''),
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
  // the cat, as `mnq classify` sees it (mnq's image pipeline, tf preprocessing)
  const cat = path.join(shared, 'data', 'coral', 'cat.png');
  if (files.some((f) => f.name === CAT_MODEL)) {
    if (!fs.existsSync(cat)) skip(`no ${cat}`);
    const { ImagePipeline } = require(path.join(root, 'dist', 'image'));
    const x = await new ImagePipeline({ preprocess: 'tf', width: 224, height: 224 }).float(cat);
    models.push({ model: CAT_MODEL, tag: 'cat', batch: 1, shape: [1, 3, 224, 224], data: Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64') });
  }
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
  log('compiling TypeScript (tsc -> dist/)');
  if (!run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'])) die('tsc failed');

  const tgz = ensureTarball({ reuse: true });
  fs.rmSync(packageDir, { recursive: true, force: true });
  fs.mkdirSync(packageDir, { recursive: true });
  if (!run('tar', ['xzf', tgz, '-C', packageDir, '--strip-components=1'])) die(`cannot unpack ${tgz}`);
  log(`package: ${path.relative(root, tgz)} unpacked in ${path.relative(root, packageDir)}`);

  fs.mkdirSync(outDir, { recursive: true });
  const inputs = path.join(outDir, 'inputs.json');
  await prepareInputs(shared, inputs);

  log('x86 run (host Node, the repository: build/Release/mnq.node or MNQ_ADDON): the reference');
  const x86 = path.join(outDir, 'x86.json');
  if (!run(process.execPath, [__filename, '--worker', inputs, x86, root], { env: { ...process.env } })) die('x86 run failed');
  const ref = JSON.parse(fs.readFileSync(x86, 'utf8'));
  checkCat(ref, 'x86');

  log('x86 run of the package (its x64 prebuild)');
  const x86pkg = path.join(outDir, 'x86-package.json');
  const pkgEnv = { ...process.env };
  delete pkgEnv.MNQ_ADDON;
  if (!run(process.execPath, [__filename, '--worker', inputs, x86pkg, packageDir], { env: pkgEnv })) die('x86 run of the package failed');
  const gotX86 = JSON.parse(fs.readFileSync(x86pkg, 'utf8'));
  checkPrebuild(gotX86, 'linux-x64', 'x86 package');
  checkCat(gotX86, 'x86 package');
  if (!compare(ref, gotX86, 'x86 package')) die('the x64 prebuild gives outputs different from the local build');
  log(`x64 prebuild vs local build (${ref.isa}): bit-identical on ${gotX86.models.length} models`);

  // Both CPU models at once (one qemu process each; the machine has >= 2 cores).
  const runs = cpus.map((cpu) => {
    const want = EXPECTED_ISA[cpu];
    if (!want) die(`unknown CPU model ${cpu}`);
    const out = path.join(outDir, `${cpu}.json`);
    const args = ['-cpu', cpu, '-L', nodeRoot, '-E', `LD_LIBRARY_PATH=${path.join(nodeRoot, 'usr', 'lib', 'aarch64-linux-gnu')}`,
      '-U', 'MNQ_ADDON', '-U', 'MNQ_ISA',
      path.join(nodeRoot, 'usr', 'bin', 'node'), __filename, '--worker', inputs, out, packageDir];
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
    checkPrebuild(got, 'linux-arm64', r.cpu);
    checkCat(got, r.cpu);
    const same = compare(ref, got, r.cpu);
    log(`${r.cpu} (${r.want}) vs x86 (${ref.isa}): ${same ? 'bit-identical' : 'DIFFERENT'} on ${got.models.length} models`);
    ok = ok && same;
  }
  if (!ok) die('arm64 int8 outputs differ from x86');
  log('arm64 int8 outputs (the package\'s arm64 prebuild) bit-identical to x86 for every model and CPU model');
}

/** The run loaded the package's prebuild for `target`, chosen by its loader. */
function checkPrebuild(got, target, label) {
  const want = path.join(packageDir, 'prebuilds', target, 'mnq.glibc.node');
  if (got.addon !== want) die(`${label}: the package loaded ${got.addon}, expected its prebuild ${want}`);
}

/** The cat's top-1 (argmax of the int8 logits; labels of the package) is Egyptian cat. */
function checkCat(got, label) {
  const m = got.models.find((x) => x.model === `${CAT_MODEL} (cat)`);
  if (!m) return;
  const q = new Int8Array(Buffer.from(m.outputs[0], 'base64'));
  let best = 0;
  for (let i = 1; i < q.length; i++) if (q[i] > q[best]) best = i;
  const labels = fs.readFileSync(path.join(packageDir, 'models', 'labels', 'imagenet-1001.txt'), 'utf8').split('\n');
  if (labels[best] !== 'Egyptian cat') die(`${label}: the cat's top-1 is ${best} '${labels[best]}', not Egyptian cat`);
  log(`${label}: cat.png -> ${best} ${labels[best]}`);
}

if (process.argv[2] === '--worker') worker(process.argv[3], process.argv[4], process.argv[5] || root);
else main().catch((e) => die(e.stack || String(e)));
