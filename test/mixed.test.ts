/**
 * @jest-environment ./test/helpers/node-env.js
 */
// int16 activations beside int8 ones (docs/quantization.md, "int16 activations"): the compiler's plan for
// QDQ graphs with int16 QuantizeLinear / DequantizeLinear (ONNX opset 21 and the com.microsoft form,
// int16 and uint16), its errors, and mnq against ONNX Runtime on such a graph. ORT runs the int16 groups
// in float32, so the rule is the tolerance: top-1 identical and logits SQNR >= 40 dB.
import { compile, load, UnsupportedModelError } from '../lib';
import { Dtype, PlanOpType } from '../lib/plan';
import { createSession, runFloat } from '../lib/ort/session';
import { readModel, encodeModel } from '../lib/onnx/proto';
import { mixedModel } from './helpers/mixed-model';
import { testOrt } from './helpers/ort';
import { tinyConvModel } from './helpers/tiny-models';

const dtypes = (m: ReturnType<typeof compile>) => m.plan.tensors.map((t) => t.dtype ?? Dtype.int8);

describe('compiler: int16 QDQ', () => {
  test('int16 tensors become int16 plan tensors; int8 ones stay as they are; no table is fused across int16', () => {
    const m = compile(mixedModel());
    const t = m.plan.tensors;
    const byName = (n: string) => t.find((x) => x.name === n)!;
    expect(byName('stem_q').dtype).toBe(Dtype.int16);
    expect(byName('hswish_q').dtype).toBe(Dtype.int16);
    expect(byName('expand_q').dtype).toBeUndefined(); // int8
    expect(byName('se_fc2_q').dtype).toBeUndefined();
    expect(byName('logits_q').dtype).toBeUndefined();
    expect(t[m.plan.input].dtype).toBeUndefined();
    expect(dtypes(m).filter((d) => d === Dtype.int16).length).toBe(9);
    // h-swish and h-sigmoid are their own ops (an int16 conv takes no table)
    const luts = m.plan.ops.filter((o) => o.type === PlanOpType.lut);
    expect(luts.map((o) => o.name).sort()).toEqual(['hswish_Q', 'se_hsigmoid_Q']);
    for (const o of m.plan.ops) {
      expect(o.hasActivation).toBe(false);
      expect(o.table.length).toBe(0);
    }
    // clamps in the int16 range: the ReLU after the depthwise conv clamps at the zero point
    const dw = m.plan.ops.find((o) => o.name.startsWith('dw'))!;
    expect([dw.qmin, dw.qmax]).toEqual([0, 32767]);
    const stem = m.plan.ops.find((o) => o.name === 'stem')!;
    expect([stem.qmin, stem.qmax]).toEqual([-32768, 32767]);
    // a lut's clamp is in its input's type: int16 for h-swish, int8 for the h-sigmoid
    expect([luts.find((o) => o.name === 'hswish_Q')!.qmin, luts.find((o) => o.name === 'se_hsigmoid_Q')!.qmin]).toEqual([-32768, -128]);
  });

  test('the com.microsoft Q/DQ form and uint16 tensors give the same plan', () => {
    const base = compile(mixedModel()).plan;
    expect(compile(mixedModel({ form: 'com.microsoft' })).plan).toEqual(base);
    expect(compile(mixedModel({ uint16: true })).plan).toEqual(base);
    // a zero point is kept (int16 domain)
    const zp = compile(mixedModel({ zeroPoint: -300 })).plan;
    expect(zp.tensors.find((t) => t.name === 'stem_q')!.zeroPoint).toBe(-300);
  });

  test('what int16 cannot do yet is a clear error', () => {
    // the model input quantized to int16
    const m = readModel(mixedModel());
    const inputZp = m.graph!.initializer!.find((t) => t.name === 'input_z')!;
    inputZp.dataType = 5; // INT16
    inputZp.rawData = new Uint8Array(Int16Array.of(0).buffer);
    expect(() => compile(encodeModel(m))).toThrow(UnsupportedModelError);
    expect(() => compile(encodeModel(m))).toThrow(/quantizes the model input to int16/);
    // an int16 graph output
    const o = readModel(mixedModel());
    const logitsZp = o.graph!.initializer!.find((t) => t.name === 'logits_z')!;
    logitsZp.dataType = 5;
    logitsZp.rawData = new Uint8Array(Int16Array.of(0).buffer);
    expect(() => compile(encodeModel(o))).toThrow(/graph output 'output' is an int16 tensor/);
    // weights with a zero point next to int16 activations
    const w = readModel(mixedModel());
    const wz = w.graph!.initializer!.find((t) => t.name === 'dw_wz')!;
    wz.rawData = new Uint8Array(Int8Array.of(1, 0, 0, 0, 0, 0, 0, 0).buffer);
    expect(() => compile(encodeModel(w))).toThrow(/int16 activations and weights with a zero point/);
    // a DequantizeLinear that reads an int16 tensor as int8
    const d = readModel(mixedModel());
    for (const n of d.graph!.node!) if (n.name === 'stem_DQ') n.input![2] = 'input_z';
    expect(() => compile(encodeModel(d))).toThrow(/dequantizes 'stem_q' as int8 .* quantized as int16/);
  });

  test('int8-only plans carry no dtype field (unchanged)', () => {
    const m = compile(tinyConvModel());
    expect(m.plan.tensors.every((t) => !('dtype' in t))).toBe(true);
  });
});

