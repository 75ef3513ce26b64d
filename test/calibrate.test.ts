/**
 * @jest-environment ./test/helpers/node-env.js
 */
// Calibration: calibrators, graph normalisation (BN folding, h-swish / h-sigmoid
// spellings, classifiers), QDQ emission — checked against ONNX Runtime on
// small synthetic graphs. The shared-data tests are in calibrate.shared.test.ts.
import { onnx, makeTensor, encodeModel, readModel, tensorData, attrInt } from '../lib/onnx/proto';
import { normalize } from '../lib/calibrate/normalize';
import { TensorStats, computeRange, qparams, HIST_BINS } from '../lib/calibrate/calibrators';
import { quantizeWeights, planQuantization, resolveQParams, emitQdq, weightGrid, fitBiasInInt32, flatOutside } from '../lib/calibrate/quantize';
import { Graph } from '../lib/calibrate/graph';
import { float, int, ints, makeNode, makeValueInfo } from '../lib/onnx/writer';
import { findHardSwishPairs, equalizeHardSwish, findPairs, equalize, splitClipRange } from '../lib/calibrate/equalize';
import { PatchCorrelation, ConvGeometry, biasCorrect } from '../lib/calibrate/correction';
import { floatTable } from '../lib/image/preprocess';
import { parsePreprocess } from '../lib/preprocess-spec';
import { quantizeLinear } from '../lib/numerics/quantization';
import { createSession, runFloat } from '../lib/ort/session';
import { inputQParams, inputSize } from '../lib/calibrate/index';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 4294967296; };
}
function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
}
function randn(n: number, r: () => number, sd = 1): Float32Array {
  return Float32Array.from({ length: n }, () => gauss(r) * sd);
}

interface TinyModel { nodes: onnx.INodeProto[]; inits: onnx.ITensorProto[]; input: [number, number, number, number]; output: string; opset: number }
function build(m: TinyModel): onnx.ModelProto {
  return onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: m.opset }],
    graph: {
      name: 'tiny', node: m.nodes, initializer: m.inits,
      input: [makeValueInfo('x', onnx.TensorProto.DataType.FLOAT, m.input)], output: [makeValueInfo(m.output)],
    },
  });
}
async function runModel(model: onnx.IModelProto | Uint8Array, x: Float32Array, shape: number[]): Promise<Float32Array> {
  const s = await createSession(model instanceof Uint8Array ? model : encodeModel(model));
  const r = await runFloat(s, x, shape);
  await s.release();
  return Object.values(r)[0].data;
}
function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('calibrators', () => {
  const r = rng(1);
  const data = randn(100000, r);
  const stats = (d: Float32Array) => { const s = new TensorStats(); s.observeMinMax(d); s.observeHistogram(d); return s; };

  test('minmax is the observed range', () => {
    const s = stats(data);
    const g = computeRange(s, 'minmax');
    expect(g.lo).toBe(Math.min(...data));
    expect(g.hi).toBe(Math.max(...data));
  });

  test('percentile clips both tails of a signed tensor, only the top of a non-negative one', () => {
    const s = stats(data);
    const p = computeRange(s, 'percentile', { percentile: 99 });
    // N(0,1): 99th percentile ≈ 2.326, 1st ≈ -2.326
    expect(p.hi).toBeGreaterThan(2.2); expect(p.hi).toBeLessThan(2.45);
    expect(p.lo).toBeLessThan(-2.2); expect(p.lo).toBeGreaterThan(-2.45);
    const pos = stats(data.map(Math.abs));
    const pp = computeRange(pos, 'percentile', { percentile: 99 });
    expect(pp.lo).toBe(pos.min);
    expect(pp.hi).toBeGreaterThan(2.45); expect(pp.hi).toBeLessThan(2.7); // |N(0,1)| 99th ≈ 2.576
    expect(() => computeRange(s, 'percentile', { percentile: 0 })).toThrow(/percentile/);
  });

  test('entropy ignores a far outlier, minmax does not', () => {
    const d = Float32Array.from([...data, 1000]);
    const s = stats(d);
    expect(computeRange(s, 'minmax').hi).toBe(1000);
    const g = computeRange(s, 'entropy');
    expect(g.hi).toBeLessThan(100);
    expect(g.hi).toBeGreaterThan(2);
    expect(g.lo).toBeLessThan(-2);
  });

  test('mse picks a range with no more quantization error than minmax or percentile', () => {
    const qerr = (d: Float32Array, r: { lo: number; hi: number }) => {
      const { scale, zeroPoint } = qparams(r);
      let e = 0;
      for (const x of d) {
        const q = Math.max(-128, Math.min(127, Math.round(x / scale) + zeroPoint));
        e += (x - (q - zeroPoint) * scale) ** 2;
      }
      return e;
    };
    // exponential-ish tail: most values small, a few large
    const d = Float32Array.from({ length: 50000 }, () => Math.log(r() + 1e-12) ** 2);
    const s = stats(d);
    const mm = computeRange(s, 'minmax'), ms = computeRange(s, 'mse');
    expect(ms.hi).toBeLessThanOrEqual(mm.hi);
    expect(qerr(d, ms)).toBeLessThanOrEqual(qerr(d, mm) * 1.001);
    expect(qerr(d, ms)).toBeLessThanOrEqual(qerr(d, computeRange(s, 'percentile', { percentile: 99 })) * 1.001);
  });

  test('mse does not clip a uniform distribution much', () => {
    const u = Float32Array.from({ length: 50000 }, () => r() * 4 - 1); // [-1, 3]
    const g = computeRange(stats(u), 'mse');
    expect(g.hi).toBeGreaterThan(2.7);
    expect(g.lo).toBeLessThan(-0.9);
  });

  test('histogram has the documented bin count', () => {
    expect(stats(data).hist!.length).toBe(HIST_BINS);
  });

  test('qparams: asymmetric int8, zero exactly representable, degenerate range refused', () => {
    const q = qparams({ lo: 0, hi: 6 });
    expect(q.zeroPoint).toBe(-128);
    expect(q.scale).toBeCloseTo(6 / 255, 7);
    const q2 = qparams({ lo: -1, hi: 3 });
    expect(Number.isInteger(q2.zeroPoint)).toBe(true);
    expect(q2.scale * (-128 - q2.zeroPoint)).toBeLessThanOrEqual(-1 + q2.scale);
    expect(() => qparams({ lo: 0, hi: 0 })).toThrow(/degenerate/);
  });
});

