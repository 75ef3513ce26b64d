/**
 * @jest-environment ./test/helpers/node-env.js
 */
// Parity with ONNX Runtime for the int8 models mnq itself makes: float MobileNets from the builder
// (random weights, no shared data needed: calibrated on synthetic images) and shared float models,
// calibrated with calibrate() on a few calibration images. mnq and ORT (integer QDQ execution,
// session.qdqisint8allowed = 1) run the same images; every output and every intermediate int8 tensor
// ORT can expose must be identical, every element (the README's parity claim).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { load } from '../lib';
import { buildMobileNet, modelBytes } from '../lib/builder';
import { calibrate } from '../lib/calibrate';
import { readModel } from '../lib/onnx/proto';
import { openOrtInt8 } from '../lib/ort/int8-reference';
import { checkPreprocess } from '../lib/cli/check-ort';
import { ImagePipeline, imageInLayout, imageShape } from '../lib/image';
import { withNhwcInput, kerasStyle } from './helpers/tiny-models';
import { createSession as session, runFloat } from '../lib/ort/session';
import { describeShared, sharedFile, sharedPath, testShared } from './helpers/shared';
import { testImages } from './helpers/images';
import { describeDiff, diffInt8, Int8Diff } from './helpers/int8-compare';
import { NEEDS_X86_ORT } from './helpers/ort';

/** Writes `count` smooth random RGB images (sums of oriented sinusoids plus noise) as PNGs into `dir`. */
async function syntheticImages(dir: string, count: number, seed: number, size = 80): Promise<string[]> {
  let s = seed >>> 0;
  const rnd = () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 4294967296; };
  const files: string[] = [];
  for (let k = 0; k < count; k++) {
    const waves = Array.from({ length: 4 }, () => ({ fx: rnd() * 0.3, fy: rnd() * 0.3, ph: rnd() * 6.3, amp: [rnd(), rnd(), rnd()] }));
    const px = Buffer.alloc(size * size * 3);
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) for (let c = 0; c < 3; c++) {
      let v = 0;
      for (const w of waves) v += w.amp[c] * Math.sin(w.fx * x + w.fy * y + w.ph);
      px[(y * size + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(128 + 50 * v + (rnd() - 0.5) * 30)));
    }
    const file = path.join(dir, `synthetic_${seed}_${k}.png`);
    await sharp(px, { raw: { width: size, height: size, channels: 3 } }).png().toFile(file);
    files.push(file);
  }
  return files;
}

interface TensorParity { name: string; diff: Int8Diff }

/**
 * Runs an int8 model (bytes) through mnq (every int8 tensor kept) and ORT (those tensors exposed) on a
 * batch of images preprocessed as its metadata says; returns the output's and every layer's differences.
 */
async function parity(bytes: Uint8Array, images: string[]): Promise<{ output: TensorParity; layers: TensorParity[]; mode: string }> {
  const model = await load(bytes, { keep: 'all' });
  const names = model.compiled.kept.map((k) => k.name);
  const ort = await openOrtInt8(bytes, names);
  try {
    const { c, h, w } = model.compiled.input;
    expect(checkPreprocess(bytes, '').source).toBe('metadata'); // mnq calibrate records its preprocessing
    const pipe = new ImagePipeline({ preprocess: checkPreprocess(bytes, '').spec, width: w, height: h });
    const batch = await pipe.floatBatch(images);
    expect(batch.errors.filter(Boolean)).toEqual([]);
    const layout = model.compiled.input.layout;
    const data = imageInLayout(batch.data, c, h, w, layout, images.length);
    const shape = imageShape(c, h, w, layout, images.length);
    const ours = await model.runTensors(data, shape);
    const theirs = await ort.run(data, shape);
    const outName = model.compiled.plan.tensors[model.compiled.outputs[0].tensor].name;
    const output = { name: outName, diff: diffInt8(ours.get(outName)!.data, theirs.get(ort.int8Outputs[0])!.data) };
    const layers = ort.extra.filter((x) => ours.has(x) && theirs.has(x)).map((x) => ({ name: x, diff: diffInt8(ours.get(x)!.data, theirs.get(x)!.data) }));
    expect(layers.length).toBeGreaterThan(10); // the comparison reaches inside the network
    return { output, layers, mode: ort.mode };
  } finally {
    model.dispose();
    await ort.release();
  }
}

