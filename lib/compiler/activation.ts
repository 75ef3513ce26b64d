// Elementwise float functions found between a DequantizeLinear and a
// QuantizeLinear (Relu, Clip, HardSwish, HardSigmoid, Sigmoid, Tanh, LeakyRelu,
// x * HardSigmoid(x), Add / Sub / Mul / Div by a scalar constant, and chains of
// them). ONNX Runtime evaluates these in float32 between DQ and Q (or, for
// Sigmoid / LeakyRelu, as a QLinear* table), so over int8 each is exactly a
// 256-entry table. A single standard function becomes a UnaryParams (the
// native make_lut builds the table, matching ORT's kernels); a chain of exact
// float32 arithmetic is tabulated here (buildTable).
import { UnaryFn, UnaryParams } from '../plan';
import { dequantizeLinear, f32, quantizeLinear } from '../numerics/quantization';

/** A float expression of one variable x (the dequantized input). */
export type Elementwise =
  | { fn: 'x' }
  | { fn: 'relu'; a: Elementwise }
  | { fn: 'clip'; a: Elementwise; lo: number; hi: number }
  | { fn: 'hardsigmoid'; a: Elementwise; alpha: number; beta: number }
  | { fn: 'hardswish'; a: Elementwise }
  | { fn: 'sigmoid'; a: Elementwise }
  | { fn: 'tanh'; a: Elementwise }
  | { fn: 'leakyrelu'; a: Elementwise; alpha: number }
  | { fn: 'add' | 'sub' | 'mul' | 'div'; a: Elementwise; b: Elementwise }
  | { fn: 'const'; value: number };

const isX = (e: Elementwise) => e.fn === 'x';

/** The single UnaryFn this expression is, if any. */
const F32_MAX = 3.4028234663852886e38;

export function asUnaryParams(e: Elementwise): UnaryParams | null {
  switch (e.fn) {
    case 'x': return { fn: UnaryFn.identity, p0: 0, p1: 0 };
    case 'relu': return isX(e.a) ? { fn: UnaryFn.relu, p0: 0, p1: 0 } : null;
    // an absent (infinite) bound is float32's largest: the same clamp of every finite value, and the runtime's
    // activation parameters are finite
    case 'clip': return isX(e.a) ? { fn: UnaryFn.clip, p0: Math.max(e.lo, -F32_MAX), p1: Math.min(e.hi, F32_MAX) } : null;
    case 'hardsigmoid': return isX(e.a) ? { fn: UnaryFn.hardsigmoid, p0: e.alpha, p1: e.beta } : null;
    case 'hardswish': return isX(e.a) ? { fn: UnaryFn.hardswish, p0: 0, p1: 0 } : null;
    case 'sigmoid': return isX(e.a) ? { fn: UnaryFn.sigmoid, p0: 0, p1: 0 } : null;
    case 'tanh': return isX(e.a) ? { fn: UnaryFn.tanh, p0: 0, p1: 0 } : null;
    case 'leakyrelu': return isX(e.a) ? { fn: UnaryFn.leakyrelu, p0: e.alpha, p1: 0 } : null;
    case 'mul': {
      // x * HardSigmoid(x) in either order: h-swish as PyTorch opset < 14 writes it.
      const [p, q] = [e.a, e.b];
      const hs = p.fn === 'hardsigmoid' ? p : q.fn === 'hardsigmoid' ? q : null;
      const other = hs === p ? q : p;
      if (hs && hs.fn === 'hardsigmoid' && isX(hs.a) && isX(other)) {
        return { fn: UnaryFn.mulHardsigmoid, p0: hs.alpha, p1: hs.beta };
      }
      return null;
    }
    default: return null;
  }
}

/**
 * Evaluates the expression in exact float32 arithmetic, or returns null when it
 * uses a function whose float32 result depends on the implementation
 * (sigmoid, tanh, h-swish inside a chain).
 */
export function exactEvaluator(e: Elementwise): ((x: number) => number) | null {
  switch (e.fn) {
    case 'x': return (x) => x;
    case 'const': { const v = f32(e.value); return () => v; }
    case 'relu': { const a = exactEvaluator(e.a); return a && ((x) => Math.max(0, a(x))); }
    case 'clip': {
      const a = exactEvaluator(e.a);
      return a && ((x) => Math.min(Math.max(a(x), e.lo), e.hi));
    }
    case 'hardsigmoid': {
      const a = exactEvaluator(e.a);
      const al = f32(e.alpha), be = f32(e.beta);
      return a && ((x) => Math.max(0, Math.min(1, f32(f32(al * a(x)) + be))));
    }
    case 'leakyrelu': {
      const a = exactEvaluator(e.a);
      const al = f32(e.alpha);
      return a && ((x) => { const v = a(x); return v >= 0 ? v : f32(al * v); });
    }
    case 'add': case 'sub': case 'mul': case 'div': {
      const a = exactEvaluator(e.a), b = exactEvaluator(e.b);
      if (!a || !b) return null;
      if (e.fn === 'add') return (x) => f32(a(x) + b(x));
      if (e.fn === 'sub') return (x) => f32(a(x) - b(x));
      if (e.fn === 'mul') return (x) => f32(a(x) * b(x));
      return (x) => f32(a(x) / b(x));
    }
    default: return null;
  }
}

export function describeElementwise(e: Elementwise): string {
  switch (e.fn) {
    case 'x': return 'x';
    case 'const': return String(e.value);
    case 'add': return `(${describeElementwise(e.a)} + ${describeElementwise(e.b)})`;
    case 'sub': return `(${describeElementwise(e.a)} - ${describeElementwise(e.b)})`;
    case 'mul': return `(${describeElementwise(e.a)} * ${describeElementwise(e.b)})`;
    case 'div': return `(${describeElementwise(e.a)} / ${describeElementwise(e.b)})`;
    case 'clip': return `clip(${describeElementwise(e.a)}, ${e.lo}, ${e.hi})`;
    default: return `${e.fn}(${describeElementwise(e.a)})`;
  }
}

/** A 256-entry table t[q + 128] = Q(f(DQ(q))) (ORT's QuantizeLinear / DequantizeLinear around f). */
export function buildTable(f: (x: number) => number, xScale: number, xZeroPoint: number,
  yScale: number, yZeroPoint: number): Int8Array {
  const t = new Int8Array(256);
  for (let q = -128; q <= 127; q++) t[q + 128] = quantizeLinear(f(dequantizeLinear(q, xScale, xZeroPoint)), yScale, yZeroPoint);
  return t;
}
