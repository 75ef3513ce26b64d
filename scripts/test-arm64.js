#!/usr/bin/env node
// `npm run test:arm64`: the native tests cross-built for aarch64 and run under
// qemu-user as a Raspberry Pi 4 (Cortex-A72: ASIMD, no dot product) and a
// Raspberry Pi 5 (Cortex-A76: ASIMD + SDOT).
//
//   1. cmake -S native -B build-arm64 with native/cmake/aarch64-toolchain.cmake, build -j2
//   2. per CPU model: the ISA probe (test/helpers/arm64-isa-probe.cc) must report the
//      expected default ISA (neon on A72, neondot on A76), MNQ_ISA=neondot must be
//      refused on the A72, then every ctest test runs under that CPU model. On the
//      A72 an SDOT is an illegal instruction, so a pass also proves the baseline
//      path never executes one.
//   3. ASan + UBSan build of test_simd_parity (build-arm64-asan), run under the A76,
//      where it checks both neon and neondot against scalar.
//   4. when an arm64 Node is available (scripts/test-arm64-node.js, which runs
//      scripts/arm64-node.sh): the npm package's arm64 prebuild, loaded in an
//      arm64 Node 18 under both CPU models, must give int8 outputs bit-identical
//      to the x86 run on every int8 model of the shared data.
//
// Without aarch64-linux-gnu-g++, qemu-aarch64, cmake or aarch64-linux-gnu-objdump
// the script (or the check) skips with a message, except under CI=true where a
// missing tool is a failure (scripts/ci.js).
// Options (environment; the narrowing ones are refused under CI=true):
// MNQ_ARM64_CPUS=cortex-a72,cortex-a76 (subset), MNQ_ARM64_JOBS (build
// parallelism, default 2), MNQ_ARM64_SANITIZE=0 to leave out step 3,
// MNQ_ARM64_NODE=0 to leave out step 4, MNQ_ARM64_NODE=1 to make a missing arm64
// Node / shared data a failure (as under CI).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { refuseNarrowingUnderCi, skipOrFail } = require('./ci');

refuseNarrowingUnderCi('test:arm64');

const root = path.resolve(__dirname, '..');
const build = path.join(root, 'build-arm64');
const toolchain = path.join(root, 'native', 'cmake', 'aarch64-toolchain.cmake');
const sysroot = '/usr/aarch64-linux-gnu';
const jobs = String(process.env.MNQ_ARM64_JOBS || 2);

// Expected dispatcher choice per emulated CPU.
const CPUS = {
  'cortex-a72': { isa: 'neon', board: 'Raspberry Pi 4', hasDot: false },
  'cortex-a76': { isa: 'neondot', board: 'Raspberry Pi 5', hasDot: true },
};

function log(msg) { console.log(`[test:arm64] ${msg}`); }
function die(msg) { console.error(`[test:arm64] FAIL: ${msg}`); process.exit(1); }

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.error) die(`${cmd}: ${r.error.message}`);
  return r.status === 0;
}

function capture(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.error) die(`${cmd}: ${r.error.message}`);
  return { ok: r.status === 0, out: r.stdout || '', err: r.stderr || '', status: r.status, signal: r.signal };
}

// ------------------------------------------------------------------ tools
const missing = ['aarch64-linux-gnu-g++', 'qemu-aarch64', 'cmake'].filter((t) => !which(t));
if (!fs.existsSync(sysroot)) missing.push(`${sysroot} (libc6-dev-arm64-cross)`);
if (missing.length) {
  skipOrFail('test:arm64', `missing ${missing.join(', ')}: install g++-aarch64-linux-gnu qemu-user cmake ` +
    '(apt-get install -y g++-aarch64-linux-gnu qemu-user cmake)');
  process.exit(0);
}

const cpus = (process.env.MNQ_ARM64_CPUS || Object.keys(CPUS).join(','))
  .split(',').map((s) => s.trim()).filter(Boolean);
