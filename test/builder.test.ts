/**
 * @jest-environment ./test/helpers/node-env.js
 */
// MobileNet builder: architectures, counts, ONNX export run by ONNX Runtime, options, CLI.
// Needs no shared data (see builder-shared.test.ts for the tests against real files).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import {
  buildMobileNet, countArch, makeDivisible, inspectOnnx, buildNet, weightLayers, ARCHITECTURES, Rng,
} from '../lib/builder';
import { encodeModel, readModel } from '../lib/onnx/proto';
import { createSession } from '../lib/ort/session';
import { GraphWriter, float, int, ints, writeFileAtomic } from '../lib/onnx/writer';
import * as buildCli from '../lib/cli/build';
import * as infoCli from '../lib/cli/info';
import { load } from '../lib/model';
import { tinyConvModel } from './helpers/tiny-models';


async function runOrt(model: Uint8Array, x: Float32Array, batch: number, res: number): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const s = await createSession(model, 'classifier');
  const r = await s.run({ input: new ort.Tensor('float32', x, [batch, 3, res, res]) });
  return { data: r.logits.data as Float32Array, dims: r.logits.dims };
}

function pseudoImage(batch: number, res: number, seed = 7): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: batch * 3 * res * res }, () => rng.uniform(-1, 1));
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('makeDivisible (torchvision _make_divisible)', () => {
  test.each([
    [32, 32], [24, 24], [16 * 0.35, 8], [32 * 0.35, 16], [96 * 0.35, 32], [1280 * 1.4, 1792],
    [72 * 0.75, 56], [88 * 0.75, 64], [576 / 4, 144], [10, 16], [4, 8], [100, 104],
  ])('makeDivisible(%p) = %p', (v, want) => {
    expect(makeDivisible(v, 8)).toBe(want);
  });
  test('never below 90% of the value', () => {
    const bad: number[] = [];
    for (let v = 1; v < 2000; v += 0.7) {
      const d = makeDivisible(v, 8);
      if (d % 8 !== 0 || d < 0.9 * v || d < 8) bad.push(v);
    }
    expect(bad).toEqual([]);
  });
});

describe('parameter and MAC counts at width 1.0, 224 px (published figures)', () => {
  // params: conv + linear weights and biases, BN folded; MACs: conv + linear + SE scale multiplies
  test.each([
    ['v1', 4.2e6, 4.25e6, 568e6, 570e6, 4221032],
    ['v2', 3.4e6, 3.5e6, 299e6, 301e6, 3487816],
    ['v3-large', 5.4e6, 5.5e6, 217e6, 219e6, 5470832],
    ['v3-small', 2.5e6, 2.55e6, 56e6, 66e6, 2536800],
  ])('%s', (arch, pLo, pHi, mLo, mHi, exactParams) => {
    const c = countArch(arch as string);
    expect(c.params).toBe(exactParams);
    expect(c.params).toBeGreaterThanOrEqual(pLo as number);
    expect(c.params).toBeLessThanOrEqual(pHi as number);
    expect(c.macs).toBeGreaterThanOrEqual(mLo as number);
    expect(c.macs).toBeLessThanOrEqual(mHi as number);
    expect(c.macs).toBe(c.convLinearMacs + c.seScaleMacs);
  });
  test('exact conv+linear MACs (same numbers as torchvision layer shapes give)', () => {
    expect(countArch('v1').convLinearMacs).toBe(568740352);
    expect(countArch('v2').convLinearMacs).toBe(300774272);
    expect(countArch('v3-large').convLinearMacs).toBe(216589760);
    expect(countArch('v3-small').convLinearMacs).toBe(56510400);
    expect(countArch('v2').seScaleMacs).toBe(0);
  });
  test('MACs scale with resolution squared (conv part), params do not', () => {
    for (const arch of ARCHITECTURES) {
      const a = countArch(arch, { resolution: 224 });
      const b = countArch(arch, { resolution: 448 });
      expect(b.params).toBe(a.params);
      expect(b.macs).toBeGreaterThan(3.5 * a.macs);
    }
  });
  test('V1 published width/resolution table (Howard 2017, Table 6/7)', () => {
    // 0.75: 2.6M params 325M MACs; 0.5: 1.3M / 149M; 0.25: 0.5M / 41M; 1.0 at 192: 418M; 160: 290M; 128: 186M
    const m = (w: number, r: number) => countArch('v1', { width: w, resolution: r });
    expect(m(0.75, 224).params / 1e6).toBeCloseTo(2.6, 1);
    expect(Math.round(m(0.75, 224).macs / 1e6)).toBe(325);
    expect(Math.round(m(0.5, 224).macs / 1e6)).toBe(149);
    expect(Math.round(m(0.25, 224).macs / 1e6)).toBe(41);
    expect(Math.round(m(1, 192).macs / 1e6)).toBe(418);
    expect(Math.round(m(1, 160).macs / 1e6)).toBe(291);
    expect(Math.round(m(1, 128).macs / 1e6)).toBe(186);
  });
});