/** Logits SQNR of a against the reference b, in dB. */
function sqnr(a: Float32Array, b: Float32Array): number {
  let s = 0, e = 0;
  for (let i = 0; i < a.length; i++) {
    s += b[i] * b[i];
    e += (a[i] - b[i]) ** 2;
  }
  return e === 0 ? Infinity : 10 * Math.log10(s / e);
}

function argmax(v: Float32Array, from: number, n: number): number {
  let best = from;
  for (let i = from; i < from + n; i++) if (v[i] > v[best]) best = i;
  return best - from;
}

describe('mixed int8 / int16 model against ONNX Runtime', () => {
  const images = 24;
  // smooth random images: a few low-frequency waves per channel, in [-1, 1]
  const input = new Float32Array(images * 3 * 16 * 16);
  for (let i = 0; i < images; i++)
    for (let c = 0; c < 3; c++) {
      const fx = 0.2 + 0.05 * ((i * 7 + c * 3) % 11), fy = 0.15 + 0.04 * ((i * 5 + c) % 13), ph = i + c;
      for (let y = 0; y < 16; y++)
        for (let x = 0; x < 16; x++) input[((i * 3 + c) * 16 + y) * 16 + x] = Math.sin(fx * x + ph) * Math.cos(fy * y - ph);
    }

  for (const form of ['opset21', 'com.microsoft'] as const) {
    testOrt(`${form}: top-1 identical on every image and logits SQNR >= 40 dB (ORT computes the int16 groups in float)`, async () => {
      const bytes = mixedModel({ form });
      const model = await load(bytes, { threads: 2 });
      const session = await createSession(bytes, 'int8-reference');
      try {
        const ours = await model.run(input, [images, 3, 16, 16]);
        const theirs = new Float32Array(images * 10);
        for (let i = 0; i < images; i++) {
          const r = await runFloat(session, input.subarray(i * 768, (i + 1) * 768), [1, 3, 16, 16]);
          theirs.set(r.output.data, i * 10);
        }
        // not degenerate: the logits vary, and the images do not all pick one class
        const classes = new Set(Array.from({ length: images }, (_, i) => argmax(theirs, i * 10, 10)));
        expect(classes.size).toBeGreaterThanOrEqual(3);
        for (let i = 0; i < images; i++) expect(`image ${i}: ${argmax(ours, i * 10, 10)}`).toBe(`image ${i}: ${argmax(theirs, i * 10, 10)}`);
        expect(new Set(theirs).size).toBeGreaterThanOrEqual(40); // the int8 logits use many of their levels
        const db = sqnr(ours, theirs);
        expect(db).toBeGreaterThanOrEqual(40);
      } finally {
        model.dispose();
        await session.release();
      }
    });
  }
});

// The depth-first executor on a mixed model: the int8 block runs as a fused group, the steps with int16
// tensors op by op (no group holds one), and the outputs are the layers executor's bit for bit.
describe('mixed int8 / int16 model: fused executor', () => {
  const images = 5;
  const input = Float32Array.from({ length: images * 3 * 16 * 16 }, (_, i) => Math.sin(i * 0.37) * Math.cos(i * 0.011));

  test('one fused group (the int8 block); outputs identical to the layers executor, batched and threaded', async () => {
    const bytes = mixedModel({ int8Block: true });
    for (const threads of [1, 2]) {
      const layers = await load(bytes, { threads, executor: 'layers' });
      const fused = await load(bytes, { threads, executor: 'fused' });
      try {
        expect([layers.executor, fused.executor]).toEqual(['layers', 'fused']);
        expect(layers.fusedGroups).toBe(0);
        expect(fused.fusedGroups).toBe(1);
        expect(fused.memory.windowBytesPerThread).toBeGreaterThan(0);
        expect(fused.memory.arenaBytesPerImage).toBeLessThan(layers.memory.arenaBytesPerImage);
        for (const batch of [1, images]) {
          const x = input.subarray(0, batch * 768);
          const want = await layers.run(x, [batch, 3, 16, 16]);
          expect(new Set(want).size).toBeGreaterThanOrEqual(batch === 1 ? 6 : 20); // not degenerate
          expect(await fused.run(x, [batch, 3, 16, 16])).toEqual(want);
        }
      } finally {
        layers.dispose();
        fused.dispose();
      }
    }
  });
});
