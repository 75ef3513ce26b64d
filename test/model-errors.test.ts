// Rejected models (issue #19): a file that is not valid ONNX is an OnnxFormatError, a valid model mnq cannot run an
// UnsupportedModelError; both name the file (or "model (N bytes)"), and the node and its op type where there is
// one. Scales, zero points and shapes are checked by the compiler, in ONNX terms, before the runtime's plan check.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { compile, UnsupportedModelError } from '../lib/compiler';
import { load } from '../lib/model';
import { DataType, OnnxFormatError, encodeModel, makeTensor, onnx } from '../lib/onnx/proto';
import { tinyConvModel, tinyHeadModel } from './helpers/tiny-models';

const BASE = tinyConvModel({ act: 'Relu', uint8: false });

/** The tiny int8 conv model with `edit` applied to its decoded form. */
function edited(edit: (g: onnx.GraphProto) => void): Uint8Array {
  const m = onnx.ModelProto.decode(BASE);
  edit(m.graph as onnx.GraphProto);
  return encodeModel(m);
}

/** Replaces initializer `name` by a new tensor. */
function replace(g: onnx.GraphProto, name: string, t: onnx.TensorProto): void {
  const i = g.initializer.findIndex((x) => x.name === name);
  expect(i).toBeGreaterThanOrEqual(0);
  g.initializer[i] = t;
}

/** The error compile() throws for `bytes` (and that it throws one). */
function rejection(bytes: Uint8Array): Error & { node?: string; opType?: string } {
  try {
    compile(bytes);
  } catch (e) {
    return e as Error;
  }
  throw new Error('compile() accepted the model');
}

const SOURCE = /^model \(\d+ bytes\): /;