describe('weights', () => {
  test('int8 symmetric per output channel in [-127, 127]', () => {
    // values on no common grid: scale = max|w| / 127 per channel
    const w = Float32Array.from([1, -2, 0.5, 0.1037, 0.01131, -0.0217, 0, 0]);
    expect(weightGrid(w)).toBeNull();
    const { q, scales } = quantizeWeights(w, 4, false);
    // channels [1, -2], [0.5, 0.1037], [0.01131, -0.0217], [0, 0] (all-zero: scale 1)
    expect(Array.from(scales)).toEqual([2 / 127, 0.5 / 127, 0.0217 / 127, 1].map((x) => Math.fround(x)));
    expect(Array.from(q)).toEqual([64, -127, 127, 26, 66, -127, 0, 0]); // 63.5 → 64 (half to even)
    expect(Math.min(...q)).toBeGreaterThanOrEqual(-127);
    const t = quantizeWeights(w, 4, true);
    expect(t.scales.length).toBe(1);
  });

  test('weights already on an int grid (dequantized uint8, zero point 3) keep that grid exactly', () => {
    const S = 0.0123;
    const ks = [-120, -7, 0, 5, 64, 127, -30, 2, 9, -100, 11, 1];
    const w = Float32Array.from(ks, (k) => S * k); // S·(q − z) with q = k + z
    expect(weightGrid(w)).toBeCloseTo(S, 7);
    const { q, scales } = quantizeWeights(w, 2, false);
    for (let i = 0; i < w.length; i++) expect(q[i] * scales[Math.floor(i / 6)]).toBeCloseTo(w[i], 6);
    expect(weightGrid(Float32Array.from([0.1, 0.2337, -0.5111, 0.91]))).toBeNull();
  });

  test('channels on different grids (rescaled one by one by equalization) each keep their own grid exactly', () => {
    // channel 0 on step 0.01, channel 1 on step 0.0037 (9 values whose smallest gap is 2 steps): no common grid
    const c0 = [-120, -7, 0, 5, 64, 127, -30, 2, 9].map((k) => 0.01 * k);
    const c1 = [-40, -2, 0, 6, 64, 101, -30, 2, 10].map((k) => 0.0037 * k);
    const w = Float32Array.from([...c0, ...c1]);
    expect(weightGrid(w)).toBeNull();
    const { q, scales } = quantizeWeights(w, 2, false);
    expect(scales[1]).toBeCloseTo(0.0037, 7); // not max|w| / 127 = 0.00291
    for (let i = 0; i < w.length; i++) expect(q[i] * scales[Math.floor(i / 9)]).toBeCloseTo(w[i], 6);
  });

  test('a bias that would overflow int32 widens the weight scale of its channel', () => {
    const w = Float32Array.from([1e-3, -2e-3, 0.5, 0.25]);
    const b = Float32Array.from([6, 0.1]);
    const { q, scales } = quantizeWeights(w, 2, false);
    const sx = 1e-6; // an input range that barely fires
    fitBiasInInt32(w, b, sx, q, scales);
    for (let c = 0; c < 2; c++) expect(Math.abs(b[c] / (sx * scales[c]))).toBeLessThan(2147483647);
    expect(scales[1]).toBe(Math.fround(0.5 / 127)); // the other channel is untouched
  });
});

