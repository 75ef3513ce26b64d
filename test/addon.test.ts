// The native addon on hand-built plans: results against a straightforward JS
// computation of the same int8 math (docs/quantization.md, float32 via
// Math.fround), threads and batches, concurrent runs, worker_threads,
// bad plans and inputs (errors, never crashes), dispose.
import { Worker } from 'worker_threads';
import { addonPath, loadNative, NativeModel } from '../lib/native';
import { makeOp, PlanDesc, PlanOp, PlanOpType, PlanTensor, UnaryFn } from '../lib/plan';

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

// ------------------------------------------------------------ int8 math in JS
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 ? 2 * Math.round(v / 2) : r;
}
function requantize(acc: number, m: number, zp: number, qmin: number, qmax: number): number {
  let v = f(f(acc) * m);
  v = Math.max(v, qmin - zp);
  v = Math.min(v, qmax - zp);
  return roundHalfEven(v) + zp;
}
function quantize(x: number, scale: number, zp: number): number {
  let v = f(x / scale);
  v = v >= -128 - zp ? v : -128 - zp; // NaN -> lower bound
  v = Math.min(v, 127 - zp);
  return roundHalfEven(v) + zp;
}
const dequantize = (q: number, s: number, zp: number): number => f(f(q - zp) * s);
function hardswish(x: number): number {
  let t = f(f(x * f(1 / 6)) + 0.5);
  t = Math.max(Math.min(t, 1), 0);
  return f(x * t);
}
function table(fn: (x: number) => number, xs: number, xz: number, ys: number, yz: number): Int8Array {
  const t = new Int8Array(256);
  for (let q = -128; q < 128; q++) t[q + 128] = quantize(fn(dequantize(q, xs, xz)), ys, yz);
  return t;
}

