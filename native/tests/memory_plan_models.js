#!/usr/bin/env node
// Compiles the real int8 models of the shared data (../shared/models/onnx, or
// MNQ_SHARED) with mnq's compiler (dist/, built by `npm run build:ts`), each
// as loaded and with every tensor kept ({ keep: 'all' }: no fusion, every
// tensor an output), and writes the plans' topology (tensor sizes, which op
// reads and writes what) as text to the file named by the first argument, for
// memory_plan_models.cc. Exits 77 (ctest: skipped) when dist/ or the shared
// models are missing.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const compilerDir = path.join(root, 'dist', 'compiler');
if (!fs.existsSync(path.join(compilerDir, 'index.js'))) {
  console.log(`SKIP: ${compilerDir} is not built (npm run build:ts)`);
  process.exit(77);
}
const modelsDir = path.join(path.resolve(process.env.MNQ_SHARED || path.join(root, '..', 'shared')), 'models', 'onnx');
const files = fs.existsSync(modelsDir)
  ? fs.readdirSync(modelsDir).filter((f) => f.endsWith('.qdq.onnx') || /int8\.onnx$/.test(f)).sort()
  : [];
if (!files.length) {
  console.log(`SKIP: no int8 models in ${modelsDir} (set MNQ_SHARED)`);
  process.exit(77);
}
const { compile } = require(compilerDir);

const lines = [];
for (const f of files) {
  for (const keep of [undefined, 'all']) {
    const { plan } = compile(path.join(modelsDir, f), { keep });
    lines.push(`plan ${f}${keep ? ':keep-all' : ''} ${keep ? 'all-outputs' : 'as-loaded'}`);
    lines.push(`input ${plan.input}`);
    lines.push(`outputs ${plan.outputs.length} ${plan.outputs.join(' ')}`);
    lines.push(`tensors ${plan.tensors.length}`);
    for (const t of plan.tensors) lines.push(`${t.h} ${t.w} ${t.c}`);
    lines.push(`ops ${plan.ops.length}`);
    for (const op of plan.ops) lines.push(`${op.inputs.length} ${op.inputs.join(' ')} ${op.output}`);
  }
}
fs.writeFileSync(process.argv[2], lines.join('\n') + '\n');
console.log(`wrote ${files.length * 2} plans of ${files.join(', ')}`);