describe('normalize', () => {
  const r = rng(7);
  const C = 4;
  const x = randn(1 * 3 * 8 * 8, r);

  test('folds BatchNormalization into Conv, turns Constant nodes into initializers and opset-9 Clip attributes into inputs', async () => {
    const m = build({
      opset: 9, input: [1, 3, 8, 8], output: 'y',
      nodes: [
        makeNode('Constant', 'w_const', [], ['w'], { value: { t: makeTensor('w', [C, 3, 3, 3], randn(C * 27, r)) } }),
        makeNode('Conv', 'conv', ['x', 'w'], ['c'], { pads: ints([1, 1, 1, 1]) }),
        makeNode('BatchNormalization', 'bn', ['c', 'g', 'b', 'mu', 'var'], ['n'], { epsilon: float(1e-3) }),
        makeNode('Clip', 'relu6', ['n'], ['y'], { min: float(0), max: float(6) }),
      ],
      inits: [
        makeTensor('g', [C], Float32Array.from([1, 2, 0.5, -1])), makeTensor('b', [C], Float32Array.from([0.1, -0.2, 0.3, 0])),
        makeTensor('mu', [C], Float32Array.from([0.5, 0, -1, 2])), makeTensor('var', [C], Float32Array.from([1, 4, 0.25, 2])),
      ],
    });
    const want = await runModel(m, x, [1, 3, 8, 8]);
    const { graph, log } = normalize(m);
    expect(graph.nodes.map((n) => n.opType)).toEqual(['Conv', 'Clip']);
    expect(log.join(' ')).toMatch(/BatchNormalization folded/);
    const got = await runModel(graph.toModel({ opset: 14 }), x, [1, 3, 8, 8]);
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-4);
  });

  test('h-swish as x·Clip(x+3,0,6)/6 and as x·HardSigmoid(x); h-sigmoid as Clip(0,6)·(1/6); MatMul+Add → Gemm', async () => {
    const wc = makeTensor('wc', [C, 3, 1, 1], randn(C * 3, r));
    const bc = makeTensor('bc', [C], randn(C, r));
    const m = build({
      opset: 13, input: [1, 3, 8, 8], output: 'out',
      nodes: [
        makeNode('Conv', 'conv', ['x', 'wc', 'bc'], ['c']),
        // PaddleOCR h-swish
        makeNode('Add', 'a', ['c', 'three'], ['a3']), makeNode('Clip', 'cl', ['a3', 'zero', 'six'], ['cl']),
        makeNode('Mul', 'm', ['c', 'cl'], ['m']), makeNode('Div', 'd', ['m', 'six'], ['hs1']),
        // torch h-swish
        makeNode('HardSigmoid', 'hsig', ['hs1'], ['hsig'], { alpha: float(1 / 6), beta: float(0.5) }),
        makeNode('Mul', 'm2', ['hs1', 'hsig'], ['hs2']),
        // Keras h-sigmoid gate (SE)
        makeNode('GlobalAveragePool', 'gap', ['hs2'], ['p']),
        makeNode('Conv', 'se', ['p', 'wse', 'bse'], ['s']),
        makeNode('Clip', 'secl', ['s', 'zero', 'six'], ['s6']), makeNode('Mul', 'sem', ['s6', 'sixth'], ['gate']),
        makeNode('Mul', 'scale', ['hs2', 'gate'], ['z']),
        makeNode('GlobalAveragePool', 'gap2', ['z'], ['p2']),
        makeNode('Shape', 'shape', ['p2'], ['shp']), makeNode('Slice', 'sl', ['shp', 'zero_i', 'one_i'], ['n']),
        makeNode('Concat', 'cat', ['n', 'minus1'], ['tgt'], { axis: int(0) }),
        makeNode('Reshape', 'rs', ['p2', 'tgt'], ['flat']),
        makeNode('MatMul', 'mm', ['flat', 'wfc'], ['mmo']), makeNode('Add', 'bias', ['mmo', 'bfc'], ['out']),
      ],
      inits: [wc, bc,
        makeTensor('three', [], Float32Array.of(3)), makeTensor('zero', [], Float32Array.of(0)), makeTensor('six', [], Float32Array.of(6)),
        makeTensor('sixth', [], Float32Array.of(1 / 6)),
        makeTensor('wse', [C, C, 1, 1], randn(C * C, r)), makeTensor('bse', [C], randn(C, r)),
        makeTensor('zero_i', [1], BigInt64Array.of(0n)), makeTensor('one_i', [1], BigInt64Array.of(1n)), makeTensor('minus1', [1], BigInt64Array.of(-1n)),
        makeTensor('wfc', [C, 5], randn(C * 5, r)), makeTensor('bfc', [5], randn(5, r)),
      ],
    });
    const want = await runModel(m, x, [1, 3, 8, 8]);
    const { graph } = normalize(m);
    const ops = graph.nodes.map((n) => n.opType);
    expect(ops).toEqual(['Conv', 'HardSwish', 'HardSwish', 'GlobalAveragePool', 'Conv', 'HardSigmoid', 'Mul', 'GlobalAveragePool', 'Flatten', 'Gemm']);
    const got = await runModel(graph.toModel({ opset: 14 }), x, [1, 3, 8, 8]);
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-4);
  });

  test('a zero Pad before Convs folds into their pads; ReduceMean over H, W becomes GlobalAveragePool (+ Flatten)', async () => {
    for (const keepdims of [0, 1]) {
      const m = build({
        opset: 13, input: [1, 3, 8, 8], output: 'y',
        nodes: [
          makeNode('Pad', 'pad', ['x', 'pads', 'zero'], ['p']),
          makeNode('Conv', 'conv', ['p', 'w', 'b'], ['c'], { strides: ints([2, 2]) }),
          makeNode('Conv', 'conv2', ['p', 'w', 'b'], ['c2'], { pads: ints([1, 0, 0, 1]) }),
          makeNode('Add', 'add', ['c', 'c2s'], ['s']),
          makeNode('Conv', 'down', ['c2', 'wd'], ['c2s'], { strides: ints([2, 2]) }),
          makeNode('ReduceMean', 'mean', ['s'], ['y'], { axes: ints([-2, -1]), keepdims: int(keepdims) }),
        ],
        inits: [
          makeTensor('pads', [8], new BigInt64Array([0n, 0n, 0n, 0n, 0n, 0n, 1n, 1n]) as never), makeTensor('zero', [], Float32Array.of(0)),
          makeTensor('w', [C, 3, 3, 3], randn(C * 27, r)), makeTensor('b', [C], randn(C, r)), makeTensor('wd', [C, C, 2, 2], randn(C * C * 4, r)),
        ],
      });
      const want = await runModel(m, x, [1, 3, 8, 8]);
      const { graph, log } = normalize(m);
      expect(graph.nodes.map((n) => n.opType)).not.toContain('Pad');
      expect(graph.nodes.map((n) => n.opType)).toContain('GlobalAveragePool');
      expect(log.join(' ')).toMatch(/1 zero Pad folded into Conv pads.*ReduceMean over H, W → GlobalAveragePool/);
      expect(maxAbsDiff(await runModel(graph.toModel({ opset: 14 }), x, [1, 3, 8, 8]), want)).toBeLessThan(1e-4);
    }
  });

  test("ReduceMean over H, W of a Transpose back to NHWC (tf2onnx's GlobalAveragePooling2D) → GlobalAveragePool, with and without keepdims", async () => {
    for (const keepdims of [0, 1]) {
      const m = build({
        opset: 13, input: [1, 3, 8, 8], output: 'y',
        nodes: [
          makeNode('Conv', 'conv', ['x', 'w', 'b'], ['c'], { pads: ints([1, 1, 1, 1]) }),
          makeNode('Transpose', 'to_nhwc', ['c'], ['t'], { perm: ints([0, 2, 3, 1]) }),
          makeNode('ReduceMean', 'mean', ['t'], ['m'], { axes: ints([1, 2]), keepdims: int(keepdims) }),
          makeNode('Reshape', 'flat', ['m', 'shape'], ['y']),
        ],
        inits: [makeTensor('w', [C, 3, 3, 3], randn(C * 27, r)), makeTensor('b', [C], randn(C, r)),
          makeTensor('shape', [2], new BigInt64Array([1n, BigInt(C)]) as never)],
      });
      const want = await runModel(m, x, [1, 3, 8, 8]);
      const { graph } = normalize(m);
      expect(graph.nodes.map((n) => n.opType)).not.toContain('Transpose');
      expect(graph.nodes.map((n) => n.opType)).toContain('GlobalAveragePool');
      expect(maxAbsDiff(await runModel(graph.toModel({ opset: 14 }), x, [1, 3, 8, 8]), want)).toBeLessThan(1e-5);
    }
  });

  test('an NHWC input (rescaled per channel, then transposed to NCHW, as tf2onnx writes Keras models) is read as NCHW', async () => {
    const m = build({
      opset: 13, input: [1, 8, 8, 3], output: 'y',
      nodes: [
        makeNode('Mul', 'scale', ['x', 'k'], ['xs']),
        makeNode('Add', 'shift', ['xs', 'o'], ['xo']),
        makeNode('Transpose', 'to_nchw', ['xo'], ['t'], { perm: ints([0, 3, 1, 2]) }),
        makeNode('Conv', 'conv', ['t', 'w', 'b'], ['y'], { pads: ints([1, 1, 1, 1]) }),
      ],
      inits: [makeTensor('k', [3], Float32Array.of(0.5, 2, -1)), makeTensor('o', [], Float32Array.of(0.25)),
        makeTensor('w', [C, 3, 3, 3], randn(C * 27, r)), makeTensor('b', [C], randn(C, r))],
    });
    const nhwc = new Float32Array(x.length);
    for (let c = 0; c < 3; c++) for (let p = 0; p < 64; p++) nhwc[p * 3 + c] = x[c * 64 + p];
    const want = await runModel(m, nhwc, [1, 8, 8, 3]);
    const { graph, log, inputLayout } = normalize(m);
    expect(inputLayout).toBe('nhwc');
    expect(log.join(' ')).toMatch(/NHWC input 'x'/);
    expect(graph.nodes.map((n) => n.opType)).not.toContain('Transpose');
    expect(maxAbsDiff(await runModel(graph.toModel({ opset: 14 }), x, [1, 3, 8, 8]), want)).toBeLessThan(1e-4);
    expect(m.graph!.input![0].type!.tensorType!.shape!.dim!.map((d) => Number(d.dimValue))).toEqual([1, 8, 8, 3]); // not modified
    // [1, 8, 8, 3] without the Transpose is an NCHW input with 8 channels (the graph decides, not the shape)
    const direct = build({ opset: 13, input: [1, 8, 8, 3], output: 'y', nodes: [makeNode('Relu', 'relu', ['x'], ['y'])], inits: [] });
    const d = normalize(direct);
    expect(d.inputLayout).toBe('nchw');
    expect(() => inputSize(d.graph, parsePreprocess('tf'))).toThrow(/has 8 channels; only RGB \(3\) is supported \(an NHWC input \[N, H, W, 3\] must be transposed/);
  });

  test('input rescale (Mul, Add on the graph input) becomes a depthwise Conv', async () => {
    const m = build({
      opset: 13, input: [1, 3, 8, 8], output: 'y',
      nodes: [makeNode('Mul', 'mul', ['x', 'k'], ['a']), makeNode('Add', 'add', ['a', 'b'], ['r']), makeNode('Conv', 'conv', ['r', 'w', 'bias'], ['y'])],
      inits: [makeTensor('k', [1], Float32Array.of(1 / 127.5)), makeTensor('b', [1], Float32Array.of(-1)), makeTensor('w', [C, 3, 3, 3], randn(C * 27, r)), makeTensor('bias', [C], randn(C, r))],
    });
    const xx = x.map((v) => Math.round((v + 3) * 40));
    const want = await runModel(m, xx, [1, 3, 8, 8]);
    const { graph } = normalize(m);
    expect(graph.nodes.map((n) => n.opType)).toEqual(['Conv', 'Conv']);
    expect(attrInt(graph.nodes[0], 'group', 1)).toBe(3);
    expect(maxAbsDiff(await runModel(graph.toModel({ opset: 14 }), xx, [1, 3, 8, 8]), want)).toBeLessThan(1e-4);
  });
});

