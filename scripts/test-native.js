#!/usr/bin/env node
// `npm run test:native`: configure, build (-j2) and run the native ctest suite,
// first as a normal Release build in build-native/, then with AddressSanitizer
// and UndefinedBehaviorSanitizer (MNQ_SANITIZE=ON) in build-native-asan/; then
// a short libFuzzer run over the plan check and Model (scripts/fuzz-native.js,
// clang; build-native-fuzz/). Exits non-zero if any step fails. MNQ_SKIP_ASAN=1
// / MNQ_SKIP_FUZZ=1 leave the sanitizer / fuzz runs out (refused under CI=true).
// ctest runs with --no-tests=error, and every test of the suite must be registered: ort_parity is left
// out by CMake when it finds no node, and a missing test would otherwise pass unnoticed.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');
const { refuseNarrowingUnderCi } = require('./ci');

refuseNarrowingUnderCi('test:native');
const TESTS = ['test_errors', 'test_reference', 'test_runtime', 'test_simd_parity', 'test_sources', 'ort_parity'];

const root = path.resolve(__dirname, '..');
const jobs = process.env.MNQ_JOBS || '2';

function run(cmd, args, env) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.error) {
    console.error(`test-native: cannot run ${cmd}: ${r.error.message}`);
    return false;
  }
  return r.status === 0;
}

/** The names of the tests ctest knows in `dir` (ctest -N). */
function registered(dir) {
  const r = spawnSync('ctest', ['--test-dir', dir, '-N'], { cwd: root, encoding: 'utf8' });
  return new Set([...(r.stdout || '').matchAll(/Test\s+#\d+: (\S+)/g)].map((m) => m[1]));
}

function allRegistered(dir) {
  const have = registered(dir);
  const absent = TESTS.filter((t) => !have.has(t));
  if (absent.length) console.error(`test-native: ${absent.join(', ')} not registered in ${dir} (ort_parity needs node on the PATH when cmake configures)`);
  return absent.length === 0;
}

function suite(name, dir, cmakeArgs, env) {
  console.log(`\n--- native tests: ${name} (${dir})`);
  const t0 = Date.now();
  const ok =
    run('cmake', ['-S', 'native', '-B', dir, '-DCMAKE_BUILD_TYPE=Release', ...cmakeArgs]) &&
    run('cmake', ['--build', dir, '-j', jobs]) &&
    allRegistered(dir) &&
    run('ctest', ['--test-dir', dir, '--output-on-failure', '--no-tests=error', '-j', jobs], env);
  console.log(`--- ${name}: ${ok ? 'PASS' : 'FAIL'} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  return ok;
}

let ok = suite('release', 'build-native', ['-DMNQ_SANITIZE=OFF'], {});
if (!process.env.MNQ_SKIP_ASAN) {
  ok =
    suite('asan+ubsan', 'build-native-asan', ['-DMNQ_SANITIZE=ON'], {
      ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
      MNQ_TEST_QUICK: '1',
    }) && ok;
}
if (!process.env.MNQ_SKIP_FUZZ) {
  console.log('\n--- native fuzz: fuzz_plan, 30 s (scripts/fuzz-native.js)');
  ok = run(process.execPath, [path.join(__dirname, 'fuzz-native.js'), '--seconds', '30'], {}) && ok;
}
process.exit(ok ? 0 : 1);
