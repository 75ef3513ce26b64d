/**
 * @jest-environment ./test/helpers/node-env.js
 */
// ONNX -> plan compiler: structure of the plans for the shared int8 models and
// synthetic graphs, errors for unsupported graphs, and
// (without the addon) a plain-JS execution of the plan against ONNX Runtime.
import { compile, UnsupportedModelError, CompiledModel } from '../lib/compiler';
import { PlanOpType, UnaryFn } from '../lib/plan';
import { openOrtInt8 } from '../lib/ort/int8-reference';
import { describeShared, int8Models, sharedFile, sharedPath, testIf, testShared } from './helpers/shared';
import { ORT_CAVEAT, ORT_HOW, testOrt } from './helpers/ort';
import { tinyConvModel, withNhwcInput } from './helpers/tiny-models';
import { readModel, encodeModel, makeTensor, onnx } from '../lib/onnx/proto';
import { runReference, quantizeInput } from './helpers/reference';
import { loadImage, preprocessFor } from './helpers/images';
import { ImagePipeline } from '../lib/image';
import * as path from 'path';

function opCounts(m: CompiledModel): Record<string, number> {
  const c: Record<string, number> = {};
  for (const op of m.plan.ops) c[PlanOpType[op.type]] = (c[PlanOpType[op.type]] ?? 0) + 1;
  return c;
}

