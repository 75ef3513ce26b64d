/**
 * @jest-environment ./test/helpers/node-env.js
 */
// The public API (load / run / runSync / runInt8 / dispose) on a small model:
// validation errors, batching, concurrency, caller buffers untouched, NaN input.
import { compile, load, CompiledModel, Model } from '../lib';
import * as compileModule from '../lib/compiler/compile';
import { tinyConvModel, tinyHeadModel, withNhwcInput } from './helpers/tiny-models';
import { openOrtInt8 } from '../lib/ort/int8-reference';
import { quantizeInput } from './helpers/reference';
import { testOrt } from './helpers/ort';

const IMG = 3 * 5 * 5;
const image = (seed: number) => Float32Array.from({ length: IMG }, (_, i) => Math.sin(i * 1.3 + seed) * 2);

describe('Model API', () => {
  let model: Model;
  const bytes = tinyConvModel({ act: 'none', lut: 'HardSwish' });
  beforeAll(async () => { model = await load(bytes, { threads: 2 }); });
  afterAll(() => model.dispose());

  test('describes its input and output', () => {
    expect(model.inputs).toEqual([{ name: 'input', shape: ['N', 3, 5, 5], type: 'float32' }]);
    expect(model.outputs).toEqual([{ name: 'output', shape: ['N', 4], type: 'float32' }]);
    expect(model.inputQuantization).toEqual({ scale: Math.fround(0.02), zeroPoint: 3 });
  });

  for (const [label, opts] of [
    ['same parameters', { maxPool: {} }],
    ['ceil_mode, int8', { maxPool: { ceil: true }, uint8: false }],
    ['requantized after h-swish', { maxPool: { requantize: true }, lut: 'HardSwish' }],
    ['a grouped Conv summing channel pairs, no MaxPool', { act: 'Clip', pieces: true }],
    ['channel pairs after a table, no MaxPool', { act: 'none', lut: 'HardSwish', pieces: true }],
    ['a zero Pad folded into the Conv, no MaxPool', { pad: 'qdq', uint8: false }],
  ] as const) testOrt(`DQ -> MaxPool -> Q (${label}) runs natively, batched and threaded, identical to ONNX Runtime`, async () => {
    const b = tinyConvModel(opts as Parameters<typeof tinyConvModel>[0]);
    const ort = await openOrtInt8(b);
    const m = await load(b, { threads: 2 });
    const x = new Float32Array(3 * IMG);
    for (let i = 0; i < 3; i++) x.set(image(10 + i), i * IMG);
    const q = await m.run(x, [3, 3, 5, 5], { quantized: true });
    const n = q.data.length / 3;
    for (let i = 0; i < 3; i++) {
      const theirs = (await ort.run(x.slice(i * IMG, (i + 1) * IMG), [1, 3, 5, 5])).get(ort.int8Outputs[0])!;
      expect(Array.from(q.data.subarray(i * n, (i + 1) * n))).toEqual(Array.from(theirs.data));
    }
    expect(new Set(q.data).size).toBeGreaterThan(n - 1); // not degenerate
    m.dispose();
    await ort.release();
  });

  testOrt('an NHWC model takes [N, H, W, C] floats (quantized as they are by the runtime, the input untouched), like ONNX Runtime', async () => {
    const b = withNhwcInput(tinyConvModel({ act: 'none', lut: 'HardSwish' }), true);
    const m = await load(b);
    expect(m.inputs).toEqual([{ name: 'input', shape: ['N', 5, 5, 3], type: 'float32' }]);
    const x = new Float32Array(2 * IMG);
    x.set(image(5)); x.set(image(6), IMG);
    const nhwc = new Float32Array(2 * IMG);
    for (let n = 0; n < 2; n++) for (let c = 0; c < 3; c++) for (let p = 0; p < 25; p++) nhwc[n * IMG + p * 3 + c] = x[n * IMG + c * 25 + p];
    const copy = nhwc.slice();
    const q = await m.run(nhwc, [2, 5, 5, 3], { quantized: true });
    expect(Array.from(nhwc)).toEqual(Array.from(copy));
    // the same numbers as the NCHW model on the NCHW images
    expect(Array.from(q.data)).toEqual(Array.from((await model.run(x, [2, 3, 5, 5], { quantized: true })).data));
    const ort = await openOrtInt8(b);
    const theirs = (await ort.run(nhwc.slice(0, IMG), [1, 5, 5, 3])).get(ort.int8Outputs[0])!;
    await ort.release();
    expect(Array.from(q.data.subarray(0, 4))).toEqual(Array.from(theirs.data));
    expect(() => m.runSync(nhwc, [2, 3, 5, 5])).toThrow(/does not match the model input \[N, 5, 5, 3\]/);
    m.dispose();
  });

  testOrt('run matches ONNX Runtime; quantized output is the int8 tensor before the last DQ', async () => {
    const x = image(1);
    const ort = await openOrtInt8(bytes);
    const theirs = (await ort.run(x, [1, 3, 5, 5])).get(ort.int8Outputs[0])!;
    await ort.release();
    const q = await model.run(x, [1, 3, 5, 5], { quantized: true });
    expect(q.shape).toEqual([1, 4]);
    expect(Array.from(q.data)).toEqual(Array.from(theirs.data));
    const f = await model.run(x);
    expect(Array.from(f)).toEqual(Array.from(q.data, (v) => Math.fround((v - q.zeroPoint) * q.scale)));
    expect(Array.from(model.runSync(x))).toEqual(Array.from(f));
  });

  test('a batch equals separate runs; concurrent runs are correct; inputs are not modified', async () => {
    const a = image(2), b = image(3);
    const batch = new Float32Array(2 * IMG);
    batch.set(a); batch.set(b, IMG);
    const copy = batch.slice();
    const [ra, rb, rab] = await Promise.all([model.run(a), model.run(b), model.run(batch, [2, 3, 5, 5])]);
    expect(Array.from(rab)).toEqual([...ra, ...rb]);
    expect(Array.from(batch)).toEqual(Array.from(copy));
    const many = await Promise.all(Array.from({ length: 16 }, (_, i) => model.run(i % 2 ? a : b)));
    many.forEach((r, i) => expect(Array.from(r)).toEqual(Array.from(i % 2 ? ra : rb)));
  });

  test('runInt8 takes quantized NHWC input', async () => {
    const x = image(4);
    const { scale, zeroPoint } = model.inputQuantization;
    const q = quantizeInput(x, 3, 5, 5, scale, zeroPoint);
    expect(Array.from(await model.runInt8(q, 1))).toEqual(Array.from(await model.run(x)));
  });

  test('NaN / Inf inputs do not crash', async () => {
    const x = image(5);
    x[0] = NaN; x[1] = Infinity; x[2] = -Infinity;
    const r = await model.run(x);
    expect(r.length).toBe(4);
  });

  test('wrong input type, length or shape: TypeError / RangeError saying what was expected', async () => {
    await expect(model.run([1, 2, 3] as unknown as Float32Array)).rejects.toThrow(TypeError);
    await expect(model.run(new Float64Array(IMG) as unknown as Float32Array)).rejects.toThrow(/Float32Array/);
    await expect(model.run(new Float32Array(IMG + 1))).rejects.toThrow(RangeError);
    await expect(model.run(new Float32Array(IMG + 1))).rejects.toThrow(/multiple of 3x5x5 = 75/);
    await expect(model.run(new Float32Array(0))).rejects.toThrow(RangeError);
    await expect(model.run(new Float32Array(IMG), [1, 3, 4, 4])).rejects.toThrow(/does not match the model input \[N, 3, 5, 5\]/);
    await expect(model.run(new Float32Array(IMG), [2, 3, 5, 5])).rejects.toThrow(/needs 150/);
    await expect(model.run(new Float32Array(IMG), [0, 3, 5, 5])).rejects.toThrow(RangeError);
    expect(() => model.runSync(new Float32Array(7))).toThrow(RangeError);
    await expect(model.runInt8(new Int8Array(IMG), 2)).rejects.toThrow(RangeError);
    await expect(model.runInt8(new Uint8Array(IMG) as unknown as Int8Array, 1)).rejects.toThrow(TypeError);
  });

  test('load errors', async () => {
    await expect(load(bytes, { threads: 0 })).rejects.toThrow(RangeError);
    await expect(load(42 as unknown as string)).rejects.toThrow(TypeError);
    await expect(load('/nonexistent.onnx')).rejects.toThrow(/cannot read model file/);
    await expect(load(tinyConvModel({ act: 'Elu' }))).rejects.toThrow(/Elu node 'act'/);
  });

  test('model.memory: the native arena per image and the packed weights; load() leaves the compiled plan whole', async () => {
    const spy = jest.spyOn(compileModule, 'compileModel');
    let m: Model;
    let results: CompiledModel[];
    try {
      // op by op, every tensor outside the tail lives in the arena (the fused executor's memory: parity.test.ts)
      m = await load(bytes, { executor: 'layers' });
      results = spy.mock.results.map((r) => r.value as CompiledModel);
    } finally {
      spy.mockRestore();
    }
    expect(results).toHaveLength(1);
    const compiled = results[0];
    const fresh = compile(bytes);
    // what load() compiled still has its weights: the native model copied them ...
    expect(compiled.plan.ops.some((o) => o.weights.length > 0)).toBe(true);
    expect(compiled.plan.ops.map((o) => Array.from(o.weights))).toEqual(fresh.plan.ops.map((o) => Array.from(o.weights)));
    // ... and the model keeps the plan without them
    expect(m.compiled).not.toBe(compiled);
    expect(m.compiled.plan.ops.map((o) => o.weights.length)).toEqual(fresh.plan.ops.map(() => 0));
    expect(m.compiled.plan.ops.map((o) => ({ ...o, weights: null }))).toEqual(fresh.plan.ops.map((o) => ({ ...o, weights: null })));

    const { arenaBytesPerImage, weightBytes, windowBytesPerThread, activationBytesPerImage } = m.memory;
    expect(Object.isFrozen(m.memory)).toBe(true);
    expect(windowBytesPerThread).toBe(0);
    expect(activationBytesPerImage).toBe(arenaBytesPerImage);
    const aligned = (t: { h: number; w: number; c: number }) => Math.ceil((t.h * t.w * t.c) / 64) * 64;
    expect(arenaBytesPerImage % 64).toBe(0);
    expect(arenaBytesPerImage).toBeGreaterThanOrEqual(Math.max(...fresh.plan.tensors.map(aligned)));
    expect(arenaBytesPerImage).toBeLessThanOrEqual(fresh.plan.tensors.reduce((a, t) => a + aligned(t), 0));
    expect(weightBytes).toBeGreaterThanOrEqual(fresh.plan.ops.reduce((a, o) => a + o.weights.length + 4 * o.bias.length, 0));
    m.dispose();
    expect(m.memory).toEqual({ arenaBytesPerImage, weightBytes, windowBytesPerThread, activationBytesPerImage });
  });

  test('a disposed model says so', async () => {
    const m = await load(bytes);
    m.dispose();
    m.dispose(); // twice is fine
    await expect(m.run(image(0))).rejects.toThrow(/disposed/);
  });
});