describe('architecture structure', () => {
  test('V2: first block has no expansion conv, 10 shortcuts, ReLU6, 1280 last conv', () => {
    const net = buildNet('v2');
    const convs = weightLayers(net);
    expect(convs.length).toBe(53);
    expect(convs[1].kind === 'conv' && convs[1].groups).toBe(32); // depthwise straight after the stem
    expect(net.layers.filter((l) => l.kind === 'add').length).toBe(10);
    const last = convs[convs.length - 2];
    expect(last.kind === 'conv' && last.outC).toBe(1280);
    expect(new Set(convs.filter((l) => l.act !== 'none').map((l) => l.act))).toEqual(new Set(['relu6']));
    // width < 1 keeps 1280, width > 1 scales it
    expect((weightLayers(buildNet('v2', { width: 0.5 })).slice(-2)[0] as { outC: number }).outC).toBe(1280);
    expect((weightLayers(buildNet('v2', { width: 1.4 })).slice(-2)[0] as { outC: number }).outC).toBe(1792);
  });
  test('V3: h-swish stem of 16, SE squeeze make_divisible(exp/4, 8), efficient last stage', () => {
    for (const [arch, seCount, fc] of [['v3-large', 8, 1280], ['v3-small', 9, 1024]] as const) {
      const net = buildNet(arch);
      const w = weightLayers(net);
      const stem = w[0];
      expect(stem.kind === 'conv' && [stem.outC, stem.stride, stem.act]).toEqual([16, 2, 'hswish']);
      const fc1 = w.filter((l) => l.name.endsWith('.fc1'));
      expect(fc1.length).toBe(seCount);
      for (const l of fc1) if (l.kind === 'conv') expect(l.outC).toBe(makeDivisible(Math.floor(l.inC / 4), 8));
      expect(w.filter((l) => l.name.endsWith('.fc2')).every((l) => l.act === 'hsigmoid')).toBe(true);
      const [lastConv, hidden, cls] = w.slice(-3);
      expect(lastConv.kind === 'conv' && [lastConv.kernel, lastConv.act]).toEqual([1, 'hswish']);
      expect(hidden.kind === 'linear' && [hidden.outF, hidden.act]).toEqual([fc, 'hswish']);
      expect(cls.kind === 'linear' && [cls.outF, cls.act]).toEqual([1000, 'none']);
    }
  });
  test('V1: 13 depthwise separable blocks, channels max(int(c*alpha), 8)', () => {
    const w = weightLayers(buildNet('v1', { width: 0.25 }));
    expect(w.length).toBe(28);
    expect(w.filter((l) => l.kind === 'conv' && l.groups > 1).length).toBe(13);
    expect((w[0] as { outC: number }).outC).toBe(8);
    expect((w[26] as { outC: number }).outC).toBe(256);
  });
});

