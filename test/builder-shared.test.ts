/**
 * @jest-environment ./test/helpers/node-env.js
 */
// MobileNet builder against the real models in the shared data (MNQ_SHARED, default ../shared):
// layer-for-layer equality with torchvision's exports, and weight loading that reproduces
// the source files' outputs in ONNX Runtime on real images. Skips clearly without shared data.
import sharp from 'sharp';
import * as ort from 'onnxruntime-node';
import { buildMobileNet, inspectOnnx, OnnxLayer } from '../lib/builder';
import { encodeModel, readModel } from '../lib/onnx/proto';
import { createSession } from '../lib/ort/session';
import { describeShared, sharedFile, sharedPath } from './helpers/shared';


const model = (f: string) => sharedFile('models', 'onnx', f);

/** A real image as 1x3xSxS float: plain resize; 'tf' (p-127.5)/127.5, 'torch' ImageNet mean/std, 'raw' 0..255. */
async function image(file: string, size: number, mode: 'tf' | 'torch' | 'raw'): Promise<Float32Array> {
  const { data } = await sharp(file).removeAlpha().resize(size, size).raw().toBuffer({ resolveWithObject: true });
  const out = new Float32Array(3 * size * size);
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  for (let i = 0; i < size * size; i++) {
    for (let c = 0; c < 3; c++) {
      const p = data[i * 3 + c];
      out[c * size * size + i] = mode === 'raw' ? p : mode === 'tf' ? (p - 127.5) / 127.5 : (p / 255 - mean[c]) / std[c];
    }
  }
  return out;
}

async function logits(s: import('onnxruntime-node').InferenceSession, x: Float32Array, size: number): Promise<Float32Array> {
  const r = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, [1, 3, size, size]) });
  return r[s.outputNames[0]].data as Float32Array;
}

const signature = (l: OnnxLayer) => `${l.type} w[${l.weightShape}] g${l.group} s${l.strides} p${l.pads} ${l.act}`;

describeShared('builder vs torchvision exports: layer for layer', () => {
  test.each([
    ['v2', 13, 'mobilenet_v2.random.opset13.onnx'],
    ['v3-small', 13, 'mobilenet_v3_small.random.opset13.onnx'],
    ['v3-small', 17, 'mobilenet_v3_small.random.opset17.onnx'],
    ['v3-large', 17, 'mobilenet_v3_large.random.opset17.onnx'],
  ])('%s opset %p = %s', (arch, opset, file) => {
    const theirs = inspectOnnx(readModel(model(file)));
    const built = buildMobileNet(arch as string, { opset: opset as number, width: 1, resolution: 224 });
    const mine = inspectOnnx(readModel(encodeModel(built.model)));
    // same sequence of conv / linear shapes, groups, strides, pads and activations
    expect(mine.layers.map(signature)).toEqual(theirs.layers.map(signature));
    expect(mine.layers.map((l) => l.output)).toEqual(theirs.layers.map((l) => l.output));
    expect([mine.params, mine.macs]).toEqual([theirs.params, theirs.macs]);
    expect([mine.params, mine.macs]).toEqual([built.counts.params, built.counts.macs]);
    // same op vocabulary for activations (h-swish as HardSigmoid+Mul at 13, HardSwish at 17; ReLU6 as Clip)
    for (const op of ['HardSwish', 'HardSigmoid', 'Clip', 'Relu', 'Add', 'GlobalAveragePool', 'Gemm']) {
      expect([op, mine.ops[op] ?? 0]).toEqual([op, theirs.ops[op] ?? 0]);
    }
    expect(mine.input.shape).toEqual(theirs.input.shape);
  });
});

