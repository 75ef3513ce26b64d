/**
 * @jest-environment ./test/helpers/node-env.js
 */
// Parity with ONNX Runtime: every int8 model in the shared data, on real
// images, through mnq and through onnxruntime-node; the int8 output tensors
// (before the final DequantizeLinear) must be identical, every element (the
// README's claim). ORT is the integer reference of lib/ort/int8-reference.ts
// (its integer QDQ execution; U8U8 kernels for uint8 graphs on x86 CPUs without
// VNNI, where its U8S8 kernels saturate).
// MNQ_PARITY_IMAGES=N runs N images per model (default 3).
import * as fs from 'fs';
import * as path from 'path';
import { compile, load, Model } from '../lib';
import { loadNative } from '../lib/native';
import { openOrtInt8 } from '../lib/ort/int8-reference';
import { describeShared, int8Models, KNOWN_INT8_MODELS, sharedFile, testShared } from './helpers/shared';
import { ImagePipeline } from '../lib/image';
import { transposeImages } from '../lib/image/preprocess';
import { withNhwcInput } from './helpers/tiny-models';
import { loadBatch, preprocessFor, testImages } from './helpers/images';
import { describeDiff, diffInt8, expectIdentical } from './helpers/int8-compare';
import { NEEDS_X86_ORT } from './helpers/ort';

const IMAGES = Number(process.env.MNQ_PARITY_IMAGES ?? 3);

describeShared('int8 parity with ONNX Runtime', () => {
  const images = testImages(IMAGES);
  test('the shared data has the int8 models and the test images', () => {
    const names = int8Models().map((f) => path.basename(f));
    expect(KNOWN_INT8_MODELS.filter((m) => !names.includes(m))).toEqual([]);
    expect(images.length).toBe(IMAGES);
  });
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
        const n = ours.data.length / images.length;
        expectIdentical(`${path.basename(file)} output (ORT: ${ort.mode})`, ours.data, theirs.data,
          (i) => `image ${Math.floor(i / n)} (${path.basename(images[Math.floor(i / n)])}) index ${i % n}`);
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
  const tieImage = 'data/imagenet-sample/eval/n01632458_spotted_salamander.JPEG';
  const tieModel = 'models/onnx/mobilenetv2-12-int8.onnx';
  testShared([tieImage, tieModel])('mobilenetv2-12-int8 on an image with a uint8 Add tie equals ORT', async () => {
    const model = await load(sharedFile(tieModel));
    const ort = await openOrtInt8(sharedFile(tieModel));
    try {
      const x = await new ImagePipeline({ preprocess: 'torch', width: 224, height: 224 }).float(sharedFile(tieImage));
      const ours = await model.run(x, [1, 3, 224, 224], { quantized: true });
      const theirs = (await ort.run(x, [1, 3, 224, 224])).get(ort.int8Outputs[0])!;
      expectIdentical(`mobilenetv2-12-int8 output on ${path.basename(tieImage)} (ORT: ${ort.mode})`, ours.data, theirs.data);
    } finally {
      model.dispose();
      await ort.release();
    }
  });
}, ['models/onnx', 'data/coral', 'data/imagenet-sample/eval'], NEEDS_X86_ORT);

// mnq against itself: every ISA this CPU has gives the scalar reference's bits on real models, an NHWC
// input gives the NCHW model's, and the depth-first (fused) executor gives the op-by-op (layers) one's.
describeShared('int8 outputs on every ISA, input layout and executor', () => {
  for (const file of int8Models()) {
    test(`${path.basename(file)}: the fused executor's outputs are the layers executor's, batched and threaded; less memory`, async () => {
      const images = testImages(3);
      for (const threads of [1, 2]) {
        const layers = await load(file, { threads, executor: 'layers' });
        const fused = await load(file, { threads, executor: 'fused' });
        try {
          expect([layers.executor, fused.executor]).toEqual(['layers', 'fused']);
          expect(layers.fusedGroups).toBe(0);
          expect(fused.fusedGroups).toBeGreaterThan(3);
          expect(layers.memory.windowBytesPerThread).toBe(0);
          // The expanded tensors live in row windows: far less memory per image than op by op.
          expect(fused.memory.activationBytesPerImage).toBeLessThan(layers.memory.arenaBytesPerImage / 1.5);
          const { c, h, w } = fused.compiled.input;
          const x = await loadBatch(images, h, preprocessFor(file));
          for (const n of [1, images.length]) {
            const xs = x.subarray(0, n * c * h * w);
            const want = await layers.run(xs, [n, c, h, w], { quantized: true });
            const got = await fused.run(xs, [n, c, h, w], { quantized: true });
            expectIdentical(`${path.basename(file)} fused vs layers, ${threads} threads, batch ${n}`, got.data, want.data);
          }
        } finally {
          layers.dispose();
          fused.dispose();
        }
      }
    });
  }

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
    expect(isas).toContain('scalar');
    expect(isas.length).toBeGreaterThan(1); // the scalar reference and at least one SIMD ISA
    const files = int8Models().filter((f) => /v3_small|mobilenetv2-12/.test(f));
    expect(files.length).toBe(2);
    for (const file of files) {
      const x = await loadBatch(testImages(1), 224, preprocessFor(file));
      const run = async (isa: (typeof isas)[number]) => {
        const m: Model = await load(file, { isa });
        try { return (await m.run(x, null, { quantized: true })).data; } finally { m.dispose(); }
      };
      const reference = await run('scalar');
      for (const isa of isas.filter((i) => i !== 'scalar')) {
        const d = diffInt8(await run(isa), reference);
        expect(d.differ ? describeDiff(`${path.basename(file)}: ${isa} vs scalar`, d, undefined, [isa, 'scalar']) : 'identical').toBe('identical');
      }
    }
  });
}, ['models/onnx', 'data/coral']);
