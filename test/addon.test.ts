// The native addon on hand-built plans: results against the JS reference of
// the same int8 math (test/helpers/reference.ts), threads and batches,
// concurrent runs, worker_threads, bad plans and inputs (errors, never
// crashes), dispose.
import { Worker } from 'worker_threads';
import { addonPath, loadNative, NativeModel } from '../lib/native';
import { InputLayout, makeOp, PlanDesc, PlanOp, PlanOpType, PlanTensor, UnaryFn, UnaryParams } from '../lib/plan';
import { activationTable, quantizeInput, runReference } from './helpers/reference';

const native = loadNative();

// Checks the error's class by name: errors made by the addon come from Node's own
// realm, not jest's sandbox, so `instanceof` does not apply.
function expectError(fn: () => unknown, name: 'TypeError' | 'RangeError' | 'Error', message: string | RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeDefined();
  const e = caught as Error;
  expect(e.name).toBe(name);
  if (typeof message === 'string') expect(e.message).toBe(message);
  else expect(e.message).toMatch(message);
}
const f = Math.fround;

// ------------------------------------------------------------ plan building
class Plan {
  tensors: PlanTensor[] = [];
  ops: PlanOp[] = [];
  tensor(name: string, h: number, w: number, c: number, scale: number, zeroPoint: number): number {
    this.tensors.push({ name, h, w, c, scale: f(scale), zeroPoint });
    return this.tensors.length - 1;
  }
  op(type: PlanOpType, name: string, inputs: number[], output: number, fields: Partial<PlanOp> = {}): PlanOp {
    const o = { ...makeOp(type, name, inputs, output), ...fields };
    this.ops.push(o);
    return o;
  }
  desc(input: number, outputs: number[]): PlanDesc {
    return { tensors: this.tensors, ops: this.ops, input, inputLayout: InputLayout.nchw, outputs };
  }
}

let seed = 12345;
function rand(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}
const randInt = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
function randI8(n: number, lo = -127, hi = 127): Int8Array {
  const a = new Int8Array(n);
  for (let i = 0; i < n; i++) a[i] = randInt(lo, hi);
  return a;
}
function weights(oc: number, perOut: number): Pick<PlanOp, 'weights' | 'wScale' | 'bias'> {
  const wScale = new Float32Array(oc);
  const bias = new Int32Array(oc);
  for (let c = 0; c < oc; c++) {
    wScale[c] = 0.005 + rand() * 0.015;
    bias[c] = randInt(-2000, 2000);
  }
  return { weights: randI8(oc * perOut), wScale, bias };
}
function randomInput(n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (rand() - 0.5) * 6;
  return x;
}

// The JS reference (test/helpers/reference.ts) on a batch of float NCHW images:
// each output of the plan, the images one after another.
function referenceBatch(p: PlanDesc, x: Float32Array, batch: number): Int8Array[] {
  const X = p.tensors[p.input];
  const perImage = X.h * X.w * X.c;
  const images = Array.from({ length: batch }, (_, b) =>
    runReference(p, quantizeInput(x, X.c, X.h, X.w, X.scale, X.zeroPoint, b * perImage)));
  return p.outputs.map((id) => Int8Array.from(images.flatMap((data) => Array.from(data[id]!))));
}

