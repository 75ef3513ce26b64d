// Locating the shared test data (real models and images) that lives beside the
// repo: MNQ_SHARED, else ../shared relative to the repo root. Tests that need it
// use describeShared / sharedPath and skip with a message saying why.
import * as fs from 'fs';
import * as path from 'path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

export function sharedDir(): string {
  return path.resolve(process.env.MNQ_SHARED ?? path.join(REPO_ROOT, '..', 'shared'));
}

/** Absolute path of a file under the shared directory, or null if it is absent. */
export function sharedPath(...parts: string[]): string | null {
  const p = path.join(sharedDir(), ...parts);
  return fs.existsSync(p) ? p : null;
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

let warned = false;
/** describe() when the shared data is present, else describe.skip() with a clear message (printed once). */
export function describeShared(name: string, fn: () => void): void {
  if (sharedPath('models', 'onnx')) {
    describe(name, fn);
    return;
  }
  if (!warned) {
    warned = true;
    // eslint-disable-next-line no-console
    console.warn(`[mnq tests] shared data not found at ${sharedDir()} (set MNQ_SHARED): skipping tests that need real models and images`);
  }
  describe.skip(`${name} (needs shared data at ${sharedDir()}; set MNQ_SHARED)`, fn);
}