/** The output and every layer identical; a failure names the output's and the first differing layer's differences. */
function expectParity(label: string, p: Awaited<ReturnType<typeof parity>>): void {
  const differing = p.layers.filter((t) => t.diff.differ > 0);
  const report = [`${label} (ORT: ${p.mode}), ${p.layers.length} layers compared`, describeDiff(`output ${p.output.name}`, p.output.diff),
    differing.length ? `${differing.length} layers differ, the first: ${describeDiff(differing[0].name, differing[0].diff)}` : 'every layer identical'].join('; ');
  expect({ report, outputIdentical: p.output.diff.differ === 0, differingLayers: differing.map((t) => t.name) })
    .toEqual({ report, outputIdentical: true, differingLayers: [] });
}

describeShared('parity with ONNX Runtime: builder models calibrated by mnq (no shared data)', () => {
  let dir: string;
  let calib: string[];
  let evalImages: string[];
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-parity-'));
    fs.mkdirSync(path.join(dir, 'calib'));
    fs.mkdirSync(path.join(dir, 'eval'));
    calib = await syntheticImages(path.join(dir, 'calib'), 4, 1);
    evalImages = await syntheticImages(path.join(dir, 'eval'), 3, 2);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  // V3-Small at opset 13 spells h-swish x * HardSigmoid(x); V3-Large at 17 uses HardSwish; V2 keeps its
  // BatchNormalization nodes (folded by the calibrator) and uses TF-style asymmetric padding.
  // V1 and V2 with the stem's ReLU6 output split into range pieces (a grouped Conv that mnq runs as a depthwise
  // over piece-major channels: kept intermediate tensors come back in ONNX order to be compared).
  type Options = Parameters<typeof calibrate>[1];
  const cases: [string, string, Parameters<typeof buildMobileNet>[1], Options['method'], Partial<Options>?][] = [
    ['V3-Small 0.5 @64, opset 13', 'v3-small', { width: 0.5, resolution: 64, seed: 11, opset: 13 }, 'minmax'],
    ['V3-Large 0.35 @64, opset 17', 'v3-large', { width: 0.35, resolution: 64, seed: 12, opset: 17 }, 'percentile'],
    ['V2 0.35 @64, BN kept, TF padding', 'v2', { width: 0.35, resolution: 64, seed: 13, bn: 'keep', padding: 'tf-same' }, 'minmax'],
    ['V1 0.5 @64, stem equalized and split in 2', 'v1', { width: 0.5, resolution: 64, seed: 14 }, 'mse', { equalize: 'stem', splitStem: true }],
    ['V2 0.35 @64, TF padding, stem split in 3', 'v2', { width: 0.35, resolution: 64, seed: 15, padding: 'tf-same' }, 'minmax', { splitStem: 3 }],
    ['V3-Small 0.5 @64, NHWC input (as tf2onnx writes Keras models), no ReLU6 stem to split', 'v3-small', { width: 0.5, resolution: 64, seed: 16 }, 'percentile', { splitStem: true }],
    ['V2 0.35 @64, Keras via tf2onnx (NHWC input, Pad nodes, ReduceMean)', 'v2', { width: 0.35, resolution: 64, seed: 17, padding: 'tf-same' }, 'mse'],
  ];
  for (const [label, arch, opts, method, extra] of cases) {
    test(`${label}, ${method}`, async () => {
      const built = modelBytes(buildMobileNet(arch, opts));
      const float = label.includes('tf2onnx (') ? kerasStyle(built) : label.includes('NHWC') ? withNhwcInput(built) : built;
      if (float !== built) {
        // the rewrite keeps the function: same float outputs in ONNX Runtime
        const s0 = await session(built), s1 = await session(float);
        const img = Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.sin(i * 0.37) * 1.5);
        const nhwc = imageInLayout(img, 3, 64, 64, 'nhwc');
        const a = Object.values(await runFloat(s0, img, [1, 3, 64, 64]))[0].data;
        const b = Object.values(await runFloat(s1, nhwc, [1, 64, 64, 3]))[0].data;
        let d = 0;
        for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
        expect(d).toBeLessThan(1e-3);
        await s0.release(); await s1.release();
      }
      const warnings: string[] = [];
      const q = await calibrate(float, { images: path.join(dir, 'calib'), method, preprocess: 'torch', limit: calib.length, onWarning: (w) => warnings.push(w), ...extra });
      const recorded = (readModel(q.bytes).metadataProps ?? []).find((e) => e.key === 'mnq.calibration.method')!.value!;
      if (extra?.splitStem && arch !== 'v3-small') {
        expect(q.normalizeLog.some((l) => l.startsWith('stem ReLU6 output split'))).toBe(true);
        expect(recorded).toMatch(/\+split-stem [23]/);
      } else if (extra?.splitStem) {
        // an h-swish stem: nothing to split, said so, and not recorded
        expect(warnings).toEqual([expect.stringMatching(/^split-stem: the model has no stem Conv → ReLU6/)]);
        expect(recorded).not.toMatch(/split-stem/);
      }
      if (label.includes('tf2onnx (')) expect(q.normalizeLog.join('; ')).toMatch(/NHWC input.*; \d+ zero Pad folded into Conv pads; 1 ReduceMean over H, W/);
      if (float !== built) {
        // the int8 file keeps the float model's NHWC interface
        const inp = readModel(q.bytes).graph!.input![0];
        expect(inp.type!.tensorType!.shape!.dim!.slice(1).map((d) => Number(d.dimValue))).toEqual([64, 64, 3]);
      }
      expect(q.imagesUsed).toBe(calib.length);
      expectParity(label, await parity(q.bytes, evalImages));
    });
  }
}, [], NEEDS_X86_ORT);

