/**
 * @jest-environment ./test/helpers/node-env.js
 */
// Parity with ONNX Runtime: every int8 model in the shared data, on real
// images, through mnq and through onnxruntime-node; the int8 output tensors
// (before the final DequantizeLinear) must be >= 99.9% identical, never more
// than 1 apart, with the same top-1 on every image.
// MNQ_PARITY_IMAGES=N runs N images per model (default 3).
import * as fs from 'fs';
import * as path from 'path';
import { compile, load, Model } from '../lib';
import { loadNative } from '../lib/native';
import { openOrtInt8 } from '../lib/ort/int8-reference';
import { describeShared, int8Models, sharedPath } from './helpers/shared';
import { ImagePipeline } from '../lib/image';
import { transposeImages } from '../lib/image/preprocess';
import { withNhwcInput } from './helpers/tiny-models';
import { loadBatch, preprocessFor, testImages } from './helpers/images';

const IMAGES = Number(process.env.MNQ_PARITY_IMAGES ?? 3);

export interface Parity { identical: number; maxDiff: number; top1Same: boolean[]; firstDiff: string | null }

/** Compares two int8 [batch][classes] tensors. */
export function compareInt8(a: Int8Array, b: Int8Array, batch: number): Parity {
  expect(a.length).toBe(b.length);
  const n = a.length / batch;
  let same = 0, maxDiff = 0;
  let firstDiff: string | null = null;
  const top1Same: boolean[] = [];
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d === 0) same++;
    else if (!firstDiff) firstDiff = `image ${Math.floor(i / n)} index ${i % n}: mnq ${a[i]} ORT ${b[i]}`;
    maxDiff = Math.max(maxDiff, d);
  }
  const argmax = (x: Int8Array, o: number) => { let k = 0; for (let i = 1; i < n; i++) if (x[o + i] > x[o + k]) k = i; return k; };
  for (let im = 0; im < batch; im++) top1Same.push(argmax(a, im * n) === argmax(b, im * n));
  return { identical: same / a.length, maxDiff, top1Same, firstDiff };
}