describe('compiler on synthetic QDQ graphs', () => {
  test('Conv -> Relu -> Q folds the Relu into the clamp; uint8 becomes int8', () => {
    const m = compile(tinyConvModel({ act: 'Relu', uint8: true }));
    const conv = m.plan.ops[0];
    expect(conv.type).toBe(PlanOpType.conv);
    expect(conv.qmin).toBe(-20); // Q(0) = output zero point (uint8 108 -> int8 -20)
    expect(conv.qmax).toBe(127);
    expect(m.input.zeroPoint).toBe(3);
    expect(conv.shape).toMatchObject({ inH: 5, inW: 5, inC: 3, outH: 5, outW: 5, outC: 4, padTop: 1, padRight: 1 });
    expect(Array.from(conv.bias)).toEqual([100, -2000, 50, 7]);
    expect(Array.from(conv.wScale)).toEqual(Array.from(Float32Array.of(0.01, 0.02, 0.005, 0.03)));
    expect(conv.wZeroPoint.length).toBe(0); // symmetric
    expect(m.outputs).toEqual([expect.objectContaining({ name: 'output', shape: ['N', 4], c: 4, h: 1, w: 1 })]);
  });

  test('Clip(0, 6) narrows the clamp to [Q(0), Q(6)]', () => {
    const m = compile(tinyConvModel({ act: 'Clip', uint8: false }));
    expect(m.plan.ops[0].qmin).toBe(-20);
    expect(m.plan.ops[0].qmax).toBe(-20 + 120); // 6 / 0.05
  });

  test('DQ -> HardSwish -> Q after a conv is fused into the conv output stage', () => {
    const m = compile(tinyConvModel({ act: 'none', lut: 'HardSwish' }));
    expect(opCounts(m)).toEqual({ conv: 1, globalAvgPool: 1 });
    const conv = m.plan.ops[0];
    expect(conv.hasActivation).toBe(true);
    expect(conv.activation.fn).toBe(UnaryFn.hardswish);
    expect(conv.actScale).toBe(Math.fround(0.05));
    expect(conv.actZeroPoint).toBe(-20);
    expect(m.plan.tensors[conv.output].zeroPoint).toBe(-100);
    // kept intermediate tensors are not fused away
    const k = compile(tinyConvModel({ act: 'none', lut: 'HardSwish' }), { keep: ['y_q'] });
    expect(opCounts(k)).toEqual({ conv: 1, lut: 1, globalAvgPool: 1 });
    expect(k.kept).toEqual([{ name: 'y_q', tensor: k.plan.ops[0].output }]);
    expect(k.plan.outputs).toEqual([k.outputs[0].tensor, k.kept[0].tensor]);
  });

  test('an unsupported operator gives an Error naming the node, op type and what is missing', () => {
    expect(() => compile(tinyConvModel({ act: 'Elu' }))).toThrow(UnsupportedModelError);
    expect(() => compile(tinyConvModel({ act: 'Elu' }))).toThrow(/Elu node 'act'.*not supported/);
  });

  test('a dynamic input height / width is taken from the mnq.preprocess size or CompileOptions.inputSize', () => {
    const dynamic = (meta?: string) => {
      const m = readModel(tinyConvModel());
      const dims = m.graph!.input![0].type!.tensorType!.shape!.dim!;
      dims[2] = { dimParam: 'H' };
      dims[3] = { dimParam: 'W' };
      if (meta) m.metadataProps = [{ key: 'mnq.preprocess', value: meta }];
      return encodeModel(m);
    };
    expect(() => compile(dynamic())).toThrow(/C, H and W must be fixed numbers.*mnq\.preprocess/);
    const fromMeta = compile(dynamic('{"base":"torch","size":[5,5]}'));
    const fixed = compile(tinyConvModel());
    expect([fromMeta.input.h, fromMeta.input.w]).toEqual([5, 5]);
    expect(fromMeta.plan).toEqual(fixed.plan);
    expect(compile(dynamic(), { inputSize: [7, 9] }).plan.tensors[0]).toMatchObject({ h: 7, w: 9, c: 3 });
    expect(() => compile(dynamic('{"base":"nope"}'))).toThrow(/metadata mnq\.preprocess: unknown preprocessing 'nope'/);
  });

  test('DQ -> MaxPool -> Q: an int8 max pool; a Q with other parameters becomes a requantization table', () => {
    const same = compile(tinyConvModel({ maxPool: {} }));
    expect(opCounts(same)).toEqual({ conv: 1, maxPool: 1, globalAvgPool: 1 });
    const pool = same.plan.ops[1];
    expect(pool.shape).toMatchObject({ inH: 5, inW: 5, inC: 4, outH: 3, outW: 3, outC: 4, kernelH: 3, strideH: 2, padTop: 1, padBottom: 1 });
    expect(same.plan.tensors[pool.output]).toMatchObject({ scale: Math.fround(0.05), zeroPoint: -20 });
    // ceil_mode: 5x5, kernel 2, stride 2 -> 3x3 (the last window half outside: padding on the bottom / right)
    const ceil = compile(tinyConvModel({ maxPool: { ceil: true } })).plan.ops[1];
    expect(ceil.shape).toMatchObject({ outH: 3, outW: 3, kernelH: 2, strideH: 2, padTop: 0, padBottom: 1, padRight: 1 });
    const requant = compile(tinyConvModel({ maxPool: { requantize: true } }));
    expect(opCounts(requant)).toEqual({ conv: 1, maxPool: 1, lut: 1, globalAvgPool: 1 });
  });

  test('bad bytes give an error, not a crash', () => {
    expect(() => compile(Uint8Array.of(1, 2, 3, 4, 5))).toThrow(/ONNX/);
    expect(() => compile('/nonexistent/model.onnx')).toThrow(/cannot read model file/);
  });

  test('a grouped Conv summing channel pairs reads them piece-major: its producer conv takes its channels in that order', () => {
    const plain = compile(tinyConvModel({ act: 'Clip' }));
    const m = compile(tinyConvModel({ act: 'Clip', pieces: true }));
    const [conv, grouped] = m.plan.ops;
    expect(grouped).toMatchObject({ type: PlanOpType.conv, groups: 2, inputPieces: 2 });
    expect(grouped.shape).toMatchObject({ inC: 4, outC: 2 });
    // ONNX channel c·2 + j is stored at j·2 + c: channels 1 and 2 swap
    expect(Array.from(conv.bias)).toEqual([100, 50, -2000, 7]);
    expect(Array.from(conv.wScale)).toEqual(Array.from(Float32Array.of(0.01, 0.005, 0.02, 0.03)));
    expect(Array.from(conv.weights.subarray(27, 54))).toEqual(Array.from(plain.plan.ops[0].weights.subarray(54, 81)));
    // through a standalone table too; a kept tensor says it is piece-major
    const k = compile(tinyConvModel({ act: 'none', lut: 'HardSwish', pieces: true }), { keep: 'all' });
    expect(k.kept.filter((t) => t.pieces === 2).map((t) => t.name)).toEqual(['y_q', 'a_q']);
    // a producer whose channels cannot be reordered (a MaxPool): refused, naming the node
    expect(() => compile(tinyConvModel({ maxPool: {}, pieces: true }))).toThrow(/node 'grouped': a grouped Conv with 2 input channels per group needs its input to be computed by a Conv.*'maxpool'/);
  });

  testOrt('an NHWC input transposed to NCHW (before or after its Q/DQ) compiles to the same plan; other uses of it are refused', async () => {
    const nchw = compile(tinyConvModel());
    for (const afterQdq of [false, true]) {
      const bytes = withNhwcInput(tinyConvModel(), afterQdq);
      const m = compile(bytes);
      expect(m.input).toMatchObject({ shape: ['N', 5, 5, 3], layout: 'nhwc', c: 3, h: 5, w: 5 });
      expect(m.plan.ops.map((o) => o.type)).toEqual(nchw.plan.ops.map((o) => o.type));
      expect(Array.from(m.plan.ops[0].weights)).toEqual(Array.from(nchw.plan.ops[0].weights));
      // ORT on NHWC data = the reference on the (layout-free) int8 NHWC plan input
      const x = Float32Array.from({ length: 75 }, (_, i) => Math.sin(i * 1.3) * 2);
      const nhwc = new Float32Array(75);
      for (let c = 0; c < 3; c++) for (let p = 0; p < 25; p++) nhwc[p * 3 + c] = x[c * 25 + p];
      const ort = await openOrtInt8(bytes);
      const theirs = (await ort.run(nhwc, [1, 5, 5, 3])).get(ort.int8Outputs[0])!.data;
      await ort.release();
      const ours = runReference(m.plan, quantizeInput(x, 3, 5, 5, m.input.scale, m.input.zeroPoint))[m.outputs[0].tensor]!;
      expect(Array.from(ours)).toEqual(Array.from(theirs));
    }
    expect(nchw.input.layout).toBe('nchw');
    // float arithmetic on the NHWC input before its Transpose (mnq quantizes the input first): refused, clearly
    const m = readModel(withNhwcInput(tinyConvModel()));
    const t = m.graph!.node!.find((n) => n.opType === 'Transpose')!;
    m.graph!.initializer!.push(makeTensor('two', [], Float32Array.of(2)));
    m.graph!.node!.unshift(onnx.NodeProto.create({ opType: 'Mul', name: 'double', input: ['input', 'two'], output: ['doubled'] }));
    t.input = ['doubled'];
    expect(() => compile(encodeModel(m))).toThrow(/Mul node 'double': the input is NHWC .*reaches Mul before a Transpose to NCHW/);
    // without any Transpose, [N, 5, 5, 3] is an NCHW input of 5 channels (the graph decides, not the shape)
    const plain = readModel(withNhwcInput(tinyConvModel(), true));
    plain.graph!.node = plain.graph!.node!.filter((n) => n.opType !== 'Transpose');
    for (const n of plain.graph!.node!) n.input = n.input!.map((x) => x.replace(/_nchw$/, ''));
    expect(() => compile(encodeModel(plain))).toThrow(/input channels 5/);
  });

  test('a constant-0 Pad of the input (ORT-quantized or float) joins the Conv padding; elsewhere it is refused', () => {
    for (const pad of ['qdq', 'float'] as const) {
      const conv = compile(tinyConvModel({ pad })).plan.ops[0];
      expect(conv.shape).toMatchObject({ inH: 5, inW: 5, outH: 6, outW: 6, padTop: 2, padLeft: 1, padBottom: 1, padRight: 2 });
    }
    const m = readModel(tinyConvModel({ pad: 'qdq' }));
    const conv = m.graph!.node!.find((n) => n.opType === 'Conv')!;
    m.graph!.node!.splice(m.graph!.node!.indexOf(conv), 0, onnx.NodeProto.create({ opType: 'Relu', name: 'relu_pad', input: ['xp'], output: ['xr'] }));
    conv.input = ['xr', ...conv.input!.slice(1)];
    expect(() => compile(encodeModel(m))).toThrow(/Relu node 'relu_pad': reads 'xp', zero-padded by a Pad node; mnq folds such a Pad only into a Conv/);
  });

  testOrt('the JS reference execution of the plan matches ONNX Runtime exactly', async () => {
    const cases: Parameters<typeof tinyConvModel>[0][] = [
      { act: 'Relu' }, { act: 'Clip', uint8: false }, { act: 'none', lut: 'HardSwish' },
      { maxPool: {} }, { maxPool: { ceil: true }, uint8: false }, { maxPool: { requantize: true }, lut: 'HardSwish' },
      { pieces: true }, { pieces: true, lut: 'HardSwish', uint8: false },
      { pad: 'qdq' }, { pad: 'float', uint8: false }, { pad: 'qdq', maxPool: {} },
    ];
    for (const opts of cases) {
      const bytes = tinyConvModel(opts);
      const m = compile(bytes);
      const ort = await openOrtInt8(bytes);
      const x = Float32Array.from({ length: 75 }, (_, i) => Math.sin(i * 1.7) * 2.5);
      const ours = runReference(m.plan, quantizeInput(x, 3, 5, 5, m.input.scale, m.input.zeroPoint))[m.outputs[0].tensor]!;
      const theirs = (await ort.run(x, [1, 3, 5, 5])).get(ort.int8Outputs[0])!.data;
      expect(Array.from(ours)).toEqual(Array.from(theirs));
      await ort.release();
    }
  });
});

