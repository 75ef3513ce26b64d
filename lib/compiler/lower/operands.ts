// The operands a lowered op reads, checked: an int8 tensor through its DequantizeLinear, quantized weights with
// their per-output-channel scales and zero points, and the int32 bias at scale x_scale * w_scale[c].
import { describeNode, DataType } from '../../onnx/proto';
import { f32 } from '../../numerics/quantization';
import { CompileState } from '../state';
import { DQVal, QConstVal, Value, dequantizedConst } from '../values';

export function dqArg(s: CompileState, v: Value, what: string, padded = false): DQVal {
  // Flatten / Reshape of a DQ (already checked to keep the NHWC byte order) reads the same int8 tensor.
  const dims = v.dims;
  while (v.kind === 'expr' && v.op === 'reshape') v = v.args[0];
  if (v.kind === 'dq' && v.pad && !padded) s.fail(`${what} is zero-padded by a Pad node; mnq folds such a Pad only into a Conv that reads it`);
  if (v.kind === 'dq') return { kind: 'dq', id: v.id, dims, ...(v.pad ? { pad: v.pad } : {}) };
  s.fail(`${what} must be a DequantizeLinear of an int8 tensor, found ${v.kind === 'expr' ? `a float ${describeNode(v.node)}` : v.kind}`);
}

export function weightArg(s: CompileState, v: Value, what: string): QConstVal {
  if (v.kind === 'const' && v.dtype === DataType.FLOAT) {
    s.fail(`${what} are float32, not quantized (a node kept in float, e.g. by \`mnq calibrate --exclude\`): mnq runs int8 weights only (a DequantizeLinear of constant int8/uint8 data)`);
  }
  if (v.kind !== 'qconst' || v.int32) s.fail(`${what} must be a DequantizeLinear of constant int8/uint8 data`);
  return v;
}

/** Per-output-channel scale / zero point arrays of quantized weights (channel axis `axis`). */
export function perChannel(s: CompileState, w: QConstVal, n: number, axis: number, what: string): { scale: Float32Array; zp: Int32Array } {
  if (w.scale.length === 1) return { scale: new Float32Array(n).fill(w.scale[0]), zp: new Int32Array(n).fill(w.zeroPoint[0]) };
  if (w.axis !== axis || w.scale.length !== n) s.fail(`${what} are quantized along axis ${w.axis}; expected per-tensor or per-channel along axis ${axis}`);
  return { scale: w.scale, zp: w.zeroPoint };
}

/** The plan's weight zero points: none (empty) when all are 0, i.e. symmetric weights. */
export function weightZeroPoints(zp: Int32Array): Int32Array {
  return zp.some((v) => v !== 0) ? zp : new Int32Array(0);
}

/** int32 bias at scale xScale * wScale[c]: an int32 DQ is taken as is (as ORT's QLinearConv does); float biases are quantized. */
export function biasArg(s: CompileState, b: Value | undefined, n: number, xScale: number, wScale: Float32Array): Int32Array {
  if (!b) return new Int32Array(0);
  if (b.kind === 'qconst' && b.int32) {
    if (b.data.length !== n) s.fail(`bias has ${b.data.length} values, expected ${n}`);
    return Int32Array.from(b.data);
  }
  let fb: ArrayLike<number> | null = null;
  if (b.kind === 'const' && b.dtype === DataType.FLOAT) fb = b.data as Float32Array;
  if (b.kind === 'qconst') fb = dequantizedConst(b);
  if (!fb || fb.length !== n) s.fail(`bias must be an int32 DequantizeLinear or a float constant of ${n} values`);
  const q = Array.from(fb, (v, i) => Math.round(v / f32(xScale * wScale[i])));
  const bad = q.findIndex((v) => !(v >= -(2 ** 31) && v < 2 ** 31));
  if (bad >= 0) s.fail(`bias[${bad}] = ${fb[bad]} is not an int32 at scale x_scale * w_scale = ${f32(xScale * wScale[bad])}`);
  return Int32Array.from(q);
}