describe('h-swish equalization', () => {
  test('Conv → HardSwish → depthwise becomes Conv·s × HardSigmoid(Conv) → depthwise/s: same function, channel ranges equalized', async () => {
    const r = rng(11);
    const C = 4;
    // channel 2 is tiny after the h-swish and its depthwise filter is large (the Keras V3-Small stem)
    const w = randn(C * 3, r);
    for (let i = 0; i < 3; i++) w[2 * 3 + i] *= 0.05;
    const dw = randn(C * 9, r);
    for (let i = 0; i < 9; i++) dw[2 * 9 + i] *= 40;
    const m = build({
      opset: 14, input: [1, 3, 8, 8], output: 'y',
      nodes: [
        makeNode('Conv', 'conv', ['x', 'w', 'b'], ['c']),
        makeNode('HardSwish', 'hs', ['c'], ['h']),
        makeNode('Conv', 'dw', ['h', 'dw', 'db'], ['y'], { group: int(C), pads: ints([1, 1, 1, 1]) }),
      ],
      inits: [makeTensor('w', [C, 3, 1, 1], w), makeTensor('b', [C], Float32Array.of(1, -1, 0, 2)),
        makeTensor('dw', [C, 1, 3, 3], dw), makeTensor('db', [C], randn(C, r))],
    });
    const x = randn(3 * 64, r, 2);
    const want = await runModel(m, x, [1, 3, 8, 8]);
    const g = new Graph(m);
    const pairs = findHardSwishPairs(g);
    expect(pairs.map((p) => p.hswish.name)).toEqual(['hs']);
    // per-channel max |h| measured on x
    const hOut = new Graph(m);
    hOut.outputs = [makeValueInfo('h')];
    const h = await runModel(hOut.toModel(), x, [1, 3, 8, 8]);
    const amax = new Float32Array(C);
    for (let c = 0; c < C; c++) for (let i = 0; i < 64; i++) amax[c] = Math.max(amax[c], Math.abs(h[c * 64 + i]));
    expect(equalizeHardSwish(g, pairs, new Map([['h', amax]]))).toBe(1);
    expect(g.nodes.map((n) => n.opType)).toEqual(['Conv', 'Conv', 'HardSigmoid', 'Mul', 'Conv']);
    const got = await runModel(g.toModel({ opset: 14 }), x, [1, 3, 8, 8]);
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-4);
    // the Mul output's channel ranges are closer together than the h-swish output's
    const mul = g.nodes.find((n) => n.opType === 'Mul')!;
    const eqOut = new Graph(g.toModel({ opset: 14 }));
    eqOut.outputs = [makeValueInfo(mul.output![0])];
    const e = await runModel(eqOut.toModel(), x, [1, 3, 8, 8]);
    const emax = new Float32Array(C);
    for (let c = 0; c < C; c++) for (let i = 0; i < 64; i++) emax[c] = Math.max(emax[c], Math.abs(e[c * 64 + i]));
    const spread = (v: Float32Array) => Math.max(...v) / Math.min(...v);
    expect(spread(emax)).toBeLessThan(spread(amax) / 2);
    // the scaled Conv output's values below −3·s_c are multiplied by a zero gate: its range hint says
    // so, and clamping it there (what calibration observes) leaves the output unchanged
    const scaled = mul.input![0];
    const hint = g.rangeHints.get(scaled)!;
    expect(hint.channelLo!.length).toBe(C);
    expect(hint.lo).toBeCloseTo(Math.min(...hint.channelLo!), 5);
    const clamped = new Graph(g.toModel({ opset: 14 }));
    const floorName = clamped.addConst('floor', [1, C, 1, 1], hint.channelLo!);
    const cm = clamped.nodes.find((n) => n.opType === 'Mul')!;
    cm.input = [`${scaled}_floored`, cm.input![1]];
    clamped.nodes.push(makeNode('Max', 'floor_max', [scaled, floorName], [`${scaled}_floored`]));
    expect(maxAbsDiff(await runModel(clamped.toModel({ opset: 14 }), x, [1, 3, 8, 8]), want)).toBeLessThan(1e-4);
    // and some of its values were below a floor (the clamp was not vacuous)
    const sOut = new Graph(g.toModel({ opset: 14 }));
    sOut.outputs = [makeValueInfo(scaled)];
    const sv = await runModel(sOut.toModel(), x, [1, 3, 8, 8]);
    let below = 0;
    for (let c = 0; c < C; c++) for (let i = 0; i < 64; i++) if (sv[c * 64 + i] < hint.channelLo![c]) below++;
    expect(below).toBeGreaterThan(0);
  });

  test('a tensor read only by HardSigmoid / HardSwish is quantized only where they are not flat', () => {
    const m = build({
      opset: 14, input: [1, 3, 8, 8], output: 'y',
      nodes: [
        makeNode('Conv', 'c1', ['x', 'w', 'b'], ['a']), makeNode('HardSigmoid', 'hsig', ['a'], ['ga'], { alpha: float(1 / 6), beta: float(0.5) }),
        makeNode('Conv', 'c2', ['x', 'w', 'b'], ['s']), makeNode('HardSwish', 'hsw', ['s'], ['gs']),
        makeNode('Conv', 'c3', ['x', 'w', 'b'], ['t']), makeNode('HardSigmoid', 'hsig2', ['t'], ['gt']), makeNode('Relu', 'r', ['t'], ['rt']),
        makeNode('Add', 'add1', ['ga', 'gs'], ['u']), makeNode('Add', 'add2', ['gt', 'rt'], ['v']), makeNode('Add', 'add3', ['u', 'v'], ['y']),
      ],
      inits: [makeTensor('w', [3, 3, 1, 1], Float32Array.from({ length: 9 }, (_, i) => i - 4)), makeTensor('b', [3], Float32Array.of(0, 1, 2))],
    });
    const g = new Graph(m);
    expect(flatOutside(g, 'a')).toEqual({ lo: -3, hi: 3 });
    expect(flatOutside(g, 's')).toEqual({ lo: -3, hi: Infinity });
    expect(flatOutside(g, 't')).toBeUndefined(); // the Relu reads it too
    const ranges = new Map(['x', 'a', 's', 't', 'ga', 'gs', 'gt', 'rt', 'u', 'v', 'y'].map((t) => [t, { lo: -10, hi: 12 }]));
    const on = resolveQParams(planQuantization(g, {}), ranges);
    expect(on.get('a')!.range).toEqual({ lo: -3, hi: 3 });
    expect(on.get('s')!.range).toEqual({ lo: -3, hi: 12 });
    expect(on.get('t')!.range).toEqual({ lo: -10, hi: 12 });
    const off = resolveQParams(planQuantization(g, { gateRanges: false }), ranges);
    expect(off.get('a')!.range).toEqual({ lo: -10, hi: 12 });
  });
});

