#!/usr/bin/env node
// `npm test`: every test suite of the project, in order.
//   1. native kernels and runtime (ctest; plain and under ASan/UBSan)
//   2. TypeScript / addon / ONNX Runtime parity (jest)
//   3. the npm package (scripts/test-package.js): `npm pack` with the prebuilds, installed without a compiler,
//      classifying; the install without prebuilds failing with what to install
//   4. aarch64 under qemu (Cortex-A72 and Cortex-A76), when the cross tools are
//      present (always under CI=true: there a missing tool is a failure), the package's arm64 prebuild included
// Set MNQ_SKIP_NATIVE=1 / MNQ_SKIP_ARM64=1 to leave a stage out while developing; under CI=true these
// (and every other variable that narrows the checks, scripts/ci.js) are refused.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');
const { refuseNarrowingUnderCi } = require('./ci');

refuseNarrowingUnderCi('npm test');

const root = path.resolve(__dirname, '..');
const results = [];

function stage(name, cmd, args) {
  console.log(`\n=== ${name}: ${cmd} ${args.join(' ')}`);
  const t0 = Date.now();
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: process.env });
  const ok = r.status === 0;
  results.push({ name, ok, seconds: ((Date.now() - t0) / 1000).toFixed(1) });
  return ok;
}

const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
if (!process.env.MNQ_SKIP_NATIVE) stage('native', process.execPath, ['scripts/test-native.js']);
stage('js', npx, ['jest', '--ci']);
stage('package', process.execPath, ['scripts/test-package.js']);
if (!process.env.MNQ_SKIP_ARM64) stage('arm64', process.execPath, ['scripts/test-arm64.js']);

console.log('\n=== summary');
for (const r of results) console.log(`${r.ok ? 'PASS' : 'FAIL'}  ${r.name}  (${r.seconds} s)`);
const failed = results.filter((r) => !r.ok).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
