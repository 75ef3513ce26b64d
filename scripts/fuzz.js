#!/usr/bin/env node
// `npm run fuzz -- [--count 10000] [--seed N] [--models DIR] ...`: the fuzz suite over malformed ONNX models
// (test/fuzz/run.ts, run from the TypeScript sources; options there).
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.resolve(__dirname, '..');
const r = spawnSync(process.execPath, ['-r', path.join(root, 'test', 'helpers', 'ts-register.js'), path.join(root, 'test', 'fuzz', 'run.ts'), ...process.argv.slice(2)], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