describe('input quantization', () => {
  const mse = (t: Float32Array, scale: number, zp: number) => {
    let e = 0;
    for (const v of t) { const d = v - Math.fround(scale) * (quantizeLinear(v, scale, zp) - zp); e += d * d; }
    return e / t.length;
  };
  test("tf's (p − 127.5) / 127.5 lies half a step off any int8 grid of step 2/255: a slightly wider step spreads the error", () => {
    const spec = parsePreprocess('tf');
    const t = floatTable(spec);
    const plain = qparams({ lo: -1, hi: 1 });
    const q = inputQParams(spec);
    expect(q.scale).toBeGreaterThan(plain.scale);
    // every value sits exactly between two codes with the plain range: error (step/2)² on every pixel
    expect(mse(t, plain.scale, plain.zeroPoint)).toBeCloseTo((plain.scale / 2) ** 2, 8);
    expect(mse(t, q.scale, q.zeroPoint)).toBeLessThan(mse(t, plain.scale, plain.zeroPoint) / 2.5);
    // the whole range [-1, 1] stays representable (no clipping of black or white)
    expect(q.scale * (-128 - q.zeroPoint)).toBeLessThanOrEqual(-1);
    expect(q.scale * (127 - q.zeroPoint)).toBeGreaterThanOrEqual(1 - 1e-6);
  });
  test('raw 0..255 stays exact (scale 1, zero point -128)', () => {
    const q = inputQParams(parsePreprocess('raw'));
    expect(q).toEqual({ scale: 1, zeroPoint: -128 });
    expect(mse(floatTable(parsePreprocess('raw')), q.scale, q.zeroPoint)).toBe(0);
  });
});

