#!/usr/bin/env node
// Prints the native sources for binding.gyp, space separated, relative to the
// repository root: every entry of the source list given as the first argument
// (native/sources.txt, paths relative to its folder), then every .cc in the
// folders given after it (native/addon). Used as <!@(node scripts/native-sources.js ...).
'use strict';
const fs = require('fs');
const path = require('path');

const [list, ...dirs] = process.argv.slice(2);
const base = path.dirname(list);
const out = fs
  .readFileSync(list, 'utf8')
  .split(/\r?\n/)
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'))
  .map((l) => path.posix.join(base, l));
for (const dir of dirs) {
  if (!fs.existsSync(dir)) continue;
  for (const f of fs.readdirSync(dir).sort()) if (f.endsWith('.cc')) out.push(path.posix.join(dir, f));
}
process.stdout.write(out.join(' ') + '\n');
