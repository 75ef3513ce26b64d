/**
 * @jest-environment ./test/helpers/node-env.js
 */
// Image pipeline: preprocessing specs, geometry, the int8 lookup table against ONNX Runtime's
// QuantizeLinear, TF preprocessing against a straightforward reference, decode error paths.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { onnx, readModel, tensorData } from '../lib/onnx/proto';
import {
  decodeToPixels, floatTable, geometry, ImageError, ImagePipeline, int8Table, pixelsToFloatNCHW, pixelsToNHWC,
} from '../lib/image';
import { formatPreprocess, parsePreprocess, PREPROCESS } from '../lib/preprocess-spec';
import { quantizeLinear } from '../lib/numerics/quantization';
import { ortQuantizeLinear } from './helpers/ort-quantize-linear';
import { sharedFile, testShared } from './helpers/shared';


const CAT = sharedFile('data', 'coral', 'cat.png');
const TENCH = sharedFile('data', 'imagenet-sample', 'eval', 'n01440764_tench.JPEG');
const QDQ_V2 = sharedFile('models', 'onnx', 'mobilenet_v2_1.0_224_quant.qdq.onnx');

// ---------------------------------------------------------------------------------------------------
// helpers

/** NCHW float [1,3,H,W] → NHWC order, to compare with the int8 NHWC tensor. */
function nchwToNhwc<T extends Float32Array | Int8Array>(x: T, h: number, w: number, make: (n: number) => T): T {
  const out = make(x.length);
  const hw = h * w;
  for (let c = 0; c < 3; c++) for (let i = 0; i < hw; i++) out[i * 3 + c] = x[c * hw + i];
  return out;
}

/** The input quantization (scale, zero point) of a QDQ model: the QuantizeLinear that reads the graph input. */
function inputQuantizationOf(file: string): { scale: number; zeroPoint: number } {
  const m = readModel(file);
  const g = m.graph as onnx.GraphProto;
  const inName = g.input[0].name;
  const q = g.node.find((n) => n.opType === 'QuantizeLinear' && n.input?.[0] === inName);
  if (!q) throw new Error('no input QuantizeLinear');
  const init = (name: string) => g.initializer.find((t) => t.name === name) as onnx.TensorProto;
  const [, s, zp] = q.input as string[];
  const scale = tensorData(init(s))[0];
  const zpT = init(zp);
  let zeroPoint = Number(tensorData(zpT)[0]);
  if (zpT.dataType === onnx.TensorProto.DataType.UINT8) zeroPoint -= 128; // uint8 → the same real values in int8
  return { scale, zeroPoint };
}

// ---------------------------------------------------------------------------------------------------