describe('ONNX export runs in ONNX Runtime', () => {
  // all four architectures at several widths / resolutions, dynamic batch
  test.each([
    ['v1', 0.5, 128, 1000], ['v1', 1.0, 96, 10],
    ['v2', 0.35, 96, 1000], ['v2', 0.75, 160, 1001],
    ['v3-large', 0.75, 128, 1000], ['v3-large', 1.0, 64, 5],
    ['v3-small', 0.5, 160, 1000], ['v3-small', 1.25, 96, 100],
  ])('%s width %p at %p px, %p classes', async (arch, width, res, classes) => {
    const built = buildMobileNet(arch as string, { width: width as number, resolution: res as number, classes: classes as number, seed: 1 });
    const bytes = encodeModel(built.model);
    const x = pseudoImage(2, res as number);
    const y2 = await runOrt(bytes, x, 2, res as number);
    expect(y2.dims).toEqual([2, classes]);
    expect(Array.from(y2.data).every(Number.isFinite)).toBe(true);
    // batch 1 gives the first row of batch 2
    const y1 = await runOrt(bytes, x.subarray(0, 3 * (res as number) ** 2), 1, res as number);
    expect(maxAbsDiff(y1.data, y2.data.subarray(0, classes as number))).toBeLessThan(1e-4);
    // the logits are not degenerate
    const spread = Math.max(...y1.data) - Math.min(...y1.data);
    expect(spread).toBeGreaterThan(1e-3);
    // the exported file's layer structure is what the net describes
    const s = inspectOnnx(readModel(bytes));
    expect(s.layers.length).toBe(weightLayers(built.net).length);
    expect(s.params).toBe(built.counts.params);
    expect(s.macs).toBe(built.counts.macs);
    expect(s.input.shape).toEqual(['N', 3, res, res]);
    expect(s.opset).toBe(17);
  });

  test('opset 13 and 17 give the same outputs; BN kept equals BN folded', async () => {
    const res = 96;
    const x = pseudoImage(1, res);
    for (const arch of ['v3-small', 'v2']) {
      const base = { width: 0.5, resolution: res, seed: 5 };
      const a = await runOrt(encodeModel(buildMobileNet(arch, { ...base, opset: 17 }).model), x, 1, res);
      const m13 = buildMobileNet(arch, { ...base, opset: 13 }).model;
      expect(m13.opsetImport[0].version).toBe(13);
      expect(m13.graph!.node!.some((n) => n.opType === 'HardSwish')).toBe(false);
      const b = await runOrt(encodeModel(m13), x, 1, res);
      const kept = buildMobileNet(arch, { ...base, bn: 'keep' }).model;
      expect(kept.graph!.node!.filter((n) => n.opType === 'BatchNormalization').length).toBeGreaterThan(10);
      const c = await runOrt(encodeModel(kept), x, 1, res);
      expect(maxAbsDiff(a.data, b.data)).toBeLessThan(1e-4);
      expect(maxAbsDiff(a.data, c.data)).toBeLessThan(1e-4);
    }
  });

  test('seeded weights are reproducible, different seeds differ', () => {
    const a = encodeModel(buildMobileNet('v3-small', { width: 0.35, resolution: 64, seed: 42 }).model);
    const b = encodeModel(buildMobileNet('v3-small', { width: 0.35, resolution: 64, seed: 42 }).model);
    const c = encodeModel(buildMobileNet('v3-small', { width: 0.35, resolution: 64, seed: 43 }).model);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(Buffer.from(a).equals(Buffer.from(c))).toBe(false);
  });

  test('tf-same padding puts the extra pad after on stride-2 convs', () => {
    const s = inspectOnnx(buildMobileNet('v3-small', { resolution: 64, padding: 'tf-same' }).model);
    const s2 = s.layers.filter((l) => l.strides[0] === 2);
    expect(s2.map((l) => `${l.weightShape[2]}:${l.pads}`)).toEqual(['3:0,0,1,1', '3:0,0,1,1', '3:0,0,1,1', '5:1,1,2,2', '5:1,1,2,2']);
    const sym = inspectOnnx(buildMobileNet('v3-small', { resolution: 64 }).model);
    expect(sym.layers.every((l) => l.pads[0] === l.pads[2])).toBe(true);
  });
});

describe('bad input', () => {
  test.each([
    [['v4', {}], /unknown architecture 'v4'/],
    [['v2', { width: 0 }], /width must be a number > 0/],
    [['v2', { width: -0.5 }], /width must be a number > 0/],
    [['v2', { width: NaN }], /width must be a number > 0/],
    [['v2', { resolution: 200 }], /multiple of 32/],
    [['v2', { resolution: 0 }], /multiple of 32/],
    [['v2', { resolution: 16 }], /multiple of 32 and at least 32/],
    [['v2', { classes: 0 }], /classes/],
    [['v2', { opset: 11 }], /opset/],
    [['v2', { seed: 1.5 }], /seed/],
  ])('%j', ([arch, opts], msg) => {
    expect(() => buildMobileNet(arch as string, opts as object)).toThrow(msg as RegExp);
  });
  test('weights bytes that are not ONNX', () => {
    expect(() => buildMobileNet('v2', { weights: new Uint8Array([1, 2, 3, 4, 5]) })).toThrow(/ONNX/);
  });
  test('weights of another architecture: error names the first mismatching layer', () => {
    const v1 = encodeModel(buildMobileNet('v1', { width: 0.25, resolution: 64 }).model);
    expect(() => buildMobileNet('v2', { weights: v1 })).toThrow(/first mismatch at layer 0: built features\.0 .* expects weight \[32,3,3,3\].* has \[8,3,3,3\]/);
    const v3s = encodeModel(buildMobileNet('v3-small', { resolution: 64 }).model);
    expect(() => buildMobileNet('v3-large', { weights: v3s })).toThrow(/first mismatch at layer 1/);
  });
});

