// ONNX Runtime's scalar quantization arithmetic, reproduced exactly in float32
// (Math.fround after every operation: a single +, -, *, / of float32 values
// computed in double and rounded once is the correctly rounded float32 result).
// Used to compute activation tables and clamp bounds at compile time.

export const f32 = Math.fround;

/** Round half to even (the x86 / ARM default rounding mode, as std::nearbyint). */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  let r = Math.round(x); // half up
  if (r - x === 0.5 && r % 2 !== 0) r -= 1;
  return r;
}

/** ORT QuantizeLinear into int8: saturate(round_half_even(x / scale) + zp); NaN -> -128 as the native kernels and ORT (docs/quantization.md). */
export function quantize(x: number, scale: number, zeroPoint: number): number {
  const v = f32(x / scale);
  if (Number.isNaN(v)) return -128;
  const q = roundHalfEven(v) + zeroPoint;
  return q < -128 ? -128 : q > 127 ? 127 : q;
}

/** ORT DequantizeLinear: float32(q - zp) * scale. */
export function dequantize(q: number, scale: number, zeroPoint: number): number {
  return f32((q - zeroPoint) * scale);
}

/** A 256-entry table t[q + 128] = Q(f(DQ(q))). */
export function buildTable(f: (x: number) => number, xScale: number, xZeroPoint: number,
  yScale: number, yZeroPoint: number): Int8Array {
  const t = new Int8Array(256);
  for (let q = -128; q <= 127; q++) t[q + 128] = quantize(f(dequantize(q, xScale, xZeroPoint)), yScale, yZeroPoint);
  return t;
}