describe('preprocessing specs', () => {
  it('names, JSON and objects parse; bad specs give clear errors', () => {
    expect(parsePreprocess('tf')).toMatchObject({ resize: 'crop-then-resize', cropFraction: 0.875, mean: [127.5, 127.5, 127.5] });
    expect(parsePreprocess('torch')).toMatchObject({ resize: 'resize-then-crop', scale: 1 / 255, std: [0.229, 0.224, 0.225] });
    expect(parsePreprocess('{"base":"torch","size":160}').size).toEqual([160, 160]);
    expect(parsePreprocess({ resize: 'stretch', mean: 0, std: 1 })).toMatchObject({ name: 'custom', resize: 'stretch', mean: [0, 0, 0] });
    expect(() => parsePreprocess('caffe')).toThrow(/unknown preprocessing 'caffe'.*tf, torch/);
    expect(() => parsePreprocess('{"resize":"zoom"}')).toThrow(/'resize' must be one of/);
    expect(() => parsePreprocess('{"std":[1,0,1]}')).toThrow(/'std' must not contain 0/);
    expect(() => parsePreprocess('{"mean":[1,2]}')).toThrow(/'mean' must be a number or an array of 3/);
    expect(() => parsePreprocess('{"colour":1}')).toThrow(/unknown field 'colour'/);
    expect(() => parsePreprocess('{nope')).toThrow(/not valid JSON/);
    // round trip
    for (const s of ['tf', 'torch', 'raw', '{"base":"paddle","size":[48,192]}']) {
      const spec = parsePreprocess(s);
      expect(parsePreprocess(formatPreprocess(spec))).toEqual({ ...spec, name: expect.any(String) });
    }
    // the named specs are not modified by parsing
    parsePreprocess('tf').mean[0] = 0;
    expect(PREPROCESS.tf.mean[0]).toBe(127.5);
  });

  it('geometry follows tf.image.central_crop and torchvision Resize + CenterCrop', () => {
    const tf = parsePreprocess('tf');
    // 512x341: start = int((n - 0.875 n) / 2): 32 and 21; size = n - 2 start
    expect(geometry(tf, 512, 341, 224, 224)).toEqual({ preCrop: { left: 32, top: 21, width: 448, height: 299 }, resize: { width: 224, height: 224 } });
    const torch = parsePreprocess('torch');
    // shorter side 341 → 256, longer int(256 * 512 / 341) = 384; crop top round(16) left round(80)
    expect(geometry(torch, 512, 341, 224, 224)).toEqual({ resize: { width: 384, height: 256 }, postCrop: { left: 80, top: 16, width: 224, height: 224 } });
    // portrait, odd margin: round half to even like Python
    expect(geometry(torch, 300, 301, 224, 224).postCrop).toEqual({ left: 16, top: 16, width: 224, height: 224 });
    // other sizes scale the 256: 160 / 0.875 = 182.86 → 183
    expect(geometry(torch, 400, 400, 160, 160).resize).toEqual({ width: 183, height: 183 });
    expect(geometry(parsePreprocess('paddle'), 1000, 10, 192, 48)).toEqual({ resize: { width: 192, height: 48 } });
  });
});

describe('int8 input through the lookup table', () => {
  // every 8-bit value in every channel: 256 pixels whose R, G, B run through 0..255 in different orders
  const allValues = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    allValues[i * 3] = i;
    allValues[i * 3 + 1] = 255 - i;
    allValues[i * 3 + 2] = (i * 7) & 255;
  }

  const cases: [string, string, number, number][] = [
    ['tf, scale 1/128, zp 0 (TF QAT input)', 'tf', 0.0078125, 0],
    ['tf, scale 1/127.5, zp -1', 'tf', 1 / 127.5, -1],
    ['torch, odd scale', 'torch', 0.018658, 5],
    ['raw, scale 2 (every odd value is a tie: half to even)', 'raw', 2, -3],
    ['raw, scale 0.5 (saturates)', 'raw', 0.5, -128],
    ['raw, scale 1, zp 127 (saturates high)', 'raw', 1, 127],
    ['paddle, scale 1/64', 'paddle', 1 / 64, 3],
  ];
  it.each(cases)('%s: equals ONNX Runtime QuantizeLinear of the float input', async (_name, pre, scale, zp) => {
    const spec = parsePreprocess(pre);
    const f = new Float32Array(256 * 3);
    pixelsToFloatNCHW(allValues, floatTable(spec), f, 0);
    const expected = nchwToNhwc(await ortQuantizeLinear(f, scale, zp), 16, 16, (n) => new Int8Array(n));
    const q = new Int8Array(256 * 3);
    pixelsToNHWC(allValues, int8Table(spec, { scale, zeroPoint: zp }), q, 0);
    expect(Array.from(q)).toEqual(Array.from(expected));
    // and the scalar rule agrees value by value
    const scalar = Array.from(f, (v, j) => quantizeLinear(v, scale, zp) - expected[(j % 256) * 3 + Math.floor(j / 256)]);
    expect(scalar.every((d) => d === 0)).toBe(true);
  });

  it('rejects impossible input quantizations', () => {
    const tf = parsePreprocess('tf');
    expect(() => int8Table(tf, { scale: 0, zeroPoint: 0 })).toThrow(/scale must be a positive finite/);
    expect(() => int8Table(tf, { scale: 0.1, zeroPoint: 128 })).toThrow(/zero point must be an integer in \[-128, 127\]/);
  });

  testShared(['data/coral/cat.png', 'models/onnx/mobilenet_v2_1.0_224_quant.qdq.onnx'])('on a real image with a real model input quantization: int8 NHWC == QuantizeLinear(float NCHW)', async () => {
    for (const pre of ['tf', 'torch']) {
      const quant = inputQuantizationOf(QDQ_V2);
      const p = new ImagePipeline({ preprocess: pre, width: 224, height: 224, quantization: quant });
      const [f, q] = await Promise.all([p.float(CAT), p.int8(CAT)]);
      const expected = nchwToNhwc(await ortQuantizeLinear(f, quant.scale, quant.zeroPoint), 224, 224, (n) => new Int8Array(n));
      let diff = 0;
      for (let i = 0; i < q.length; i++) if (q[i] !== expected[i]) diff++;
      expect(diff).toBe(0);
      // the batch form writes the same bytes into each slot
      const b = await p.int8Batch([CAT, CAT]);
      expect(b.shape).toEqual([2, 224, 224, 3]);
      expect(Buffer.compare(Buffer.from(b.data.buffer, 3 * 224 * 224, 3 * 224 * 224), Buffer.from(q.buffer))).toBe(0);
    }
  });
});

