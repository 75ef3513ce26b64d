#!/usr/bin/env node
// `npm run bench:kernels [-- --json] [-- --isa NAME --model v2|v3l|v3s --min-ms N]`:
// builds the native benchmark (Release, build-native/) and runs it. With --json
// it prints one JSON object per line: {kernel, isa, shape, macs, ns, gmacs, model, layer}
// for every 1x1 / depthwise / stem / classifier layer of MobileNetV2-1.0-224,
// V3-Large and V3-Small, for every ISA this CPU supports. Build output goes to
// stderr so stdout stays machine-readable.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');
const fs = require('fs');

const root = path.resolve(__dirname, '..');
const dir = path.join(root, 'build-native');
const args = process.argv.slice(2);

function run(cmd, cmdArgs) {
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: ['ignore', process.stderr, 'inherit'] });
  if (r.status !== 0) {
    console.error(`bench-kernels: ${cmd} ${cmdArgs.join(' ')} failed`);
    process.exit(1);
  }
}
run('cmake', ['-S', 'native', '-B', dir, '-DCMAKE_BUILD_TYPE=Release', '-DMNQ_SANITIZE=OFF']);
run('cmake', ['--build', dir, '-j', process.env.MNQ_JOBS || '2', '--target', 'bench_kernels']);
const exe = path.join(dir, 'bench_kernels');
if (!fs.existsSync(exe)) {
  console.error(`bench-kernels: ${exe} was not built`);
  process.exit(1);
}
const r = spawnSync(exe, args, { stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
