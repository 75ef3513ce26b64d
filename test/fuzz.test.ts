// The fuzz suite (test/fuzz/, issue #19) in CI: a few hundred malformed models made from the tiny int8 graphs and,
// where ../shared has it, a real int8 MobileNet, each loaded and run by mnq in a child process with a hang timer.
// No case may crash or hang a child, and every rejection must be an OnnxFormatError or UnsupportedModelError of
// mnq's own checks naming its source. The full run is `npm run fuzz -- --count 10000` (docs/robustness.md).
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { generateCases } from './fuzz/generate';
import { runFuzz, FuzzSummary } from './fuzz/run';
import { folderSeeds, tinySeeds } from './fuzz/seeds';
import { sharedFile, testShared } from './helpers/shared';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-fuzz-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const digest = (seed: number, count: number) => {
  const h = createHash('sha256');
  for (const c of generateCases(tinySeeds(), seed, count)) h.update(c.bytes).update(c.mutations.join('\n'));
  return h.digest('hex');
};

/** What a summary says went wrong, in one object (empty lists when nothing did). */
const failures = (s: FuzzSummary) => ({ crashes: s.crashes, hangs: s.hangs, unexpected: s.unexpected });

describe('fuzz', () => {
  test('the generator is deterministic: the same seed gives the same cases, another seed others', () => {
    expect(digest(7, 60)).toBe(digest(7, 60));
    expect(digest(8, 60)).not.toBe(digest(7, 60));
    const kinds = new Set([...generateCases(tinySeeds(), 7, 400)].flatMap((c) => c.mutations.map((m) => m.slice(0, m.indexOf(':')))));
    expect([...kinds].sort()).toEqual(['attr', 'bytes', 'cycle', 'dims', 'dtype', 'missing', 'names', 'op', 'opset', 'scale', 'shape', 'zeroPoint']);
  });

  test('the runner reports a child that aborts as a crash and one that does not answer as a hang, and goes on', async () => {
    const child = path.join(tmp, 'bad-child.js');
    fs.writeFileSync(child, `
      process.on('message', (m) => {
        if (m.id === 1) process.abort();
        else if (m.id === 2) setInterval(() => {}, 1000);
        else process.send({ id: m.id, result: 'rejected', errorName: 'OnnxFormatError', message: 'model (3 bytes): x', modelError: true, ms: 0 });
      });
      process.send({ ready: true });`);
    const s = await runFuzz({ seeds: tinySeeds(), seed: 1, count: 6, workers: 2, timeoutMs: 3000, child, saveDir: path.join(tmp, 'saved') });
    expect(s.cases).toBe(6);
    expect(s.crashes.map((f) => f.id)).toEqual([1]);
    expect(s.crashes[0].what).toMatch(/SIGABRT/);
    expect(s.hangs.map((f) => f.id)).toEqual([2]);
    expect(s.rejected).toEqual({ OnnxFormatError: 4 });
    expect(fs.readdirSync(path.join(tmp, 'saved')).sort()).toEqual(['seed1-case1.json', 'seed1-case1.onnx', 'seed1-case2.json', 'seed1-case2.onnx']);
  }, 60_000);

  test('300 malformed tiny int8 graphs: no crash, no hang, every rejection an mnq model error naming its source', async () => {
    const s = await runFuzz({ seeds: tinySeeds(), seed: 19, count: 300, workers: 2, timeoutMs: 30_000, saveDir: path.join(tmp, 'tiny') });
    expect(failures(s)).toEqual({ crashes: [], hangs: [], unexpected: [] });
    expect(s.cases).toBe(300);
    expect(s.loaded).toBeGreaterThan(10); // some damage leaves a model that still loads and runs
    expect(s.rejected.OnnxFormatError).toBeGreaterThan(10);
    expect(s.rejected.UnsupportedModelError).toBeGreaterThan(10);
  }, 240_000);

  const REAL = ['mobilenet_v3_small_1.0_224_quant.qdq.onnx', 'mobilenetv2-12-int8.onnx'];
  testShared(REAL.map((f) => `models/onnx/${f}`))('60 malformed real int8 models (V3-Small QDQ, ONNX zoo V2 QOperator): the same', async () => {
    const dir = path.join(tmp, 'real');
    fs.mkdirSync(dir);
    for (const f of REAL) fs.symlinkSync(sharedFile('models', 'onnx', f), path.join(dir, f));
    const s = await runFuzz({ seeds: folderSeeds(dir), seed: 19, count: 60, workers: 2, timeoutMs: 60_000, saveDir: path.join(tmp, 'real-failures') });
    expect(failures(s)).toEqual({ crashes: [], hangs: [], unexpected: [] });
    expect(s.cases).toBe(60);
  }, 240_000);
});