// A straightforward reference for TF preprocessing: decode the whole image, take the TF central crop, resize it
// with an antialiased bilinear (triangle) filter in double precision, then (p - 127.5) / 127.5.
function triangleResize(src: Uint8Array, W: number, H: number, w: number, h: number): Float64Array {
  const weights = (inSize: number, outSize: number) => {
    const scale = inSize / outSize;
    const support = Math.max(1, scale);
    return Array.from({ length: outSize }, (_, o) => {
      const center = (o + 0.5) * scale;
      const lo = Math.max(0, Math.floor(center - support));
      const hi = Math.min(inSize, Math.ceil(center + support));
      const ws: number[] = [];
      for (let i = lo; i < hi; i++) ws.push(Math.max(0, 1 - Math.abs((i + 0.5 - center) / support)));
      const sum = ws.reduce((a, b) => a + b, 0);
      return { lo, ws: ws.map((x) => x / sum) };
    });
  };
  const wx = weights(W, w);
  const wy = weights(H, h);
  const tmp = new Float64Array(H * w * 3);
  for (let y = 0; y < H; y++) {
    for (let o = 0; o < w; o++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        wx[o].ws.forEach((k, j) => { s += k * src[(y * W + wx[o].lo + j) * 3 + c]; });
        tmp[(y * w + o) * 3 + c] = s;
      }
    }
  }
  const out = new Float64Array(h * w * 3);
  for (let o = 0; o < h; o++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        wy[o].ws.forEach((k, j) => { s += k * tmp[((wy[o].lo + j) * w + x) * 3 + c]; });
        out[(o * w + x) * 3 + c] = s;
      }
    }
  }
  return out;
}

