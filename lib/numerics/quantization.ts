// The quantization arithmetic of mnq's contract (docs/quantization.md) in TypeScript, one helper per
// rule: float32 rounding, round half to even, ONNX Runtime's QuantizeLinear (NaN -> -128) and
// DequantizeLinear, and the symmetric int8 weight rule mnq calibrate writes. Every TypeScript layer
// (compiler tables and clamps, the image pipeline's int8 tables, the runtime's output stage,
// calibration) uses these; the native kernels implement the same rules in native/kernels/quant.h.
//
// float32 arithmetic: Math.fround after every operation. A single +, -, *, / of float32 values computed
// in double and rounded once is the correctly rounded float32 result.

export const f32 = Math.fround;

/** Round half to even of a double (the x86 / ARM default rounding mode, as std::nearbyint); ±Inf and NaN stay. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // half up
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * ONNX Runtime's QuantizeLinear of one float32 value into int8 (or [qmin, qmax]: int16's range for an int16
 * tensor): saturate(round_half_even(f32(x / scale)) + zp). The division is float32; NaN gives qmin (ORT's
 * kernels clamp with MAXPS / FMAXNM, which return the bound), ±Inf and huge values the clamp bounds.
 */
export function quantizeLinear(x: number, scale: number, zeroPoint: number, qmin = -128, qmax = 127): number {
  const v = f32(f32(x) / f32(scale));
  if (Number.isNaN(v)) return qmin;
  const q = roundHalfEven(v) + zeroPoint;
  return q < qmin ? qmin : q > qmax ? qmax : q;
}

/** ONNX Runtime's DequantizeLinear of one value: f32((q - zp) * scale) (the integer difference is exact). */
export function dequantizeLinear(q: number, scale: number, zeroPoint: number): number {
  return f32((q - zeroPoint) * scale);
}

/** DequantizeLinear of a per-tensor quantized int8 tensor. */
export function dequantizeTensor(q: Int8Array, scale: number, zeroPoint: number): Float32Array {
  return Float32Array.from(q, (v) => dequantizeLinear(v, scale, zeroPoint));
}

/** A weight as mnq quantizes it: symmetric int8, round_half_even(w / scale) clamped to [-127, 127] (w / scale in double). */
export function quantizeWeight(w: number, scale: number): number {
  return Math.max(-127, Math.min(127, roundHalfEven(w / scale)));
}