// ------------------------------------------------------------ plan building
class Plan {
  tensors: PlanTensor[] = [];
  ops: PlanOp[] = [];
  private top = 0;
  tensor(name: string, h: number, w: number, c: number, scale: number, zeroPoint: number): number {
    // Every tensor gets its own 64-byte aligned region (no reuse: simple and valid).
    this.tensors.push({ name, h, w, c, scale: f(scale), zeroPoint, offset: this.top });
    this.top += Math.ceil((h * w * c) / 64) * 64;
    return this.tensors.length - 1;
  }
  op(type: PlanOpType, name: string, inputs: number[], output: number, fields: Partial<PlanOp> = {}): PlanOp {
    const o = { ...makeOp(type, name, inputs, output), ...fields };
    this.ops.push(o);
    return o;
  }
  desc(input: number, outputs: number[]): PlanDesc {
    return { tensors: this.tensors, ops: this.ops, input, outputs, arenaBytes: this.top };
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

// Reference execution of one op on NHWC int8 tensors of one image.
type Tensors = Map<number, Int8Array>;
function convRef(p: PlanDesc, op: PlanOp, t: Tensors): Int8Array {
  const X = p.tensors[op.inputs[0]];
  const Y = p.tensors[op.output];
  const x = t.get(op.inputs[0])!;
  const isFc = op.type === PlanOpType.fullyConnected;
  const s = isFc
    ? { inH: 1, inW: 1, inC: X.h * X.w * X.c, outH: 1, outW: 1, outC: Y.c, kernelH: 1, kernelW: 1,
        strideH: 1, strideW: 1, padTop: 0, padLeft: 0 }
    : op.shape;
  const groups = isFc ? 1 : op.groups;
  const icg = s.inC / groups;
  const ocg = s.outC / groups;
  const midS = op.hasActivation ? op.actScale : Y.scale;
  const midZ = op.hasActivation ? op.actZeroPoint : Y.zeroPoint;
  const tab = op.hasActivation ? op.table : undefined;
  const y = new Int8Array(s.outH * s.outW * s.outC);
  for (let oy = 0; oy < s.outH; oy++)
    for (let ox = 0; ox < s.outW; ox++)
      for (let oc = 0; oc < s.outC; oc++) {
        const g = Math.floor(oc / ocg);
        let acc = op.bias.length ? op.bias[oc] : 0;
        for (let ky = 0; ky < s.kernelH; ky++)
          for (let kx = 0; kx < s.kernelW; kx++) {
            const iy = oy * s.strideH - s.padTop + ky;
            const ix = ox * s.strideW - s.padLeft + kx;
            if (iy < 0 || ix < 0 || iy >= s.inH || ix >= s.inW) continue; // padding = x zero point
            for (let ic = 0; ic < icg; ic++) {
              const xv = x[(iy * s.inW + ix) * s.inC + g * icg + ic] - X.zeroPoint;
              const wv = op.weights[((oc * icg + ic) * s.kernelH + ky) * s.kernelW + kx];
              acc += xv * (wv - (op.wZeroPoint.length ? op.wZeroPoint[oc] : 0));
            }
          }
        const m = f(f(X.scale * op.wScale[oc]) / midS);
        const q = requantize(acc, m, midZ, op.qmin, op.qmax);
        y[(oy * s.outW + ox) * s.outC + oc] = tab ? tab[q + 128] : q;
      }
  return y;
}
function reference(p: PlanDesc, input: Float32Array): Int8Array[] {
  const X = p.tensors[p.input];
  const hw = X.h * X.w;
  const q = new Int8Array(hw * X.c);
  for (let c = 0; c < X.c; c++)
    for (let i = 0; i < hw; i++) q[i * X.c + c] = quantize(input[c * hw + i], X.scale, X.zeroPoint);
  const t: Tensors = new Map([[p.input, q]]);
  for (const op of p.ops) {
    const A = p.tensors[op.inputs[0]];
    const Y = p.tensors[op.output];
    const a = t.get(op.inputs[0])!;
    const n = Y.h * Y.w * Y.c;
    let y: Int8Array;
    switch (op.type) {
      case PlanOpType.conv:
      case PlanOpType.fullyConnected:
        y = convRef(p, op, t);
        break;
      case PlanOpType.add: {
        const B = p.tensors[op.inputs[1]];
        const b = t.get(op.inputs[1])!;
        const ra = f(A.scale / Y.scale);
        const rb = f(B.scale / Y.scale);
        const fixed = f(Y.zeroPoint - f(f(ra * A.zeroPoint) + f(rb * B.zeroPoint)));
        y = new Int8Array(n);
        for (let i = 0; i < n; i++) {
          let v = f(b[i] * rb + fixed); // fma (exact product, one rounding)
          v = f(a[i] * ra + v);
          const r = Math.max(-128, Math.min(127, roundHalfEven(v)));
          y[i] = Math.max(op.qmin, Math.min(op.qmax, r));
        }
        break;
      }
      case PlanOpType.globalAvgPool: {
        const hwA = A.h * A.w;
        const scale = f(A.scale / f(Y.scale * hwA));
        y = new Int8Array(A.c);
        for (let c = 0; c < A.c; c++) {
          let acc = -A.zeroPoint * hwA;
          for (let i = 0; i < hwA; i++) acc += a[i * A.c + c];
          y[c] = requantize(acc, scale, Y.zeroPoint, -128, 127);
        }
        break;
      }
      case PlanOpType.mul: {
        const B = p.tensors[op.inputs[1]];
        const b = t.get(op.inputs[1])!;
        const ratio = f(f(A.scale * B.scale) / Y.scale);
        const bcast = B.h * B.w === 1;
        y = new Int8Array(n);
        for (let i = 0; i < n; i++) {
          const bv = bcast ? b[i % A.c] : b[i];
          y[i] = requantize((a[i] - A.zeroPoint) * (bv - B.zeroPoint), ratio, Y.zeroPoint, -128, 127);
        }
        break;
      }
      case PlanOpType.lut:
        y = new Int8Array(n);
        for (let i = 0; i < n; i++) y[i] = op.table[a[i] + 128];
        break;
    }
    t.set(op.output, y!);
  }
  return p.outputs.map((id) => t.get(id)!);
}
function referenceBatch(p: PlanDesc, input: Float32Array, batch: number): Int8Array[] {
  const X = p.tensors[p.input];
  const per = X.h * X.w * X.c;
  const outs = p.outputs.map((id) => {
    const T = p.tensors[id];
    return new Int8Array(batch * T.h * T.w * T.c);
  });
  for (let b = 0; b < batch; b++) {
    const r = reference(p, input.subarray(b * per, (b + 1) * per));
    r.forEach((o, i) => outs[i].set(o, b * o.length));
  }
  return outs;
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
  P.op(PlanOpType.lut, 'relu', [t2], t3, {
    activation: { fn: UnaryFn.relu, p0: 0, p1: 0 },
    table: table((x) => (x > 0 ? x : 0), f(0.05), 5, f(0.03), -128),
  });
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

// The JS reference reads a fused or standalone table from op.table: fill the
// ones the runtime builds from `activation` with the JS float32 functions.
function withReferenceTables(p: PlanDesc): PlanDesc {
  const fns: Partial<Record<UnaryFn, (x: number) => number>> = {
    [UnaryFn.hardswish]: hardswish,
    [UnaryFn.relu]: (x) => (x > 0 ? x : 0),
  };
  const ops = p.ops.map((o) => {
    if (o.table.length || !(o.hasActivation || o.type === PlanOpType.lut)) return o;
    const fn = fns[o.activation.fn];
    if (!fn) throw new Error(`no JS reference for ${o.activation.fn}`);
    const Y = p.tensors[o.output];
    const X = o.type === PlanOpType.lut ? p.tensors[o.inputs[0]] : { scale: o.actScale, zeroPoint: o.actZeroPoint };
    return { ...o, table: table(fn, X.scale, X.zeroPoint, Y.scale, Y.zeroPoint) };
  });
  return { ...p, ops };
}

const plan = network();
const refPlan = withReferenceTables(plan);
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
        const want = referenceBatch(refPlan, x, batch);
        expect(new Set(want[0]).size).toBeGreaterThan(5); // not degenerate
        const before = Float32Array.from(x);
        expect(await m.run(x, batch)).toEqual(want);
        expect(m.runSync(x, batch)).toEqual(want);
        expect(m.runSync(x)).toEqual(want); // batch inferred from the length
        expect(x).toEqual(before); // never modified
      }
      m.dispose();
    });

  test('runInt8 takes pre-quantized NHWC pixels', async () => {
    const m = native.createModelSync(plan, { threads: 2 });
    const x = randomInput(2 * perImage);
    const X = plan.tensors[plan.input];
    const q = new Int8Array(x.length);
    for (let b = 0; b < 2; b++)
      for (let c = 0; c < 3; c++)
        for (let i = 0; i < 100; i++) q[b * perImage + i * 3 + c] = quantize(x[b * perImage + c * 100 + i], X.scale, X.zeroPoint);
    const want = m.runSync(x, 2);
    expect(await m.runInt8(q, 2)).toEqual(want);
    expect(m.runInt8Sync(q, 2)).toEqual(want);
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
    expect(bad((p) => { p.arenaBytes = 100; })).toThrow(/exceeds arena_bytes 100/);
    expect(bad((p) => { p.tensors[3].offset = p.tensors[1].offset; })).toThrow(/overlap in the arena/);
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