describeShared('parity with ONNX Runtime: shared float models calibrated by mnq', () => {
  const calibDir = 'data/imagenet-sample/calib';
  const images = testImages(4);
  test('four test images', () => expect(images.length).toBe(4));
  // Keras V3-Small: input rescaling inside the graph, SE, h-swish, no QAT (the hard case);
  // torchvision V3-Small at opset 13 (HardSigmoid * Mul); TF V1 (ReLU6 as Clip, asymmetric pads);
  // PaddleOCR (opset 9, Constant weights, separate BatchNormalization, MaxPool, Softmax output).
  const models: [string, Parameters<typeof calibrate>[1]['method'], Parameters<typeof calibrate>[1]['preprocess']?][] = [
    ['keras_mobilenet_v3_small_1.0_224.float.onnx', 'minmax'],
    ['mobilenet_v3_small.random.opset13.onnx', 'minmax'],
    ['mobilenet_v1_0.25_128_quant.float.onnx', 'entropy'],
    ['ppocr_mobile_v2.0_cls.float.onnx', 'percentile', '{"base":"paddle","size":[48,192]}'],
  ];
  for (const [file, method, preprocess] of models) {
    testShared([`models/onnx/${file}`, calibDir])(`${file}, ${method}, calibrated on 4 images`, async () => {
      const q = await calibrate(sharedFile('models', 'onnx', file), { images: sharedFile(calibDir), method, limit: 4, ...(preprocess ? { preprocess } : {}) });
      expectParity(file, await parity(q.bytes, images));
    });
  }
}, ['models/onnx', 'data/coral', 'data/imagenet-sample/calib'], NEEDS_X86_ORT);
