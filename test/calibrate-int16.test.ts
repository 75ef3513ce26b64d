// Mixed precision in the calibrator (lib/calibrate/int16.ts, the int16 parts of quantize.ts): int16 quantization
// parameters, scoring against float, the choice by measurement (with a stand-in runtime whose error is known),
// the user's forced list, the metadata compare reads, and the CLI's flag checks. The real models are in
// calibrate-int16.shared.test.ts.
import { qparams16, resolveQParams, QuantPlan, RangeRule } from '../lib/calibrate/quantize';
import { chooseInt16, ChooseArgs, forcedInt16, int16Metadata, int16Share, readInt16Metadata, score, tensorCost, Work } from '../lib/calibrate/int16';
import { Graph } from '../lib/calibrate/graph';
import { onnx, makeTensor } from '../lib/onnx/proto';
import { makeNode, makeValueInfo } from '../lib/onnx/writer';
import type { Model } from '../lib/model';
import { run as calibrateCli } from '../lib/cli/calibrate';

describe('int16 quantization parameters', () => {
  test('symmetric, zero point 0, the larger |bound| on 32767', () => {
    expect(qparams16({ lo: -2, hi: 6 })).toEqual({ scale: Math.fround(6 / 32767), zeroPoint: 0, bits: 16 });
    expect(qparams16({ lo: -8, hi: 1 })).toEqual({ scale: Math.fround(8 / 32767), zeroPoint: 0, bits: 16 });
    expect(() => qparams16({ lo: 0, hi: 0 })).toThrow(/degenerate/);
  });
  test('resolveQParams: int16 tensors take the observed range, their pass-through outputs follow, the rest stay int8', () => {
    const plan: QuantPlan = {
      tensors: ['a', 'b', 'c', 'r'],
      rangeOf: new Map<string, RangeRule>([
        ['a', { kind: 'calibrated' }], ['b', { kind: 'same', as: 'a' }], ['c', { kind: 'calibrated' }], ['r', { kind: 'clip', lo: 0, hi: 6 }],
      ]),
      fused: new Set(), floatNodes: new Set(),
    };
    const ranges = new Map([['a', { lo: -1, hi: 1 }], ['c', { lo: -1, hi: 3 }]]);
    const q = resolveQParams(plan, ranges, undefined, { tensors: new Set(['a', 'r']), ranges: new Map([['a', { lo: -4, hi: 2 }]]) });
    expect(q.get('a')).toMatchObject({ bits: 16, zeroPoint: 0, scale: Math.fround(4 / 32767) });
    expect(q.get('b')).toBe(q.get('a'));
    expect(q.get('c')!.bits).toBeUndefined();
    expect(q.get('c')!.scale).toBeCloseTo(4 / 255, 6);
    expect(q.get('r')).toMatchObject({ bits: 16, zeroPoint: 0, scale: Math.fround(6 / 32767) });
  });
});

describe('scoring against float', () => {
  test('SQNR and top-1 agreement over images', () => {
    const f = Float32Array.of(1, 2, 3, 3, 2, 1); // two images, three classes
    expect(score(f, f, 3)).toEqual({ sqnrDb: Infinity, agreement: 100 });
    const q = Float32Array.of(1, 2, 3, 1, 2, 3); // the second image flips
    const s = score(f, q, 3);
    expect(s.agreement).toBe(50);
    expect(s.sqnrDb).toBeCloseTo(10 * Math.log10(28 / 8), 10);
  });
});

// A chain of 1x1 Convs x -> a -> weak -> ... with a stand-in runtime: each int8 tensor adds a known error
// power to the outputs; 'weak' and 'weaker' carry most of it, and only both in int16 make it small.
function chain(names: string[]): Graph {
  const nodes = names.map((t, i) => makeNode('Conv', `n${i}`, [i ? names[i - 1] : 'x', 'w'], [t]));
  return new Graph(onnx.ModelProto.create({
    irVersion: 8, opsetImport: [{ domain: '', version: 14 }],
    graph: {
      name: 'chain', node: nodes, initializer: [makeTensor('w', [4, 4, 1, 1], new Float32Array(16))],
      input: [makeValueInfo('x', onnx.TensorProto.DataType.FLOAT, [1, 4, 1, 1])], output: [makeValueInfo('out')],
    },
  }));
}