describeShared('compiler on the shared int8 models', () => {
  const expected: Record<string, Record<string, number>> = {
    'mobilenet_v2_1.0_224_quant.qdq.onnx': { conv: 53, add: 10, globalAvgPool: 1 },
    'tf2_mobilenet_v2_1.0_224_ptq.qdq.onnx': { conv: 53, add: 10, globalAvgPool: 1 },
    // 9 SE blocks: h-sigmoid as Add(3) -> Clip -> Q (fused table) and Mul(1/6) -> Relu -> Q (table)
    'mobilenet_v3_small_1.0_224_quant.qdq.onnx': { conv: 54, globalAvgPool: 11, lut: 9, mul: 9, add: 6 },
    // FC as QLinearMatMul + QLinearAdd(constant bias): the constant comes from a zero-weight FC
    'mobilenetv2-12-int8.onnx': { conv: 52, add: 11, globalAvgPool: 1, fullyConnected: 2 },
  };
  for (const file of int8Models()) {
    const base = path.basename(file);
    test(`${base}: plan structure`, () => {
      const m = compile(file);
      if (expected[base]) expect(opCounts(m)).toEqual(expected[base]);
      expect(m.input).toMatchObject({ c: 3, h: 224, w: 224 });
      expect(m.outputs).toHaveLength(1);
      expect(m.plan.tensors[m.outputs[0].tensor].c).toBe(base.startsWith('mobilenetv2-12') ? 1000 : 1001);
    });
  }

  // The QOperator model pins every rounding step (ORT runs its QLinear* kernels as written),
  // so a plain-JS execution of the plan must equal ORT bit for bit, at every layer. The eval image
  // hits an exact tie in a uint8 QLinearAdd (ORT's result depends on its FMA and uint8 domain).
  const tieImage = 'data/imagenet-sample/eval/n01632458_spotted_salamander.JPEG';
  (ORT_CAVEAT ? testIf(ORT_CAVEAT, ORT_HOW) : testShared(['models/onnx/mobilenetv2-12-int8.onnx', 'data/coral/cat.png', tieImage]))('mobilenetv2-12-int8: JS execution of the plan equals ONNX Runtime at every int8 tensor', async () => {
    const file = sharedFile('models', 'onnx', 'mobilenetv2-12-int8.onnx');
    const m = compile(file, { keep: 'all' });
    expect(m.plan.ops.filter((op) => op.type === PlanOpType.add).map((op) => op.addOffset)).toEqual(new Array(11).fill(128));
    const ort = await openOrtInt8(file, m.kept.map((k) => k.name));
    const images = [sharedFile('data', 'coral', 'cat.png'), sharedFile(tieImage)];
    const pipe = new ImagePipeline({ preprocess: 'torch', width: 224, height: 224 });
    let compared = 0;
    for (const img of images) {
      const x = await pipe.float(img);
      const ours = runReference(m.plan, quantizeInput(x, 3, 224, 224, m.input.scale, m.input.zeroPoint));
      const theirs = await ort.run(x, [1, 3, 224, 224]);
      for (const k of m.kept) {
        const r = theirs.get(k.name);
        if (!r) continue;
        const t = m.plan.tensors[k.tensor];
        const nhwc = ours[k.tensor]!;
        for (let c = 0; c < t.c; c++) for (let p = 0; p < t.h * t.w; p++) {
          if (nhwc[p * t.c + c] !== r.data[c * t.h * t.w + p]) throw new Error(`${path.basename(img)}: ${k.name} differs at channel ${c} pixel ${p}`);
        }
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(60 * images.length);
    await ort.release();
  });
});
