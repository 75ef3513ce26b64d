/**
 * @jest-environment ./test/helpers/node-env.js
 */
// Calibration on the real models and images of ../shared (MNQ_SHARED): small runs that fit CI
// (2 cores). The full-size measurement is scripts/accuracy.js (docs/calibration.md).
// Calibration uses imagenet-sample/calib only; eval images only measure.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { calibrate, inputQParams } from '../lib/calibrate/index';
import { CALIB_KEYS, readMetadata } from '../lib/onnx/metadata';
import { compare, compareHtml, formatCompare, MAX_FLIPS } from '../lib/calibrate/compare';
import { readModel, tensorData, attrInt, onnx, encodeModel } from '../lib/onnx/proto';
import * as cliCalibrate from '../lib/cli/calibrate';
import * as cliCompare from '../lib/cli/compare';
import { parsePreprocess } from '../lib/preprocess-spec';
import { withNhwcInput } from './helpers/tiny-models';
import { describeShared, sharedFile } from './helpers/shared';

const MODELS = sharedFile('models', 'onnx');
const CALIB = sharedFile('data', 'imagenet-sample', 'calib');
const EVAL = sharedFile('data', 'imagenet-sample', 'eval');
const model = (f: string) => path.join(MODELS, f);

let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-calib-test-')); });
afterAll(() => { if (tmp) fs.rmSync(tmp, { recursive: true, force: true }); });

/** A folder with the first n calibration images (symlinks: the shared files are not copied). */
function calibSubset(n: number, extra: Record<string, Buffer> = {}): string {
  const dir = fs.mkdtempSync(path.join(tmp, 'images-'));
  for (const f of fs.readdirSync(CALIB).sort().slice(0, n)) fs.symlinkSync(path.join(CALIB, f), path.join(dir, f));
  for (const [f, b] of Object.entries(extra)) fs.writeFileSync(path.join(dir, f), b);
  return dir;
}

