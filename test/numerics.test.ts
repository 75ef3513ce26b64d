/**
 * @jest-environment ./test/helpers/node-env.js
 */
// The quantization arithmetic of the contract (lib/numerics/quantization.ts, docs/quantization.md): one
// QuantizeLinear for the compiler, the image pipeline and the runtime's output stage, pinned to ONNX
// Runtime's, NaN included.
import { dequantizeLinear, dequantizeTensor, quantizeLinear, quantizeWeight, roundHalfEven } from '../lib/numerics/quantization';
import { int8Table } from '../lib/image';
import { parsePreprocess } from '../lib/preprocess-spec';
import { ortQuantizeLinear } from './helpers/ort-quantize-linear';

describe('QuantizeLinear', () => {
  it('ties round half to even, like nearbyint', () => {
    expect(quantizeLinear(1, 2, 0)).toBe(0); // 0.5 → 0
    expect(quantizeLinear(3, 2, 0)).toBe(2); // 1.5 → 2
    expect(quantizeLinear(-1, 2, 0)).toBe(0); // -0.5 → -0
    expect(quantizeLinear(-3, 2, 0)).toBe(-2); // -1.5 → -2
    expect(quantizeLinear(1000, 1, 0)).toBe(127);
    expect(quantizeLinear(-1000, 1, 0)).toBe(-128);
    expect([0.5, 1.5, 2.5, -0.5, -2.5, 7].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, 7]);
  });

  it('NaN gives -128 (not the zero point), ±Inf the clamp bounds: what ONNX Runtime computes', async () => {
    const x = Float32Array.of(NaN, Infinity, -Infinity, 3.4e38, -3.4e38, 0.7, -0.7);
    for (const [scale, zp] of [[0.05, 0], [0.0078125, 17], [1, -128], [0.3, 127]]) {
      const ours = Array.from(x, (v) => quantizeLinear(v, scale, zp));
      expect(ours.slice(0, 3)).toEqual([-128, 127, -128]);
      expect(ours).toEqual(Array.from(await ortQuantizeLinear(x, scale, zp)));
    }
  });

  it('the image pipeline\'s int8 table follows the same rule (the float table, quantized value by value)', () => {
    const spec = parsePreprocess('tf');
    const t = int8Table(spec, { scale: 0.0078125, zeroPoint: 0 });
    expect(t[0]).toBe(-128); // -1 / (1/128)
    expect(t[255]).toBe(127); // 1 / (1/128) = 128 saturates
    expect(t[128]).toBe(quantizeLinear(0.5 / 127.5, 0.0078125, 0));
  });
});

describe('DequantizeLinear and weights', () => {
  it('dequantizes in float32: f32((q - zp) * scale)', () => {
    expect(dequantizeLinear(5, 0.1, 2)).toBe(Math.fround(3 * 0.1));
    expect(Array.from(dequantizeTensor(Int8Array.of(-128, 0, 127), 0.5, -1))).toEqual([-63.5, 0.5, 64]);
  });

  it('weights are symmetric int8 in [-127, 127], ties to even', () => {
    expect([quantizeWeight(1000, 1), quantizeWeight(-1000, 1), quantizeWeight(2.5, 1), quantizeWeight(-3.5, 1)]).toEqual([127, -127, 2, -4]);
  });
});