for (const c of cpus) if (!CPUS[c]) die(`MNQ_ARM64_CPUS: unknown CPU model '${c}' (known: ${Object.keys(CPUS).join(', ')})`);

// ------------------------------------------------------------------ build
function configure(cpu) {
  return run('cmake', ['-S', 'native', '-B', build, `-DCMAKE_TOOLCHAIN_FILE=${toolchain}`,
    '-DCMAKE_BUILD_TYPE=Release', `-DMNQ_QEMU_CPU=${cpu}`], { stdio: ['ignore', 'ignore', 'inherit'] });
}

const t0 = Date.now();
log(`cross-building the native library and tests in ${path.relative(root, build)} (-j${jobs})`);
if (!configure(cpus[0])) die('cmake configure for aarch64 failed');
if (!run('nice', ['cmake', '--build', build, '-j', jobs])) die('aarch64 build failed');

const lib = path.join(build, 'libmnq_kernels.a');
if (!fs.existsSync(lib)) die(`${lib} was not built`);
const probeSrc = path.join(root, 'test', 'helpers', 'arm64-isa-probe.cc');
const probe = path.join(build, 'arm64-isa-probe');
const stale = !fs.existsSync(probe) ||
  fs.statSync(probe).mtimeMs < Math.max(fs.statSync(lib).mtimeMs, fs.statSync(probeSrc).mtimeMs);
if (stale && !run('aarch64-linux-gnu-g++', ['-std=c++17', '-O1', '-I', path.join(root, 'native'),
  probeSrc, lib, '-lpthread', '-o', probe])) die('building the ISA probe failed');
