#!/usr/bin/env node
// The npm `install` script: nothing to do when a prebuilt binary of this platform loads
// (scripts/addon-location.js); otherwise the addon is built from source with node-gyp (npm's own), offline
// with this Node's headers where it has them. Without a compiler, make or python3 it stops before node-gyp
// with one message naming what to install (never a node-gyp stack).
//   MNQ_BUILD_FROM_SOURCE=1 (or npm's --build-from-source): build even where a prebuild fits.
// In a checkout (no prebuilds/: `npm pack` stages them only while it packs) this is `node-gyp rebuild`.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { buildHelp, currentTarget, matchingPrebuild, targetName } = require('./addon-location');

const root = path.resolve(__dirname, '..');
const say = (msg) => console.log(`mnq: ${msg}`);

function onPath(cmd) {
  return (process.env.PATH || '').split(path.delimiter).some((d) => {
    try {
      fs.accessSync(path.join(d || '.', cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The build tools node-gyp needs that are missing here. */
function missingTools() {
  const first = (s) => (s || '').trim().split(/\s+/)[0];
  const missing = [];
  const cxx = first(process.env.CXX);
  if (cxx ? !(onPath(cxx) || fs.existsSync(cxx)) : !['c++', 'g++', 'clang++'].some(onPath)) missing.push(cxx || 'a C++ compiler (g++ or clang++)');
  if (!onPath('make')) missing.push('make');
  const python = process.env.npm_config_python || process.env.PYTHON;
  if (python ? !(onPath(python) || fs.existsSync(python)) : !onPath('python3')) missing.push(python || 'python3');
  return missing;
}

function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')];
  return candidates.find((f) => f && fs.existsSync(f));
}

function main() {
  const fromSource = process.env.MNQ_BUILD_FROM_SOURCE === '1' || process.env.npm_config_build_from_source === 'true';
  const t = currentTarget();
  if (!fromSource) {
    const pre = matchingPrebuild(root, t);
    if (pre.file) {
      try {
        require(pre.file);
        say(`using the prebuilt binary ${path.relative(root, pre.file)} (${targetName(t)}); nothing to build`);
        return 0;
      } catch (e) {
        say(`the prebuilt binary ${path.relative(root, pre.file)} does not load here (${e.message.split('\n')[0]}): building from source`);
      }
    } else if (fs.existsSync(path.join(root, 'prebuilds'))) {
      say(`${pre.reason}: building from source`);
    }
  }
  const missing = missingTools();
  if (missing.length) {
    console.error(`mnq: cannot install on ${targetName(t)} (Node ${process.version}): no prebuilt binary fits and ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} missing.\n${buildHelp(missing)}`);
    return 1;
  }
  const gyp = nodeGyp();
  if (!gyp) {
    console.error(`mnq: cannot build the addon: node-gyp (part of npm) not found beside ${process.execPath}.\n${buildHelp()}`);
    return 1;
  }
  // this Node's own headers when it ships them (official tarballs, NodeSource, Debian): no download
  const args = [gyp, 'rebuild'];
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'common.gypi'))) args.push(`--nodedir=${prefix}`);
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`mnq: building the addon from source failed (node-gyp's output above).\n${buildHelp()}`);
    return 1;
  }
  return 0;
}

process.exitCode = main();
