// Locating the shared test data (real models and images) that lives beside the
// repo: MNQ_SHARED, else ../shared relative to the repo root. Tests that need it
// use describeShared / testShared with the files they need. Where one is missing,
// outside CI the tests are skipped and a message says what is missing and how to
// provide it; under CI (CI=true) they fail with that message instead, so a CI run
// never passes with parity or accuracy unchecked.
import * as fs from 'fs';
import * as path from 'path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** CI=true (or 1): every skip for missing data, tools or models is a failure. */
export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

export function sharedDir(): string {
  return path.resolve(process.env.MNQ_SHARED ?? path.join(REPO_ROOT, '..', 'shared'));
}

/** Absolute path of a file under the shared directory, or null if it is absent. */
export function sharedPath(...parts: string[]): string | null {
  const p = path.join(sharedDir(), ...parts);
  return fs.existsSync(p) ? p : null;
}

/** Absolute path of a file under the shared directory (whether or not it exists). */
export function sharedFile(...parts: string[]): string {
  return path.join(sharedDir(), ...parts);
}

/** The int8 ONNX models ORT parity is checked on: every *.qdq.onnx plus the ONNX zoo QOperator model. */
export function int8Models(): string[] {
  const dir = sharedPath('models', 'onnx');
  if (!dir) return [];
  return fs.readdirSync(dir)
    .filter((f) => f.endsWith('.qdq.onnx') || f === 'mobilenetv2-12-int8.onnx' || /int8\.onnx$/.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

/** The int8 models of ../shared/README.md: int8Models() must find at least these. */
export const KNOWN_INT8_MODELS = [
  'mobilenet_v2_1.0_224_quant.qdq.onnx', 'mobilenet_v3_small_1.0_224_quant.qdq.onnx',
  'mobilenetv2-12-int8.onnx', 'tf2_mobilenet_v2_1.0_224_ptq.qdq.onnx',
];

/** What is missing (paths relative to the shared directory, '/'-separated), for the message. */
function missing(needs: string[]): string[] {
  return needs.filter((n) => !fs.existsSync(path.join(sharedDir(), ...n.split('/'))));
}

function message(what: string, absent: string[]): string {
  return `${what} needs the shared test data, and ${absent.join(', ')} ${absent.length > 1 ? 'are' : 'is'} missing under ${sharedDir()}: `
    + 'put the project\'s shared folder (real models and images, see DEVELOPERS.md "Shared data") at ../shared beside the '
    + 'repository or set MNQ_SHARED to it';
}

const warned = new Set<string>();
function warnOnce(msg: string): void {
  if (warned.has(msg)) return;
  warned.add(msg);
  // eslint-disable-next-line no-console
  console.warn(`[mnq tests] SKIPPED: ${msg}`);
}

/**
 * describe() when every file in `needs` (paths under the shared directory) exists. Otherwise: under CI one
 * failing test saying what is missing; outside CI describe.skip() and a warning with the same message.
 */
export function describeShared(name: string, fn: () => void, needs: string[] = ['models/onnx'],
  also: { why: string | null; how: string } = { why: null, how: '' }): void {
  const absent = missing(needs);
  if (!absent.length && also.why === null) {
    describe(name, fn);
    return;
  }
  if (!absent.length) {
    const msg = `'${name}' needs ${also.why}: ${also.how}`;
    if (IN_CI) describe(name, () => { test('can run here (CI=true: required)', () => { throw new Error(msg); }); });
    else { warnOnce(msg); describe.skip(`${name} [skipped: needs ${also.why}]`, fn); }
    return;
  }
  const msg = message(`'${name}'`, absent);
  if (IN_CI) {
    describe(name, () => { test('has its shared data (CI=true: required)', () => { throw new Error(msg); }); });
    return;
  }
  warnOnce(msg);
  describe.skip(`${name} [skipped: ${absent.join(', ')} missing under ${sharedDir()}]`, fn);
}

type TestFn = (name: string, fn: () => unknown, timeout?: number) => void;

/** test() when every file in `needs` exists; otherwise a failure under CI and a visible skip outside it. */
export function testShared(needs: string[]): TestFn {
  const absent = missing(needs);
  if (!absent.length) return (name, fn, timeout) => test(name, fn as () => Promise<unknown>, timeout);
  return (name, fn, timeout) => {
    const msg = message(`'${name}'`, absent);
    if (IN_CI) { test(name, () => { throw new Error(msg); }); return; }
    warnOnce(msg);
    test.skip(`${name} [skipped: ${absent.join(', ')} missing]`, fn as () => Promise<unknown>, timeout);
  };
}

/**
 * For a test that needs something other than shared data (a built addon, an x86 ONNX Runtime): `why` is
 * what is missing, or null when nothing is; then test(), else a failure under CI and a visible skip
 * outside it (with `how` to provide it), like testShared.
 */
export function testIf(why: string | null, how: string): TestFn {
  if (why === null) return (name, fn, timeout) => test(name, fn as () => Promise<unknown>, timeout);
  return (name, fn, timeout) => {
    const msg = `'${name}' needs ${why}: ${how}`;
    if (IN_CI) { test(name, () => { throw new Error(`${msg} (CI=true: required)`); }); return; }
    warnOnce(msg);
    test.skip(`${name} [skipped: ${why}]`, fn as () => Promise<unknown>, timeout);
  };
}
