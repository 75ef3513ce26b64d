/**
 * @jest-environment ./test/helpers/node-env.js
 */
// Mixed precision on a real model (QAT MobileNetV3-Small of ../shared): `calibrate` with int16 tensors forced by
// op type and chosen by --int16 auto, on a few calibration images. The files are int8 / int16 QDQ (opset 21,
// int16 zero points) that ONNX Runtime runs; mnq's integer run agrees with ORT's (which computes the int16 groups
// in float: close, not bit-identical) and both are closer to float than the all-int8 file.
// The accuracy and cost of the mixed files on the eval images: docs/calibration.md ("int16 activations").
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { calibrate } from '../lib/calibrate/index';
import { compare } from '../lib/calibrate/compare';
import { readModel, tensorData, DataType } from '../lib/onnx/proto';
import { readMetadata, CALIB_KEYS } from '../lib/onnx/metadata';
import { readInt16Metadata } from '../lib/calibrate/int16';
import { describeShared, sharedDir } from './helpers/shared';

const MODEL = path.join(sharedDir(), 'models', 'onnx', 'mobilenet_v3_small_1.0_224_quant.float.onnx');
const CALIB = path.join(sharedDir(), 'data', 'imagenet-sample', 'calib');
const IMAGES = 24;

let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mnq-int16-')); });
afterAll(() => { if (tmp) fs.rmSync(tmp, { recursive: true, force: true }); });

/** The int16 QuantizeLinear outputs of a file: the tensors they quantize. */
function int16Tensors(bytes: Uint8Array): string[] {
  const m = readModel(bytes);
  const inits = new Map((m.graph!.initializer ?? []).map((t) => [t.name!, t]));
  return (m.graph!.node ?? []).filter((n) => n.opType === 'QuantizeLinear' && inits.get(n.input![2] ?? '')?.dataType === DataType.INT16)
    .map((n) => n.input![0]);
}

describeShared('int16 activations on QAT MobileNetV3-Small', () => {
  test('--int16 HardSwish,Add: those tensors int16 (zero point 0, opset 21), closer to float, mnq close to ORT', async () => {
    const int8 = await calibrate(MODEL, { images: CALIB, limit: IMAGES, method: 'percentile' });
    const mixed = await calibrate(MODEL, { images: CALIB, limit: IMAGES, method: 'percentile', int16: ['HardSwish', 'Add'] });
    expect(int16Tensors(int8.bytes)).toEqual([]);
    const m = readModel(mixed.bytes);
    expect(Number(m.opsetImport!.find((o) => !o.domain)!.version)).toBeGreaterThanOrEqual(21);
    const chosen = mixed.int16!.tensors;
    const producers = new Map((m.graph!.node ?? []).flatMap((n) => n.output!.map((o) => [o, n.opType!] as const)));
    expect(chosen.length).toBeGreaterThan(10);
    for (const t of chosen) expect(['HardSwish', 'Add']).toContain(producers.get(t));
    expect(int16Tensors(mixed.bytes).sort()).toEqual([...chosen].sort());
    for (const t of mixed.tensors.filter((x) => x.bits === 16)) expect(t.zeroPoint).toBe(0);
    // every int16 zero point in the file is 0 (mnq writes them symmetric)
    for (const init of m.graph!.initializer ?? []) if (init.dataType === DataType.INT16) expect(Array.from(tensorData(init))).toEqual([0]);
    expect(mixed.int16!.final.sqnrDb).toBeGreaterThan(mixed.int16!.base.sqnrDb + 1);

    const f8 = path.join(tmp, 'int8.onnx'), f16 = path.join(tmp, 'mixed.onnx');
    fs.writeFileSync(f8, int8.bytes);
    fs.writeFileSync(f16, mixed.bytes);
    const c8 = await compare(MODEL, f8, { images: CALIB, limit: IMAGES, mnq: true, layers: false });
    const c16 = await compare(MODEL, f16, { images: CALIB, limit: IMAGES, mnq: true, layers: true });
    expect(c8.mnqVsOrt).toEqual({ top1Agreement: 100, identicalPct: 100, sqnrDb: Infinity }); // int8: bit-identical
    expect(c16.logitsSqnrDb).toBeGreaterThan(c8.logitsSqnrDb + 1);
    expect(c16.mnqVsOrt!.sqnrDb).toBeGreaterThan(25);
    expect(c16.layers.filter((r) => r.bits === 16).length).toBe(chosen.length);
  }, 900000);

  test('--int16 auto with an SQNR target: meets it with fewer tensors than all; the choice is in the file for compare', async () => {
    const r = await calibrate(MODEL, { images: CALIB, limit: IMAGES, method: 'percentile', int16: 'auto', int16Target: { sqnrDb: 18 } });
    const c = r.int16!;
    expect(c.stop).toBe('target met');
    expect(c.final.sqnrDb).toBeGreaterThanOrEqual(18);
    expect(c.base.sqnrDb).toBeLessThan(18);
    expect(c.allInt16.sqnrDb).toBeGreaterThan(c.final.sqnrDb);
    expect(c.tensors.length).toBeGreaterThan(0);
    expect(c.tensors.length).toBeLessThan(r.tensors.length);
    expect(c.share).toBeGreaterThan(0);
    expect(c.share).toBeLessThan(1);
    expect(int16Tensors(r.bytes).sort()).toEqual([...c.tensors].sort());
    const meta = readInt16Metadata(readMetadata(readModel(r.bytes))[CALIB_KEYS.int16]);
    expect(Object.keys(meta!.tensors).sort()).toEqual([...c.tensors].sort());
    expect(meta!.share).toBeCloseTo(c.share, 3);
  }, 900000);
}, ['models/onnx/mobilenet_v3_small_1.0_224_quant.float.onnx', 'data/imagenet-sample/calib']);