describeShared('calibrate on shared models', () => {
  test('MobileNetV1 0.25 (128 px): 16 calibration images → int8 QDQ that tracks float on 60 eval images', async () => {
    const r = await calibrate(model('mobilenet_v1_0.25_128_quant.float.onnx'), { images: CALIB, limit: 16, method: 'minmax' });
    expect(r.imagesUsed).toBe(16);
    const m = readModel(r.bytes);
    const meta = Object.fromEntries((m.metadataProps ?? []).map((e) => [e.key, e.value]));
    expect(meta['mnq.preprocess']).toBe('tf');
    expect(meta['mnq.labels']).toBe('imagenet-1001');
    expect(meta[CALIB_KEYS.method]).toBe('minmax');
    expect(meta[CALIB_KEYS.sourceSha256]).toMatch(/^[0-9a-f]{64}$/);
    // every Conv: DQ(x), DQ(int8 weights per channel on axis 0), DQ(int32 bias)
    const nodes = m.graph!.node!;
    const prod = new Map(nodes.flatMap((n) => n.output!.map((o) => [o, n] as const)));
    const inits = new Map(m.graph!.initializer!.map((t) => [t.name!, t]));
    const convs = nodes.filter((n) => n.opType === 'Conv');
    expect(convs.length).toBe(28);
    for (const c of convs) {
      const [x, w, b] = c.input!.map((i) => prod.get(i)!);
      expect([x.opType, w.opType, b.opType]).toEqual(['DequantizeLinear', 'DequantizeLinear', 'DequantizeLinear']);
      expect(inits.get(w.input![0])!.dataType).toBe(onnx.TensorProto.DataType.INT8);
      expect(attrInt(w, 'axis', -1)).toBe(0);
      expect(inits.get(b.input![0])!.dataType).toBe(onnx.TensorProto.DataType.INT32);
      const wq = tensorData(inits.get(w.input![0])!) as Int8Array;
      expect(wq.every((v) => v >= -127)).toBe(true);
    }
    expect(nodes[0].opType).toBe('QuantizeLinear');
    expect(m.graph!.output![0].name).toBe('logits');
    const out = path.join(tmp, 'v1.int8.onnx');
    fs.writeFileSync(out, r.bytes);
    const c = await compare(model('mobilenet_v1_0.25_128_quant.float.onnx'), out, { images: EVAL, limit: 60, mnq: false });
    expect(c.images).toBe(60);
    expect(c.floatOrt.labelled).toBe(60);
    expect(c.int8Ort.top1).toBeGreaterThanOrEqual(c.floatOrt.top1! - 8);
    expect(c.agreementOrt).toBeGreaterThanOrEqual(80);
    expect(c.logitsCosine).toBeGreaterThan(0.98);
    expect(c.layers.length).toBeGreaterThan(20);
    expect(c.layers.some((l) => l.worst)).toBe(true);
    const html = compareHtml(c, 'test');
    expect(html).toMatch(/<svg[\s\S]*<rect/);
    expect(html).not.toMatch(/<script|(src|href)="https?:/);
  }, 900000);

  test('an NHWC export (input [N, H, W, 3] → Transpose, as tf2onnx writes Keras models) calibrates and compares exactly like the NCHW one', async () => {
    const v1 = model('mobilenet_v1_0.25_128_quant.float.onnx');
    const nhwc = path.join(tmp, 'v1-025.nhwc.onnx');
    fs.writeFileSync(nhwc, withNhwcInput(fs.readFileSync(v1)));
    const results = [];
    for (const src of [v1, nhwc]) {
      const r = await calibrate(src, { images: CALIB, limit: 8, method: 'percentile', biasCorrection: true, biasCorrectionImages: 4 });
      const out = path.join(tmp, `${path.basename(src)}.int8.onnx`);
      fs.writeFileSync(out, r.bytes);
      const c = await compare(src, out, { images: EVAL, limit: 20 });
      results.push({ ranges: r.tensors.map((t) => [t.scale, t.zeroPoint]), top1: c.int8Mnq!.top1, agreement: c.agreementOrt, sqnr: c.logitsSqnrDb, identical: c.mnqVsOrt!.identicalPct, input: c.layers[0].sqnrDb > 40 });
    }
    expect(results[1]).toEqual(results[0]);
    expect(results[0].identical).toBe(100);
    expect(results[0].input).toBe(true); // the input layer compares like with like
  }, 900000);

  test('bias correction: the int8 logits get closer to float (MobileNetV1 0.25, 16 images, 60 eval images)', async () => {
    const v1 = model('mobilenet_v1_0.25_128_quant.float.onnx');
    const sqnr = async (biasCorrection: boolean) => {
      const r = await calibrate(v1, { images: CALIB, limit: 16, method: 'minmax', biasCorrection, biasCorrectionImages: 16 });
      const out = path.join(tmp, `v1.bc.${biasCorrection}.onnx`);
      fs.writeFileSync(out, r.bytes);
      const meta = Object.fromEntries((readModel(r.bytes).metadataProps ?? []).map((e) => [e.key, e.value]));
      expect(meta[CALIB_KEYS.method]).toBe(biasCorrection ? 'minmax +bias-correction' : 'minmax');
      const c = await compare(v1, out, { images: EVAL, limit: 60, mnq: false, layers: false });
      return c.logitsSqnrDb;
    };
    const plain = await sqnr(false);
    const corrected = await sqnr(true);
    // measured: 24.1 → 25.2 dB
    expect(corrected).toBeGreaterThan(plain + 0.5);
  }, 900000);

  test('Keras MobileNetV3-Small (input rescale in the graph, h-swish, SE): raw preprocessing guessed, int8 agrees with float', async () => {
    const r = await calibrate(model('keras_mobilenet_v3_small_1.0_224.float.onnx'), { images: CALIB, limit: 24, method: 'percentile', equalize: 'hswish' });
    expect(r.normalizeLog.join(' ')).toMatch(/HardSwish → depthwise Conv equalized/);
    expect(r.preprocess).toBe('raw');
    expect(r.normalizeLog.join(' ')).toMatch(/input rescale/);
    const m = readModel(r.bytes);
    const ops = new Set(m.graph!.node!.map((n) => n.opType));
    expect(ops.has('HardSwish')).toBe(true);
    expect(ops.has('HardSigmoid')).toBe(true);
    // the raw 0..255 input is quantized exactly: scale 1
    const inQ = r.tensors.find((t) => t.name === 'input')!;
    expect(inQ.scale).toBe(1);
    const out = path.join(tmp, 'kv3.int8.onnx');
    fs.writeFileSync(out, r.bytes);
    const c = await compare(model('keras_mobilenet_v3_small_1.0_224.float.onnx'), out, { images: EVAL, limit: 30, mnq: false, layers: false });
    expect(c.classes).toBe(1000);
    // a floor, not the bar (95%): with --equalize-hswish (no bias correction, to stay fast)
    // this model agrees 84.7% with float on the full eval set (plain percentile: 72.8%; with
    // --bias-correction too: 90.6%; docs/calibration.md)
    expect(c.agreementOrt).toBeGreaterThanOrEqual(75);

    // GPTQ: the small float layers of this model (stem, first depthwise: TFLite's weight-only int8 left
    // them float) lose the most to plain rounding; GPTQ rounds them on their int8 inputs, and its
    // weights stay on the grid the emitter writes
    const g = await calibrate(model('keras_mobilenet_v3_small_1.0_224.float.onnx'), { images: CALIB, limit: 24, method: 'percentile', equalize: 'hswish', gptq: true, biasCorrectionImages: 16 });
    expect(g.normalizeLog.join(' ')).toMatch(/GPTQ weight rounding on 16 images/);
    const outG = path.join(tmp, 'kv3.gptq.int8.onnx');
    fs.writeFileSync(outG, g.bytes);
    const cg = await compare(model('keras_mobilenet_v3_small_1.0_224.float.onnx'), outG, { images: EVAL, limit: 30, mnq: false, layers: false });
    // measured on these 30 images: 7.55 → 9.28 dB (docs/calibration.md has the full eval set)
    expect(cg.logitsSqnrDb).toBeGreaterThan(c.logitsSqnrDb + 1);
  }, 900000);

  test('MobileNetV1 0.5 with --equalize-stem: the stem ReLU6 pair equalized, tf input on the least-error grid, int8 tracks float', async () => {
    const v1 = model('mobilenet_v1_0.5_160_quant.float.onnx');
    const r = await calibrate(v1, { images: CALIB, limit: 16, method: 'mse', equalize: 'stem' });
    expect(r.normalizeLog.join(' ')).toMatch(/1 Conv → \[Relu →\] Conv pairs equalized/);
    const meta = Object.fromEntries((readModel(r.bytes).metadataProps ?? []).map((e) => [e.key, e.value]));
    expect(meta[CALIB_KEYS.method]).toBe('mse +equalize-stem');
    // (p − 127.5)/127.5 is half a step off the 2/255 grid: the input gets the slightly wider least-error step
    const inQ = r.tensors.find((t) => t.name === 'input')!;
    const best = inputQParams(parsePreprocess('tf'));
    expect(inQ.scale).toBe(best.scale);
    expect(inQ.scale).toBeGreaterThan(2 / 255);
    // the stem's ReLU6 output keeps the clamp range [0, 6]
    const stem = r.tensors.find((t) => /^conv0_relu6/.test(t.name))!;
    expect([stem.lo, stem.hi]).toEqual([0, 6]);
    const out = path.join(tmp, 'v1-05.eqs.onnx');
    fs.writeFileSync(out, r.bytes);
    const c = await compare(v1, out, { images: EVAL, limit: 60, mnq: false, layers: false });
    // measured: 95.0% agreement, 26.7 dB (the full runs are in docs/calibration.md)
    expect(c.agreementOrt).toBeGreaterThanOrEqual(90);
    expect(c.logitsSqnrDb).toBeGreaterThan(24);
  }, 900000);

  test('torchvision exports (opset 13 HardSigmoid·Mul, opset 17 HardSwish) and PaddleOCR (opset 9, BN, Clip/Div/Mul) quantize and run', async () => {
    for (const [f, pp, method] of [
      ['mobilenet_v3_small.random.opset13.onnx', undefined, 'mse'],
      ['mobilenet_v3_large.random.opset17.onnx', undefined, 'minmax'],
      ['ppocr_mobile_v2.0_cls.float.onnx', '{"base":"paddle","size":[48,192]}', 'entropy'],
    ] as const) {
      const r = await calibrate(model(f), { images: CALIB, limit: 2, method, preprocess: pp });
      const out = path.join(tmp, `${f}.int8.onnx`);
      fs.writeFileSync(out, r.bytes);
      const c = await compare(model(f), out, { images: EVAL, limit: 3, mnq: false, layers: false, preprocess: pp });
      expect(c.images).toBe(3);
      expect(c.logitsCosine).toBeGreaterThan(0.9);
    }
  }, 1200000);

  test('bad input: clear errors, no partial output, nothing modified', async () => {
    const v1 = model('mobilenet_v1_0.25_128_quant.float.onnx');
    const empty = fs.mkdtempSync(path.join(tmp, 'empty-'));
    await expect(calibrate(v1, { images: empty })).rejects.toThrow(/no image files/);
    await expect(calibrate(v1, { images: path.join(tmp, 'missing') })).rejects.toThrow(/does not exist/);
    // corrupt images are skipped with a warning and counted; only corrupt → fails
    const warnings: string[] = [];
    const mixed = calibSubset(2, { 'broken.jpg': Buffer.from('not a jpeg at all') });
    const r = await calibrate(v1, { images: mixed, onWarning: (w) => warnings.push(w) });
    expect(r.imagesUsed).toBe(2);
    expect(r.imagesSkipped).toBe(1);
    expect(warnings.join('\n')).toMatch(/broken\.jpg/);
    const bad = fs.mkdtempSync(path.join(tmp, 'bad-'));
    fs.writeFileSync(path.join(bad, 'a.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0x00]));
    await expect(calibrate(v1, { images: bad })).rejects.toThrow(/none of the 1 images could be read/);
    // an int8 model is refused
    await expect(calibrate(model('mobilenet_v2_1.0_224_quant.qdq.onnx'), { images: mixed })).rejects.toThrow(/already quantized/);
    // unknown --exclude name
    await expect(calibrate(v1, { images: mixed, exclude: ['no_such_node'] })).rejects.toThrow(/--exclude no_such_node/);
    // CLI: existing output refused without --force, left untouched; --force overwrites; no temp files left
    const out = path.join(tmp, 'exists.onnx');
    fs.writeFileSync(out, 'keep me');
    const err = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      expect(await cliCalibrate.run([v1, '--images', mixed, '-o', out])).toBe(1);
      expect(fs.readFileSync(out, 'utf8')).toBe('keep me');
      expect(await cliCalibrate.run([v1, '--images', mixed, '-o', out, '--method', 'nope'])).toBe(2);
      expect(await cliCalibrate.run([v1, '--images', mixed])).toBe(2);
      expect(await cliCalibrate.run([v1, '--images', mixed, '-o', out, '--force', '--json', '--method', 'percentile', '--percentile', '99.9'])).toBe(0);
      const json = JSON.parse(log.mock.calls.map((c) => c.join(' ')).join('\n'));
      expect(json.imagesSkipped).toBe(1);
      expect(readModel(out).graph!.node!.some((n) => n.opType === 'QuantizeLinear')).toBe(true);
      expect(fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      // a failing calibration leaves no output file
      const none = path.join(tmp, 'none.onnx');
      await expect(cliCalibrate.run([v1, '--images', bad, '-o', none])).rejects.toThrow(/none of the/);
      expect(fs.existsSync(none)).toBe(false);
      // compare CLI: HTML report
      const html = path.join(tmp, 'report.html');
      expect(await cliCompare.run([v1, out, '--images', EVAL, '--limit', '4', '--html', html, '--no-mnq'])).toBe(0);
      expect(fs.readFileSync(html, 'utf8')).toMatch(/<svg/);
      expect(await cliCompare.run([v1, out, '--images', EVAL, '--limit', '4', '--html', html])).toBe(1);
    } finally {
      err.mockRestore();
      log.mockRestore();
    }
  }, 900000);

  test('compare: unlabelled images give no top-1 / top-5 (null, no NaN); a float model that is not the recorded source is refused, --force warns; the HTML report shows flips, layer names, version, date and command', async () => {
    const v1 = model('mobilenet_v1_0.25_128_quant.float.onnx');
    const r = await calibrate(v1, { images: CALIB, limit: 4, method: 'minmax' });
    const out = path.join(tmp, 'v1-compare.int8.onnx');
    fs.writeFileSync(out, r.bytes);
    // images without ImageNet wnids in their names
    const plain = fs.mkdtempSync(path.join(tmp, 'plain-'));
    fs.readdirSync(EVAL).sort().slice(0, 3).forEach((f, i) => fs.symlinkSync(path.join(EVAL, f), path.join(plain, `photo${i}.jpg`)));
    const c = await compare(v1, out, { images: plain, mnq: false, layers: false });
    expect([c.images, c.floatOrt, c.int8Ort]).toEqual([3, { top1: null, top5: null, labelled: 0 }, { top1: null, top5: null, labelled: 0 }]);
    expect(Number.isFinite(c.agreementOrt)).toBe(true);
    expect(formatCompare(c)).not.toMatch(/NaN/);
    expect(formatCompare(c)).toMatch(/no image is labelled/);
    expect(JSON.stringify(c)).not.toMatch(/NaN/);
    // another float file than the int8 file's source (the same network with other metadata: another sha256)
    const other = readModel(v1);
    other.producerName = 'not the source';
    const otherFile = path.join(tmp, 'v1-other.float.onnx');
    fs.writeFileSync(otherFile, encodeModel(other));
    await expect(compare(otherFile, out, { images: plain, mnq: false, layers: false })).rejects.toThrow(
      new RegExp(`'${otherFile}' is not the float model '${out}' was made from: its sha256 is [0-9a-f]{64}, the int8 file records ${readMetadata(r.model)[CALIB_KEYS.sourceSha256]}.*--force`));
    const warned: string[] = [];
    const forced = await compare(otherFile, out, { images: plain, mnq: false, layers: false, force: true, onWarning: (w) => warned.push(w) });
    expect(forced.warnings).toEqual(warned);
    expect(warned).toEqual([expect.stringMatching(/is not the float model/)]);
    // the HTML report (labelled images, mnq's int8 run, thumbnails)
    const full = await compare(v1, out, { images: EVAL, limit: 40, thumbnails: true, command: 'mnq compare a b' });
    expect(full.flipEngine).toBe('mnq');
    expect(full.flipCount).toBeGreaterThan(0); // 4 calibration images of a 0.25-width net: some images flip
    expect(full.flips.length).toBe(Math.min(full.flipCount, MAX_FLIPS));
    for (const f of full.flips) {
      expect(f.float.index).not.toBe(f.int8.index);
      expect(f.thumbnail).toMatch(/^data:image\/jpeg;base64,/);
      expect(f.float.probability).toBeGreaterThan(0);
    }
    const html = compareHtml(full, 'test');
    expect(html).toContain(`Made by mnq ${require('../package.json').version} on ${full.made.date} with <code>mnq compare a b</code>`);
    expect(html).toContain(`${full.flipCount} of 40 images`);
    expect(html).toContain(`<img src="${full.flips[0].thumbnail}"`);
    expect(html).toContain(`${full.flips[0].float.label} <span class="p">`);
    // every layer's name (or its tail) is a label on the chart's axis
    const axis = [...html.matchAll(/<text class="layer" [^>]*rotate\(-90 [^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    expect(axis.length).toBe(full.layers.length);
    expect(axis[0]).toBe(full.layers[0].tensor.length > 28 ? `…${full.layers[0].tensor.slice(-27)}` : full.layers[0].tensor);
    expect(html).not.toMatch(/<script|(src|href)="https?:/);
  }, 900000);
}, ['models/onnx', 'data/imagenet-sample/calib', 'data/imagenet-sample/eval']);