describe('other QDQ patterns against ONNX Runtime', () => {
  testOrt('h-swish as x * HardSigmoid(x), Sigmoid, GlobalAveragePool, Flatten, Gemm, Softmax output', async () => {
    const bytes = tinyHeadModel();
    const model = await load(bytes);
    const ort = await openOrtInt8(bytes);
    try {
      const kinds = model.compiled.plan.ops.map((o) => o.type);
      expect(kinds).toEqual([0, 4, 1, 5]); // conv + h-swish table, sigmoid table, pool, fully connected
      const n = 4;
      const x = Float32Array.from({ length: n * 36 }, (_, i) => Math.cos(i * 0.77) * 3);
      const theirs = (await ort.run(x, [n, 4, 3, 3])).get(ort.int8Outputs[0])!;
      const q = await model.run(x, [n, 4, 3, 3], { quantized: true });
      expect(q.shape).toEqual([n, 5]);
      expect(Array.from(q.data)).toEqual(Array.from(theirs.data));
      const probs = await model.run(x);
      for (let i = 0; i < n; i++) expect(probs.slice(i * 5, i * 5 + 5).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    } finally {
      model.dispose();
      await ort.release();
    }
  });

  testOrt('a quantized Softmax output (DQ -> Softmax -> Q -> DQ) equals ONNX Runtime, batched', async () => {
    const bytes = tinyHeadModel({ quantizedSoftmax: true });
    const model = await load(bytes, { threads: 2 });
    const ort = await openOrtInt8(bytes);
    try {
      expect(model.compiled.outputs[0].softmaxQuantization).toEqual({ scale: Math.fround(1 / 256), zeroPoint: -128 });
      const n = 6;
      const x = Float32Array.from({ length: n * 36 }, (_, i) => Math.sin(i * 0.31) * 4);
      const theirs = (await ort.run(x, [n, 4, 3, 3])).get(ort.int8Outputs[0])!;
      const q = await model.run(x, [n, 4, 3, 3], { quantized: true });
      expect(q).toMatchObject({ shape: [n, 10], scale: Math.fround(1 / 256), zeroPoint: -128 });
      expect(new Set(q.data).size).toBeGreaterThan(10); // not all in a few bins
      expect(Array.from(q.data)).toEqual(Array.from(theirs.data));
      const probs = await model.run(x, [n, 4, 3, 3]);
      expect(Array.from(probs)).toEqual(Array.from(q.data, (v) => Math.fround((v + 128) / 256)));
    } finally {
      model.dispose();
      await ort.release();
    }
  });
});
