#!/usr/bin/env node
// `npm run prebuild`: the prebuilt Node-API binaries the npm package ships (docs/install.md), one per platform,
// each serving every Node version >= 18 (Node-API) and every CPU of its platform (the kernels pick their ISA
// at run time, as in a local build):
//   linux-x64    g++ (the system's GCC)
//   linux-arm64  aarch64-linux-gnu-g++ (the cross compiler of `npm run test:arm64`)
// Both are built by node-gyp from binding.gyp, with the same flags as a local build (-O3 -ffp-contract=off, no
// -march), offline (the Node headers of this Node: <prefix>/include/node), against Debian 11's glibc 2.31 and
// libstdc++ (scripts/prebuild-sysroot.sh), so that they load on Debian 11 / 12 and Raspberry Pi OS. Each
// binary is then checked: its ELF machine, that it imports only Node-API functions besides glibc <= 2.31,
// libstdc++ <= GLIBCXX_3.4.28 / CXXABI_1.3.12 and libgcc_s, and which libraries it needs.
//
//   node scripts/prebuild.js [linux-x64] [linux-arm64] [--stage]
//   node scripts/prebuild.js --check <file.node> <linux-x64|linux-arm64>   (only the check)
//
// Output: build-prebuild/<platform>-<arch>/mnq.glibc.node (incremental: make rebuilds what changed).
// --stage (`npm pack`'s prepack) also copies them to prebuilds/<platform>-<arch>/, where the package and the
// loader (scripts/addon-location.js) expect them; postpack removes prebuilds/ again, so a checkout never
// loads a stale prebuild.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { PREBUILT, MIN_GLIBC, prebuildFile } = require('./addon-location');

const root = path.resolve(__dirname, '..');
const out = path.resolve(process.env.MNQ_PREBUILD_DIR || path.join(root, 'build-prebuild'));
const jobs = String(process.env.MNQ_PREBUILD_JOBS || 2);

// What the binaries may import from the C++ runtime: Debian 11's libstdc++ (GCC 10).
const MAX_VERSION = { GLIBC: MIN_GLIBC, GLIBCXX: '3.4.28', CXXABI: '1.3.12', GCC: '7.0.0' };
const ALLOWED_NEEDED = /^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|libstdc\+\+\.so\.6|libgcc_s\.so\.1|ld-linux-(x86-64|aarch64)\.so\.[12])$/;

// Per target: compilers, binutils, ELF machine, and where Debian 11's C++ and C headers and libraries sit in
// its sysroot (S).
const TOOLCHAINS = {
  'linux-x64': {
    gypArch: 'x64', cc: 'gcc', cxx: 'g++', objdump: 'objdump', readelf: 'readelf', strip: 'strip', machine: 62,
    includes: (S) => [`${S}/usr/include/c++/10`, `${S}/usr/include/x86_64-linux-gnu/c++/10`, `${S}/usr/include/c++/10/backward`,
      null, `${S}/usr/include/x86_64-linux-gnu`, `${S}/usr/include`],
    startfiles: (S) => `${S}/usr/lib/x86_64-linux-gnu/`,
    libdirs: (S) => [`${S}/usr/lib/gcc/x86_64-linux-gnu/10`, `${S}/usr/lib/x86_64-linux-gnu`, `${S}/lib/x86_64-linux-gnu`],
  },
  'linux-arm64': {
    gypArch: 'arm64', cc: 'aarch64-linux-gnu-gcc', cxx: 'aarch64-linux-gnu-g++', objdump: 'aarch64-linux-gnu-objdump',
    readelf: 'aarch64-linux-gnu-readelf', strip: 'aarch64-linux-gnu-strip', machine: 183,
    includes: (S) => [`${S}/usr/aarch64-linux-gnu/include/c++/10`, `${S}/usr/aarch64-linux-gnu/include/c++/10/aarch64-linux-gnu`,
      `${S}/usr/aarch64-linux-gnu/include/c++/10/backward`, null, `${S}/usr/aarch64-linux-gnu/include`],
    startfiles: (S) => `${S}/usr/aarch64-linux-gnu/lib/`,
    libdirs: (S) => [`${S}/usr/lib/gcc-cross/aarch64-linux-gnu/10`, `${S}/usr/aarch64-linux-gnu/lib`],
  },
};