describeShared('int8 parity with ONNX Runtime', () => {
  const images = testImages(IMAGES);
  for (const file of int8Models()) {
    test(`${path.basename(file)}: ${images.length} images`, async () => {
      const model = await load(file, { threads: 2 });
      const ort = await openOrtInt8(file);
      try {
        // the runtime's arena: tensors share bytes (much less than all side by side); packed weights
        // at least the plan's int8 weights and int32 biases
        const { plan } = compile(file);
        expect(model.memory.arenaBytesPerImage).toBeLessThan(plan.tensors.reduce((a, t) => a + t.h * t.w * t.c, 0) / 3);
        expect(model.memory.weightBytes).toBeGreaterThanOrEqual(plan.ops.reduce((a, o) => a + o.weights.length + 4 * o.bias.length, 0));
        const { c, h, w } = model.compiled.input;
        const x = await loadBatch(images, h, preprocessFor(file));
        const copy = x.slice();
        const ours = await model.run(x, [images.length, c, h, w], { quantized: true });
        expect(Buffer.compare(Buffer.from(x.buffer), Buffer.from(copy.buffer))).toBe(0); // the caller's buffer is untouched
        const theirs = (await ort.run(x, [images.length, c, h, w])).get(ort.int8Outputs[0])!;
        expect(ours.shape).toEqual(theirs.dims);
        const p = compareInt8(ours.data, theirs.data, images.length);
        const report = `${path.basename(file)}: ${(p.identical * 100).toFixed(3)}% identical, max diff ${p.maxDiff}, first difference ${p.firstDiff}`;
        expect({ report, identicalAtLeast999: p.identical >= 0.999 }).toEqual({ report, identicalAtLeast999: true });
        expect({ report, maxDiff: p.maxDiff <= 1 }).toEqual({ report, maxDiff: true });
        expect(p.top1Same).toEqual(images.map(() => true));
      } finally {
        model.dispose();
        await ort.release();
      }
    });
  }

  // ORT computes a uint8 QLinearAdd in the uint8 domain with fixed = zc - fma(ra, za, rb * zb)
  // (docs/quantization.md; the compiler marks such adds with PlanOp.addOffset = 128). On this image one
  // element of an Add is an exact tie that a plain multiply-add, or int8-domain arithmetic, rounds the
  // other way (max diff 6 in the logits): a regression test for both.
  const tieImage = sharedPath('data', 'imagenet-sample', 'eval', 'n01632458_spotted_salamander.JPEG');
  const tieModel = sharedPath('models', 'onnx', 'mobilenetv2-12-int8.onnx');
  (tieImage && tieModel ? test : test.skip)('mobilenetv2-12-int8 on an image with a uint8 Add tie equals ORT', async () => {
    const model = await load(tieModel!);
    const ort = await openOrtInt8(tieModel!);
    try {
      const x = await new ImagePipeline({ preprocess: 'torch', width: 224, height: 224 }).float(tieImage!);
      const ours = await model.run(x, [1, 3, 224, 224], { quantized: true });
      const theirs = (await ort.run(x, [1, 3, 224, 224])).get(ort.int8Outputs[0])!;
      expect(Array.from(ours.data)).toEqual(Array.from(theirs.data));
    } finally {
      model.dispose();
      await ort.release();
    }
  });

  // The same models with an NHWC image input (Transpose(0, 3, 1, 2) before the input's QuantizeLinear, as
  // tf2onnx writes Keras models, or after its Q -> DQ): the runtime quantizes NHWC floats as they are, and
  // the outputs equal the NCHW model's on the same images bit for bit.
  for (const file of int8Models()) {
    for (const afterQdq of file.endsWith('.qdq.onnx') ? [false, true] : [false]) {
      test(`${path.basename(file)} with an NHWC input (transposed ${afterQdq ? 'after its Q/DQ' : 'before its Q'}): bit-identical, the input untouched`, async () => {
        const nchw = await load(file, { threads: 2 });
        const nhwc = await load(withNhwcInput(fs.readFileSync(file), afterQdq), { threads: 2 });
        try {
          const { c, h, w } = nchw.compiled.input;
          expect(nhwc.compiled.input.layout).toBe('nhwc');
          expect(nhwc.inputs[0].shape.slice(1)).toEqual([h, w, c]);
          const n = 3;
          const x = await loadBatch(testImages(n), h, preprocessFor(file));
          x[7] = NaN; x[8] = Infinity; x[9] = -Infinity; // the same clamp bounds either way
          const y = transposeImages(x, n, c, h, w, false);
          const copy = y.slice();
          const want = await nchw.run(x, [n, c, h, w], { quantized: true });
          const got = await nhwc.run(y, [n, h, w, c], { quantized: true });
          expect(Buffer.compare(Buffer.from(got.data.buffer), Buffer.from(want.data.buffer))).toBe(0);
          expect(new Set(got.data).size).toBeGreaterThan(20); // not degenerate
          expect(Array.from(nhwc.runSync(y, [n, h, w, c]))).toEqual(Array.from(await nchw.run(x, [n, c, h, w])));
          expect(Buffer.compare(Buffer.from(y.buffer), Buffer.from(copy.buffer))).toBe(0); // the caller's buffer is untouched
        } finally {
          nchw.dispose();
          nhwc.dispose();
        }
      });
    }
  }

  test('every supported ISA gives bit-identical outputs', async () => {
    const isas = loadNative().supportedIsas();
    const files = int8Models().filter((f) => /v3_small|mobilenetv2-12/.test(f));
    for (const file of files) {
      const x = await loadBatch(testImages(1), 224, preprocessFor(file));
      let reference: Int8Array | null = null;
      for (const isa of isas) {
        const m: Model = await load(file, { isa });
        const q = await m.run(x, null, { quantized: true });
        m.dispose();
        if (!reference) reference = q.data;
        else expect({ isa, file, same: Buffer.compare(Buffer.from(q.data.buffer), Buffer.from(reference.buffer)) === 0 }).toEqual({ isa, file, same: true });
      }
    }
  });
});
