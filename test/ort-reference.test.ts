/**
 * @jest-environment ./test/helpers/node-env.js
 */
// The ONNX Runtime reference itself (lib/ort/int8-reference.ts, lib/ort/cpu.ts): which CPUs make ORT's uint8 x int8
// kernels saturate, and that openOrtInt8 and the calibration sessions (lib/ort/session.ts, QdqExecution 'exact')
// give the exact integer result there (ORT's U8U8 kernels).
import * as ort from 'onnxruntime-node';
import { onnx, makeTensor, encodeModel, DataType } from '../lib/onnx/proto';
import { openOrtInt8 } from '../lib/ort/int8-reference';
import { activationTypes, ortU8S8Saturates } from '../lib/ort/cpu';
import { createSession, SessionKind, QdqExecution } from '../lib/ort/session';
import { tinyConvModel } from './helpers/tiny-models';

const flags = (...f: string[]) => new Set(['sse4_1', 'avx', 'avx2', 'fma', ...f]);
const AVX512 = ['avx512f', 'avx512bw', 'avx512dq', 'avx512vl'];

test('ortU8S8Saturates follows MLAS\'s kernel choice: saturating unless the kernel it picks has VNNI', () => {
  expect(ortU8S8Saturates(flags(), 'x64')).toBe(true); // AVX2 (this session's Zen 3)
  expect(ortU8S8Saturates(flags('avx_vnni'), 'x64')).toBe(false); // AVX-VNNI (Alder Lake)
  expect(ortU8S8Saturates(flags(...AVX512), 'x64')).toBe(true); // AVX-512 without VNNI (Skylake-X)
  expect(ortU8S8Saturates(flags(...AVX512, 'avx512_vnni'), 'x64')).toBe(false); // Cascade Lake, Zen 4
  expect(ortU8S8Saturates(flags(...AVX512, 'avx_vnni'), 'x64')).toBe(true); // MLAS takes its AVX-512 core kernel then
  expect(ortU8S8Saturates(null, 'x64')).toBe(true); // unknown x86: the exact U8U8 route
  expect(ortU8S8Saturates(flags(), 'arm64')).toBe(false);
});

test('activationTypes: the zero point types of the Q / QLinear outputs, not of the weights', () => {
  const u8 = onnx.ModelProto.decode(tinyConvModel());
  const s8 = onnx.ModelProto.decode(tinyConvModel({ uint8: false }));
  expect([...activationTypes(u8.graph!)]).toEqual([DataType.UINT8]);
  expect([...activationTypes(s8.graph!)]).toEqual([DataType.INT8]);
});

/**
 * input [1, 16, 4, 4] -> Q (uint8, scale 1/255) -> QLinearConv 1x1 (int8 weights, 2 output channels) -> DQ.
 * Channel 0 has weights 127: every pair of products 255 * 127 * 2 = 64770 exceeds int16.
 */
function saturatingConv(): Uint8Array {
  const K = 16;
  const w = new Int8Array(2 * K);
  for (let k = 0; k < K; k++) { w[k] = 127; w[K + k] = k % 2 ? -100 : 90; }
  const inits = [
    makeTensor('x_s', [], Float32Array.of(1 / 255)), makeTensor('x_z', [], Uint8Array.of(0)),
    makeTensor('w', [2, K, 1, 1], w), makeTensor('w_s', [2], Float32Array.of(1 / 127, 1 / 127)), makeTensor('w_z', [2], Int8Array.of(0, 0)),
    makeTensor('y_s', [], Float32Array.of(0.1)), makeTensor('y_z', [], Uint8Array.of(0)),
  ];
  const node = (opType: string, input: string[], output: string[]) => onnx.NodeProto.create({ opType, input, output, name: output[0] });
  const vi = (name: string, dims: number[]) => onnx.ValueInfoProto.create({
    name, type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  });
  return encodeModel(onnx.ModelProto.create({
    irVersion: 8, producerName: 'mnq-test', opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'saturating', initializer: inits,
      node: [node('QuantizeLinear', ['input', 'x_s', 'x_z'], ['x']),
        node('QLinearConv', ['x', 'x_s', 'x_z', 'w', 'w_s', 'w_z', 'y_s', 'y_z'], ['y']),
        node('DequantizeLinear', ['y', 'y_s', 'y_z'], ['output'])],
      input: [vi('input', [1, K, 4, 4])], output: [vi('output', [1, 2, 4, 4])],
    },
  }));
}

test('openOrtInt8 and the calibration sessions give the exact integer conv on this CPU; ORT\'s plain U8S8 kernels saturate exactly where ortU8S8Saturates says', async () => {
  const bytes = saturatingConv();
  const x = new Float32Array(16 * 16).fill(1); // quantizes to 255
  // exact: channel 0 = 16 * 255 * 127 * (1/255) * (1/127) / 0.1 = 160, channel 1 = 8 * (90 - 100) / 127 / 0.1 = -6.3 -> 0 (uint8)
  const exact = [...new Array(16).fill(160 - 128), ...new Array(16).fill(-128)];
  const ref = await openOrtInt8(bytes);
  const ours = Array.from((await ref.run(x, [1, 16, 4, 4])).get(ref.int8Outputs[0])!.data);
  await ref.release();
  expect({ mode: ref.mode, output: ours }).toEqual({ mode: ortU8S8Saturates() ? 'integer QDQ, U8U8 kernels' : 'integer QDQ', output: exact });

  const channel0 = async (kind: SessionKind, qdq?: QdqExecution) => {
    const s = await createSession(bytes, kind, { qdq });
    const out = (await s.run({ input: new ort.Tensor('float32', x, [1, 16, 4, 4]) })).output.data as Float32Array;
    await s.release();
    return Math.round(out[0] / 0.1);
  };
  // the kinds that measure int8 models run them exactly by default (QdqExecution 'exact')
  expect({ calibration: await channel0('calibration'), reference: await channel0('int8-reference') }).toEqual({ calibration: 160, reference: 160 });
  const saturated = await channel0('int8-reference', 'integer') !== 160; // ORT's integer QDQ execution as ORT sets it up
  // where the CPU flags are known, ORT saturates exactly when they say so; where they are not, the oracle takes
  // the U8U8 route anyway (exact everywhere), so it only must never miss a saturating CPU
  if (saturated) expect(ortU8S8Saturates()).toBe(true);
  if (process.platform === 'linux') expect({ saturated }).toEqual({ saturated: ortU8S8Saturates() });
});

test('a graph with uint8 and int8 activations is refused where ORT cannot run it exactly', async () => {
  const m = onnx.ModelProto.decode(tinyConvModel());
  // make the output's QuantizeLinear int8: one uint8 and one int8 activation
  const zp = m.graph!.initializer!.find((t) => t.name === 'g_z')!;
  zp.dataType = DataType.INT8;
  const bytes = encodeModel(m);
  if (ortU8S8Saturates()) await expect(openOrtInt8(bytes)).rejects.toThrow(/both uint8 and int8 activations: on this CPU \(x86 without VNNI\)/);
  else await (await openOrtInt8(bytes)).release();
});