describe('stem ReLU6 equalization', () => {
  test('Conv(x) → ReLU6 → depthwise: narrow channels scaled up to fill [0, 6], same function on the calibration inputs, later ReLU6 pairs untouched', async () => {
    const r = rng(21);
    const C = 4;
    const w = randn(C * 3, r);
    for (let i = 0; i < 3; i++) w[1 * 3 + i] *= 0.02; // channel 1: a narrow channel
    for (let i = 0; i < 3; i++) w[0 * 3 + i] *= 20; // channel 0: saturates at 6
    const six = makeTensor('six', [], Float32Array.of(6)), zero = makeTensor('zero', [], Float32Array.of(0));
    const m = build({
      opset: 14, input: [1, 3, 8, 8], output: 'y',
      nodes: [
        makeNode('Conv', 'conv', ['x', 'w', 'b'], ['c']),
        makeNode('Clip', 'relu6', ['c', 'zero', 'six'], ['h']),
        makeNode('Conv', 'dw', ['h', 'dw', 'db'], ['d'], { group: int(C), pads: ints([1, 1, 1, 1]) }),
        makeNode('Clip', 'relu6b', ['d', 'zero', 'six'], ['h2']),
        makeNode('Conv', 'dw2', ['h2', 'dw2', 'db2'], ['y'], { group: int(C), pads: ints([1, 1, 1, 1]) }),
      ],
      inits: [makeTensor('w', [C, 3, 1, 1], w), makeTensor('b', [C], Float32Array.of(1, 0.5, 2, 3)),
        makeTensor('dw', [C, 1, 3, 3], randn(C * 9, r)), makeTensor('db', [C], randn(C, r)),
        makeTensor('dw2', [C, 1, 3, 3], randn(C * 9, r)), makeTensor('db2', [C], randn(C, r)), six, zero],
    });
    const x = randn(3 * 64, r, 2);
    const want = await runModel(m, x, [1, 3, 8, 8]);
    const chMax = async (model: onnx.IModelProto, t: string) => {
      const g2 = new Graph(model as onnx.ModelProto);
      g2.outputs = [makeValueInfo(t)];
      const h = await runModel(g2.toModel(), x, [1, 3, 8, 8]);
      const a = new Float32Array(C);
      for (let c = 0; c < C; c++) for (let i = 0; i < 64; i++) a[c] = Math.max(a[c], Math.abs(h[c * 64 + i]));
      return a;
    };
    const amax = await chMax(m, 'h');
    expect(amax[0]).toBe(6);
    expect(amax[1]).toBeLessThan(1);
    const g = new Graph(m);
    const all = findPairs(g);
    expect(all.map((p) => p.conv.name)).toEqual(['conv']); // the ReLU6 pair after the stem is not taken
    expect(all[0].clipHi).toBe(6);
    expect(findPairs(g, 'stem').map((p) => p.conv.name)).toEqual(['conv']);
    expect(equalize(g, all, new Map([['h', amax]]))).toBe(1);
    const em = g.toModel({ opset: 14 });
    expect(maxAbsDiff(await runModel(em, x, [1, 3, 8, 8]), want)).toBeLessThan(1e-4);
    const relu6 = g.nodes.find((n) => n.name === 'relu6')!;
    const after = await chMax(em, relu6.output![0]);
    expect(after[0]).toBe(6); // saturating channel: not scaled
    for (let c = 1; c < C; c++) expect(after[c]).toBeCloseTo(6, 3); // the others now fill [0, 6]
  });

  test('stem split: Clip(0, 6) → Σ Clip(0, 6/n)(x − 6k/n) summed by a grouped Conv, exactly the same function (padding included)', async () => {
    const r = rng(22);
    const C = 3;
    const six = makeTensor('six', [], Float32Array.of(6)), zero = makeTensor('zero', [], Float32Array.of(0));
    const m = build({
      opset: 14, input: [1, 3, 7, 9], output: 'y',
      nodes: [
        makeNode('Conv', 'conv', ['x', 'w', 'b'], ['c'], { pads: ints([1, 1, 1, 1]) }),
        makeNode('Clip', 'relu6', ['c', 'zero', 'six'], ['h']),
        makeNode('Conv', 'dw', ['h', 'dw', 'db'], ['y'], { group: int(C), pads: ints([0, 0, 1, 1]), strides: ints([2, 2]) }),
      ],
      inits: [makeTensor('w', [C, 3, 3, 3], randn(C * 27, r, 2)), makeTensor('b', [C], Float32Array.of(1, 0.5, 2)),
        makeTensor('dw', [C, 1, 3, 3], randn(C * 9, r)), makeTensor('db', [C], randn(C, r)), six, zero],
    });
    const x = randn(3 * 63, r, 2);
    const want = await runModel(m, x, [1, 3, 7, 9]);
    for (const n of [2, 3]) {
      const g = new Graph(m);
      const [pair] = findPairs(g, 'stem');
      expect(splitClipRange(g, pair, n)).toBe(true);
      const dw = g.nodes.find((v) => v.name === 'dw')!;
      expect(g.constDims(dw.input![1])).toEqual([C, n, 3, 3]);
      const em = g.toModel({ opset: 14 });
      expect(maxAbsDiff(await runModel(em, x, [1, 3, 7, 9]), want)).toBeLessThan(1e-4);
    }
    // not a ReLU6 → depthwise stem: nothing to split
    const g = new Graph(m);
    const [pair] = findPairs(g, 'stem');
    expect(splitClipRange(g, { ...pair, clipHi: undefined }, 2)).toBe(false);
  });
});