describe('TF preprocessing on real images', () => {
  for (const [name, file, need] of [['cat.png', CAT, 'data/coral/cat.png'], ['tench JPEG', TENCH, 'data/imagenet-sample/eval/n01440764_tench.JPEG']]) testShared([need])(`${name} matches a reference computation`, async () => {
    const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const W = info.width;
    const H = info.height;
    const top = Math.trunc((H - H * 0.875) / 2);
    const left = Math.trunc((W - W * 0.875) / 2);
    const ch = H - 2 * top;
    const cw = W - 2 * left;
    const crop = new Uint8Array(ch * cw * 3);
    for (let y = 0; y < ch; y++) crop.set(data.subarray(((y + top) * W + left) * 3, ((y + top) * W + left + cw) * 3), y * cw * 3);
    const ref = triangleResize(crop, cw, ch, 224, 224);

    const p = new ImagePipeline({ preprocess: 'tf', width: 224, height: 224 });
    const f = await p.float(file);
    let max = 0;
    let sum = 0;
    let outOfRange = 0;
    for (let i = 0; i < 224 * 224; i++) {
      for (let c = 0; c < 3; c++) {
        const expected = (ref[i * 3 + c] - 127.5) / 127.5;
        const got = f[c * 224 * 224 + i];
        if (!(got >= -1 && got <= 1)) outOfRange++;
        const d = Math.abs(got - expected);
        max = Math.max(max, d);
        sum += d;
      }
    }
    expect(outOfRange).toBe(0);
    // libvips' linear kernel is the same triangle filter in fixed point, rounded to 8 bits:
    // on average within half a level, everywhere within 3 levels
    expect(sum / (3 * 224 * 224)).toBeLessThan(0.5 / 127.5);
    expect(max).toBeLessThan(3 / 127.5);
    // the float table is exactly (p - 127.5) / 127.5 in float32
    const t = floatTable(parsePreprocess('tf'));
    for (let v = 0; v < 256; v++) expect(t[v]).toBe(Math.fround((v - 127.5) / 127.5));
  });
});

