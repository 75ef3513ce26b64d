#!/usr/bin/env node
// `npm test`, stage package: the npm tarball as a user installs it (issue #18, docs/install.md).
//   1. `npm pack` (prepack builds and stages the prebuilds: scripts/prebuild.js) -> build-package/mnq-<v>.tgz;
//      its file list: both prebuilds, dist/, the native sources for a local build; no tests, build dirs, maps.
//   2. A PATH with only node, npm, npx and sh (no g++ / cc / c++ / make / python3), an empty folder, `npm install`
//      of the tarball (registry only, --prefer-offline): the install script takes the prebuild; then
//      `npx mnq classify cat.png --model <int8 model>` prints Egyptian cat first; node_modules <= 40 MB and
//      holds no onnxruntime-node, fastify or bullmq; `require('mnq')` loads neither sharp nor onnxruntime-node;
//      `npx mnq calibrate` says in one line how to add onnxruntime-node and exits 2.
//   3. The same tarball with prebuilds/ removed, installed with that PATH: the install fails, naming what to
//      install (g++, make, python3), and node-gyp never runs (no gyp output, no stack).
// scripts/test-arm64-node.js loads the same tarball's arm64 prebuild under qemu (bar 2).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { skipOrFail } = require('./ci');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'build-package');
const MAX_NODE_MODULES_MB = 40;
const TOOLCHAIN = ['g++', 'gcc', 'cc', 'c++', 'clang++', 'make', 'python3', 'python'];

function log(msg) { console.log(`[test:package] ${msg}`); }
function die(msg) { console.error(`[test:package] FAIL: ${msg}`); process.exit(1); }

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) die(`${cmd}: ${r.error.message}`);
  return { ok: r.status === 0, status: r.status, out: r.stdout || '', err: r.stderr || '' };
}