log(`build done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

// Static check: the dot-product instructions live only in the objects of
// native/kernels/arm/neondot/ (its gemm, direct_conv and depthwise kernels must contain
// SDOT). (The A72 run below proves no tested path executes one; this covers every path.)
function objects(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...objects(p));
    else if (e.name.endsWith('.o')) out.push(p);
  }
  return out;
}
if (which('aarch64-linux-gnu-objdump')) {
  const objs = objects(path.join(build, 'CMakeFiles', 'mnq_kernels.dir'));
  const dotDir = path.join('kernels', 'arm', 'neondot') + path.sep;
  const mustDot = ['gemm.cc.o', 'direct_conv.cc.o', 'depthwise.cc.o'];
  const found = [];
  for (const o of objs) {
    const d = capture('aarch64-linux-gnu-objdump', ['-d', '--no-show-raw-insn', o]);
    if (!d.ok) die(`objdump ${o} failed`);
    const n = (d.out.match(/\t(sdot|udot|usdot|sudot|smmla|ummla|usmmla)\s/g) || []).length;
    const isDot = o.includes(dotDir);
    if (isDot && mustDot.includes(path.basename(o))) {
      if (n === 0) die(`${path.relative(root, o)} contains no SDOT: the neondot kernels are not built`);
      found.push(path.basename(o));
    }
    if (!isDot && n > 0) die(`${path.relative(root, o)} contains ${n} dot-product instructions; only arm/neondot/ may`);
  }
  for (const f of mustDot) if (!found.includes(f)) die(`no arm/neondot/${f} object in the kernel library`);
  log(`static check: dot-product instructions only in arm/neondot/ (${mustDot.join(', ')}; ${objs.length} objects scanned)`);
} else {
  skipOrFail('test:arm64', 'the static check that only arm/neondot/ holds dot-product instructions needs aarch64-linux-gnu-objdump '
    + '(apt-get install -y binutils-aarch64-linux-gnu, which g++-aarch64-linux-gnu brings)');
}

function qemu(cpu, args, env) {
  return capture('qemu-aarch64', ['-cpu', cpu, '-L', sysroot, ...args], env);
}

// ------------------------------------------------------------- per CPU model
const summary = [];
for (const cpu of cpus) {
  const want = CPUS[cpu];
  log(`--- ${cpu} (${want.board}): expecting the ${want.isa} kernels`);
  const env = { MNQ_ISA: '' };
  const p = qemu(cpu, [probe], env);
  process.stdout.write(p.out);
  if (!p.ok) die(`ISA probe failed under ${cpu}: ${p.err.trim() || `signal ${p.signal}`}`);
  const m = /default ISA: (\S+)/.exec(p.out);
  if (!m || m[1] !== want.isa) die(`under ${cpu} the dispatcher chose ${m ? m[1] : '?'}, expected ${want.isa}`);
  const forced = qemu(cpu, [probe], { MNQ_ISA: 'neondot' });
  if (want.hasDot) {
    if (!forced.ok || !/default ISA: neondot/.test(forced.out)) die(`MNQ_ISA=neondot was refused under ${cpu}: ${forced.err.trim()}`);
  } else {
    if (forced.ok) die(`MNQ_ISA=neondot was accepted under ${cpu}, which has no dot product`);
    if (!/not supported/.test(forced.err)) die(`MNQ_ISA=neondot under ${cpu}: unclear error '${forced.err.trim()}'`);
    log(`MNQ_ISA=neondot refused as expected: ${forced.err.trim()}`);
  }

  if (!configure(cpu)) die(`cmake reconfigure for ${cpu} failed`);
  const t1 = Date.now();
  const ok = run('ctest', ['--test-dir', build, '--output-on-failure', '--no-tests=error', '-j', jobs],
    { env: { ...process.env, MNQ_ISA: '' } });
  summary.push({ what: `ctest under ${cpu}`, ok, seconds: (Date.now() - t1) / 1000 });
  if (!ok) die(`native tests failed under qemu ${cpu}`);
}

// ------------------------- step 3: ASan + UBSan, the SIMD parity test on both AArch64 paths
// (qemu-user runs ASan binaries; LeakSanitizer does not work under it.)
if (process.env.MNQ_ARM64_SANITIZE !== '0') {
  const asan = `${build}-asan`;
  const cpu = cpus.includes('cortex-a76') ? 'cortex-a76' : cpus[0];
  log(`ASan + UBSan build of test_simd_parity in ${path.relative(root, asan)}, run under ${cpu}`);
  const t2 = Date.now();
  if (!run('cmake', ['-S', 'native', '-B', asan, `-DCMAKE_TOOLCHAIN_FILE=${toolchain}`, '-DCMAKE_BUILD_TYPE=Release',
    '-DMNQ_SANITIZE=ON', `-DMNQ_QEMU_CPU=${cpu}`], { stdio: ['ignore', 'ignore', 'inherit'] })) die('sanitizer configure failed');
  if (!run('nice', ['cmake', '--build', asan, '-j', jobs, '--target', 'test_simd_parity'])) die('sanitizer build failed');
  const ok = run('ctest', ['--test-dir', asan, '--output-on-failure', '--no-tests=error', '-R', '^test_simd_parity$'],
    { env: { ...process.env, MNQ_ISA: '', ASAN_OPTIONS: 'detect_leaks=0', UBSAN_OPTIONS: 'print_stacktrace=1' } });
  summary.push({ what: `ASan+UBSan test_simd_parity under ${cpu}`, ok, seconds: (Date.now() - t2) / 1000 });
  if (!ok) die(`sanitizer run failed under ${cpu}`);
}

// ------------------------------------------- step 4: the addon in an arm64 Node
const nodeMode = process.env.MNQ_ARM64_NODE;
const nodeScript = path.join(root, 'scripts', 'test-arm64-node.js');
if (nodeMode !== '0' && fs.existsSync(nodeScript)) {
  const args = [nodeScript, ...cpus];
  const ok = run(process.execPath, args, { env: { ...process.env } });
  summary.push({ what: 'addon parity in arm64 Node', ok, seconds: NaN });
  if (!ok) die('arm64 Node parity failed');
}

for (const s of summary) log(`PASS ${s.what}${Number.isNaN(s.seconds) ? '' : ` (${s.seconds.toFixed(0)} s)`}`);
log('all arm64 checks passed');