describeShared('builder: weights loaded from real ONNX files reproduce their outputs', () => {
  const images = ['cat.png', 'grace_hopper.png', 'parrot.jpg'];
  test.each([
    // arch, file, preprocessing, expected width / resolution / classes / padding
    ['v1', 'mobilenet_v1_0.25_128_quant.float.onnx', 'tf', 0.25, 128, 1001, 'tf-same'],
    ['v1', 'mobilenet_v1_0.5_160_quant.float.onnx', 'tf', 0.5, 160, 1001, 'tf-same'],
    ['v2', 'mobilenet_v2_1.0_224_quant.float.onnx', 'tf', 1, 224, 1001, 'tf-same'],
    ['v2', 'tf2_mobilenet_v2_1.0_224_ptq.float.onnx', 'tf', 1, 224, 1001, 'tf-same'],
    ['v3-small', 'mobilenet_v3_small_1.0_224_quant.float.onnx', 'tf', 1, 224, 1001, 'tf-same'],
    ['v3-small', 'keras_mobilenet_v3_small_1.0_224.float.onnx', 'raw', 1, 224, 1000, 'tf-same'],
    ['v2', 'mobilenet_v2.random.opset13.onnx', 'torch', 1, 224, 1000, 'symmetric'],
    ['v3-small', 'mobilenet_v3_small.random.opset17.onnx', 'torch', 1, 224, 1000, 'symmetric'],
    ['v3-large', 'mobilenet_v3_large.random.opset17.onnx', 'torch', 1, 224, 1000, 'symmetric'],
  ])('%s from %s', async (arch, file, mode, width, res, classes, padding) => {
    const built = buildMobileNet(arch as string, { weights: model(file as string) });
    expect([built.net.width, built.net.resolution, built.net.classes, built.load?.padding]).toEqual([width, res, classes, padding]);
    const src = await createSession(model(file as string), 'classifier');
    const mine = await createSession(encodeModel(built.model), 'classifier');
    let maxDiff = 0;
    for (const img of images) {
      const x = await image(sharedFile('data', 'coral', img), res as number, mode as 'tf' | 'torch' | 'raw');
      const a = await logits(src, x, res as number);
      const b = await logits(mine, x, res as number);
      expect(b.length).toBe(a.length);
      for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
      if (file === 'mobilenet_v2_1.0_224_quant.float.onnx' && img === 'cat.png') {
        expect(b.indexOf(Math.max(...b))).toBe(286); // Egyptian cat
      }
    }
    expect(maxDiff).toBeLessThanOrEqual(1e-4);
  });

  test('weights of another architecture or width: clear error naming the first mismatch', () => {
    expect(() => buildMobileNet('v2', { weights: model('mobilenet_v1_0.5_160_quant.float.onnx') }))
      .toThrow(/does not fit v2 .*first mismatch at layer 0: built features\.0 .*expects weight \[32,3,3,3\], source 'conv0'.* has \[16,3,3,3\]/);
    expect(() => buildMobileNet('v3-large', { weights: model('mobilenet_v3_small_1.0_224_quant.float.onnx') }))
      .toThrow(/first mismatch at layer 1/);
    expect(() => buildMobileNet('v1', { width: 0.5, weights: model('mobilenet_v1_0.25_128_quant.float.onnx') }))
      .toThrow(/first mismatch at layer 0.*\[16,3,3,3\].*has \[8,3,3,3\]/);
    expect(() => buildMobileNet('v2', { classes: 1000, weights: model('mobilenet_v2_1.0_224_quant.float.onnx') }))
      .toThrow(/layer 52: built classifier .*\[1000,1280\].*has \[1001,1280,1,1\]/);
  });

  test('info counts of the TF-derived and QOperator files', () => {
    const v2 = inspectOnnx(readModel(model('mobilenet_v2_1.0_224_quant.float.onnx')));
    expect(v2.layers.length).toBe(53);
    expect(Math.round(v2.macs! / 1e6)).toBe(301);
    const zoo = inspectOnnx(readModel(model('mobilenetv2-12-int8.onnx')));
    expect([zoo.layers.length, zoo.params, zoo.macs]).toEqual([53, 3487816, 300774272]);
  });
}, ['models/onnx', 'data/coral']);