/** Newest modification time under the given paths (files and folders, recursively). */
function newest(paths) {
  let t = 0;
  const walk = (p) => {
    const st = fs.statSync(p);
    t = Math.max(t, st.mtimeMs);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  for (const p of paths) if (fs.existsSync(path.join(root, p))) walk(path.join(root, p));
  return t;
}

/**
 * The tarball of this checkout: build-package/mnq-<version>.tgz, packed (with fresh prebuilds) unless `reuse`
 * and it is newer than every packed source.
 */
function ensureTarball({ reuse = false } = {}) {
  const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const tgz = path.join(out, `mnq-${version}.tgz`);
  const sources = ['package.json', 'binding.gyp', 'lib', 'native/kernels', 'native/runtime', 'native/addon', 'vendor', 'models', 'scripts'];
  if (reuse && fs.existsSync(tgz) && fs.statSync(tgz).mtimeMs > newest(sources)) return tgz;
  fs.mkdirSync(out, { recursive: true });
  log('npm pack (prepack: scripts/prebuild.js --stage)');
  const r = spawnSync('npm', ['pack', '--pack-destination', out], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0 || !fs.existsSync(tgz)) die('npm pack failed');
  return tgz;
}

/** Disk usage of a folder in bytes (blocks, as du counts them). */
function diskUsage(dir) {
  let bytes = 0;
  const walk = (p) => {
    const st = fs.lstatSync(p);
    bytes += st.blocks * 512;
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(dir);
  return bytes;
}

/** A folder of links to node, npm, npx and sh: a PATH on which no compiler, make or python exists. */
function bareBin(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const npmBin = path.dirname(fs.realpathSync(sh('sh', ['-c', 'command -v npm']).out.trim()));
  const links = { node: process.execPath, sh: '/bin/sh' };
  for (const t of ['npm', 'npx']) links[t] = sh('sh', ['-c', `command -v ${t}`]).out.trim() || path.join(npmBin, `${t}-cli.js`);
  for (const [name, target] of Object.entries(links)) fs.symlinkSync(target, path.join(dir, name));
  const env = { HOME: process.env.HOME, PATH: dir, npm_config_cache: sh('npm', ['config', 'get', 'cache']).out.trim() };
  const found = TOOLCHAIN.filter((t) => sh('/bin/sh', ['-c', `command -v ${t}`], { env }).ok);
  if (found.length) die(`the bare PATH still finds ${found.join(', ')}`);
  return env;
}

function npmInstall(app, tgz, env) {
  fs.rmSync(app, { recursive: true, force: true });
  fs.mkdirSync(app, { recursive: true });
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  return sh('npm', ['install', tgz, '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts'], { cwd: app, env });
}

function checkFileList(tgz) {
  const files = sh('tar', ['tzf', tgz]).out.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
  const must = ['prebuilds/linux-x64/mnq.glibc.node', 'prebuilds/linux-arm64/mnq.glibc.node', 'dist/index.js', 'dist/cli.js',
    'binding.gyp', 'native/sources.txt', 'native/addon/addon.cc', 'scripts/install.js', 'scripts/addon-location.js',
    'vendor/onnx-proto/onnx.js', 'models/labels/imagenet-1001.txt'];
  for (const f of must) if (!files.includes(f)) die(`the tarball lacks ${f}`);
  const banned = files.filter((f) => /^(test|build[^/]*|native\/tests|native\/bench|lib|docs|\.ci)\//.test(f) || f.endsWith('.map')
    || /(^|\/)(shared|node_modules)\//.test(f));
  if (banned.length) die(`the tarball holds files it must not: ${banned.slice(0, 10).join(', ')}`);
  const kb = fs.statSync(tgz).size / 1024;
  log(`tarball ${path.relative(root, tgz)}: ${files.length} files, ${kb.toFixed(0)} KiB`);
}

function main() {
  const shared = path.resolve(process.env.MNQ_SHARED || path.join(root, '..', 'shared'));
  const model = path.join(shared, 'models', 'onnx', 'mobilenet_v2_1.0_224_quant.qdq.onnx');
  const floatModel = path.join(shared, 'models', 'onnx', 'mobilenet_v1_0.25_128_quant.float.onnx');
  const cat = path.join(shared, 'data', 'coral', 'cat.png');
  const missing = [model, floatModel, cat].filter((f) => !fs.existsSync(f));
  if (missing.length) { skipOrFail('test:package', `missing ${missing.join(', ')} (the shared folder: MNQ_SHARED)`); return; }

  const tgz = ensureTarball();
  checkFileList(tgz);
  // outside the repository, where no node_modules above the app can lend it a package
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-package-'));
  for (let d = path.dirname(work); ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'node_modules'))) die(`${path.join(d, 'node_modules')} exists above ${work}: packages there would leak into the install`);
    if (d === path.dirname(d)) break;
  }
  const env = bareBin(path.join(work, 'bin'));
  log(`installing into empty folders with PATH=${env.PATH} (node, npm, npx, sh: no ${TOOLCHAIN.join(' / ')})`);

  // bar 1 and 3: the tarball, runtime only
  const app = path.join(work, 'app');
  const inst = npmInstall(app, tgz, env);
  if (!inst.ok) die(`npm install of the tarball failed:\n${inst.out}${inst.err}`);
  const used = inst.out + inst.err;
  if (/gyp (info|ERR)/.test(used)) die(`the install ran node-gyp although a prebuild fits:\n${used}`);
  log(`install: ${(used.match(/mnq: .*/) || ['(install script not run by this npm)'])[0]}`);
  const npx = (args) => sh('npx', ['--no-install', 'mnq', ...args], { cwd: app, env });
  const c = npx(['classify', cat, '--model', model, '--top', '3']);
  if (!c.ok) die(`npx mnq classify failed (exit ${c.status}):\n${c.out}${c.err}`);
  const top = (c.out.split('\n').find((l) => /%/.test(l)) || '').trim();
  if (!/Egyptian cat/.test(top)) die(`npx mnq classify: top-1 is not Egyptian cat:\n${c.out}`);
  log(`npx mnq classify cat.png --model ${path.basename(model)}: ${top}`);
  const nm = path.join(app, 'node_modules');
  for (const p of ['onnxruntime-node', 'fastify', 'bullmq', 'prom-client', '@fastify/multipart', 'node-gyp']) {
    if (fs.existsSync(path.join(nm, p))) die(`a runtime-only install holds ${p}`);
  }
  const mb = diskUsage(nm) / 1048576;
  log(`node_modules: ${mb.toFixed(1)} MB (limit ${MAX_NODE_MODULES_MB} MB)`);
  if (mb > MAX_NODE_MODULES_MB) die(`node_modules of a runtime-only install is ${mb.toFixed(1)} MB, over ${MAX_NODE_MODULES_MB} MB`);
  const probe = "require('mnq'); const m = new Set(Object.keys(require.cache).map((f) => (/node_modules\\/((@[^/]+\\/)?[^/]+)/.exec(f) || [])[1]).filter(Boolean)); console.log([...m].join(' '))";
  const r = sh('node', ['-e', probe], { cwd: app, env });
  if (!r.ok) die(`require('mnq') failed: ${r.err}`);
  const loaded = r.out.trim().split(/\s+/);
  const eager = loaded.filter((p) => /^(sharp|@img\/.*|onnxruntime-.*)$/.test(p));
  if (eager.length) die(`require('mnq') loads ${eager.join(', ')}`);
  log(`require('mnq') loads: ${loaded.join(' ')}`);
  const cal = npx(['calibrate', floatModel, '--images', path.join(shared, 'data', 'imagenet-sample', 'calib'), '-o', path.join(app, 'x.onnx')]);
  const calLines = cal.err.trim().split('\n');
  if (cal.status !== 2 || calLines.length !== 1 || !/npm install onnxruntime-node/.test(calLines[0])) {
    die(`npx mnq calibrate without onnxruntime-node: expected one line naming 'npm install onnxruntime-node' and exit 2, got exit ${cal.status}:\n${cal.out}${cal.err}`);
  }
  log(`npx mnq calibrate (no onnxruntime-node): exit 2, ${calLines[0]}`);

  // bar 4: no prebuild fits, no toolchain
  const bare = path.join(work, 'noprebuilds');
  fs.rmSync(bare, { recursive: true, force: true });
  fs.mkdirSync(bare, { recursive: true });
  if (!sh('tar', ['xzf', tgz, '-C', bare]).ok) die('cannot unpack the tarball');
  fs.rmSync(path.join(bare, 'package', 'prebuilds'), { recursive: true, force: true });
  const tgz2 = path.join(work, 'mnq-noprebuilds.tgz');
  if (!sh('tar', ['czf', tgz2, '-C', bare, 'package']).ok) die('cannot pack the tarball without prebuilds');
  const fail = npmInstall(path.join(work, 'app-noprebuilds'), tgz2, env);
  const text = fail.out + fail.err;
  if (fail.ok) die(`installing without prebuilds and without a toolchain succeeded:\n${text}`);
  for (const want of ['no prebuilt binary fits', 'g++', 'make', 'python3', 'apt-get install']) {
    if (!text.includes(want)) die(`the failed install does not say '${want}':\n${text}`);
  }
  if (/gyp (info|ERR)|node-gyp\/lib|^\s+at /m.test(text)) die(`the failed install shows node-gyp output or a stack:\n${text}`);
  log(`without prebuilds and toolchain the install fails with: ${(text.match(/mnq: cannot install.*/) || [''])[0]}`);
  fs.rmSync(work, { recursive: true, force: true });
  log('package checks passed');
}

if (require.main === module) main();
module.exports = { ensureTarball };