describe('models mnq cannot run: UnsupportedModelError naming the source, the node and its op type', () => {
  test.each([
    ['an infinite weight scale', Infinity, /DequantizeLinear node 'dq_w': scale 'w_s'\[1\] is Infinity; scales must be finite and > 0/],
    ['a NaN weight scale', NaN, /DequantizeLinear node 'dq_w': scale 'w_s'\[1\] is NaN; scales must be finite and > 0/],
    ['a zero weight scale', 0, /DequantizeLinear node 'dq_w': scale 'w_s'\[1\] is 0; scales must be finite and > 0/],
    ['a negative weight scale', -0.5, /DequantizeLinear node 'dq_w': scale 'w_s'\[1\] is -0.5; scales must be finite and > 0/],
  ])('%s', (_, value, message) => {
    const e = rejection(edited((g) => replace(g, 'w_s', makeTensor('w_s', [4], Float32Array.of(0.01, value, 0.005, 0.03)))));
    expect(e).toBeInstanceOf(UnsupportedModelError);
    expect(e.message).toMatch(SOURCE);
    expect(e.message).toMatch(message);
    expect([e.node, e.opType]).toEqual(['dq_w', 'DequantizeLinear']);
  });

  test.each([
    ['infinite', Infinity, 'Infinity'], ['NaN', NaN, 'NaN'], ['zero', 0, '0'], ['negative', -2, '-2'],
  ])('a %s activation scale', (_, value, shown) => {
    const e = rejection(edited((g) => replace(g, 'y_s', makeTensor('y_s', [], Float32Array.of(value)))));
    expect(e).toBeInstanceOf(UnsupportedModelError);
    expect(e.message).toMatch(SOURCE);
    expect(e.message).toContain(`QuantizeLinear node 'q_y': y_scale 'y_s' is ${shown}; scales must be finite and > 0`);
    expect([e.node, e.opType]).toEqual(['q_y', 'QuantizeLinear']);
  });

  test('a float64 activation scale beyond float32 (infinite as the float32 the runtime computes with)', () => {
    const big = onnx.TensorProto.create({ name: 'y_s', dims: [], dataType: DataType.DOUBLE, doubleData: [1e300] });
    const e = rejection(edited((g) => replace(g, 'y_s', big)));
    expect(e).toBeInstanceOf(UnsupportedModelError);
    expect(e.message).toMatch(/QuantizeLinear node 'q_y': y_scale 'y_s' is 1e\+300 \(Infinity as float32\); scales must be finite and > 0/);
  });

  test('an activation zero point of a type that is not int8 / uint8 (or int16 / uint16 in Q / DQ)', () => {
    const e = rejection(edited((g) => replace(g, 'y_z', makeTensor('y_z', [], Int32Array.of(300)))));
    expect(e).toBeInstanceOf(UnsupportedModelError);
    expect(e.message).toMatch(/^model \(\d+ bytes\): QuantizeLinear node 'q_y': y_zero_point 'y_z' has type INT32; only int8 and uint8 activations are supported \(and int16 \/ uint16 in QuantizeLinear \/ DequantizeLinear\)$/);
  });

  test('a weight zero point of another type than its weights', () => {
    const e = rejection(edited((g) => replace(g, 'w_z', makeTensor('w_z', [4], Uint8Array.of(0, 0, 0, 0)))));
    expect(e).toBeInstanceOf(UnsupportedModelError);
    expect(e.message).toMatch(/DequantizeLinear node 'dq_w': zero point 'w_z' has type UINT8, the quantized data INT8; they must be the same/);
  });

  test('weights whose dims disagree with the conv (same number of values)', () => {
    const w = onnx.ModelProto.decode(BASE).graph!.initializer!.find((t) => t.name === 'w_q')!;
    const e = rejection(edited((g) => replace(g, 'w_q', onnx.TensorProto.create({ ...w, dims: [4, 3, 1, 9] }))));
    expect(e).toBeInstanceOf(UnsupportedModelError);
    expect(e.message).toMatch(/^model \(\d+ bytes\): Conv node 'conv': kernel_shape 3,3 does not match the weights \[4,3,1,9\]/);
    expect([e.node, e.opType]).toEqual(['conv', 'Conv']);
  });

  test.each([
    ['negative pads', 'pads', [-1, 1, 1, 1], /Conv node 'conv': pads \[-1,1,1,1\] must be 4 integers from 0 to 2\^31 - 1/],
    ['a stride beyond int32', 'strides', [2 ** 31, 1], /Conv node 'conv': strides \[2147483648,1\] must be 2 integers from 1 to 2\^31 - 1/],
    ['one dilation', 'dilations', [2], /Conv node 'conv': dilations \[2\] must be 2 integers from 1 to 2\^31 - 1/],
  ])('conv attributes: %s', (_, name, ints, message) => {
    const e = rejection(edited((g) => {
      const conv = g.node.find((n) => n.name === 'conv')!;
      conv.attribute = [...(conv.attribute ?? []).filter((a) => a.name !== name), onnx.AttributeProto.create({ name, ints, type: onnx.AttributeProto.AttributeType.INTS })];
    }));
    expect(e).toBeInstanceOf(UnsupportedModelError);
    expect(e.message).toMatch(SOURCE);
    expect(e.message).toMatch(message);
  });

  test('an activation attribute that is not finite (HardSigmoid alpha)', () => {
    const m = onnx.ModelProto.decode(tinyHeadModel());
    const hs = m.graph!.node!.find((n) => n.opType === 'HardSigmoid')!;
    hs.attribute = [onnx.AttributeProto.create({ name: 'alpha', f: NaN, type: onnx.AttributeProto.AttributeType.FLOAT })];
    const e = rejection(encodeModel(m));
    expect(e).toBeInstanceOf(UnsupportedModelError);
    expect(e.message).toMatch(new RegExp(`^model \\(\\d+ bytes\\): HardSigmoid node '${hs.name}': attribute alpha is NaN; it must be a finite number$`));
  });

  test('a bias of a length other than the output channels', () => {
    const e = rejection(edited((g) => {
      replace(g, 'b_q', makeTensor('b_q', [5], Int32Array.of(1, 2, 3, 4, 5)));
      replace(g, 'b_s', makeTensor('b_s', [5], Float32Array.of(1e-4, 1e-4, 1e-4, 1e-4, 1e-4)));
    }));
    expect(e).toBeInstanceOf(UnsupportedModelError);
    expect(e.message).toMatch(/Conv node 'conv': bias has 5 values, expected 4/);
  });

  test('an op mnq lacks', () => {
    const e = rejection(tinyConvModel({ act: 'Elu' }));
    expect(e).toBeInstanceOf(UnsupportedModelError);
    expect(e.message).toMatch(/^model \(\d+ bytes\): Elu node 'act': /);
    expect([e.node, e.opType]).toEqual(['act', 'Elu']);
  });
});

