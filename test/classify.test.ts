/**
 * @jest-environment ./test/helpers/node-env.js
 */
// Classification: softmax / top-k, labels (1000 vs 1001 classes, wnids), classify() with ONNX Runtime on the
// float and int8 V2 models and with mnq when its runtime is built, per-image errors, batching, the CLI.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Classifier, ClassifierModel, classify, loadOrtModel } from '../lib/classify';
import { softmax, topK } from '../lib/numerics/softmax';
import * as labels from '../lib/labels';
import * as cli from '../lib/cli/classify';
import * as bench from '../lib/cli/bench-classify';
import { sharedFile, testIf, testShared } from './helpers/shared';

const ONNX = sharedFile('models', 'onnx');
const CORAL = sharedFile('data', 'coral');
const CAT = path.join(CORAL, 'cat.png');
const V2_FLOAT = path.join(ONNX, 'mobilenet_v2_1.0_224_quant.float.onnx');
const V2_QDQ = [path.join(ONNX, 'mobilenet_v2_1.0_224_quant.qdq.onnx'), path.join(ONNX, 'tf2_mobilenet_v2_1.0_224_ptq.qdq.onnx')];
const NEEDS = ['data/coral/cat.png', 'models/onnx/mobilenet_v2_1.0_224_quant.float.onnx',
  'models/onnx/mobilenet_v2_1.0_224_quant.qdq.onnx', 'models/onnx/tf2_mobilenet_v2_1.0_224_ptq.qdq.onnx'];
const withShared = testShared(NEEDS);

// mnq's runtime (lib/model.ts + the addon), when built
let mnqLoad: ((p: string, o: { threads?: number }) => Promise<ClassifierModel & { dispose?(): void }>) | undefined;
let mnqWhyNot = '';
try {
  /* eslint-disable @typescript-eslint/no-var-requires */
  (require('../lib/native') as typeof import('../lib/native')).loadNative();
  const { load } = require('../lib/model') as typeof import('../lib/model');
  /* eslint-enable @typescript-eslint/no-var-requires */
  // mnq's Model is a ClassifierModel (checked by the compiler here)
  mnqLoad = async (p, o) => {
    const m: import('../lib/model').Model = await load(p, o);
    const asClassifierModel: ClassifierModel & { dispose(): void } = m;
    return asClassifierModel;
  };
} catch (e) {
  // the whole message: the loader lists each place it tried and why that failed
  mnqWhyNot = (e as Error).message;
}
const withMnq: ReturnType<typeof testShared> = mnqLoad
  ? testShared(NEEDS)
  : testIf(`mnq's runtime (${mnqWhyNot})`, 'build the addon with npm install (node-gyp rebuild)');

describe('softmax and top-k', () => {
  it('softmax is a stable distribution', () => {
    const p = softmax(new Float32Array([1000, 1001, 999]));
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(p[1]).toBeCloseTo(Math.exp(1) / (1 + Math.exp(1) + Math.exp(-1)), 12);
    expect(Array.from(softmax([-Infinity, 0]))).toEqual([0, 1]);
  });
  it('top-k picks the largest, ties by lower index', () => {
    expect(topK([0.1, 0.5, 0.2, 0.5, 0.05], 3)).toEqual([1, 3, 2]);
    expect(topK([3, 2, 1], 5)).toEqual([0, 1, 2]);
    expect(topK([1, 2, 3, 4, 5, 6], 1)).toEqual([5]);
  });
});