function log(msg) { console.log(`[prebuild] ${msg}`); }
function die(msg) { console.error(`[prebuild] FAIL: ${msg}`); process.exit(1); }

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.error) die(`${cmd}: ${r.error.message}`);
  return r.status === 0;
}

function capture(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) die(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) die(`${cmd} ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
}

/** npm's own node-gyp (npm runs scripts with npm_config_node_gyp; else the one beside this Node's npm). */
function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')];
  const found = candidates.find((f) => f && fs.existsSync(f));
  if (!found) die('node-gyp not found (it comes with npm): run this through `npm run prebuild`');
  return found;
}

/** The Node headers of this Node (node-gyp's --nodedir), so nothing is downloaded. */
function nodeDir() {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  const candidates = [process.env.npm_config_nodedir, prefix].filter(Boolean);
  const found = candidates.find((d) => fs.existsSync(path.join(d, 'include', 'node', 'node_api.h')) &&
    fs.existsSync(path.join(d, 'include', 'node', 'common.gypi')));
  if (!found) die(`no Node headers in ${candidates.map((d) => path.join(d, 'include', 'node')).join(' or ')} (node_api.h, common.gypi)`);
  return found;
}

function cmpVersion(a, b) {
  const x = a.split('.').map(Number), y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) - (y[i] || 0);
  return 0;
}

/** Checks a built binary; returns a one-line summary of what it needs. */
function checkBinary(file, tc) {
  const head = fs.readFileSync(file).subarray(0, 20);
  const machine = head.readUInt16LE(18);
  if (head.readUInt32BE(0) !== 0x7f454c46 || machine !== tc.machine) die(`${file}: not an ELF for machine ${tc.machine} (got ${machine})`);
  const maxSeen = {};
  const bad = [];
  let registers = false;
  for (const line of capture(tc.objdump, ['-T', file]).split('\n')) {
    // <value> <flags...> <section> <size> <version | (version) | Base> <name>
    const tokens = line.trim().split(/\s+/);
    if (!/^[0-9a-f]{8,}$/.test(tokens[0]) || tokens.length < 5) continue;
    const name = tokens[tokens.length - 1];
    const version = tokens[tokens.length - 2].replace(/[()]/g, '');
    const section = tokens.find((t) => t === '*UND*' || t.startsWith('.'));
    if (section !== '*UND*') {
      if (name === 'napi_register_module_v1') registers = true;
      continue;
    }
    const weak = tokens[1] === 'w';
    const m = /^([A-Z]+)_([0-9.]+)$/.exec(version);
    if (!m) {
      if (!weak && !/^(napi|node_api)_/.test(name)) bad.push(`${name} (unversioned: not Node-API)`);
      continue;
    }
    const [, lib, v] = m;
    if (!(lib in MAX_VERSION)) { bad.push(`${name}@${version}`); continue; }
    if (cmpVersion(v, MAX_VERSION[lib]) > 0) bad.push(`${name}@${version} (newer than ${lib}_${MAX_VERSION[lib]})`);
    if (!maxSeen[lib] || cmpVersion(v, maxSeen[lib]) > 0) maxSeen[lib] = v;
  }
  if (!registers) die(`${file} does not export napi_register_module_v1`);
  const needed = [...capture(tc.readelf, ['-d', file]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  for (const n of needed) if (!ALLOWED_NEEDED.test(n)) bad.push(`needs ${n}`);
  if (bad.length) die(`${path.relative(root, file)} would not load everywhere:\n  ${bad.join('\n  ')}`);
  return `${Object.entries(maxSeen).map(([k, v]) => `${k}_${v}`).join(', ')}; needs ${needed.join(' ')}`;
}

function build(target) {
  const tc = TOOLCHAINS[target];
  const missing = [tc.cxx, tc.cc, tc.objdump, tc.readelf, tc.strip, 'make', 'python3'].filter((t) => !which(t));
  if (missing.length) die(`${target}: missing ${missing.join(', ')} (apt-get install g++ make python3${tc.gypArch === 'arm64' ? ' g++-aarch64-linux-gnu' : ''})`);
  const arch = tc.gypArch;
  if (!run('bash', [path.join(root, 'scripts', 'prebuild-sysroot.sh'), arch], { env: { ...process.env, MNQ_PREBUILD_DIR: out } })) {
    die(`${target}: could not fetch the Debian 11 sysroot (scripts/prebuild-sysroot.sh ${arch})`);
  }
  const S = path.join(out, `sysroot-${arch}`);
  const gccInclude = capture(tc.cxx, ['-print-file-name=include']).trim();
  const flags = ['--sysroot=' + S, '-nostdinc', '-nostdinc++',
    ...tc.includes(S).map((d) => `-isystem ${d || gccInclude}`),
    `-B${tc.startfiles(S)}`, ...tc.libdirs(S).map((d) => `-L${d}`)].join(' ');

  // node-gyp builds in <dir>/build: a staging folder per target, whose entries link to the repository
  const stage = path.join(out, target);
  fs.mkdirSync(stage, { recursive: true });
  for (const f of ['binding.gyp', 'native', 'scripts', 'node_modules']) {
    const link = path.join(stage, f);
    if (!fs.existsSync(link)) fs.symlinkSync(path.join(root, f), link);
  }
  const env = { ...process.env, CC: `${tc.cc} ${flags}`, CXX: `${tc.cxx} ${flags}` };
  const gyp = nodeGyp();
  const nodedir = nodeDir();
  const t0 = Date.now();
  log(`${target}: node-gyp with ${tc.cxx} against ${path.relative(root, S)} (Node headers: ${nodedir}/include/node, -j${jobs})`);
  if (!run(process.execPath, [gyp, 'configure', `--arch=${arch}`, `--nodedir=${nodedir}`], { cwd: stage, env })) die(`${target}: node-gyp configure failed`);
  if (!run('nice', [process.execPath, gyp, 'build', '--jobs', jobs], { cwd: stage, env })) die(`${target}: node-gyp build failed`);
  const built = path.join(stage, 'build', 'Release', 'mnq.node');
  const file = path.join(stage, path.basename(prebuildFile({ platform: 'linux', arch, libc: 'glibc' })));
  if (!run(tc.strip, ['--strip-unneeded', '-o', file, built])) die(`${target}: strip failed`);
  const summary = checkBinary(file, tc);
  log(`${target}: ${path.relative(root, file)}, ${(fs.statSync(file).size / 1024).toFixed(0)} KiB, ${((Date.now() - t0) / 1000).toFixed(0)} s; imports ${summary}`);
  return file;
}

function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--check') {
    // --check <file> <target>: only the load-everywhere check of a built binary
    const tc = TOOLCHAINS[args[2]];
    if (!args[1] || !tc) die(`usage: prebuild.js --check <file.node> <${Object.keys(TOOLCHAINS).join('|')}>`);
    log(`${args[1]}: imports ${checkBinary(path.resolve(args[1]), tc)}`);
    return;
  }
  const stageAll = args.includes('--stage');
  const known = PREBUILT.map((p) => `${p.platform}-${p.arch}`);
  const targets = args.filter((a) => !a.startsWith('--'));
  for (const t of targets) if (!known.includes(t)) die(`unknown target ${t} (known: ${known.join(', ')})`);
  if (process.platform !== 'linux' || process.arch !== 'x64') die('prebuilds are built on linux-x64 (the arm64 one with the cross compiler)');
  const files = (targets.length ? targets : known).map((t) => ({ target: t, file: build(t) }));
  if (stageAll) {
    for (const { target, file } of files) {
      const p = PREBUILT.find((x) => `${x.platform}-${x.arch}` === target);
      const dest = path.join(root, prebuildFile(p));
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.copyFileSync(file, dest);
      log(`staged ${path.relative(root, dest)}`);
    }
  }
}

main();