describe('files that are not valid ONNX: OnnxFormatError naming the source', () => {
  test('bytes that are no protobuf', () => {
    const e = rejection(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f));
    expect(e).toBeInstanceOf(OnnxFormatError);
    expect(e.message).toMatch(/^model \(5 bytes\): not a valid ONNX file/);
  });

  test('an initializer whose data does not fill its dims', () => {
    const w = onnx.ModelProto.decode(BASE).graph!.initializer!.find((t) => t.name === 'w_q')!;
    const e = rejection(edited((g) => replace(g, 'w_q', onnx.TensorProto.create({ ...w, dims: [4, 3, 3, 2] }))));
    expect(e).toBeInstanceOf(OnnxFormatError);
    expect(e.message).toMatch(/^model \(\d+ bytes\): .*'w_q'.*108.*72/);
  });

  test('uint8 zero points out of [0, 255] in int32_data', () => {
    const zp = onnx.TensorProto.create({ name: 'y_z', dims: [], dataType: DataType.UINT8, int32Data: [300] });
    const e = rejection(edited((g) => replace(g, 'y_z', zp)));
    expect(e).toBeInstanceOf(OnnxFormatError);
    expect(e.message).toMatch(/^model \(\d+ bytes\): .*tensor 'y_z': int32_data\[0\] = 300 is outside \[0, 255\]/);
  });

  test.each([
    ['an int16', 40000, DataType.INT16, '-32768, 32767'],
    ['an int16', -32769, DataType.INT16, '-32768, 32767'],
    ['a uint16', 65536, DataType.UINT16, '0, 65535'],
    ['a uint16', -1, DataType.UINT16, '0, 65535'],
  ])('%s zero point %d in int32_data: outside its type\'s range', (_, value, dataType, range) => {
    const zp = onnx.TensorProto.create({ name: 'y_z', dims: [], dataType, int32Data: [value] });
    const e = rejection(edited((g) => replace(g, 'y_z', zp)));
    expect(e).toBeInstanceOf(OnnxFormatError);
    expect(e.message).toMatch(SOURCE);
    expect(e.message).toContain(`tensor 'y_z': int32_data[0] = ${value} is outside [${range}]`);
  });

  test('a data type ONNX does not define', () => {
    const w = onnx.ModelProto.decode(BASE).graph!.initializer!.find((t) => t.name === 'w_q')!;
    const e = rejection(edited((g) => replace(g, 'w_q', onnx.TensorProto.create({ ...w, dataType: 99 }))));
    expect(e).toBeInstanceOf(OnnxFormatError);
    expect(e.message).toMatch(/tensor 'w_q': data type 99 is not an ONNX data type/);
  });
});

describe('load() names the file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-model-errors-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a model file mnq cannot run, a file that is not ONNX, a file that does not exist', async () => {
    const bad = path.join(dir, 'bad-scale.onnx');
    fs.writeFileSync(bad, edited((g) => replace(g, 'w_s', makeTensor('w_s', [4], Float32Array.of(0.01, Infinity, 0.005, 0.03)))));
    await expect(load(bad)).rejects.toThrow(UnsupportedModelError);
    await expect(load(bad)).rejects.toThrow(`${bad}: DequantizeLinear node 'dq_w': scale 'w_s'[1] is Infinity`);
    const junk = path.join(dir, 'junk.onnx');
    fs.writeFileSync(junk, 'not a model');
    await expect(load(junk)).rejects.toThrow(OnnxFormatError);
    await expect(load(junk)).rejects.toThrow(`${junk}: not a valid ONNX file`);
    const gone = path.join(dir, 'gone.onnx');
    await expect(load(gone)).rejects.toThrow(OnnxFormatError);
    await expect(load(gone)).rejects.toThrow(`cannot read model file '${gone}'`);
  });

  test('a Clip without bounds between DequantizeLinear and QuantizeLinear (a table) loads and runs', async () => {
    const m = await load(tinyConvModel({ lut: 'Clip' }));
    try {
      expect((await m.run(new Float32Array(3 * 5 * 5).fill(0.5))).length).toBe(4);
    } finally {
      m.dispose();
    }
  });

  test('bad arguments stay TypeError / RangeError', async () => {
    await expect(load(42 as never)).rejects.toThrow(TypeError);
    await expect(load(BASE, { threads: 999 })).rejects.toThrow(RangeError);
    await expect(load(BASE, { isa: 'sse9' as never })).rejects.toThrow(TypeError);
  });
});