// A small network: stem conv, depthwise (fused h-swish), pointwise + ReLU table,
// projection, residual add, GAP, FC; the relu-table output is also returned.
function network(): PlanDesc {
  const P = new Plan();
  const inp = P.tensor('input', 10, 10, 3, 0.02, -3);
  const stemShape = { inH: 10, inW: 10, inC: 3, outH: 5, outW: 5, outC: 8, kernelH: 3, kernelW: 3, strideH: 2,
    strideW: 2, dilationH: 1, dilationW: 1, padTop: 0, padLeft: 0, padBottom: 1, padRight: 1 };
  const t0 = P.tensor('stem', 5, 5, 8, 0.05, -128);
  P.op(PlanOpType.conv, 'stem', [inp], t0, { shape: stemShape, ...weights(8, 27), qmin: -128, qmax: -8 });
  const t1 = P.tensor('dw', 5, 5, 8, 0.04, -90);
  P.op(PlanOpType.conv, 'dw', [t0], t1, {
    shape: { ...stemShape, inH: 5, inW: 5, inC: 8, outH: 5, outW: 5, strideH: 1, strideW: 1, padTop: 1,
      padLeft: 1, padBottom: 1, padRight: 1 },
    groups: 8, ...weights(8, 9),
    hasActivation: true, activation: { fn: UnaryFn.hardswish, p0: 0, p1: 0 }, actScale: f(0.06), actZeroPoint: 3,
  });
  const pw = (name: string, x: number, ic: number, oc: number, s: number, z: number, extra: Partial<PlanOp> = {}) => {
    const y = P.tensor(name, 5, 5, oc, s, z);
    P.op(PlanOpType.conv, name, [x], y, {
      shape: { ...stemShape, inH: 5, inW: 5, inC: ic, outH: 5, outW: 5, outC: oc, kernelH: 1, kernelW: 1,
        strideH: 1, strideW: 1, padBottom: 0, padRight: 0 },
      ...weights(oc, ic), ...extra,
    });
    return y;
  };
  const wz = new Int32Array(16).map(() => randInt(-10, 10));
  const t2 = pw('expand', t1, 8, 16, 0.05, 5, { wZeroPoint: wz });
  const t3 = P.tensor('relu', 5, 5, 16, 0.03, -128);
  const relu: UnaryParams = { fn: UnaryFn.relu, p0: 0, p1: 0 };
  P.op(PlanOpType.lut, 'relu', [t2], t3, { activation: relu, table: activationTable(relu, f(0.05), 5, f(0.03), -128) });
  const t4 = pw('project', t3, 16, 8, 0.06, -2);
  const t5 = P.tensor('add', 5, 5, 8, 0.07, 1);
  P.op(PlanOpType.add, 'add', [t4, t0], t5);
  const t6 = P.tensor('gap', 1, 1, 8, 0.03, -1);
  P.op(PlanOpType.globalAvgPool, 'gap', [t5], t6);
  const t7 = P.tensor('scaled', 5, 5, 8, 0.05, 0);
  P.op(PlanOpType.mul, 'se-mul', [t5, t6], t7);
  const t8 = P.tensor('gap2', 1, 1, 8, 0.02, 0);
  P.op(PlanOpType.globalAvgPool, 'gap2', [t7], t8);
  const t9 = P.tensor('logits', 1, 1, 12, 0.1, 0);
  P.op(PlanOpType.fullyConnected, 'fc', [t8], t9, weights(12, 8));
  return P.desc(inp, [t9, t3]);
}

const plan = network();
const perImage = 3 * 10 * 10;