describe('QDQ emission', () => {
  test('Conv+Relu, residual Add, GAP, Gemm: the layout ONNX Runtime runs, close to float', async () => {
    const r = rng(3);
    const C = 8;
    const m = build({
      opset: 13, input: [1, 3, 8, 8], output: 'logits',
      nodes: [
        makeNode('Conv', 'c1', ['x', 'w1', 'b1'], ['c1'], { pads: ints([1, 1, 1, 1]) }), makeNode('Relu', 'r1', ['c1'], ['r1']),
        makeNode('Conv', 'c2', ['r1', 'w2', 'b2'], ['c2']), makeNode('Add', 'add', ['r1', 'c2'], ['s']),
        makeNode('GlobalAveragePool', 'gap', ['s'], ['p']), makeNode('Flatten', 'fl', ['p'], ['f']),
        makeNode('Gemm', 'fc', ['f', 'wf', 'bf'], ['logits'], { transB: int(1) }),
      ],
      inits: [
        makeTensor('w1', [C, 3, 3, 3], randn(C * 27, r, 0.3)), makeTensor('b1', [C], randn(C, r, 0.1)),
        makeTensor('w2', [C, C, 1, 1], randn(C * C, r, 0.3)), makeTensor('b2', [C], randn(C, r, 0.1)),
        makeTensor('wf', [10, C], randn(10 * C, r)), makeTensor('bf', [10], randn(10, r)),
      ],
    });
    const { graph } = normalize(m);
    const fm = graph.toModel({ opset: 14 });
    const plan = planQuantization(graph, { inputRange: { lo: -3, hi: 3 } });
    expect(plan.tensors).toEqual(['x', 'r1', 'c2', 's', 'p', 'f', 'logits']);
    // calibrate from a few random inputs
    const xs = [0, 1, 2, 3].map(() => randn(3 * 64, r));
    const obs = new Graph(fm);
    for (const t of plan.tensors) if (t !== 'x' && t !== 'logits') obs.outputs.push(makeValueInfo(t));
    const s = await createSession(encodeModel(obs.toModel()));
    const stats = new Map<string, TensorStats>();
    for (const xi of xs) {
      const out = await runFloat(s, xi, [1, 3, 8, 8]);
      for (const [k, v] of Object.entries(out)) { if (!stats.has(k)) stats.set(k, new TensorStats()); stats.get(k)!.observeMinMax(v.data); }
    }
    const ranges = new Map([...stats].map(([k, v]) => [k, computeRange(v, 'minmax')]));
    const qp = resolveQParams(plan, ranges);
    expect(qp.get('f')).toBe(qp.get('p')); // Flatten keeps its input's quantization
    const qg = new Graph(fm);
    emitQdq(qg, planQuantization(qg, { inputRange: { lo: -3, hi: 3 } }), qp);
    const qm = qg.toModel({ opset: 14 });
    const bytes = encodeModel(qm);
    const back = readModel(bytes);
    const ops = back.graph!.node!.map((n) => n.opType);
    expect(ops.filter((o) => o === 'QuantizeLinear').length).toBe(7);
    expect(ops).toContain('Relu');
    const inits = new Map(back.graph!.initializer!.map((t) => [t.name!, t]));
    // weights int8 per channel axis 0, bias int32 at s_in * s_w
    const wdq = back.graph!.node!.find((n) => n.opType === 'DequantizeLinear' && n.input![0] === 'w1_quantized')!;
    expect(attrInt(wdq, 'axis', -1)).toBe(0);
    expect(inits.get('w1_quantized')!.dataType).toBe(onnx.TensorProto.DataType.INT8);
    const wq = tensorData(inits.get('w1_quantized')!) as Int8Array;
    expect(Math.min(...wq)).toBeGreaterThanOrEqual(-127);
    const bdq = back.graph!.node!.find((n) => n.opType === 'DequantizeLinear' && n.input![0] === 'b1_quantized')!;
    expect(inits.get('b1_quantized')!.dataType).toBe(onnx.TensorProto.DataType.INT32);
    const bs = tensorData(inits.get(bdq.input![1])!) as Float32Array;
    const ws = tensorData(inits.get(wdq.input![1])!) as Float32Array;
    const xs0 = qp.get('x')!.scale;
    for (let c = 0; c < C; c++) expect(bs[c]).toBe(Math.fround(Math.fround(xs0) * ws[c]));
    // the output keeps its name and the int8 model tracks float
    expect(back.graph!.output![0].name).toBe('logits');
    let sig = 0, noise = 0;
    for (const xi of xs) {
      const a = await runModel(fm, xi, [1, 3, 8, 8]);
      const b = await runModel(bytes, xi, [1, 3, 8, 8]);
      for (let i = 0; i < a.length; i++) { sig += a[i] * a[i]; noise += (a[i] - b[i]) ** 2; }
    }
    expect(10 * Math.log10(sig / noise)).toBeGreaterThan(25);
    await s.release();
  });

  test('an op it cannot quantize is named, with --exclude offered; excluded nodes stay float', () => {
    const m = build({
      opset: 13, input: [1, 3, 4, 4], output: 'y',
      nodes: [makeNode('Conv', 'c', ['x', 'w', 'b'], ['c']), makeNode('Erf', 'weird', ['c'], ['y'])],
      inits: [makeTensor('w', [2, 3, 1, 1], new Float32Array(6).fill(0.5)), makeTensor('b', [2], new Float32Array(2))],
    });
    const { graph } = normalize(m);
    expect(() => planQuantization(graph)).toThrow(/Erf node 'weird'.*--exclude weird/);
    const plan = planQuantization(graph, { exclude: ['weird'] });
    expect(plan.floatNodes.size).toBe(1);
    expect(plan.tensors).toEqual(['x', 'c']);
    expect(() => planQuantization(graph, { exclude: ['nope'] })).toThrow(/--exclude nope: no node/);
  });
});

