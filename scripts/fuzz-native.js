#!/usr/bin/env node
// The libFuzzer target over the runtime's plan check and Model (native/fuzz/fuzz_plan.cc): builds it with clang
// under ASan + UBSan in build-native-fuzz/ (-j2), then fuzzes for --seconds (default 30: the CI run; give hours
// for a real campaign) on --workers processes. The corpus grows in build-native-fuzz/corpus/ across runs; a
// crash, leak, UB report, timeout or out-of-memory is written to build-native-fuzz/artifacts/ and fails the run.
//
//   npm run fuzz:native -- [--seconds 3600] [--workers 2]
//
// Needs clang and its libFuzzer runtime (Debian: apt-get install clang libclang-rt-14-dev): without them a
// SKIPPED line, and a failure under CI=true. Part of `npm run test:native`.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { skipOrFail } = require('./ci');

const root = path.resolve(__dirname, '..');
const dir = path.join(root, 'build-native-fuzz');
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : dflt; };
const seconds = Number(opt('seconds', '30'));
const workers = Number(opt('workers', '1'));
const jobs = process.env.MNQ_JOBS || '2';

function run(cmd, argv, options = {}) {
  console.log(`$ ${cmd} ${argv.join(' ')}`);
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit', ...options });
  if (r.error) console.error(`fuzz-native: cannot run ${cmd}: ${r.error.message}`);
  return r.status === 0;
}

const clang = spawnSync('clang++', ['--version'], { encoding: 'utf8' });
if (clang.error || clang.status !== 0) {
  skipOrFail('fuzz-native', 'clang++ is not installed (apt-get install clang libclang-rt-14-dev)');
  process.exit(0);
}
const t0 = Date.now();
const built = run('cmake', ['-S', 'native', '-B', dir, '-DCMAKE_BUILD_TYPE=Release', '-DMNQ_SANITIZE=ON', '-DMNQ_FUZZ=ON', '-DMNQ_BUILD_TESTS=OFF'],
  { env: { ...process.env, CXX: 'clang++' } })
  && run('cmake', ['--build', dir, '--target', 'fuzz_plan', '-j', jobs]);
if (!built) {
  console.error('fuzz-native: FAIL: the fuzz target did not build (is libclang-rt-14-dev, the libFuzzer runtime, installed?)');
  process.exit(1);
}
const corpus = path.join(dir, 'corpus');
// inputs that once failed (read first, never written): native/fuzz/regressions/
const REGRESSIONS = path.join(__dirname, '..', 'native', 'fuzz', 'regressions');
const artifacts = path.join(dir, 'artifacts');
fs.mkdirSync(corpus, { recursive: true });
fs.mkdirSync(artifacts, { recursive: true });
const before = new Set(fs.readdirSync(artifacts));
const fuzzArgs = [`-max_total_time=${seconds}`, '-rss_limit_mb=2048', '-timeout=30', '-print_final_stats=1',
  `-artifact_prefix=${artifacts}${path.sep}`, corpus, REGRESSIONS];
if (workers > 1) fuzzArgs.unshift(`-jobs=${workers}`, `-workers=${workers}`);
// cwd: with --workers, libFuzzer writes each job's log (fuzz-N.log) there
const ok = run(path.join(dir, 'fuzz_plan'), fuzzArgs, {
  cwd: dir,
  env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1' },
});
const found = fs.readdirSync(artifacts).filter((f) => !before.has(f));
console.log(`fuzz-native: ${ok && !found.length ? 'PASS' : 'FAIL'} (${seconds} s of fuzzing, corpus ${fs.readdirSync(corpus).length} inputs, `
  + `${((Date.now() - t0) / 1000).toFixed(1)} s in all)${found.length ? `; new artifacts: ${found.map((f) => path.join(artifacts, f)).join(', ')}` : ''}`);
process.exit(ok && !found.length ? 0 : 1);