describe('loading weights from an ONNX file (self round trip)', () => {
  test('a built model loaded back reproduces its outputs, at other resolutions too', async () => {
    const src = buildMobileNet('v3-large', { width: 0.5, resolution: 96, seed: 9, classes: 37 });
    const bytes = encodeModel(src.model);
    const loaded = buildMobileNet('v3-large', { weights: bytes });
    expect([loaded.net.width, loaded.net.resolution, loaded.net.classes]).toEqual([0.5, 96, 37]);
    const x = pseudoImage(1, 96);
    const a = await runOrt(bytes, x, 1, 96);
    const b = await runOrt(encodeModel(loaded.model), x, 1, 96);
    expect(maxAbsDiff(a.data, b.data)).toBeLessThan(1e-5);
    // kept BN from folded weights is still the same function
    const kept = buildMobileNet('v3-large', { weights: bytes, bn: 'keep' });
    const c = await runOrt(encodeModel(kept.model), x, 1, 96);
    expect(maxAbsDiff(a.data, c.data)).toBeLessThan(1e-4);
    // the same weights at another resolution still run
    const r128 = buildMobileNet('v3-large', { weights: bytes, resolution: 128 });
    expect(r128.net.resolution).toBe(128);
  });
});

describe('GraphWriter', () => {
  test('writes a valid model with attributes, metadata and dynamic batch', async () => {
    const g = new GraphWriter({ opset: 13, name: 'tiny' });
    const x = g.input('x', ['N', 2]);
    const w = g.initializer('w', [3, 2], Float32Array.of(1, 0, 0, 1, 1, 1));
    const y = g.op('Gemm', [x, w], { transB: int(1), alpha: float(2) });
    g.node('Identity', [y], ['y']);
    g.output('y', ['N', 3]);
    g.setMetadata('k', 'v');
    const m = g.toModel();
    expect(m.metadataProps[0]).toMatchObject({ key: 'k', value: 'v' });
    expect(() => g.input('x', [1])).toThrow(/already used/);
    expect(() => g.initializer('bad', [2], Float32Array.of(1))).toThrow(/1 values for shape \[2\]/);
    expect(ints([1])).toEqual({ ints: [1] });
    const s = await createSession(encodeModel(m), 'classifier');
    const r = await s.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2, 3, 4), [2, 2]) });
    expect(Array.from(r.y.data as Float32Array)).toEqual([2, 4, 6, 6, 8, 14]);
  });
  test('writeFileAtomic leaves nothing behind on failure', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-writer-'));
    try {
      expect(() => writeFileAtomic(path.join(dir, 'missing', 'x.onnx'), new Uint8Array(4))).toThrow(/cannot write/);
      writeFileAtomic(path.join(dir, 'ok.bin'), new Uint8Array([1, 2]));
      expect(fs.readdirSync(dir)).toEqual(['ok.bin']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('CLI: mnq build / mnq info', () => {
  let dir: string;
  let out: string[];
  let err: string[];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-build-'));
    out = [];
    err = [];
    jest.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { out.push(a.join(' ')); });
    jest.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { err.push(a.join(' ')); });
  });
  afterEach(() => {
    jest.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('build writes a runnable model', async () => {
    const file = path.join(dir, 'v3s.onnx');
    const code = await buildCli.run(['v3-small', '--width', '0.75', '--resolution', '96', '--classes', '10', '--seed', '3', '--opset', '13', '-o', file]);
    expect(err).toEqual([]);
    expect(code).toBe(0);
    const y = await runOrt(new Uint8Array(fs.readFileSync(file)), pseudoImage(3, 96), 3, 96);
    expect(y.dims).toEqual([3, 10]);
    expect(out.join('\n')).toMatch(/v3-small width 0.75 96x96, 10 classes, opset 13/);
  });

  test.each([
    [['v9', '-o', 'X'], /unknown architecture 'v9'/, 1],
    [['v2', '--width', '0', '-o', 'X'], /width must be a number > 0/, 1],
    [['v2', '--width', 'wide', '-o', 'X'], /--width must be a number/, 2],
    [['v2', '--resolution', '100', '-o', 'X'], /multiple of 32/, 1],
    [['v2', '--resolution', '0', '-o', 'X'], /multiple of 32/, 1],
    [['v2', '--weights', 'nope.onnx', '-o', 'X'], /cannot read model file/, 1],
    [['v2', '--weights', 'W', '--seed', '1', '-o', 'X'], /not both/, 2],
    [['v2', '--frobnicate', '-o', 'X'], /unknown option/, 2],
    [['v2'], /missing -o/, 2],
    [['v2', '--bn', 'maybe', '-o', 'X'], /--bn must be/, 2],
  ])('bad input %j: clear error, no file', async (argv, msg, code) => {
    const file = path.join(dir, 'out.onnx');
    const args = (argv as string[]).map((a) => (a === 'X' ? file : a === 'W' ? path.join(dir, 'w.onnx') : a));
    expect(await buildCli.run(args)).toBe(code);
    expect(err.join('\n')).toMatch(msg as RegExp);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  test('build with weights of another architecture fails and leaves no file', async () => {
    const w = path.join(dir, 'v1.onnx');
    expect(await buildCli.run(['v1', '--width', '0.25', '--resolution', '64', '-o', w])).toBe(0);
    const file = path.join(dir, 'out.onnx');
    expect(await buildCli.run(['v3-small', '--weights', w, '-o', file])).toBe(1);
    expect(err.join('\n')).toMatch(/does not fit v3-small.*first mismatch at layer/);
    expect(fs.readdirSync(dir)).toEqual(['v1.onnx']);
  });

  test('info <arch> --json and info <model.onnx> --json agree; layers only with --layers', async () => {
    expect(await infoCli.run(['v2', '--json'])).toBe(0);
    const a = JSON.parse(out.join('\n'));
    expect(a).toMatchObject({ params: 3487816, macs: 300774272, kind: 'architecture', layerCount: 53 });
    expect(a.layers).toBeUndefined();
    expect(out.join('\n').split('\n').length).toBeLessThan(30);
    out.length = 0;
    expect(await infoCli.run(['v2', '--json', '--layers'])).toBe(0);
    expect(JSON.parse(out.join('\n')).layers.length).toBe(53);
    const file = path.join(dir, 'v2.onnx');
    expect(await buildCli.run(['v2', '-o', file])).toBe(0);
    out.length = 0;
    expect(await infoCli.run([file, '--json', '--layers'])).toBe(0);
    const b = JSON.parse(out.join('\n'));
    expect([b.params, b.macs, b.layers.length, b.layerCount]).toEqual([a.params, a.macs, 53, 53]);
    expect(await infoCli.run(['v5'])).toBe(1);
    expect(err.join('\n')).toMatch(/unknown architecture/);
  });

  test('info <model.onnx>: the loaded model\'s memory for an int8 file, a note for a float one', async () => {
    const int8 = path.join(dir, 'tiny.int8.onnx');
    fs.writeFileSync(int8, tinyConvModel());
    const m = await load(int8, { threads: 1 });
    const expected = { ...m.memory, executor: m.executor, fusedGroups: m.fusedGroups };
    m.dispose();
    expect(await infoCli.memoryOf(int8)).toEqual({ memory: expected });
    const float = path.join(dir, 'v1.float.onnx');
    expect(await buildCli.run(['v1', '--width', '0.25', '--resolution', '96', '-o', float])).toBe(0);
    const f = await infoCli.memoryOf(float);
    expect(f.memory).toBeNull();
    expect(f.memoryNote).toMatch(/not an int8 model/);
    out.length = 0;
    expect(await infoCli.run([int8])).toBe(0);
    expect(out.join('\n')).toMatch(new RegExp(`memory: activations ${Math.round(expected.activationBytesPerImage / 1024)} KB per image`));
  });
});
