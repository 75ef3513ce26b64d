// Where mnq's native addon is found, in loading order, and what to say when none fits: the one rule of the
// loader (lib/native.ts), the install script (scripts/install.js) and the prebuild script (scripts/prebuild.js).
//   1. MNQ_ADDON, when set (a development override);
//   2. the prebuilt binary of this platform: prebuilds/<platform>-<arch>/mnq.<libc>.node (Node-API, so one file
//      serves every Node version; scripts/prebuild.js builds them, docs/install.md);
//   3. a local build: build/Release/mnq.node (node-gyp, `npm install` where no prebuild fits).
// Plain CommonJS: scripts/install.js runs it before the TypeScript is compiled.
'use strict';
const fs = require('fs');
const path = require('path');

/** The platforms the package ships prebuilt binaries for (scripts/prebuild.js builds each). */
const PREBUILT = [
  { platform: 'linux', arch: 'x64', libc: 'glibc' },
  { platform: 'linux', arch: 'arm64', libc: 'glibc' },
];

/** The oldest glibc the prebuilds load on (they are built against Debian 11's: scripts/prebuild.js checks). */
const MIN_GLIBC = '2.31';

/** This process's platform: { platform, arch, libc ('glibc' | 'musl' | ''), glibc (its version or '') }. */
function currentTarget() {
  let glibc = '';
  if (process.platform === 'linux' && process.report) {
    // the report's header says which glibc this Node runs on (none: musl); without its network section, whose
    // host name lookups can stall where DNS is missing (as detect-libc does)
    const exclude = process.report.excludeNetwork;
    process.report.excludeNetwork = true;
    try {
      glibc = process.report.getReport().header.glibcVersionRuntime || '';
    } finally {
      process.report.excludeNetwork = exclude;
    }
  }
  const libc = process.platform !== 'linux' ? '' : glibc ? 'glibc' : 'musl';
  return { platform: process.platform, arch: process.arch, libc, glibc };
}

function targetName(t) {
  return `${t.platform}-${t.arch}${t.libc && t.libc !== 'glibc' ? ` (${t.libc})` : ''}`;
}

/** The prebuilt binary's path for a target, relative to the package root. */
function prebuildFile(t) {
  return path.join('prebuilds', `${t.platform}-${t.arch}`, `mnq.${t.libc || 'any'}.node`);
}

/** The local build's path, relative to the package root. */
const LOCAL_BUILD = path.join('build', 'Release', 'mnq.node');

function versionAtLeast(v, min) {
  const a = v.split('.').map(Number), b = min.split('.').map(Number);
  for (let i = 0; i < b.length; i++) if ((a[i] || 0) !== b[i]) return (a[i] || 0) > b[i];
  return true;
}

/**
 * The prebuild for this process, or why there is none: { file (absolute) } or { reason }.
 */
function matchingPrebuild(root, t = currentTarget()) {
  const shipped = PREBUILT.find((p) => p.platform === t.platform && p.arch === t.arch && p.libc === t.libc);
  if (!shipped) return { reason: `no prebuilt binary for ${targetName(t)}` };
  if (t.libc === 'glibc' && !versionAtLeast(t.glibc, MIN_GLIBC)) {
    return { reason: `the prebuilt binary for ${targetName(t)} needs glibc >= ${MIN_GLIBC}, this system has ${t.glibc}` };
  }
  const file = path.join(root, prebuildFile(t));
  if (!fs.existsSync(file)) return { reason: `no ${prebuildFile(t)} in ${root}` };
  return { file };
}

/**
 * Where to look, in order: [{ file (absolute), kind }] (kind: 'MNQ_ADDON' | 'prebuild' | 'local build'), and
 * `skipped`: why no prebuild is among them. MNQ_ADDON, when set, is the only place.
 */
function addonCandidates(root) {
  if (process.env.MNQ_ADDON) return { list: [{ file: path.resolve(process.env.MNQ_ADDON), kind: 'MNQ_ADDON' }], skipped: '' };
  const list = [];
  const pre = matchingPrebuild(root);
  if (pre.file) list.push({ file: pre.file, kind: 'prebuild' });
  list.push({ file: path.join(root, LOCAL_BUILD), kind: 'local build' });
  return { list, skipped: pre.reason || '' };
}

/** The shipped platforms, for messages: 'linux-x64 and linux-arm64 (glibc >= 2.31)'. */
function shippedPlatforms() {
  return `${PREBUILT.map((p) => `${p.platform}-${p.arch}`).join(' and ')} (glibc >= ${MIN_GLIBC})`;
}

/**
 * What to install when no prebuild fits and there is no local build (the loader's error and the install
 * script's message when the toolchain is missing). `missing`: the build tools not found, if known.
 */
function buildHelp(missing) {
  const tools = missing && missing.length ? missing.join(', ') : 'a C++17 compiler (g++ or clang++), make and python3';
  return [
    `mnq ships prebuilt binaries for ${shippedPlatforms()}; here it has to build its addon from source, which needs ${tools}.`,
    'Install them (Debian, Ubuntu, Raspberry Pi OS: `sudo apt-get install -y g++ make python3`; Alpine: `apk add g++ make python3`;',
    'Fedora: `sudo dnf install gcc-c++ make python3`), then build it in your project with `npm rebuild mnq --foreground-scripts`',
    '(an npm that blocks dependencies\' install scripts runs it once allowed: `npm approve-scripts mnq` first).',
  ].join('\n');
}

module.exports = {
  PREBUILT, MIN_GLIBC, LOCAL_BUILD, currentTarget, targetName, prebuildFile, matchingPrebuild, addonCandidates,
  shippedPlatforms, buildHelp,
};