function standIn(errors: Record<string, number>, calls: Set<string>[] = []): Pick<ChooseArgs, 'emit' | 'load'> {
  let last = new Set<string>();
  return {
    emit: (int16) => { last = new Set(int16); calls.push(last); return new Uint8Array(0); },
    load: async () => {
      const int16 = last;
      return {
        run: async (x: Float32Array) => {
          // float output: x itself; error: the sum of the int8 tensors' error powers, as a shift of class 0
          let e = 0;
          for (const [t, p] of Object.entries(errors)) if (!int16.has(t)) e += p;
          const y = Float32Array.from(x);
          for (let i = 0; i < y.length; i += 4) y[i] += Math.sqrt(e);
          return y;
        },
        dispose: () => undefined,
      } as unknown as Model;
    },
  };
}

describe('the int16 choice (top-down, measured)', () => {
  const names = ['a', 'weak', 'b', 'weaker', 'c', 'out'];
  const g = chain(names);
  const candidates = names.slice(0, -1);
  // each Conv n0..n5 does 100 multiply-adds; an int16 tensor makes its writer and its reader wide
  const work: Work = { ops: new Map(names.map((_, i) => [`n${i}`, 100])), total: 600, touching: new Map() };
  ['x', ...names].forEach((t, i) => work.touching.set(t, [i ? `n${i - 1}` : '', i < names.length ? `n${i}` : ''].filter(Boolean)));
  const images = new Float32Array(16 * 4).map((_, i) => [4, 1, 0, 0][i % 4]);
  const base = (errors: Record<string, number>, target: ChooseArgs['target'], calls?: Set<string>[]): ChooseArgs => ({
    graph: g, candidates, work, cost: new Map(candidates.map((t) => [t, tensorCost(work, t, 4)])),
    images, shape: [16, 4], floatOut: images, classes: 4, target, ...standIn(errors, calls),
  });

  test('keeps in int16 only the tensors the target needs', async () => {
    const errors = { a: 0.001, weak: 2, b: 0.001, weaker: 1, c: 0.002 };
    const c = await chooseInt16(base(errors, { sqnrDb: 20 }));
    expect(c.stop).toBe('target met');
    expect(c.tensors.sort()).toEqual(['weak', 'weaker']);
    expect(c.final.sqnrDb).toBeGreaterThanOrEqual(20);
    expect(c.base.sqnrDb).toBeLessThan(20);
    expect(c.share).toBeCloseTo(400 / 600, 10); // n1..n4 run wide
    // what each int16 tensor buys, the costliest first
    expect(c.steps.map((s) => s.tensor)).toEqual(['weak', 'weaker']);
    expect(c.steps[0].int8ErrorDb).toBeLessThan(c.steps[1].int8ErrorDb);
    expect(c.steps[0].int8ErrorDb).toBeCloseTo(-10 * Math.log10(2 / 17), 4); // float32 outputs
  });

  test('int8 that meets the target stays int8; a budget caps the int16 share', async () => {
    const small = { a: 1e-6, weak: 1e-6, b: 1e-6, weaker: 1e-6, c: 1e-6 };
    expect(await chooseInt16(base(small, { sqnrDb: 20 }))).toMatchObject({ tensors: [], stop: 'int8 meets the target' });
    const c = await chooseInt16(base({ a: 0.001, weak: 2, b: 0.001, weaker: 1, c: 0.002 }, { sqnrDb: 20, budget: 0.4 }));
    expect(c.stop).toBe('budget');
    expect(c.share).toBeCloseTo(200 / 600, 10);
    expect(c.tensors).toEqual(['weak']); // the one whose int8 costs most
  });

  test('a candidate the runtime refuses in int16 stays int8', async () => {
    const args = base({ a: 0.001, weak: 2, b: 0.001, weaker: 1, c: 3 }, { sqnrDb: 20 });
    const load = args.load;
    let last = new Set<string>();
    const emit = args.emit;
    const c = await chooseInt16({
      ...args,
      emit: (int16) => { last = int16; return emit(int16); },
      load: async (bytes) => { if (last.has('c')) throw new Error('refused'); return load(bytes); },
    });
    expect(c.tensors).not.toContain('c');
    expect(c.stop).toBe('target unreachable'); // c's error stays
  });

  test('an unreachable target keeps every candidate in int16 and says so', async () => {
    // 'rest' is not a candidate: its error stays whatever is int16
    const c = await chooseInt16(base({ a: 2, weak: 2, b: 2, weaker: 2, c: 2, rest: 1 }, { sqnrDb: 20 }));
    expect(c.stop).toBe('target unreachable');
    expect(c.tensors).toEqual(candidates);
  });

  test('work: an int16 tensor makes its writer and its readers wide; shared ops count once', () => {
    expect(tensorCost(work, 'weak', 4)).toBe(204);
    expect(int16Share(['weak'], work)).toBeCloseTo(200 / 600, 10);
    expect(int16Share(['a', 'weak'], work)).toBeCloseTo(300 / 600, 10); // n1 is shared
    expect(int16Share([], work)).toBe(0);
  });

  test('forced lists: tensor names, node names and op types; unknown names are an error', () => {
    expect(forcedInt16(g, candidates, ['weak'])).toEqual(['weak']);
    expect(forcedInt16(g, candidates, ['n3'])).toEqual(['weaker']);
    expect(forcedInt16(g, candidates, ['Conv'])).toEqual(candidates);
    expect(() => forcedInt16(g, candidates, ['nope'])).toThrow(/--int16 nope: no quantized activation tensor/);
    expect(() => forcedInt16(g, candidates, ['out'])).toThrow(/graph's input and outputs stay int8/);
  });

  test('the metadata compare reads back', async () => {
    const c = await chooseInt16(base({ a: 0.001, weak: 2, b: 0.001, weaker: 1, c: 0.002 }, { sqnrDb: 20 }));
    const m = readInt16Metadata(int16Metadata(c))!;
    expect(m.share).toBeCloseTo(400 / 600, 4);
    expect(Object.keys(m.tensors).sort()).toEqual(['weak', 'weaker']);
    expect(m.tensors.weak).toBeCloseTo(c.steps[0].int8ErrorDb, 2);
    expect(readInt16Metadata('not json')).toBeUndefined();
    expect(readInt16Metadata(undefined)).toBeUndefined();
  });
});

describe('mnq calibrate: int16 flags', () => {
  const run = async (args: string[]) => {
    const err: string[] = [];
    const spy = jest.spyOn(console, 'error').mockImplementation((m: string) => { err.push(String(m)); });
    try {
      return { code: await calibrateCli(args), err: err.join('\n') };
    } finally {
      spy.mockRestore();
    }
  };
  const common = ['m.onnx', '--images', 'dir', '-o', 'out.onnx'];
  test.each([
    [['--target-agreement', '97'], /go with --int16 auto/],
    [['--int16', 'Add', '--int16-budget', '25%'], /go with --int16 auto/],
    [['--int16', 'auto', '--int16-budget', '120%'], /--int16-budget is a share/],
    [['--int16', 'auto', '--target-agreement', '101'], /--target-agreement is a percentage/],
    [['--int16', 'auto', '--target-agreement', '97', '--target-sqnr', '20'], /not both/],
    [['--int16', ','], /--int16 takes 'auto'/],
  ])('%j is a usage error', async (extra, msg) => {
    const r = await run([...common, ...extra]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
  });
});