describe('native addon', () => {
  test('reports its ISAs', () => {
    const isas = native.supportedIsas();
    expect(isas[0]).toBe('scalar');
    expect(isas).toContain(native.defaultIsa());
  });

  test.each(native.supportedIsas().flatMap((isa) => [1, 3].map((threads) => [isa, threads] as const)))(
    'matches the JS int8 math (isa %s, threads %d)', async (isa, threads) => {
      const m = await native.createModel(plan, { isa, threads });
      expect(m.isa).toBe(isa);
      expect(m.threads).toBe(threads);
      for (const batch of [1, 4]) {
        const x = randomInput(batch * perImage);
        x[0] = NaN;
        x[1] = Infinity;
        const want = referenceBatch(plan, x, batch);
        expect(new Set(want[0]).size).toBeGreaterThan(5); // not degenerate
        const before = Float32Array.from(x);
        expect(await m.run(x, batch)).toEqual(want);
        expect(m.runSync(x, batch)).toEqual(want);
        expect(m.runSync(x)).toEqual(want); // batch inferred from the length
        expect(x).toEqual(before); // never modified
      }
      m.dispose();
    });

  test('reports its memory: the arena it laid out, its packed weights; the plan is not modified', () => {
    const weightsBefore = plan.ops.map((o) => Int8Array.from(o.weights));
    const m = native.createModelSync(plan, { threads: 2 });
    expect(plan.ops.map((o) => o.weights)).toEqual(weightsBefore);
    // One image's region: 64-byte aligned; it holds the largest tensor, and the ones alive at
    // once (expand and its input, dw, with stem still needed by the residual add).
    const bytes = (name: string) => { const t = plan.tensors.find((x) => x.name === name)!; return Math.ceil((t.h * t.w * t.c) / 64) * 64; };
    expect(m.arenaBytesPerImage % 64).toBe(0);
    expect(m.arenaBytesPerImage).toBeGreaterThanOrEqual(bytes('expand') + bytes('dw') + bytes('stem'));
    const sideBySide = plan.tensors.reduce((a, t) => a + Math.ceil((t.h * t.w * t.c) / 64) * 64, 0);
    expect(m.arenaBytesPerImage).toBeLessThan(sideBySide);
    // Packed weights hold at least the plan's int8 weights and int32 biases.
    const given = plan.ops.reduce((a, o) => a + o.weights.length + 4 * o.bias.length, 0);
    expect(m.weightBytes).toBeGreaterThanOrEqual(given);
    for (const isa of native.supportedIsas()) {
      const other = native.createModelSync(plan, { isa });
      expect(other.arenaBytesPerImage).toBe(m.arenaBytesPerImage); // the layout does not depend on the ISA
      other.dispose();
    }
    const memory = [m.arenaBytesPerImage, m.weightBytes];
    m.dispose();
    expect([m.arenaBytesPerImage, m.weightBytes]).toEqual(memory); // still readable, like isa and threads
  });

  test('a plan with inputLayout nhwc takes NHWC floats: the outputs of the NCHW plan on the same images', async () => {
    const a = native.createModelSync(plan, { threads: 2 });
    const b = native.createModelSync({ ...plan, inputLayout: InputLayout.nhwc }, { threads: 2 });
    const X = plan.tensors[plan.input];
    const hw = X.h * X.w;
    const x = randomInput(3 * perImage);
    x[5] = NaN;
    const y = new Float32Array(x.length);
    for (let n = 0; n < 3; n++) for (let c = 0; c < X.c; c++) for (let p = 0; p < hw; p++) y[n * perImage + p * X.c + c] = x[n * perImage + c * hw + p];
    const copy = y.slice();
    const want = a.runSync(x, 3);
    expect(await b.run(y, 3)).toEqual(want);
    expect(b.runSync(y)).toEqual(want);
    expect(Buffer.from(y.buffer).equals(Buffer.from(copy.buffer))).toBe(true); // never modified
    expectError(() => b.runSync(new Float64Array(perImage) as any), 'TypeError', 'input must be a Float32Array (NHWC)');
    expectError(() => b.runSync(new Float32Array(perImage + 1)), 'RangeError',
      `input has ${perImage + 1} elements, expected a multiple of ${perImage} (one image: h 10 x w 10 x c 3)`);
    expectError(() => native.createModelSync({ ...plan, inputLayout: 2 as InputLayout }), 'TypeError',
      'plan.inputLayout must be an InputLayout (0 nchw, 1 nhwc), got 2');
    a.dispose();
    b.dispose();
  });

  test('runInt8 takes pre-quantized NHWC pixels', async () => {
    const m = native.createModelSync(plan, { threads: 2 });
    const x = randomInput(2 * perImage);
    const X = plan.tensors[plan.input];
    const q = new Int8Array(x.length);
    for (let b = 0; b < 2; b++) q.set(quantizeInput(x, X.c, X.h, X.w, X.scale, X.zeroPoint, b * perImage), b * perImage);
    const want = m.runSync(x, 2);
    expect(await m.runInt8(q, 2)).toEqual(want);
    expect(m.runInt8Sync(q, 2)).toEqual(want);
  });

  test('tables the runtime builds from `activation` equal the JS reference on every int8 input', () => {
    const every = Int8Array.from({ length: 256 }, (_, i) => i - 128);
    const activations: UnaryParams[] = [
      { fn: UnaryFn.identity, p0: 0, p1: 0 }, { fn: UnaryFn.relu, p0: 0, p1: 0 },
      { fn: UnaryFn.clip, p0: -0.3, p1: 0.7 }, { fn: UnaryFn.leakyrelu, p0: 0.1, p1: 0 },
      { fn: UnaryFn.hardsigmoid, p0: 0.2, p1: 0.5 }, { fn: UnaryFn.hardswish, p0: 0, p1: 0 },
      { fn: UnaryFn.mulHardsigmoid, p0: 1 / 6, p1: 0.5 },
    ];
    // At scale 0.0159, h-swish as x * f32(1/6) (the runtime) and as x / 6 differ in two entries.
    const domains = [[0.0159, 0, 0.0159, 0], [0.05, 10, 0.03, -100]];
    for (const activation of activations) for (const [xScale, xZp, yScale, yZp] of domains) {
      const P = new Plan();
      const x = P.tensor('x', 1, 1, 256, xScale, xZp);
      const y = P.tensor('y', 1, 1, 256, yScale, yZp);
      P.op(PlanOpType.lut, 'activation', [x], y, { activation });
      const p = P.desc(x, [y]);
      const m = native.createModelSync(p);
      expect({ activation, got: m.runInt8Sync(every)[0] }).toEqual({ activation, got: runReference(p, every)[y] });
      m.dispose();
    }
  });

  test('many concurrent runs on one model give identical results', async () => {
    // createModel packs the weights off the main thread and returns a promise.
    const pending = native.createModel(plan, { threads: 2 });
    expect(typeof pending.then).toBe('function');
    const m = await pending;
    const inputs = Array.from({ length: 8 }, (_, i) => randomInput((1 + (i % 3)) * perImage));
    const wants = inputs.map((x) => m.runSync(x));
    const runs = [];
    for (let r = 0; r < 5; r++) for (const x of inputs) runs.push(m.run(x));
    const got = await Promise.all(runs);
    got.forEach((g, i) => expect(g).toEqual(wants[i % inputs.length]));
    m.dispose();
  });

  test('loads and runs inside worker_threads', async () => {
    const x = randomInput(perImage);
    const want = native.createModelSync(plan).runSync(x);
    const code = `
      const { parentPort, workerData } = require('worker_threads');
      const addon = require(workerData.addon);
      addon.createModel(workerData.plan, { threads: 2 }).then((m) => m.run(workerData.x, 1)).then((out) => parentPort.postMessage(out), (e) => parentPort.postMessage(String(e)));
    `;
    const runWorker = () => new Promise<unknown>((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { addon: addonPath(), plan, x } });
      w.once('message', (msg) => { resolve(msg); void w.terminate(); });
      w.once('error', reject);
    });
    const got = await Promise.all([runWorker(), runWorker()]);
    for (const g of got) expect(g).toEqual(want);
  });

  test('wrong types in the plan are TypeErrors naming the field, thrown before any work', () => {
    const bad = (mutate: (p: any) => void): (() => Promise<NativeModel>) => () => {
      const p: any = { ...plan, tensors: plan.tensors.map((t) => ({ ...t })), ops: plan.ops.map((o) => ({ ...o })) };
      mutate(p);
      return native.createModel(p);
    };
    expectError(() => native.createModel(undefined as any), 'TypeError', 'plan must be an object');
    expectError(bad((p) => { p.tensors = 3; }), 'TypeError', 'plan.tensors must be an array');
    expectError(bad((p) => { p.tensors[2].scale = '0.1'; }), 'TypeError', 'plan.tensors[2].scale must be a number');
    expect(bad((p) => { p.tensors[1].h = 1.5; })).toThrow(/plan\.tensors\[1\]\.h must be an integer/);
    expectError(bad((p) => { p.ops[0].weights = Array.from(p.ops[0].weights); }), 'TypeError', 'plan.ops[0].weights must be an Int8Array');
    expectError(bad((p) => { p.ops[0].wScale = new Float64Array(8); }), 'TypeError', 'plan.ops[0].wScale must be a Float32Array');
    expectError(bad((p) => { p.ops[1].shape = { ...p.ops[1].shape, kernelH: null }; }), 'TypeError', 'plan.ops[1].shape.kernelH must be a number');
    expectError(bad((p) => { p.ops[2].hasActivation = 1; }), 'TypeError', 'plan.ops[2].hasActivation must be a boolean');
    expect(bad((p) => { p.ops[3].type = 9; })).toThrow(/plan\.ops\[3\]\.type must be a PlanOpType/);
    expectError(bad((p) => { p.ops[3].inputs = [0, 'x']; }), 'TypeError', 'plan.ops[3].inputs[1] must be a number');
    expectError(() => native.createModel(plan, { threads: 0 }), 'TypeError', /./);
    expect(() => native.createModel(plan, { isa: 'mmx' as any })).toThrow(/options\.isa must be one of/);
  });

  test('inconsistent plans are Errors naming the op and field', async () => {
    const bad = (mutate: (p: PlanDesc) => void): (() => NativeModel) => () => {
      const p: PlanDesc = { ...plan, tensors: plan.tensors.map((t) => ({ ...t })), ops: plan.ops.map((o) => ({ ...o })) };
      mutate(p);
      return native.createModelSync(p);
    };
    // createModel validates off the main thread and rejects with the same message.
    const p0: PlanDesc = { ...plan, ops: plan.ops.map((o) => ({ ...o })) };
    p0.ops[0].weights = p0.ops[0].weights.subarray(1);
    await expect(native.createModel(p0)).rejects.toThrow(
      "plan op 0 (conv 'stem'): weights has 215 elements, expected 216 (out_c 8 x in_c/groups 3 x 3 x 3)");
    expect(bad((p) => { p.ops[0].weights = p.ops[0].weights.subarray(1); }))
      .toThrow("plan op 0 (conv 'stem'): weights has 215 elements, expected 216 (out_c 8 x in_c/groups 3 x 3 x 3)");
    expect(bad((p) => { p.ops[4].inputs = [99]; })).toThrow(/plan op 4 .*inputs\[0\] 99 is not a tensor id/);
    expect(bad((p) => { p.ops[1].table = new Int8Array(3); })).toThrow(/table has 3 entries/);
    expect(bad((p) => { p.ops[1].shape = { ...p.ops[1].shape, strideH: 2 }; })).toThrow(/plan op 1 \(conv 'dw'\): shape/);
  });

  test('wrong inputs are TypeError / RangeError; the process survives', async () => {
    const m = await native.createModel(plan);
    expectError(() => m.runSync(new Float64Array(perImage) as any), 'TypeError', 'input must be a Float32Array (NCHW)');
    expectError(() => m.runSync(new Float32Array(perImage + 1)), 'RangeError', /./);
    expectError(() => m.runSync(new Float32Array(perImage), 2), 'RangeError', `input has ${perImage} elements, expected batch 2 x ${perImage} = ${2 * perImage}`);
    expectError(() => m.runSync(new Float32Array(perImage), 0), 'RangeError', /./);
    expectError(() => m.runInt8Sync(new Uint8Array(perImage) as any), 'TypeError', /./);
    expectError(() => m.run(new Float32Array(3)), 'RangeError', /./); // synchronous throw before any work
    expect(m.runSync(new Float32Array(perImage)).length).toBe(2);
  });

  test('dispose: pending runs finish, later calls throw', async () => {
    const m = await native.createModel(plan, { threads: 2 });
    const x = randomInput(3 * perImage);
    const want = m.runSync(x);
    const pending = [m.run(x), m.run(x), m.runInt8(new Int8Array(perImage))];
    m.dispose();
    expect(m.disposed).toBe(true);
    const [a, b, c] = await Promise.all(pending);
    expect(a).toEqual(want);
    expect(b).toEqual(want);
    expect(c.length).toBe(2);
    expect(() => m.runSync(x)).toThrow(/disposed/);
    expect(() => m.run(x)).toThrow(/disposed/);
    m.dispose(); // twice is fine
  });
});