describe('bias correction', () => {
  // x [1, 16, 4, 4] → Conv a (1×1, 16 → 2) → Conv b (1×1, 2 → 2) → Conv y (graph output), every value on its int8
  // grid: x in {0, ±127/128} (scale 1/128), weights ±1 (int8 ±127), a = k·127/128 (scale 127/128), so the int8
  // model computes what float does and bias correction has nothing to correct. Conv a's products are the ones ORT's
  // uint8 x int8 kernels saturate on x86 without VNNI (x = 127/128 is uint8 255 after ORT's x86-default conversion,
  // weight 127: a pair sums to 64770 > 32767): measured through them, b's input is wrong and b's bias moves by units.
  test('measures the int8 model\'s own integer arithmetic on every CPU: a model its int8 grids represent exactly keeps its biases', async () => {
    const r = rng(11);
    const C = 16, HW = 16, opset = 13;
    const wa = Float32Array.from({ length: 2 * C }, (_, i) => (i < C || i % 2 ? 1 : -1));
    const m = build({
      opset, input: [1, C, 4, 4], output: 'y',
      nodes: [makeNode('Conv', 'a', ['x', 'wa', 'ba'], ['a']), makeNode('Conv', 'b', ['a', 'wb', 'bb'], ['b']), makeNode('Conv', 'y', ['b', 'wy', 'by'], ['y'])],
      inits: [
        makeTensor('wa', [2, C, 1, 1], wa), makeTensor('ba', [2], new Float32Array(2)),
        makeTensor('wb', [2, 2, 1, 1], Float32Array.of(1, -1, 1, 1)), makeTensor('bb', [2], new Float32Array(2)),
        makeTensor('wy', [2, 2, 1, 1], Float32Array.of(1, 0, 0, 1)), makeTensor('by', [2], new Float32Array(2)),
      ],
    });
    const floatModel = normalize(m).graph.toModel({ opset });
    const planOptions = { inputRange: { lo: -1, hi: 127 / 128 }, inputQParams: { scale: 1 / 128, zeroPoint: 0 } };
    const qp = resolveQParams(planQuantization(new Graph(floatModel), planOptions),
      new Map([['a', { lo: -127, hi: 127 * 127 / 128 }], ['b', { lo: -40, hi: 40 }], ['y', { lo: -40, hi: 40 }]]));
    expect([qp.get('a')!.scale, qp.get('a')!.zeroPoint]).toEqual([127 / 128, 0]);
    const emit = (fm: onnx.ModelProto) => {
      const qg = new Graph(fm);
      emitQdq(qg, planQuantization(qg, planOptions), qp);
      return qg.toModel({ opset });
    };
    const images = Array.from({ length: 4 }, () => Float32Array.from({ length: C * HW }, () => {
      const u = r();
      return u < 0.7 ? 127 / 128 : u < 0.85 ? 0 : -127 / 128;
    }));
    const corrected = new Graph(await biasCorrect({ floatModel, emit, floatNodes: new Set(), images, shape: [1, C, 4, 4], opset }));
    for (const b of ['ba', 'bb']) {
      const moved = Math.max(...Array.from(corrected.constF(b)!, Math.abs));
      expect({ bias: b, moved: moved < 1e-4 ? 'less than 1e-4' : moved }).toEqual({ bias: b, moved: 'less than 1e-4' });
    }
  });
});

describe('GPTQ weight rounding', () => {
  // a 3×3 conv, 1 input channel, 2 output channels, on inputs with a large DC level: channel 0 is a
  // differencing filter (its taps nearly cancel), whose int8 rounding errors add up on the DC level
  const geo: ConvGeometry = { C: 1, H: 12, W: 12, O: 2, OH: 12, OW: 12, groups: 1, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1 };
  const w0 = Float32Array.from([47.3, 0.1, -44.9, 41.4, -4.0, -39.5, -3.8, 0.6, 4.35, 0.3, -1.2, 0.8, 2.1, 0.05, -0.7, 1.1, -0.4, 0.9]);
  const b0 = Float32Array.of(0.5, -0.2);
  const image = (r: () => number) => Float32Array.from({ length: 144 }, (_, i) => 20 + Math.sin(i / 7) + 0.3 * gauss(r));
  const conv = (x: Float32Array, w: Float32Array, b: Float32Array) => {
    const y = new Float64Array(2 * 144);
    for (let o = 0; o < 2; o++) for (let p = 0; p < 144; p++) {
      let v = b[o];
      for (let k = 0; k < 9; k++) {
        const iy = Math.floor(p / 12) - 1 + Math.floor(k / 3), ix = (p % 12) - 1 + (k % 3);
        if (iy >= 0 && iy < 12 && ix >= 0 && ix < 12) v += w[o * 9 + k] * x[iy * 12 + ix];
      }
      y[o * 144 + p] = v;
    }
    return y;
  };
  const error = (images: Float32Array[], w: Float32Array, b: Float32Array) => {
    let e = 0;
    for (const x of images) { const ref = conv(x, w0, b0), y = conv(x, w, b); for (let i = 0; i < y.length; i++) e += (y[i] - ref[i]) ** 2; }
    return e;
  };

  test('weights land on the int8 grid, and the output error is far below rounding each weight on its own', () => {
    const r = rng(7);
    const calib = Array.from({ length: 8 }, () => image(r)), fresh = Array.from({ length: 8 }, () => image(r));
    const scales = quantizeWeights(w0, 2, false).scales;
    const corr = new PatchCorrelation(geo);
    calib.forEach((x, i) => corr.add(x, 1e9, i));
    const { w, b } = corr.round(w0, b0, scales);
    for (let i = 0; i < w.length; i++) {
      const q = w[i] / scales[Math.floor(i / 9)];
      expect(Math.abs(q - Math.round(q))).toBeLessThan(1e-4);
      expect(Math.abs(Math.round(q))).toBeLessThanOrEqual(127);
    }
    const plain = Float32Array.from(w0, (v, i) => Math.round(v / scales[Math.floor(i / 9)]) * scales[Math.floor(i / 9)]);
    expect(error(calib, w, b)).toBeLessThan(error(calib, plain, b0) / 10);
    expect(error(fresh, w, b)).toBeLessThan(error(fresh, plain, b0) / 10);
    expect(w0[0]).toBeCloseTo(47.3, 5); // inputs untouched
  });
});