describe('decoding', () => {
  const tf = parsePreprocess('tf');
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-image-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function jpeg(): Promise<Buffer> {
    // a real photo-like JPEG, made here: gradients and noise
    const w = 320;
    const h = 240;
    const raw = Buffer.alloc(w * h * 3);
    let s = 1;
    for (let i = 0; i < raw.length; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      raw[i] = ((i % (w * 3)) / 4 + (s >>> 24) / 8) & 255;
    }
    return sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
  }

  async function expectImageError(input: Parameters<typeof decodeToPixels>[0], re: RegExp, opts = {}): Promise<void> {
    const err = await decodeToPixels(input, tf, 224, 224, opts).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ImageError);
    expect((err as Error).message).toMatch(re);
  }

  it('missing, directory, empty, garbage, truncated, corrupt, unsupported, too large: clear per-image errors', async () => {
    const good = await jpeg();
    fs.writeFileSync(path.join(dir, 'empty.jpg'), Buffer.alloc(0));
    fs.writeFileSync(path.join(dir, 'text.jpg'), 'this is not an image');
    fs.writeFileSync(path.join(dir, 'half.jpg'), good.subarray(0, good.length >> 1));
    const png = await sharp(good).png().toBuffer();
    fs.writeFileSync(path.join(dir, 'half.png'), png.subarray(0, png.length >> 1));
    fs.writeFileSync(path.join(dir, 'x.bmp'), Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)]));
    const bad = Buffer.from(good);
    for (let i = 200; i < 2000; i += 3) bad[i] ^= 0x5a;
    fs.writeFileSync(path.join(dir, 'scrambled.jpg'), bad);

    await expectImageError(path.join(dir, 'nope.jpg'), /nope\.jpg: file not found/);
    await expectImageError(dir, /is a directory/);
    await expectImageError(path.join(dir, 'empty.jpg'), /empty file/);
    await expectImageError(path.join(dir, 'text.jpg'), /unsupported or unrecognised image format/);
    await expectImageError(path.join(dir, 'x.bmp'), /unsupported or unrecognised image format/);
    await expectImageError(path.join(dir, 'half.jpg'), /half\.jpg: truncated image/);
    await expectImageError(path.join(dir, 'half.png'), /half\.png: (truncated|corrupt)/);
    await expectImageError(path.join(dir, 'scrambled.jpg'), /scrambled\.jpg: (corrupt|truncated)/);
    await expectImageError(good, /pixel limit of 1000 pixels/, { limitInputPixels: 1000 });
    await expectImageError(new Uint8Array(0), /empty buffer/);
    await expectImageError({ data: new Uint8Array(10), width: 4, height: 4, channels: 3 }, /expected 4x4x3 = 48/);
    await expectImageError({ data: new Uint8Array(48), width: 4, height: 4, channels: 5 as 3 }, /channels must be 1, 2, 3 or 4/);
    await expectImageError(42 as unknown as string, /not an image/);
    // and a good one decodes, from a file and from bytes, without modifying the caller's buffer
    const copy = Buffer.from(good);
    const a = await decodeToPixels(good, tf, 224, 224);
    expect(Buffer.compare(copy, good)).toBe(0);
    fs.writeFileSync(path.join(dir, 'good.jpg'), good);
    const b = await decodeToPixels(path.join(dir, 'good.jpg'), tf, 224, 224);
    expect(a.data.length).toBe(224 * 224 * 3);
    expect(Buffer.compare(a.data, b.data)).toBe(0);
    await expect(decodeToPixels(good, tf, 224, 224, { limitInputPixels: -5 })).rejects.toThrow(/limitInputPixels must be/);
    // a JPEG that only draws a libjpeg warning (junk bytes before a marker) decodes: common in real photo sets
    const sos = good.indexOf(Buffer.from([0xff, 0xda]));
    const junk = Buffer.concat([good.subarray(0, sos), Buffer.from([1, 2, 3, 4]), good.subarray(sos)]);
    const j = await decodeToPixels(junk, tf, 224, 224);
    expect(j.data.length).toBe(224 * 224 * 3);
  });

  it('honours EXIF orientation, drops alpha, expands grey to RGB', async () => {
    const w = 90;
    const h = 60;
    const raw = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set([x * 2, y * 4, (x + y) & 255], (y * w + x) * 3);
    const upright = await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
    // stored rotated 90° clockwise, tagged orientation 8 (display = rotate 90° counter-clockwise)
    const stored = await sharp(upright).rotate(90).withMetadata({ orientation: 8 }).png().toBuffer();
    expect((await sharp(stored).metadata()).orientation).toBe(8);
    const a = await decodeToPixels(upright, tf, 64, 48);
    const b = await decodeToPixels(stored, tf, 64, 48);
    expect(Buffer.compare(a.data, b.data)).toBe(0);

    // RGBA: alpha dropped, colour kept
    const rgba = Buffer.alloc(w * h * 4);
    for (let i = 0; i < w * h; i++) rgba.set([raw[i * 3], raw[i * 3 + 1], raw[i * 3 + 2], i % 256], i * 4);
    const withAlpha = await decodeToPixels({ data: rgba, width: w, height: h, channels: 4 }, tf, 64, 48);
    const without = await decodeToPixels({ data: raw, width: w, height: h, channels: 3 }, tf, 64, 48);
    expect(Buffer.compare(withAlpha.data, without.data)).toBe(0);

    // grey: R = G = B
    const grey = await decodeToPixels({ data: new Uint8Array(w * h).map((_, i) => i & 255), width: w, height: h, channels: 1 }, tf, 32, 32);
    for (let i = 0; i < 32 * 32; i++) {
      expect(grey.data[i * 3]).toBe(grey.data[i * 3 + 1]);
      expect(grey.data[i * 3]).toBe(grey.data[i * 3 + 2]);
    }
  });

  it('batches keep a failed image as an error in its slot and decode the others', async () => {
    const p = new ImagePipeline({ preprocess: 'torch', width: 32, height: 32 });
    const good = await jpeg();
    const r = await p.floatBatch([good, path.join(dir, 'missing.png'), good]);
    expect(r.shape).toEqual([3, 3, 32, 32]);
    expect(r.errors[0]).toBeUndefined();
    expect(r.errors[1]?.message).toMatch(/missing\.png: file not found/);
    expect(r.errors[2]).toBeUndefined();
    const n = 3 * 32 * 32;
    expect(Array.from(r.data.subarray(n, 2 * n)).every((v) => v === 0)).toBe(true);
    expect(Array.from(r.data.subarray(0, n))).toEqual(Array.from(r.data.subarray(2 * n)));
    expect(() => new ImagePipeline({ preprocess: 'tf' })).toThrow(/positive integer input size/);
    await expect(p.int8(good)).rejects.toThrow(/no input quantization/);
  });
});
