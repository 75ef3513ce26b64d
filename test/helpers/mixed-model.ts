// A small MobileNetV3-like QDQ graph with int16 activations beside int8 ones (the mixed precision of
// docs/quantization.md, "int16 activations"), for the compiler and ONNX Runtime comparison tests:
// input [N,3,16,16] -> Q8 -> stem Conv 3x3 s2 -> Q16 -> HardSwish -> Q16 -> depthwise 3x3 + Relu -> Q16
// -> pointwise -> Q8 -> pointwise -> Q16 -> Add (residual, int16) -> Q16 -> SE (GlobalAveragePool -> Q16
// -> 1x1 Conv + Relu -> Q8 -> 1x1 Conv -> Q8 -> HardSigmoid -> Q16 -> Mul) -> Q16 -> GlobalAveragePool
// -> Q16 -> Flatten -> Gemm -> Q8 -> output [N, 10]. int8Block: an int8 block before the stem.
import { GraphWriter, int, ints } from '../../lib/onnx/writer';

export interface MixedModelOptions {
  /** where the int16 QuantizeLinear / DequantizeLinear live: ONNX opset 21 (default) or the com.microsoft domain */
  form?: 'opset21' | 'com.microsoft';
  /** uint16 int16 tensors (zero point 32768, as ORT's quantizer writes QUInt16) instead of int16 (zero point 0) */
  uint16?: boolean;
  /** an int16 zero point other than 0 (ORT's asymmetric int16) */
  zeroPoint?: number;
  /**
   * an int8 inverted residual block before the stem (conv 3x3 -> expand 1x1 + Relu -> depthwise 3x3 + Relu
   * -> project 1x1 -> Add, every tensor int8): the part the fused executor runs as a group
   */
  int8Block?: boolean;
}