describe('labels', () => {
  it('ships the 1001- and 1000-class ImageNet lists and the wnids', () => {
    const l1001 = labels.loadLabels('imagenet-1001');
    const l1000 = labels.loadLabels('imagenet-1000');
    expect(l1001.names).toHaveLength(1001);
    expect(l1000.names).toHaveLength(1000);
    expect(l1001.names[0]).toBe('background');
    expect(l1001.names[286]).toBe('Egyptian cat');
    expect(l1000.names[285]).toBe('Egyptian cat');
    expect(l1001.names.slice(1)).toEqual(l1000.names);
    expect(l1001.imagenetOffset).toBe(1);
    expect(l1000.imagenetOffset).toBe(0);
    expect(labels.imagenetWnids()).toHaveLength(1000);
  });
  it('reads the class from the wnid in a file name, with the 1001 offset', () => {
    expect(labels.imagenetClassOfFile('eval/n01440764_tench.JPEG')).toBe(0);
    expect(labels.imagenetClassOfFile('/x/n15075141_toilet_tissue.JPEG')).toBe(999);
    expect(labels.imagenetClassOfFile('/data/n01440764/ILSVRC2012_val_00000293.JPEG')).toBe(0);
    expect(labels.imagenetClassOfFile('cat.png')).toBe(-1);
    expect(labels.imagenetClassOfFile('n99999999.jpg')).toBe(-1);
    expect(labels.outputIndexOfImagenetClass(285, 1001)).toBe(286);
    expect(labels.outputIndexOfImagenetClass(285, labels.loadLabels('imagenet-1000'))).toBe(285);
  });
  it('label files and mismatches give clear errors', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-labels-'));
    try {
      fs.writeFileSync(path.join(dir, 'three.txt'), 'a\nb\nc\n');
      fs.writeFileSync(path.join(dir, 'classes.tsv'), 'index\twnid\tname\n0\tn1\tx\n1\tn2\ty\n');
      expect(labels.loadLabels(path.join(dir, 'three.txt')).names).toEqual(['a', 'b', 'c']);
      expect(labels.loadLabels(path.join(dir, 'classes.tsv')).names).toEqual(['x', 'y']);
      expect(() => labels.loadLabels(path.join(dir, 'none.txt'))).toThrow(/no such file, and not a known label set/);
      expect(() => labels.checkLabels(labels.loadLabels('imagenet-1000'), 1001)).toThrow(/1000 entries but the model has 1001 outputs.*background/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A fake model: logits = mean of each input channel's values, placed at classes 0..2 (tests the plumbing). */
function channelMeanModel(quant?: { scale: number; zeroPoint: number }): ClassifierModel & { calls: number[] } {
  const calls: number[] = [];
  const classes = 4;
  const hw = 8 * 8;
  return {
    calls,
    inputs: [{ name: 'x', shape: ['N', 3, 8, 8] }],
    outputs: [{ name: 'y', shape: ['N', classes] }],
    inputQuantization: quant ?? null,
    async run(x: Float32Array, shape?: number[]) {
      const n = (shape as number[])[0];
      calls.push(n);
      const out = new Float32Array(n * classes);
      for (let b = 0; b < n; b++) {
        for (let c = 0; c < 3; c++) {
          let s = 0;
          for (let i = 0; i < hw; i++) s += x[b * 3 * hw + c * hw + i];
          out[b * classes + c] = 10 * s / hw;
        }
      }
      return out;
    },
    async runInt8(x: Int8Array, n: number) {
      calls.push(-n);
      const out = new Float32Array(n * classes);
      const q = quant as { scale: number; zeroPoint: number };
      for (let b = 0; b < n; b++) {
        for (let c = 0; c < 3; c++) {
          let s = 0;
          for (let i = 0; i < hw; i++) s += q.scale * (x[b * 3 * hw + i * 3 + c] - q.zeroPoint);
          out[b * classes + c] = 10 * s / hw;
        }
      }
      return out;
    },
  };
}

/** A solid-colour PNG. */
async function solid(r: number, g: number, b: number): Promise<Buffer> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const sharp = require('sharp') as typeof import('sharp');
  return sharp({ create: { width: 40, height: 30, channels: 3, background: { r, g, b } } }).png().toBuffer();
}

describe('classify plumbing (fake model)', () => {
  it('batches, keeps order, reports failed images and goes on', async () => {
    const model = channelMeanModel();
    const red = await solid(255, 0, 0);
    const blue = await solid(0, 0, 255);
    const c = new Classifier(model, { batchSize: 2, preprocess: 'raw', labels: ['red', 'green', 'blue', 'none'] });
    const out = [];
    for await (const r of c.classifyEach([red, '/no/such/file.png', blue, red, new Uint8Array([1, 2, 3])], { topK: 2 })) out.push(r);
    expect(out.map((r) => r.position)).toEqual([0, 1, 2, 3, 4]);
    expect(out[0].predictions?.[0].label).toBe('red');
    expect(out[1].error?.message).toMatch(/\/no\/such\/file\.png: file not found/);
    expect(out[2].predictions?.[0].label).toBe('blue');
    expect(out[3].predictions?.[0]).toMatchObject({ label: 'red', index: 0 });
    expect(out[4].error?.message).toMatch(/image #4 \(3-byte buffer\): unsupported/);
    expect(out[0].predictions?.[0].probability).toBeGreaterThan(0.99);
    // two batches of 2 → 1 good each, then 1 good: runs of 1, 2 (failed images are not sent)
    expect(model.calls).toEqual([1, 2]);
    // one image on its own, and an async iterable
    const single = [];
    for await (const r of c.classifyEach(blue)) single.push(r);
    expect(single.map((r) => r.predictions?.[0].label)).toEqual(['blue']);
    const viaAsync = [];
    for await (const r of c.classifyEach((async function* () { yield red; yield blue; })())) viaAsync.push(r.predictions?.[0].label);
    expect(viaAsync).toEqual(['red', 'blue']);
    // classify() rejects on the first failure, naming the image
    await expect(classify(model, [red, '/no/such/file.png'], { preprocess: 'raw', labels: ['r', 'g', 'b', 'n'] })).rejects.toThrow(/file not found/);
  });

  it('decodes the next batch while the model runs the current one', async () => {
    const model = channelMeanModel();
    const imgs = await Promise.all([solid(255, 0, 0), solid(0, 255, 0), solid(0, 0, 255), solid(200, 0, 0)]);
    const c = new Classifier(model, { batchSize: 2, preprocess: 'raw', labels: ['r', 'g', 'b', 'n'], decoders: 1 });
    // record when each decode finishes; the first run waits (up to 5 s) for a decode of the second batch
    const finished: string[] = [];
    let nextBatchDecoded: () => void = () => undefined;
    const sawNext = new Promise<void>((resolve) => { nextBatchDecoded = resolve; });
    const pixels = c.pipeline.pixels.bind(c.pipeline);
    jest.spyOn(c.pipeline, 'pixels').mockImplementation(async (input, name) => {
      const px = await pixels(input, name);
      finished.push(String(name));
      if (finished.length >= 3) nextBatchDecoded();
      return px;
    });
    const run = model.run.bind(model);
    let duringFirstRun = -1;
    model.run = async (x, shape) => {
      if (duringFirstRun < 0) {
        await Promise.race([sawNext, new Promise((r) => setTimeout(r, 5000))]);
        duringFirstRun = finished.length;
      }
      return run(x, shape);
    };
    const r = await c.classify(imgs, { topK: 1 });
    expect(r.map((p) => p[0].label)).toEqual(['r', 'g', 'b', 'r']);
    expect(duringFirstRun).toBeGreaterThanOrEqual(3);
  });

  it('uses the int8 path (LUT, runInt8) when the model has one, with the same answers', async () => {
    const q = { scale: 2, zeroPoint: -128 };
    const model = channelMeanModel(q);
    const green = await solid(0, 200, 0);
    const r8 = await classify(model, [green, green], { preprocess: 'raw', labels: ['r', 'g', 'b', 'n'] });
    expect(model.calls).toEqual([-2]);
    const rf = await classify(model, [green], { preprocess: 'raw', labels: ['r', 'g', 'b', 'n'], int8: false });
    expect(model.calls).toEqual([-2, 1]);
    expect(r8[0][0].label).toBe('g');
    expect(r8[0][0].probability).toBeCloseTo(rf[0][0].probability, 6);
  });

  it('bad options and models give clear errors', async () => {
    const model = channelMeanModel();
    expect(() => new Classifier({} as ClassifierModel)).toThrow(/must be a loaded model/);
    expect(() => new Classifier(model, { preprocess: 'nope' })).toThrow(/unknown preprocessing 'nope'/);
    expect(() => new Classifier(model, { labels: ['a'] })).toThrow(/1 entries but the model has 4 outputs/);
    await expect(classify(model, [], { topK: 0 })).rejects.toThrow(/topK must be a positive integer/);
    await expect(classify(model, [], { batchSize: 0 })).rejects.toThrow(/batch size must be a positive integer/);
  });
});

describe('classify real models', () => {
  withShared('float QAT V2 with ONNX Runtime: cat.png is an Egyptian cat; batch size does not change results', async () => {
    const model = await loadOrtModel(V2_FLOAT, { threads: 1 });
    try {
      const files = [CAT, path.join(CORAL, 'parrot.jpg'), path.join(CORAL, 'grace_hopper.png')];
      const r = await classify(model, files, { topK: 3, batchSize: 3 });
      expect(r[0][0]).toMatchObject({ label: 'Egyptian cat', index: 286 });
      expect(r[1][0]).toMatchObject({ label: 'macaw', index: 89 });
      expect(r[2][0]).toMatchObject({ label: 'military uniform', index: 653 });
      expect(r[0][0].probability).toBeGreaterThan(r[0][1].probability);
      const one = await classify(model, files, { topK: 3, batchSize: 1 });
      for (let i = 0; i < 3; i++) {
        expect(one[i].map((p) => p.index)).toEqual(r[i].map((p) => p.index));
        for (let k = 0; k < 3; k++) expect(one[i][k].probability).toBeCloseTo(r[i][k].probability, 5);
      }
      // an image given as bytes classifies the same as its path
      const bytes = await classify(model, fs.readFileSync(CAT), { topK: 1 });
      expect(bytes[0][0].index).toBe(286);
    } finally {
      await model.release();
    }
  });

  withShared('int8 QDQ V2 models with ONNX Runtime: cat.png is an Egyptian cat', async () => {
    for (const file of V2_QDQ) {
      const model = await loadOrtModel(file, { threads: 1 });
      try {
        const r = await classify(model, CAT, { topK: 1 });
        expect(r[0][0]).toMatchObject({ label: 'Egyptian cat', index: 286 });
      } finally {
        await model.release();
      }
    }
  });

  withMnq('int8 QDQ V2 models with mnq: cat.png is an Egyptian cat, through the int8 input path', async () => {
    for (const file of V2_QDQ) {
      const model = await (mnqLoad as NonNullable<typeof mnqLoad>)(file, { threads: 1 });
      try {
        const c = new Classifier(model, {});
        expect(c.int8).toBe(true);
        const r = await c.classify([CAT, path.join(CORAL, 'parrot.jpg')], { topK: 1 });
        expect(r[0][0]).toMatchObject({ label: 'Egyptian cat', index: 286 });
        expect(r[1][0]).toMatchObject({ label: 'macaw', index: 89 });
      } finally {
        model.dispose?.();
      }
    }
  });

  withMnq('model.classify() and model.metadata (mnq Model API)', async () => {
    const { load } = require('../lib/model') as typeof import('../lib/model'); // eslint-disable-line @typescript-eslint/no-var-requires
    const model = await load(V2_QDQ[0], { threads: 1 });
    try {
      expect(typeof model.metadata).toBe('object');
      const r = await model.classify([CAT], { topK: 3 });
      expect(r).toHaveLength(1);
      expect(r[0]).toHaveLength(3);
      expect(r[0][0]).toMatchObject({ label: 'Egyptian cat', index: 286 });
      expect(r[0][0].probability).toBeGreaterThan(r[0][1].probability);
      // the README's API example loads this model (the quick start's) and shows this probability, to 3 digits
      const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
      const api = readme.slice(readme.indexOf('## API'), readme.indexOf('## Command line'));
      expect(api).toContain(`const M = '../shared/models/onnx/${path.basename(V2_QDQ[0])}'`);
      const shown = /\/\/ \[\{ label: 'Egyptian cat', index: 286, probability: (0\.\d+) \}/.exec(api);
      expect(shown?.[1]).toBe(r[0][0].probability.toFixed(3));
    } finally {
      model.dispose();
    }
  });
});

describe('mnq classify CLI', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-cli-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function runCli(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
    const out: string[] = [];
    const err: string[] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { out.push(a.join(' ')); });
    const error = jest.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { err.push(a.join(' ')); });
    try {
      const code = await cli.run(args);
      return { code, out, err };
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
  }

  it('expands directories and globs; reports inputs that give no image', () => {
    fs.mkdirSync(path.join(dir, 'a', 'b'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'empty'), { recursive: true });
    for (const f of ['a/1.jpg', 'a/b/2.PNG', 'a/notes.txt', 'a/b/3.webp']) fs.writeFileSync(path.join(dir, f), 'x');
    const r = cli.expandInputs([path.join(dir, 'a'), path.join(dir, 'empty'), path.join(dir, 'missing.jpg'), `${dir}/a/**/*.webp`, `${dir}/a/*.gif`]);
    expect(r.files).toEqual([path.join(dir, 'a', '1.jpg'), path.join(dir, 'a', 'b', '2.PNG'), path.join(dir, 'a', 'b', '3.webp'), `${dir}/a/b/3.webp`]);
    expect(r.errors.map((e) => e.message)).toEqual([
      `${path.join(dir, 'empty')}: directory contains no image files (.jpg, .png, .webp, …)`,
      `${path.join(dir, 'missing.jpg')}: file not found`,
      `${dir}/a/*.gif: no image files match this pattern`,
    ]);
  });

  it('usage errors exit 2', async () => {
    expect((await runCli(['x.jpg'])).code).toBe(2);
    expect((await runCli(['--model', 'm.onnx'])).code).toBe(2);
    const r = await runCli(['x.jpg', '--model', 'm.onnx', '--top', '0']);
    expect(r.code).toBe(2);
    expect(r.err.join('\n')).toMatch(/--top must be a positive integer/);
    const t = await runCli(['x.jpg', '--model', 'm.onnx', '--threads', '999']);
    expect(t.code).toBe(2);
    expect(t.err[0]).toBe("mnq classify: --threads must be an integer from 1 to 256, got '999'");
  });

  withMnq('a model mnq cannot run names itself and suggests --engine ort; a file that is not ONNX does not', async () => {
    const junk = path.join(dir, 'junk.onnx');
    fs.writeFileSync(junk, 'not a model');
    const notOnnx = cli.loadClassifierModel(junk, 'mnq', 1);
    await expect(notOnnx).rejects.toThrow(/^.*junk\.onnx: not a valid ONNX file/);
    await expect(notOnnx).rejects.not.toThrow(/--engine ort/);
    await expect(cli.loadClassifierModel(V2_FLOAT, 'mnq', 1)).rejects.toThrow(
      /mobilenet_v2_1\.0_224_quant\.float\.onnx: input 'input' is never quantized .*\(mnq runs int8 models; '--engine ort' runs any model with ONNX Runtime\)$/);
  });

  withShared('--engine ort --json: one JSON line per image, errors included, exit 1 with a summary', async () => {
    const bad = path.join(dir, 'bad.jpg');
    fs.writeFileSync(bad, fs.readFileSync(path.join(CORAL, 'parrot.jpg')).subarray(0, 5000));
    const r = await runCli([CAT, bad, path.join(dir, 'nope.png'), '--model', V2_FLOAT, '--engine', 'ort', '--json', '--top', '2', '--threads', '1']);
    expect(r.code).toBe(1);
    const lines = r.out.map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    const cat = lines.find((l) => l.image === CAT);
    expect(cat.predictions[0]).toMatchObject({ label: 'Egyptian cat', index: 286 });
    expect(cat.predictions).toHaveLength(2);
    expect(lines.find((l) => l.image === bad).error).toMatch(/truncated image/);
    expect(lines.find((l) => l.image.endsWith('nope.png')).error).toMatch(/file not found/);
    expect(r.err.join('\n')).toMatch(/2 of 3 inputs failed, 1 classified/);
  });

  testShared([...NEEDS, 'data/imagenet-sample/eval'])('bench-classify --ort-only --json: images/s and top-1 from the wnids in the file names', async () => {
    const sub = path.join(dir, 'bench');
    fs.mkdirSync(sub);
    const evalDir = sharedFile('data', 'imagenet-sample', 'eval');
    const some = fs.readdirSync(evalDir).sort().slice(0, 3);
    for (const f of some) fs.copyFileSync(path.join(evalDir, f), path.join(sub, f));
    const r = await (async () => {
      const out: string[] = [];
      const log = jest.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { out.push(a.join(' ')); });
      try {
        return { code: await bench.run([sub, '--model', V2_FLOAT, '--ort-only', '--repeat', '1', '--batch', '2', '--threads', '1', '--json']), out };
      } finally {
        log.mockRestore();
      }
    })();
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out.join('\n'));
    expect(j).toMatchObject({ images: 3, batch: 2, threads: 1 });
    expect(j.results).toHaveLength(1);
    expect(j.results[0]).toMatchObject({ engine: 'sharp+ort', images: 3, failed: 0, labelled: 3 });
    expect(j.results[0].imagesPerSecond).toBeGreaterThan(0);
    expect(j.results[0].top1).toBeGreaterThanOrEqual(0);
    expect(j.ortNote).toBeUndefined(); // a float model: ORT's default session computes what it says
  });

  testShared(['models/onnx/mobilenet_v2_1.0_224_quant.qdq.onnx', 'models/onnx/mobilenet_v2_1.0_224_quant.float.onnx'])(
    "bench-classify says why ORT's top-1 may differ from mnq's on an int8 file (x86: ORT's default session is not integer arithmetic throughout)", () => {
    expect(bench.ortDefaultSessionNote(V2_QDQ[0], 'x64')).toMatch(/default x86 session, which is not integer arithmetic throughout.*mnq check-ort/);
    expect(bench.ortDefaultSessionNote(V2_QDQ[0], 'arm64')).toBeUndefined();
    expect(bench.ortDefaultSessionNote(V2_FLOAT, 'x64')).toBeUndefined();
  });

  withShared('text output on a folder; exit 0 when all succeed', async () => {
    const sub = path.join(dir, 'two');
    fs.mkdirSync(sub);
    fs.copyFileSync(CAT, path.join(sub, 'cat.png'));
    fs.copyFileSync(path.join(CORAL, 'parrot.jpg'), path.join(sub, 'parrot.jpg'));
    const r = await runCli([sub, '--model', V2_FLOAT, '--engine', 'ort', '--top', '1', '--threads', '1']);
    expect(r.code).toBe(0);
    expect(r.out.join('\n')).toMatch(/cat\.png\n\s+\d+\.\d+%\s+Egyptian cat\s+\(286\)/);
    expect(r.out.join('\n')).toMatch(/parrot\.jpg\n\s+\d+\.\d+%\s+macaw\s+\(89\)/);
  });
});