export function mixedModel(opts: MixedModelOptions = {}): Uint8Array {
  const ms = opts.form === 'com.microsoft';
  const g = new GraphWriter({ opset: ms ? 17 : 21, ...(ms ? { extraOpsets: { 'com.microsoft': 1 } } : {}), name: 'mixed', producerName: 'mnq-test' });
  let seed = 12345;
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  const x = g.input('input', ['N', 3, 16, 16]);
  g.output('output', ['N', 10]);

  // A QuantizeLinear -> DequantizeLinear pair: the float value as the next op reads it. The ranges are about
  // 1.2 times the largest value the float graph computes on the test's images.
  const qdq = (v: string, range: number, bits: 8 | 16, name: string): { out: string; scale: number } => {
    const levels = bits === 16 ? 32767 : 127;
    const scale = Math.fround(range / levels);
    const s = g.initializer(`${name}_s`, [], Float32Array.of(scale));
    const zp = opts.zeroPoint ?? 0;
    const z = bits === 8 ? g.initializer(`${name}_z`, [], Int8Array.of(0))
      : opts.uint16 ? g.initializer(`${name}_z`, [], Uint16Array.of(32768 + zp))
        : g.initializer(`${name}_z`, [], Int16Array.of(zp));
    const dom = bits === 16 && ms ? { domain: 'com.microsoft' } : {};
    const q = g.node('QuantizeLinear', [v, s, z], [`${name}_q`], {}, { name: `${name}_Q`, ...dom })[0];
    const out = g.node('DequantizeLinear', [q, s, z], [`${name}_dq`], {}, { name: `${name}_DQ`, ...dom })[0];
    return { out, scale };
  };
  // A Conv with symmetric per-channel int8 weights and an int32 bias, as ORT's quantizer writes them.
  const conv = (input: { out: string; scale: number }, inC: number, outC: number, k: number, stride: number, group: number, name: string): string => {
    const fanIn = (inC / group) * k * k;
    const w = new Int8Array(outC * fanIn);
    for (let i = 0; i < w.length; i++) w[i] = Math.round((rand() * 2 - 1) * 127);
    const ws = Float32Array.from({ length: outC }, () => Math.fround((1.5 + rand()) / (127 * Math.sqrt(fanIn))));
    const bias = Int32Array.from({ length: outC }, (_, c) => Math.round(((rand() * 2 - 1) * 0.1) / Math.fround(input.scale * ws[c])));
    const bs = Float32Array.from(ws, (s) => Math.fround(input.scale * s));
    const wq = g.initializer(`${name}_w`, [outC, inC / group, k, k], w);
    const wdq = g.node('DequantizeLinear', [wq, g.initializer(`${name}_ws`, [outC], ws), g.initializer(`${name}_wz`, [outC], new Int8Array(outC))], 1, { axis: int(0) }, { name: `${name}_wDQ` })[0];
    const bdq = g.node('DequantizeLinear', [g.initializer(`${name}_b`, [outC], bias), g.initializer(`${name}_bs`, [outC], bs)], 1, { axis: int(0) }, { name: `${name}_bDQ` })[0];
    const pad = (k - 1) / 2;
    return g.node('Conv', [input.out, wdq, bdq], 1, { kernel_shape: ints([k, k]), strides: ints([stride, stride]), pads: ints([pad, pad, pad, pad]), group: int(group) }, { name })[0];
  };

  let xq = qdq(x, 1, 8, 'input');
  let xc = 3;
  if (opts.int8Block) {
    const pre = qdq(conv(xq, 3, 8, 3, 1, 1, 'pre'), 3, 8, 'pre');
    const e = qdq(g.op('Relu', [conv(pre, 8, 16, 1, 1, 1, 'pre_expand')], {}, 'pre_expand_relu'), 3, 8, 'pre_expand');
    const d = qdq(g.op('Relu', [conv(e, 16, 16, 3, 1, 16, 'pre_dw')], {}, 'pre_dw_relu'), 3, 8, 'pre_dw');
    const p = qdq(conv(d, 16, 8, 1, 1, 1, 'pre_project'), 3, 8, 'pre_project');
    xq = qdq(g.op('Add', [p.out, pre.out], {}, 'pre_add'), 4, 8, 'pre_add');
    xc = 8;
  }
  const stem = qdq(conv(xq, xc, 8, 3, 2, 1, 'stem'), 3, 16, 'stem');
  const hs = qdq(g.op('HardSwish', [stem.out], {}, 'hswish'), 2.5, 16, 'hswish');
  const dw = qdq(g.op('Relu', [conv(hs, 8, 8, 3, 1, 8, 'dw')], {}, 'dw_relu'), 3, 16, 'dw');
  const expand = qdq(conv(dw, 8, 16, 1, 1, 1, 'expand'), 2.5, 8, 'expand');
  const project = qdq(conv(expand, 16, 8, 1, 1, 1, 'project'), 3, 16, 'project');
  const add = qdq(g.op('Add', [project.out, hs.out], {}, 'residual'), 2.5, 16, 'residual');
  const pool = qdq(g.op('GlobalAveragePool', [add.out], {}, 'se_pool'), 0.5, 16, 'se_pool');
  const fc1 = qdq(g.op('Relu', [conv(pool, 8, 8, 1, 1, 1, 'se_fc1')], {}, 'se_relu'), 0.5, 8, 'se_fc1');
  const fc2 = qdq(conv(fc1, 8, 8, 1, 1, 1, 'se_fc2'), 0.6, 8, 'se_fc2');
  const hsig = qdq(g.op('HardSigmoid', [fc2.out], { alpha: { f: 1 / 6 }, beta: { f: 0.5 } }, 'se_hsigmoid'), 1, 16, 'se_hsigmoid');
  const scaled = qdq(g.op('Mul', [add.out, hsig.out], {}, 'se_mul'), 1.2, 16, 'se_mul');
  const gap = qdq(g.op('GlobalAveragePool', [scaled.out], {}, 'pool'), 0.25, 16, 'pool');
  const flat = g.op('Flatten', [gap.out], {}, 'flatten');
  const n = 10, k = 8;
  const w = Int8Array.from({ length: n * k }, () => Math.round((rand() * 2 - 1) * 127));
  const ws = Float32Array.from({ length: n }, () => Math.fround(2 / (127 * Math.sqrt(k))));
  const wdq = g.node('DequantizeLinear', [g.initializer('fc_w', [n, k], w), g.initializer('fc_ws', [n], ws), g.initializer('fc_wz', [n], new Int8Array(n))], 1, { axis: int(0) }, { name: 'fc_wDQ' })[0];
  const logits = g.node('Gemm', [flat, wdq], 1, { transB: int(1) }, { name: 'fc' })[0];
  const out = qdq(logits, 0.35, 8, 'logits');
  g.node('Identity', [out.out], ['output'], {}, { name: 'output_identity' });
  return g.toBytes();
}
